//! The Pingora background service: keeps attestations fresh ahead of `max_age`, prewarms the
//! configured models, rotates the client key and keeps the upstream address resolved, so
//! requests never wait on any of it in steady state.

use crate::state::AppState;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct Refresher {
    state: Arc<AppState>,
    tick: Duration,
}

impl Refresher {
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        // Often enough to act well inside the refresh lead, never busier than 4 times a second.
        let tick = (state.config.attestation.refresh_lead / 4)
            .clamp(Duration::from_millis(250), Duration::from_secs(5));
        Refresher { state, tick }
    }

    /// One pass; public so tests and `verify` can drive it directly.
    pub(crate) async fn run_once(&self) {
        if self.state.keys.rotate_if_due() {
            log::info!("client key rotated");
        }
        if let Err(e) = self.state.upstream_addr().await {
            log::warn!("cannot resolve upstream {}: {e}", self.state.upstream.host);
        }
        let prewarm = self.listed_prewarm().await;
        let models: BTreeSet<String> = prewarm
            .into_iter()
            .chain(self.state.attestations.models())
            .collect();
        let refreshes = models
            .iter()
            .map(|m| self.state.attestations.refresh_if_due(m));
        // Failures are logged by the store; a failed refresh keeps the old key until max_age.
        futures_util::future::join_all(refreshes).await;
    }
}

impl Refresher {
    /// The prewarmed models Venice lists for E2EE. One it does not list is never attested
    /// (the pod would wait forever): said at once in the log, and by `/readyz`.
    async fn listed_prewarm(&self) -> Vec<String> {
        let prewarm = &self.state.config.attestation.prewarm;
        let Ok(catalog) = self.state.catalog.get().await else {
            // No model list: attest them anyway (a fetch failure names the cause).
            return prewarm.clone();
        };
        self.state.drift.listed(
            catalog.models.iter().map(|m| m.id.clone()).collect(),
            crate::attestation::unix_now(),
        );
        let (listed, unlisted): (Vec<String>, Vec<String>) = prewarm
            .iter()
            .cloned()
            .partition(|m| catalog.get(m).is_some());
        if unlisted != **self.state.unlisted.load() {
            for m in &unlisted {
                log::warn!(
                    "attestation.prewarm names {m:?}, which Venice does not list as an E2EE text model: /readyz stays not ready until it is listed or removed"
                );
            }
            self.state.unlisted.store(std::sync::Arc::new(unlisted));
        }
        listed
    }
}

#[async_trait]
impl BackgroundService for Refresher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            self.run_once().await;
            tokio::select! {
                _ = tokio::time::sleep(self.tick) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
