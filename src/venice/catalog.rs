//! The upstream model list, cached for `venice.models_ttl` and fetched once for many waiters.

use super::client::{UpstreamError, VeniceClient};
use super::Model;
use arc_swap::ArcSwapOption;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) struct Snapshot {
    pub(crate) fetched_at: Instant,
    /// Usable (E2EE text) models only, in upstream order.
    pub(crate) models: Vec<Model>,
    index: HashMap<String, usize>,
}

impl Snapshot {
    fn new(all: Vec<Model>) -> Self {
        let models: Vec<Model> = all.into_iter().filter(Model::is_e2ee_text).collect();
        let index = models
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id.clone(), i))
            .collect();
        Snapshot {
            fetched_at: Instant::now(),
            models,
            index,
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Model> {
        self.index.get(id).map(|&i| &self.models[i])
    }
}

pub(crate) struct Catalog {
    client: Arc<VeniceClient>,
    ttl: Duration,
    current: ArcSwapOption<Snapshot>,
    flight: tokio::sync::Mutex<()>,
    /// How the last fetch went: whether Venice answers with the key, and since when not.
    reach: ArcSwapOption<Reach>,
}

/// The outcome of the latest model-list fetch.
#[derive(Debug, Clone)]
pub(crate) enum Reach {
    /// Fetched at (Unix seconds).
    Answered(u64),
    /// Failed at, and why.
    Failed(u64, String),
}

impl Catalog {
    pub(crate) fn new(client: Arc<VeniceClient>, ttl: Duration) -> Self {
        Catalog {
            client,
            ttl,
            current: ArcSwapOption::empty(),
            flight: tokio::sync::Mutex::new(()),
            reach: ArcSwapOption::empty(),
        }
    }

    /// Whether the last list fetched names `id` (no fetch: never waits).
    pub(crate) fn lists(&self, id: &str) -> bool {
        self.current
            .load()
            .as_ref()
            .is_some_and(|s| s.get(id).is_some())
    }

    /// How the latest fetch went (`None`: none was made yet).
    pub(crate) fn reach(&self) -> Option<Arc<Reach>> {
        self.reach.load_full()
    }

    fn fresh(&self) -> Option<Arc<Snapshot>> {
        self.current
            .load_full()
            .filter(|s| s.fetched_at.elapsed() < self.ttl)
    }

    /// The cached list, refetched when older than the TTL. When a refetch fails, a stale list
    /// is still served: it only decides which ids are worth attesting, never trust.
    pub(crate) async fn get(&self) -> Result<Arc<Snapshot>, UpstreamError> {
        if let Some(s) = self.fresh() {
            return Ok(s);
        }
        let _one_fetch = self.flight.lock().await;
        if let Some(s) = self.fresh() {
            return Ok(s);
        }
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        };
        match self.client.models().await {
            Ok(list) => {
                let snap = Arc::new(Snapshot::new(list.data));
                self.current.store(Some(snap.clone()));
                self.reach.store(Some(Arc::new(Reach::Answered(now()))));
                Ok(snap)
            }
            Err(e) => {
                self.reach
                    .store(Some(Arc::new(Reach::Failed(now(), e.to_string()))));
                let Some(stale) = self.current.load_full() else {
                    return Err(e);
                };
                log::warn!("model list refresh failed, serving the cached list: {e}");
                Ok(stale)
            }
        }
    }
}
