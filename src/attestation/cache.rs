//! Verified model keys per model. Reads are lock-free (`ArcSwap` of an immutable map); a
//! cold model is fetched once for all concurrent waiters; the background service refreshes
//! entries before they age out. A failed refresh keeps the old key only until `max_age`.

use super::envelope::{AttestationError, Check, VerifiedKey};
use super::evidence::report::Report;
use super::evidence::review::{ReviewStatus, ReviewedWorkload, WorkloadReview};
use super::pin::Pin;
use super::verifier::EvidenceVerifier;
use crate::config::{AttestationSection, FetchRetry};
use crate::venice::client::{UpstreamError, VeniceClient};
use arc_swap::ArcSwap;
use rand::RngCore;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

pub struct Entry {
    pub key: VerifiedKey,
    /// What was checked, for `/v1/attestation`.
    pub(crate) report: Report,
    pub(crate) verified_at: Instant,
    pub(crate) verified_unix: u64,
    /// When this key must be attested anew at the latest (unix seconds): the keyset's
    /// `not_after`, or an earlier `keyset_epoch.not_after` / `stale_after` Venice serves
    /// (unsigned, but it can only make us refresh sooner).
    pub(crate) refresh_by: Option<u64>,
    /// Set when Venice refused encryption to this key: the enclave may have a new key, so
    /// the next request attests again instead of using this entry.
    invalidated: AtomicBool,
}

impl Entry {
    pub(crate) fn age(&self) -> Duration {
        self.verified_at.elapsed()
    }

    pub fn invalidate(&self) {
        self.invalidated.store(true, Ordering::Release);
    }

    fn usable(&self, max_age: Duration) -> bool {
        self.age() < max_age
            && self.refresh_by.is_none_or(|t| super::unix_now() < t)
            && !self.invalidated.load(Ordering::Acquire)
    }

    /// Whether a refresh is due `lead` ahead of `max_age` or of `refresh_by`. An entry
    /// verified inside that lead already (Venice served no later end) is not fetched again
    /// each tick: it is used until its end, then attested on use.
    fn due(&self, max_age: Duration, lead: Duration) -> bool {
        let lead_secs = lead.as_secs();
        self.age() + lead >= max_age
            || self.refresh_by.is_some_and(|t| {
                super::unix_now() + lead_secs >= t && self.verified_unix + lead_secs < t
            })
            || !self.usable(max_age)
    }
}

#[derive(Default)]
struct Flight {
    lock: tokio::sync::Mutex<()>,
    /// The last failure and when it happened, so waiters queued behind a failing fetch share
    /// its result instead of each fetching again.
    last_failure: Mutex<Option<(Instant, AttestationError)>>,
    /// The report of the last failed verification, for `/v1/attestation`.
    last_failed_report: Mutex<Option<Arc<Report>>>,
    /// The last fetch or verification that failed and when (Unix seconds), until one
    /// succeeds: why the model is not usable, or why its last refresh failed.
    last_error: Mutex<Option<(u64, AttestationError)>>,
    /// After failed fetches: no new fetch before `until`.
    backoff: Mutex<Option<Backoff>>,
}

struct Backoff {
    failures: u32,
    until: Instant,
    error: AttestationError,
}

pub struct AttestationStore {
    client: Arc<VeniceClient>,
    verifier: Arc<EvidenceVerifier>,
    max_age: Duration,
    refresh_lead: Duration,
    retry: FetchRetry,
    entries: ArcSwap<HashMap<String, Arc<Entry>>>,
    flights: Mutex<HashMap<String, Arc<Flight>>>,
    /// The attestation form each model was first verified in (see `pin`).
    pins: Mutex<HashMap<String, Pin>>,
    /// The last form refused as weaker than the pin, and why, per model: what an operator
    /// may accept.
    refused: Mutex<HashMap<String, (Pin, String)>>,
    /// Changes in what serves each model.
    drift: Arc<super::drift::DriftWatch>,
}

/// A model's pinned form and the last form refused against it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct PinState {
    pub(crate) model: String,
    pub(crate) pinned: Pin,
    pub(crate) refused: Option<RefusedForm>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct RefusedForm {
    pub(crate) form: Pin,
    /// `Pin::digest` of `form`: what accepting it must name.
    pub(crate) digest: String,
    pub(crate) why: String,
}

/// Why a refused form was not accepted.
#[derive(Debug)]
pub(crate) enum AcceptError {
    /// Nothing refused to accept, or no pin to replace.
    Nothing(String),
    /// The form stored now is not the one reviewed (another refusal came in between).
    Changed(RefusedForm),
}

impl AttestationStore {
    pub(crate) fn new(
        client: Arc<VeniceClient>,
        verifier: Arc<EvidenceVerifier>,
        config: &AttestationSection,
        drift: Arc<super::drift::DriftWatch>,
    ) -> Self {
        AttestationStore {
            client,
            verifier,
            max_age: config.max_age,
            refresh_lead: config.refresh_lead,
            retry: config.fetch_retry.clone(),
            entries: ArcSwap::default(),
            flights: Mutex::default(),
            pins: Mutex::default(),
            refused: Mutex::default(),
            drift,
        }
    }

    pub(crate) fn verifier(&self) -> &EvidenceVerifier {
        &self.verifier
    }

    /// A verified key young enough to use, without waiting on anything.
    pub fn cached(&self, model: &str) -> Option<Arc<Entry>> {
        self.entries
            .load()
            .get(model)
            .filter(|e| e.usable(self.max_age))
            .cloned()
    }

    pub(crate) fn models(&self) -> Vec<String> {
        self.entries.load().keys().cloned().collect()
    }

    fn flight(&self, model: &str) -> Arc<Flight> {
        let mut flights = self.flights.lock().expect("flight map poisoned");
        flights.entry(model.to_string()).or_default().clone()
    }

    /// The key to encrypt to. Waits only when no usable key is cached.
    pub async fn get(&self, model: &str) -> Result<Arc<Entry>, AttestationError> {
        if let Some(e) = self.cached(model) {
            return Ok(e);
        }
        self.fetch_once(model, |s| s.cached(model).is_none()).await
    }

    /// Refreshes `model` if its entry is missing or within `refresh_lead` of `max_age` or of
    /// its keyset's end.
    pub(crate) async fn refresh_if_due(&self, model: &str) -> Result<Arc<Entry>, AttestationError> {
        let due = |s: &Self| {
            s.entries
                .load()
                .get(model)
                .is_none_or(|e| e.due(s.max_age, s.refresh_lead))
        };
        if !due(self) {
            return Ok(self
                .entries
                .load()
                .get(model)
                .cloned()
                .expect("present when not due"));
        }
        self.fetch_once(model, due).await
    }

    /// Runs one fetch for all callers that arrive while it is in flight.
    async fn fetch_once(
        &self,
        model: &str,
        still_needed: impl Fn(&Self) -> bool,
    ) -> Result<Arc<Entry>, AttestationError> {
        let flight = self.flight(model);
        let queued_at = Instant::now();
        let _only_fetcher = flight.lock.lock().await;
        if let Some(answer) = self.answered_while_queued(model, &flight, queued_at, still_needed) {
            return answer;
        }
        let (report, mut result) = self.fetch_and_verify(model).await;
        if let (Ok(_), Some(r)) = (&result, &report) {
            if let Err(e) = self.check_pin(model, r) {
                result = Err(e);
            }
        }
        self.note_fetch(&flight, &result);
        if let Some(review) = report.as_ref().and_then(|r| r.review.as_ref()) {
            count_review(model, review.status);
        }
        match (result, report) {
            (Ok((key, refresh_by)), Some(report)) => {
                Ok(self.store_verified(model, &flight, key, refresh_by, report))
            }
            (Ok(_), None) => unreachable!("a verified key has a report"),
            (Err(err), report) => {
                note_failure(model, &flight, &err, report);
                Err(err)
            }
        }
    }

    /// What a caller that queued behind another fetch gets without fetching again: the entry
    /// that fetch stored, the error it ended in, or the error still backing off.
    fn answered_while_queued(
        &self,
        model: &str,
        flight: &Flight,
        queued_at: Instant,
        still_needed: impl Fn(&Self) -> bool,
    ) -> Option<Result<Arc<Entry>, AttestationError>> {
        if !still_needed(self) {
            if let Some(e) = self.entries.load().get(model) {
                return Some(Ok(e.clone()));
            }
        }
        if let Some((at, err)) = flight.last_failure.lock().expect("poisoned").as_ref() {
            if *at >= queued_at {
                return Some(Err(err.clone()));
            }
        }
        let backoff = flight.backoff.lock().expect("poisoned");
        let b = backoff.as_ref()?;
        let wait = b.until.saturating_duration_since(Instant::now());
        (!wait.is_zero()).then(|| {
            Err(AttestationError::new(
                b.error.check,
                format!(
                    "{} (not fetched again for {} ms)",
                    b.error.message,
                    wait.as_millis()
                ),
            ))
        })
    }

    /// Stores a verified key for `model`, says what was verified and feeds the drift watch.
    fn store_verified(
        &self,
        model: &str,
        flight: &Flight,
        key: VerifiedKey,
        refresh_by: Option<u64>,
        report: Report,
    ) -> Arc<Entry> {
        let previous = self
            .entries
            .load()
            .get(model)
            .map(|e| e.key.key_hex.clone());
        if previous.as_deref().is_some_and(|p| p != key.key_hex) {
            log::warn!(
                "model {model}: attested key changed to {} (verified before use)",
                key.address_hex()
            );
        }
        let w = report.workload.as_ref();
        self.drift.verified(
            model,
            super::drift::Fingerprint {
                compose: w.map(|w| w.compose_hash.clone()),
                os_image: w
                    .and_then(|w| w.os_image_hash.as_ref())
                    .map(|h| h.value.clone()),
                gateway_commit: report.gateway.as_ref().map(|g| g.commit.clone()),
                keyset: key.keyset.as_ref().map(|k| k.digest.clone()),
            },
            super::unix_now(),
        );
        log_verified(model, &key, &report);
        let entry = Arc::new(Entry {
            key,
            report,
            verified_at: Instant::now(),
            verified_unix: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            refresh_by,
            invalidated: AtomicBool::new(false),
        });
        self.entries.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.insert(model.to_string(), entry.clone());
            map
        });
        *flight.last_failure.lock().expect("poisoned") = None;
        *flight.last_error.lock().expect("poisoned") = None;
        crate::metrics::METRICS
            .attestation_refreshes
            .with_label_values(&[model, "verified"])
            .inc();
        entry
    }

    /// Pins the first verified form of `model`; refuses a weaker one later.
    fn check_pin(&self, model: &str, report: &Report) -> Result<(), AttestationError> {
        let next = Pin::of(report);
        let mut pins = self.pins.lock().expect("pins poisoned");
        if let Some(why) = pins.get(model).and_then(|p| p.weakened_by(&next)) {
            self.refused
                .lock()
                .expect("poisoned")
                .insert(model.to_string(), (next, why.clone()));
            return Err(AttestationError::new(
                Check::Downgrade,
                format!("{why}; refused (an operator can accept the new form with the admin action, see docs/OPERATIONS.md)"),
            ));
        }
        pins.insert(model.to_string(), next);
        Ok(())
    }

    /// Every pinned model, or one, with the last form refused against its pin.
    pub(crate) fn pin_states(&self, only: Option<&str>) -> Vec<PinState> {
        let pins = self.pins.lock().expect("pins poisoned");
        let refused = self.refused.lock().expect("poisoned");
        let mut states: Vec<PinState> = pins
            .iter()
            .filter(|(m, _)| only.is_none_or(|o| o == m.as_str()))
            .map(|(m, p)| PinState {
                model: m.clone(),
                pinned: p.clone(),
                refused: refused.get(m).map(|(form, why)| RefusedForm {
                    digest: form.digest(),
                    form: form.clone(),
                    why: why.clone(),
                }),
            })
            .collect();
        states.sort_by(|a, b| a.model.cmp(&b.model));
        states
    }

    /// Pins the last refused form of `model` in place of its pin (an operator's decision),
    /// if it is the form reviewed: `digest` must be its `Pin::digest`, so a form refused after
    /// the review is never pinned unseen. The next attestation in that form is used without a
    /// restart. Returns (old, new).
    pub(crate) fn accept_refused(
        &self,
        model: &str,
        digest: &str,
    ) -> Result<(Pin, Pin), AcceptError> {
        // Locked in `check_pin`'s order: pins, then refused.
        let mut pins = self.pins.lock().expect("pins poisoned");
        let mut refused = self.refused.lock().expect("poisoned");
        let Some((form, why)) = refused.get(model) else {
            return Err(AcceptError::Nothing(format!(
                "no refused attestation form of `{model}` to accept"
            )));
        };
        if !form.digest().eq_ignore_ascii_case(digest.trim()) {
            return Err(AcceptError::Changed(RefusedForm {
                form: form.clone(),
                digest: form.digest(),
                why: why.clone(),
            }));
        }
        let Some(old) = pins.get(model).cloned() else {
            return Err(AcceptError::Nothing(format!("`{model}` has no pin")));
        };
        let (form, _) = refused.remove(model).expect("looked up above");
        pins.insert(model.to_string(), form.clone());
        drop((pins, refused));
        // The refusal is no longer current: the next request attests again at once.
        if let Some(flight) = self.flights.lock().expect("flight map poisoned").get(model) {
            *flight.last_failure.lock().expect("poisoned") = None;
            *flight.backoff.lock().expect("poisoned") = None;
        }
        Ok((old, form))
    }

    /// The verdicts on workloads no review accepts, with the model that reported each: the
    /// last failed verification of every model, and the reports served under
    /// `attestation.workload_policy: report`.
    pub(crate) fn unreviewed_workloads(&self) -> Vec<(String, WorkloadReview)> {
        let failed: Vec<(String, Arc<Report>)> = {
            let flights = self.flights.lock().expect("flight map poisoned");
            flights
                .iter()
                .filter_map(|(m, f)| {
                    let r = f.last_failed_report.lock().expect("poisoned").clone()?;
                    Some((m.clone(), r))
                })
                .collect()
        };
        let served = self.entries.load();
        let mut out: Vec<(String, WorkloadReview)> = failed
            .iter()
            .map(|(m, r)| (m.clone(), r.review.clone()))
            .chain(
                served
                    .iter()
                    .map(|(m, e)| (m.clone(), e.report.review.clone())),
            )
            .filter_map(|(m, r)| Some((m, r?)))
            .filter(|(_, r)| r.status != ReviewStatus::Reviewed)
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1.digest).cmp(&(&b.0, &b.1.digest)));
        out.dedup_by(|a, b| a.0 == b.0 && a.1.digest == b.1.digest);
        out
    }

    /// Accepts the unreviewed workload an operator saw (`digest`, as the report gives it):
    /// its compose, on its OS image, is a reviewed workload from now on (until a restart), with
    /// the gateway and runtime variables the printed policy lines kept. Returns the entry and
    /// the policy lines to make it permanent.
    pub(crate) fn accept_workload(
        &self,
        digest: &str,
    ) -> Result<(ReviewedWorkload, String), AcceptError> {
        let digest = digest.trim().to_ascii_lowercase();
        let Some((model, review)) = self
            .unreviewed_workloads()
            .into_iter()
            .find(|(_, r)| r.digest == digest)
        else {
            return Err(AcceptError::Nothing(format!(
                "no unreviewed workload with digest {digest} was seen (GET /admin/workloads lists them)"
            )));
        };
        if review.status == ReviewStatus::Refused {
            return Err(AcceptError::Nothing(format!(
                "workload {digest} is refused whatever the policy says: {}",
                review.refusals.join("; ")
            )));
        }
        let lines = review.policy_lines.clone().unwrap_or_default();
        let form: Option<ReviewedWorkload> = serde_yaml::from_str::<Vec<ReviewedWorkload>>(&lines)
            .ok()
            .and_then(|mut v| v.pop());
        let at = time::OffsetDateTime::from_unix_timestamp(super::unix_now() as i64)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        let entry = ReviewedWorkload {
            name: format!("accepted-{}", &digest[..12.min(digest.len())]),
            source: format!(
                "accepted by an operator (POST /admin/workloads/accept) at {at}, as {model} reported it; it differed from reviewed workload `{}`: {}",
                review.closest.as_deref().unwrap_or("-"),
                review.differences.join("; ")
            ),
            compose_hashes: vec![review.compose_hash.clone()],
            os_images: review.os_image_hash.clone().into_iter().collect(),
            pre_launch_scripts: Vec::new(),
            allowed_envs: Vec::new(),
            runtime_vars: form.as_ref().map(|f| f.runtime_vars.clone()).unwrap_or_default(),
            gateway: form.as_ref().and_then(|f| f.gateway.clone()),
            manifest: Default::default(),
            services: Default::default(),
            definitions: Default::default(),
        };
        self.verifier.accept_workload(entry.clone());
        // Refusals are no longer current: every model attests again at once.
        for flight in self.flights.lock().expect("flight map poisoned").values() {
            *flight.last_failure.lock().expect("poisoned") = None;
            *flight.backoff.lock().expect("poisoned") = None;
        }
        for e in self.entries.load().values() {
            if e.report.review.as_ref().is_some_and(|r| r.digest == digest) {
                e.invalidate();
            }
        }
        Ok((entry, lines))
    }

    /// Every model attested, or tried, so far.
    pub(crate) fn models_tried(&self) -> Vec<String> {
        let mut models: Vec<String> = self
            .flights
            .lock()
            .expect("flight map poisoned")
            .keys()
            .cloned()
            .collect();
        models.sort();
        models
    }

    /// The last failure of `model` and when (Unix seconds), until an attestation succeeds.
    pub(crate) fn last_error(&self, model: &str) -> Option<(u64, AttestationError)> {
        let flight = self
            .flights
            .lock()
            .expect("flight map poisoned")
            .get(model)
            .cloned()?;
        let error = flight.last_error.lock().expect("poisoned").clone();
        error
    }

    /// The report of the last failed verification of `model`, if any.
    pub(crate) fn last_failed_report(&self, model: &str) -> Option<Arc<Report>> {
        let flight = self
            .flights
            .lock()
            .expect("flight map poisoned")
            .get(model)
            .cloned()?;
        let report = flight.last_failed_report.lock().expect("poisoned").clone();
        report
    }

    /// Backs off after a failed fetch (doubling per consecutive failure); a fetch that got
    /// an answer, verified or not, ends the backoff.
    fn note_fetch<T>(&self, flight: &Flight, result: &Result<T, AttestationError>) {
        let mut backoff = flight.backoff.lock().expect("poisoned");
        match result {
            Err(e) if e.check == Check::Fetch && !self.retry.backoff.is_zero() => {
                let failures = backoff.as_ref().map_or(0, |b| b.failures) + 1;
                let wait = self
                    .retry
                    .backoff
                    .saturating_mul(1 << (failures - 1).min(16))
                    .min(self.retry.backoff_max);
                *backoff = Some(Backoff {
                    failures,
                    until: Instant::now() + wait,
                    error: e.clone(),
                });
            }
            _ => *backoff = None,
        }
    }

    /// Fetches with a fresh nonce and verifies; gives the key and when it must be refreshed
    /// at the latest. The report is `None` when nothing could be fetched.
    async fn fetch_and_verify(
        &self,
        model: &str,
    ) -> (
        Option<Report>,
        Result<(VerifiedKey, Option<u64>), AttestationError>,
    ) {
        let mut nonce = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let raw = match self.fetch(model, &nonce).await {
            Ok(raw) => raw,
            Err(e) => {
                return (
                    None,
                    Err(AttestationError::new(Check::Fetch, e.to_string())),
                )
            }
        };
        let (report, outcome) = self.verifier.verify(&raw, model, &nonce).await;
        let outcome = outcome.map(|key| {
            let by = refresh_deadline(&raw, key.keyset.as_ref().map(|k| k.not_after));
            (key, by)
        });
        (Some(report), outcome)
    }

    /// One fetch, retried after transient failures (5xx, 429, timeouts, no connection).
    async fn fetch(
        &self,
        model: &str,
        nonce: &[u8; 32],
    ) -> Result<serde_json::Value, UpstreamError> {
        let mut wait = Duration::from_millis(250);
        let mut attempt = 0;
        loop {
            match self.client.attestation(model, nonce).await {
                Err(e) if attempt < self.retry.retries && transient(&e) => {
                    log::info!(
                        "model {model}: attestation fetch failed ({e}); retrying in {} ms",
                        wait.as_millis()
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(4));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

fn transient(e: &UpstreamError) -> bool {
    match e {
        UpstreamError::Status { status, .. } => *status >= 500 || *status == 429,
        UpstreamError::Timeout | UpstreamError::Transport(_) => true,
        UpstreamError::Body(_) => false,
    }
}

/// The earliest of the keyset's `not_after` and the ends Venice's answer names
/// (`keyset_epoch.not_after`, `stale_after`, at its root or under `attestation`; unix seconds
/// or RFC 3339). Unsigned values can only bring a refresh forward, never postpone one.
fn refresh_deadline(raw: &serde_json::Value, keyset_not_after: Option<u64>) -> Option<u64> {
    let when = |v: &serde_json::Value| -> Option<u64> {
        v.as_u64().or_else(|| {
            let t = time::OffsetDateTime::parse(
                v.as_str()?,
                &time::format_description::well_known::Rfc3339,
            )
            .ok()?;
            u64::try_from(t.unix_timestamp()).ok()
        })
    };
    let served = [raw, &raw["attestation"]]
        .into_iter()
        .flat_map(|v| [v.pointer("/keyset_epoch/not_after"), v.get("stale_after")]);
    served
        .flatten()
        .filter_map(when)
        .chain(keyset_not_after)
        .min()
}

fn count_review(model: &str, status: ReviewStatus) {
    let verdict = match status {
        ReviewStatus::Reviewed => "reviewed",
        ReviewStatus::Unreviewed => "unreviewed",
        ReviewStatus::Refused => "refused",
    };
    crate::metrics::METRICS
        .workload_reviews
        .with_label_values(&[model, verdict])
        .inc();
}

fn log_verified(model: &str, key: &VerifiedKey, r: &Report) {
    log::info!(
        "model {model}: attestation verified: key {}, layout {}, workload {}, {} checks passed{}",
        key.address_hex(),
        r.layout.unwrap_or("-"),
        r.review
            .as_ref()
            .and_then(|w| w.workload.as_deref())
            .unwrap_or("not reviewed"),
        r.checks
            .iter()
            .filter(|c| c.status == super::evidence::report::Status::Pass)
            .count(),
        if r.trust_overrides.is_empty() {
            ""
        } else {
            " (trust relaxed, see the report)"
        }
    );
}

/// Keeps a failed refresh where the status and the next caller see it.
fn note_failure(model: &str, flight: &Flight, err: &AttestationError, report: Option<Report>) {
    log::warn!("model {model}: attestation failed: {err}");
    crate::metrics::METRICS
        .attestation_refreshes
        .with_label_values(&[model, err.check.code()])
        .inc();
    *flight.last_failure.lock().expect("poisoned") = Some((Instant::now(), err.clone()));
    *flight.last_error.lock().expect("poisoned") = Some((super::unix_now(), err.clone()));
    if let Some(r) = report {
        *flight.last_failed_report.lock().expect("poisoned") = Some(Arc::new(r));
    }
}

#[cfg(test)]
mod tests {
    use super::refresh_deadline;
    use serde_json::json;

    #[test]
    fn the_earliest_end_served_or_signed_decides() {
        assert_eq!(refresh_deadline(&json!({}), None), None);
        assert_eq!(refresh_deadline(&json!({}), Some(500)), Some(500));
        let raw = json!({"keyset_epoch": {"not_after": 400}, "attestation": {"stale_after": "1970-01-01T00:05:00Z"}});
        assert_eq!(refresh_deadline(&raw, Some(500)), Some(300));
        // A later end Venice names does not postpone the keyset's own.
        let raw = json!({"stale_after": 9_999});
        assert_eq!(refresh_deadline(&raw, Some(500)), Some(500));
        // What is not a time is not read as one.
        let raw = json!({"stale_after": "soon", "keyset_epoch": {"not_after": -1}});
        assert_eq!(refresh_deadline(&raw, Some(500)), Some(500));
    }
}
