//! The Pingora background service: keeps attestations fresh ahead of `max_age`, prewarms the
//! configured models, rotates the client key and keeps the upstream address resolved, so
//! requests never wait on any of it in steady state.

use crate::state::AppState;
use crate::venice::{selection, Deprecation};
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::{BTreeMap, BTreeSet};
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
    /// The models `attestation.prewarm` selects from what Venice lists now. An entry that
    /// selects nothing (a retired or misspelt id, a pattern whose family is gone) is never
    /// attested (the pod would wait forever): said at once in the log, and by `/readyz`.
    async fn listed_prewarm(&self) -> Vec<String> {
        let state = &self.state;
        let Ok(catalog) = state.catalog.get().await else {
            // No model list: attest the ids as configured (a fetch failure names the cause).
            return models_of(&state.prewarm.load());
        };
        let ids: Vec<&str> = catalog.models.iter().map(|m| m.id.as_str()).collect();
        let now = crate::attestation::unix_now();
        state
            .drift
            .listed(ids.iter().map(|m| m.to_string()).collect(), now);
        let selected = selection::select(
            &state.config.attestation.prewarm,
            &ids,
            &state.config.models,
        );
        let before = state.prewarm.load_full();
        if *selected != *before {
            for s in &selected {
                let was = before.iter().find(|b| b.entry == s.entry);
                if s.unmatched() && !was.is_some_and(selection::Selected::unmatched) {
                    log::warn!(
                        "attestation.prewarm entry {:?} selects no E2EE text model Venice lists (a retired or misspelt id, or a family gone; an alias under models.aliases can point a retired id at its successor): /readyz stays not ready until it does",
                        s.entry
                    );
                }
                for m in s
                    .models
                    .iter()
                    .filter(|m| !was.is_some_and(|b| b.models.contains(m)))
                {
                    crate::state::count_from_zero(m);
                }
            }
            state.prewarm.store(Arc::new(selected));
        }
        self.retirements(&catalog);
        models_of(&state.prewarm.load())
    }

    /// Venice's scheduled retirements in the list just fetched: each new one logged (a
    /// warning naming the date and whether the id will route to a successor), all shown as
    /// `venice_e2ee_proxy_model_retires_at_seconds{model}`, on the status page and in
    /// `/readyz` for prewarmed models.
    fn retirements(&self, catalog: &crate::venice::catalog::Snapshot) {
        let now: BTreeMap<String, Deprecation> = catalog
            .models
            .iter()
            .filter_map(|m| Some((m.id.clone(), m.deprecation()?)))
            .collect();
        let before = self.state.retiring.load_full();
        if *before == now {
            return;
        }
        let gauge = &crate::metrics::METRICS.model_retires_at;
        gauge.reset();
        let in_use = models_of(&self.state.prewarm.load());
        for (model, d) in &now {
            if let Some(unix) = d.unix {
                gauge
                    .with_label_values(&[model])
                    .set(i64::try_from(unix).unwrap_or(i64::MAX));
            }
            if before.get(model) != Some(d) {
                log::warn!(
                    "Venice retires model {model} at {} ({}){}",
                    d.removes_at,
                    match d.auto_remap {
                        Some(true) => "its id will then route to a successor",
                        _ => "no automatic remap: requests naming it will fail",
                    },
                    if in_use.contains(model)
                        || self.state.attestations.models_tried().contains(model)
                    {
                        "; this proxy uses it: point clients at a successor, or an alias under models.aliases"
                    } else {
                        ""
                    }
                );
            }
        }
        self.state.retiring.store(Arc::new(now));
    }
}

/// Every model `selections` select, once each.
fn models_of(selections: &[selection::Selected]) -> Vec<String> {
    let all: BTreeSet<&String> = selections.iter().flat_map(|s| &s.models).collect();
    all.into_iter().cloned().collect()
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
