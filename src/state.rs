//! Everything the proxy hooks and the background service share, built once from `Config`.

use crate::agent_sessions::Sessions;
use crate::api::DialectStates;
use crate::attestation::anchor_checks::Anchors;
use crate::attestation::cache::AttestationStore;
use crate::attestation::drift::DriftWatch;
use crate::attestation::receipt_checks::Receipts;
use crate::attestation::verifier::EvidenceVerifier;
use crate::config::{Config, SetupError, Tenant, UpstreamUrl};
use crate::e2ee::keys::ClientKeys;
use crate::e2ee::sealing::Sealer;
use crate::venice::catalog::Catalog;
use crate::venice::client::VeniceClient;
use arc_swap::{ArcSwap, ArcSwapOption};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DNS_TTL: Duration = Duration::from_secs(60);

pub struct AppState {
    pub config: Config,
    pub(crate) upstream: UpstreamUrl,
    /// `Bearer <key>`, formatted once.
    pub(crate) authorization: String,
    pub(crate) catalog: Catalog,
    pub attestations: AttestationStore,
    pub(crate) keys: ClientKeys,
    /// Per-session client keys (agent sessions).
    pub sessions: Sessions,
    /// What each dialect keeps across requests (the Responses API's store).
    pub(crate) dialects: DialectStates,
    /// Encrypts request messages (ciphertext reuse, parallelism).
    pub(crate) sealer: Arc<Sealer>,
    /// Changes in what serves each model, and in Venice's model list.
    pub(crate) drift: Arc<DriftWatch>,
    /// What requests together may hold whole (`server.memory_budget`).
    pub budget: Arc<crate::budget::Budget>,
    /// Venice's JSON endpoints, and chat for answers the proxy must see whole.
    pub(crate) client: Arc<VeniceClient>,
    /// ACI receipts checked after answers.
    pub(crate) receipts: Arc<Receipts>,
    /// Host names the API answers under (`ServerSection::host_names`).
    pub(crate) allowed_hosts: Vec<String>,
    /// `attestation.prewarm` against Venice's model list as last fetched (before the first
    /// fetch: the ids as configured, the patterns matching nothing yet).
    pub(crate) prewarm: ArcSwap<Vec<crate::venice::selection::Selected>>,
    /// Models Venice lists with a scheduled retirement (as last fetched).
    pub(crate) retiring: ArcSwap<std::collections::BTreeMap<String, crate::venice::Deprecation>>,
    resolved: ArcSwapOption<(SocketAddr, Instant)>,
    chats_in_flight: AtomicUsize,
    /// Requests being answered (any route), for a quick exit after SIGTERM when idle.
    requests_in_flight: AtomicUsize,
}

/// The trust posture, said once at start-up: a warning for every relaxed root, check or
/// switch (and the `trust_relaxed` gauge), else one line saying nothing is relaxed.
fn trust_posture(verifier: &EvidenceVerifier) {
    let relaxed = verifier.trust_overrides();
    crate::metrics::METRICS
        .trust_relaxed
        .set(i64::try_from(relaxed.len()).unwrap_or(i64::MAX));
    if relaxed.is_empty() {
        log::info!(
            "trust: the pinned Intel, NVIDIA and Sigstore roots, every check enforced, {} reviewed workloads",
            verifier.workloads().len()
        );
    }
    for r in relaxed {
        log::warn!("trust relaxed: {r}");
    }
}

/// Creates a model's event counters at zero: Prometheus' `increase` cannot see an event
/// whose series first appears with it, so alerts would miss the first refusal, drift or
/// failed receipt of a prewarmed model (done when the prewarm selects it).
pub(crate) fn count_from_zero(model: &str) {
    let m = &crate::metrics::METRICS;
    for check in crate::attestation::envelope::Check::ALL {
        m.attestation_refusals
            .with_label_values(&[model, check.code()]);
    }
    for what in crate::attestation::drift::WHATS {
        m.drift_events.with_label_values(&[model, what]);
    }
    for result in crate::attestation::receipt_checks::RESULTS {
        m.receipts.with_label_values(&[model, result]);
    }
}

/// One request being answered, counted until it is dropped with the request's context.
pub(crate) struct InFlight(Arc<AppState>);

impl InFlight {
    pub(crate) fn new(state: &Arc<AppState>) -> Self {
        state.requests_in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.requests_in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One chat completion's place under `server.max_concurrent_chats`, given back on drop.
pub(crate) struct ChatPermit(Arc<AppState>);

impl Drop for ChatPermit {
    fn drop(&mut self) {
        self.0.chats_in_flight.fetch_sub(1, Ordering::AcqRel);
        crate::metrics::METRICS.active_chats.dec();
    }
}

impl AppState {
    pub fn new(config: Config) -> Result<Arc<Self>, SetupError> {
        let upstream = config.validate()?;
        let client = Arc::new(VeniceClient::new(&config)?);
        let budget = crate::budget::Budget::new(
            usize::try_from(config.server.memory_budget).unwrap_or(usize::MAX),
        );
        let verifier = Arc::new(EvidenceVerifier::from_config(&config)?);
        trust_posture(&verifier);
        crate::metrics::METRICS
            .drift_events
            .with_label_values(&["-", "model_list"]);
        let anchors = Arc::new(Anchors::new(&config, verifier.clone())?);
        let drift = Arc::new(DriftWatch::default());
        Ok(Arc::new(AppState {
            authorization: format!("Bearer {}", config.venice.api_key.expose()),
            catalog: Catalog::new(client.clone(), config.venice.models_ttl),
            attestations: AttestationStore::new(
                client.clone(),
                verifier,
                &config.attestation,
                drift.clone(),
            ),
            keys: ClientKeys::new(
                config.server.auth_tokens.len(),
                config.keys.client_key_rotation,
            ),
            sessions: Sessions::new(config.sessions.clone()),
            sealer: Arc::new(Sealer::new(if config.encryption.reuse_ciphertexts {
                config.encryption.cache_size as usize
            } else {
                0
            })),
            dialects: DialectStates::new(&config),
            receipts: Arc::new(Receipts::new(
                client.clone(),
                config.attestation.receipts.clone(),
                anchors,
                drift.clone(),
            )),
            drift,
            client,
            upstream,
            allowed_hosts: config.server.host_names(),
            prewarm: ArcSwap::from_pointee(crate::venice::selection::as_configured(
                &config.attestation.prewarm,
                &config.models,
            )),
            retiring: ArcSwap::default(),
            config,
            resolved: ArcSwapOption::empty(),
            chats_in_flight: AtomicUsize::new(0),
            requests_in_flight: AtomicUsize::new(0),
            budget,
        }))
    }

    /// The upstream's address. Resolved asynchronously and cached, because Pingora's peer
    /// wants a socket address and its own resolution is synchronous.
    pub(crate) async fn upstream_addr(&self) -> std::io::Result<SocketAddr> {
        if let Some(hit) = self.resolved.load().as_deref() {
            if hit.1.elapsed() < DNS_TTL {
                return Ok(hit.0);
            }
        }
        let target = (self.upstream.host.as_str(), self.upstream.port);
        let addr = tokio::net::lookup_host(target)
            .await?
            .next()
            .ok_or_else(|| {
                std::io::Error::other(format!("{} has no address", self.upstream.host))
            })?;
        self.resolved.store(Some(Arc::new((addr, Instant::now()))));
        Ok(addr)
    }

    /// A place for one more chat completion, unless `server.max_concurrent_chats` are in
    /// flight.
    pub(crate) fn chat_permit(self: &Arc<Self>) -> Option<ChatPermit> {
        let limit = self.config.server.max_concurrent_chats;
        if self.chats_in_flight.fetch_add(1, Ordering::AcqRel) >= limit {
            self.chats_in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        crate::metrics::METRICS.active_chats.inc();
        Some(ChatPermit(self.clone()))
    }

    /// The tenant whose token (the bearer token or API key the client sent) this is: its
    /// index among the configured client tokens, 0 when none are configured, `None` when it is
    /// none of them. Every token is compared, in constant time.
    pub(crate) fn tenant(&self, token: Option<&[u8]>) -> Option<Tenant> {
        use subtle::{ConditionallySelectable, ConstantTimeEq};
        let tokens = &self.config.server.auth_tokens;
        if tokens.is_empty() {
            return Some(0);
        }
        let given = token?;
        let (mut found, mut index) = (subtle::Choice::from(0), 0u64);
        for (i, t) in tokens.iter().enumerate() {
            let hit = t.expose().as_bytes().ct_eq(given);
            index.conditional_assign(&(i as u64), hit & !found);
            found |= hit;
        }
        bool::from(found).then_some(index as Tenant)
    }

    /// Whether `authorization` carries the admin token; never, when none is configured.
    /// Whether `authorization` carries the admin token: `Bearer <token>`, or HTTP Basic with
    /// the token as the password (any user name), which a browser asks for on the status page.
    pub(crate) fn admin_authorized(&self, authorization: Option<&[u8]>) -> bool {
        use base64::Engine;
        use subtle::ConstantTimeEq;
        let (Some(token), Some(header)) = (&self.config.server.admin_token, authorization) else {
            return false;
        };
        let given = if let Some(bearer) = header.strip_prefix(b"Bearer ") {
            zeroize::Zeroizing::new(bearer.to_vec())
        } else if let Some(basic) = header.strip_prefix(b"Basic ") {
            let Ok(pair) = base64::engine::general_purpose::STANDARD.decode(basic) else {
                return false;
            };
            let pair = zeroize::Zeroizing::new(pair);
            let Some(colon) = pair.iter().position(|&b| b == b':') else {
                return false;
            };
            zeroize::Zeroizing::new(pair[colon + 1..].to_vec())
        } else {
            return false;
        };
        token.expose().as_bytes().ct_eq(&given).into()
    }

    /// Requests being answered now.
    pub(crate) fn requests_in_flight(&self) -> usize {
        self.requests_in_flight.load(Ordering::Acquire)
    }

    /// Ready when Venice answers (its model list was fetched with the key, the latest fetch
    /// did not fail), every prewarm entry is met (an id: its model holds a usable verified
    /// key; a pattern or `listed`: one of the models it selects does), and, with no
    /// prewarm, not every model tried so far failed. With `prewarm: []` nothing is attested
    /// before a request asks for it, so readiness cannot wait for a model; it still says when
    /// Venice cannot be reached or nothing that was asked for verifies. Not ready names why,
    /// per model with its last error and its time.
    pub(crate) fn ready(&self) -> Result<(), serde_json::Value> {
        use crate::venice::catalog::Reach;
        let iso = crate::logging::rfc3339;
        let reach = self.catalog.reach();
        let venice = match reach.as_deref() {
            Some(Reach::Answered(at)) => Ok(*at),
            Some(Reach::Failed(at, why)) => Err(serde_json::json!({
                "reachable": false, "error": why, "at": iso(*at)})),
            None => Err(serde_json::json!({
                "reachable": false, "error": "the model list has not been fetched yet"})),
        };
        let selections = self.prewarm.load();
        let verified = |m: &String| self.attestations.cached(m).is_some();
        // An id's model must verify; a pattern is met by any one of its models.
        let waiting: Vec<&str> = selections
            .iter()
            .filter(|s| {
                if s.pattern {
                    !s.models.iter().any(verified)
                } else {
                    s.unmatched() || !s.models.iter().all(verified)
                }
            })
            .map(|s| s.entry.as_str())
            .collect();
        let prewarm: Vec<String> = selections.iter().flat_map(|s| s.models.clone()).collect();
        let tried = self.attestations.models_tried();
        let nothing_verifies = selections.is_empty()
            && !tried.is_empty()
            && tried.iter().all(|m| self.attestations.cached(m).is_none());
        if venice.is_ok() && waiting.is_empty() && !nothing_verifies {
            return Ok(());
        }
        let errors: serde_json::Map<String, serde_json::Value> = prewarm
            .iter()
            .chain(&tried)
            .filter_map(|m| {
                let (at, e) = self.attestations.last_error(m)?;
                Some((
                    m.clone(),
                    serde_json::json!({"code": e.check.code(), "message": e.message, "at": iso(at)}),
                ))
            })
            .collect();
        let why = match (&venice, waiting.first(), nothing_verifies) {
            (Err(v), _, _) => format!(
                "Venice cannot be reached: {}",
                v["error"].as_str().unwrap_or("-")
            ),
            (_, Some(m), _) => format!("waiting for a verified attestation of {m}"),
            _ => "no model asked for so far has verified".into(),
        };
        let unlisted: Vec<&str> = selections
            .iter()
            .filter(|s| s.unmatched())
            .map(|s| s.entry.as_str())
            .collect();
        let retiring = self.retiring.load();
        Err(serde_json::json!({
            "status": "not_ready",
            "why": why,
            "venice": venice.map_or_else(|e| e, |at| serde_json::json!({"reachable": true, "at": iso(at)})),
            "waiting_for_attestation": waiting,
            "not_listed_by_venice": unlisted,
            "retiring": prewarm.iter().filter_map(|m| Some((m, retiring.get(m)?))).collect::<std::collections::BTreeMap<_, _>>(),
            "last_errors": errors,
        }))
    }
}
