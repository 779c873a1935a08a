//! ACI receipts, off the request path: while an answer streams, the bytes Venice sent are
//! hashed (`Tap`); when it has ended, the receipt is fetched and verified against the
//! model's attested keyset, the attested sessions it cites are fetched and hash-checked, and
//! the outcome goes to the log, the metrics and `/v1/attestation`. With `require`, a missing
//! or failed receipt, or an upstream the gateway did not verify, refuses the model's next
//! requests until a newer attestation is verified.

use super::aci::countersign::{self, Countersignature};
use super::aci::receipt::{self, Standing, UpstreamEvent};
use super::aci::session::{self, Session};
use super::aci::{AciError, Binding};
use super::anchor_checks::{Anchor, Anchors};
use super::cache::Entry;
use super::second_hop;
use super::unix_now as now;
pub use crate::config::attestation::{ReceiptMode, ReceiptsSection};
use crate::metrics::METRICS;
use crate::venice::client::{percent_encode, UpstreamError, VeniceClient};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every result a receipt check has (`Outcome::result`).
pub(crate) const RESULTS: [&str; 5] = ["verified", "authentic", "unanchored", "failed", "missing"];

/// One answer's bytes as they arrive, hashed for the receipt's `response.returned`.
pub(crate) struct Tap {
    hasher: Sha256,
    request_sha256: [u8; 32],
    receipt_id: Option<String>,
    /// The request's id (`x-request-id`), for the receipt's log line and the status page.
    request_id: String,
    entry: Arc<Entry>,
    /// When the request was sent, and when its answer ended (Unix seconds).
    sent_at: u64,
    ended_at: Option<u64>,
}

impl Tap {
    /// A tap for an answer encrypted to `entry`'s key, when receipts are on and the model's
    /// attestation carries an ACI keyset (dstack attestations have no receipts).
    pub(crate) fn new(
        mode: ReceiptMode,
        entry: &Arc<Entry>,
        request_body: &[u8],
        receipt_id: Option<&str>,
        request_id: &str,
    ) -> Option<Tap> {
        if mode == ReceiptMode::Off || entry.key.keyset.is_none() {
            return None;
        }
        Some(Tap {
            hasher: Sha256::new(),
            request_sha256: Sha256::digest(request_body).into(),
            receipt_id: receipt_id.map(str::to_string),
            request_id: request_id.to_string(),
            entry: entry.clone(),
            sent_at: now(),
            ended_at: None,
        })
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
    }

    /// The answer arrived whole (a receipt covers only a whole response).
    pub(crate) fn complete(&mut self) {
        self.ended_at = Some(now());
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.ended_at.is_some()
    }
}

/// The latest receipt outcome of a model, as reported.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Outcome {
    /// How many receipts of the model this proxy has checked, this one included.
    pub(crate) seq: u64,
    #[serde(serialize_with = "crate::logging::rfc3339_field")]
    pub(crate) at: u64,
    /// The request whose answer the receipt covers (its `x-request-id`).
    pub(crate) request_id: String,
    pub(crate) receipt_id: Option<String>,
    /// `verified`, `authentic` (bodies re-wrapped by Venice, as the receipt records),
    /// `unanchored` (signature good, but no quote binds the keyset that holds the receipt
    /// key), `failed` or `missing`.
    pub(crate) result: &'static str,
    pub(crate) detail: String,
    /// Whether `request.received` hashes the bytes the proxy sent.
    pub(crate) request_hash_matches: Option<bool>,
    /// The quote-bound address that signed the receipt's hashes (Venice's signature
    /// endpoint), when it did.
    pub(crate) countersigned_by: Option<String>,
    /// The route the gateway chose, as its anchored receipt records it.
    pub(crate) route: Option<String>,
    /// The gateway's word on its upstream: reported only from an anchored receipt.
    pub(crate) upstream: Vec<UpstreamEvent>,
    pub(crate) sessions: Vec<SessionOutcome>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SessionOutcome {
    pub(crate) session_id: String,
    /// The record hashes to the cited id and its evidence to its digest.
    pub(crate) verified: bool,
    pub(crate) detail: String,
    pub(crate) session: Option<Session>,
    /// The proxy's own check of the upstream the session describes (its inline report).
    pub(crate) upstream_check: Option<UpstreamCheck>,
}

/// The second hop as the proxy checked it itself.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct UpstreamCheck {
    /// `verified`: its quote verifies (DCAP, TCB policy), its report is consistent, the TLS
    /// key the gateway bound is one its keyset lists for that host, and the proxy recomputed
    /// that the quote binds that keyset. `genuine`: all but the last (the gateway's nonce is
    /// not published), so that the key is this quote's rests on the gateway's check.
    /// `refuted`: something did not hold.
    pub(crate) result: &'static str,
    pub(crate) detail: String,
    pub(crate) tcb: Option<String>,
    /// What the proxy established, and what stays unproven (the report's freshness, what
    /// serves behind a router, …).
    #[serde(flatten)]
    pub(crate) facts: crate::attestation::second_hop::Facts,
}

impl Outcome {
    /// Why `require` refuses after this outcome, if it does.
    fn refusal(&self) -> Option<String> {
        if !matches!(self.result, "verified" | "authentic") {
            return Some(format!(
                "the last receipt was {}: {}",
                self.result, self.detail
            ));
        }
        if let Some(u) = self.upstream.iter().find(|u| !u.verified()) {
            return Some(format!(
                "the gateway did not verify upstream {} ({})",
                u.upstream.as_deref().unwrap_or("-"),
                u.reason.as_deref().unwrap_or(&u.result)
            ));
        }
        self.sessions.iter().find_map(|s| {
            let check = s.upstream_check.as_ref()?;
            (check.result == "refuted").then(|| {
                format!(
                    "the upstream of session {} was not verified by the proxy: {}",
                    s.session_id, check.detail
                )
            })
        })
    }
}

#[derive(Default)]
struct ModelState {
    last: Option<Arc<Outcome>>,
    /// The last few outcomes, newest last (the status page).
    recent: std::collections::VecDeque<Arc<Outcome>>,
    checked: u64,
    /// `require`: refused while the attested gateway is this one (`gateway_identity`): a
    /// refresh that finds the same key and keyset is the same gateway, still refused.
    blocked: Option<(String, String)>,
}

/// Receipt outcomes kept per model for the status page.
const RECENT_RECEIPTS: usize = 8;

/// Which gateway an attestation names: its E2EE key and, where served, its keyset digest.
fn gateway_identity(entry: &Entry) -> String {
    format!(
        "{}/{}",
        entry.key.key_hex,
        entry.key.keyset.as_ref().map_or("-", |k| k.digest.as_str())
    )
}

pub(crate) struct Receipts {
    client: Arc<VeniceClient>,
    cfg: ReceiptsSection,
    anchors: Arc<Anchors>,
    models: Mutex<HashMap<String, ModelState>>,
    /// Sessions are immutable and content-addressed: one verified is verified for good.
    sessions: Mutex<lru::LruCache<String, SessionOutcome>>,
    /// Receipt ids and answer ids (`receipt:…`, `answer:…`) and the answer each vouched for.
    vouched: Mutex<lru::LruCache<String, Vouched>>,
    /// Where the upstream route a model's gateway picks is watched for changes.
    drift: Arc<super::drift::DriftWatch>,
}

/// The receipt in an answer: the document itself, or wrapped (`receipt`, `aci_receipt`).
/// The receipt in what the endpoint served: the document itself (the gateway's native
/// endpoint) or its `receipt` member (Venice's signature endpoint, beside a countersignature).
fn receipt_document(v: &Value) -> Option<&Value> {
    if v.get("api_version").is_some() && v.get("event_log").is_some() {
        return Some(v);
    }
    ["receipt", "aci_receipt"]
        .iter()
        .find_map(|k| v.get(*k).filter(|r| r.is_object()))
}

impl Receipts {
    pub(crate) fn new(
        client: Arc<VeniceClient>,
        cfg: ReceiptsSection,
        anchors: Arc<Anchors>,
        drift: Arc<super::drift::DriftWatch>,
    ) -> Receipts {
        Receipts {
            client,
            cfg,
            anchors,
            models: Mutex::default(),
            sessions: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(256).expect("non-zero"),
            )),
            vouched: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(16_384).expect("non-zero"),
            )),
            drift,
        }
    }

    /// Records the ids `receipt` vouches with for this answer; returns the answer one of
    /// them vouched for before, when that was another (other response bytes).
    fn vouch(
        &self,
        model: &str,
        receipt: &receipt::VerifiedReceipt,
        chat_id: Option<&str>,
        parts: &TapParts,
    ) -> Option<Vouched> {
        let keys: Vec<String> = [
            Some(format!("receipt:{}", receipt.receipt_id))
                .filter(|_| !receipt.receipt_id.is_empty()),
            chat_id.map(|c| format!("answer:{c}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut vouched = self.vouched.lock().expect("poisoned");
        let earlier = keys
            .iter()
            .filter_map(|k| vouched.get(k).cloned())
            .find(|v| v.response_sha256 != parts.response_sha256);
        if earlier.is_none() {
            for k in keys {
                vouched.put(
                    k,
                    Vouched {
                        model: model.to_string(),
                        request_id: parts.request_id.clone(),
                        response_sha256: parts.response_sha256,
                        at: now(),
                    },
                );
            }
        }
        earlier
    }

    /// The earlier answer a reused receipt vouched for fails too: its receipt was not its
    /// own alone.
    fn settle_reuse(&self, first: &Vouched, receipt_id: &str, entry: &Entry) {
        let outcome = Outcome {
            seq: 0,
            at: now(),
            request_id: first.request_id.clone(),
            receipt_id: Some(receipt_id.to_string()),
            result: Standing::Failed.as_str(),
            detail: format!(
                "receipt {receipt_id}, checked for an answer at {}, was presented again for another answer: a hop reused its id, so it vouches for neither",
                first.at
            ),
            request_hash_matches: None,
            countersigned_by: None,
            route: None,
            upstream: Vec::new(),
            sessions: Vec::new(),
        };
        self.settle(&first.model, entry, outcome);
    }

    pub(crate) fn mode(&self) -> ReceiptMode {
        self.cfg.mode
    }

    /// Why `model`'s requests are refused under `require`, given the attestation in use:
    /// until the gateway's key or keyset changes.
    pub(crate) fn refusal(&self, model: &str, entry: &Entry) -> Option<String> {
        if self.cfg.mode != ReceiptMode::Require {
            return None;
        }
        let models = self.models.lock().expect("poisoned");
        let (gateway, why) = models.get(model)?.blocked.as_ref()?;
        (*gateway == gateway_identity(entry)).then(|| why.clone())
    }

    /// What anchoring `entry`'s served keyset found, when it was tried.
    pub(crate) fn anchor_of(&self, entry: &Entry) -> Option<Arc<Anchor>> {
        self.anchors.get(&entry.key.keyset.as_ref()?.digest)
    }

    /// The model's last few receipt outcomes, newest last.
    pub(crate) fn recent(&self, model: &str) -> Vec<Arc<Outcome>> {
        self.models
            .lock()
            .expect("poisoned")
            .get(model)
            .map(|m| m.recent.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn last(&self, model: &str) -> Option<Arc<Outcome>> {
        self.models
            .lock()
            .expect("poisoned")
            .get(model)
            .and_then(|m| m.last.clone())
    }

    /// Checks the receipt of a whole answer in the background.
    pub(crate) fn check_later(self: &Arc<Self>, tap: Tap, model: String, chat_id: Option<String>) {
        let this = self.clone();
        let parts = tap.into_parts();
        tokio::spawn(async move {
            let entry = parts.entry.clone();
            let outcome = this.check(parts, &model, chat_id).await;
            this.settle(&model, &entry, outcome);
        });
    }

    fn settle(&self, model: &str, entry: &Entry, mut outcome: Outcome) {
        // Per upstream: where, the gateway's verdict, whether it was required, by which
        // verifier, and the claims it could not establish.
        let upstream = outcome
            .upstream
            .iter()
            .map(|u| {
                let open: Vec<&str> = u
                    .claims
                    .iter()
                    .filter(|(_, status)| !status.starts_with("asserted"))
                    .map(|(name, _)| name.as_str())
                    .collect();
                // The proxy's own check of that upstream, from the session the event cites.
                let ours = outcome
                    .sessions
                    .iter()
                    .find(|s| Some(s.session_id.as_str()) == u.session_id.as_deref())
                    .and_then(|s| s.upstream_check.as_ref())
                    .map_or("unchecked", |c| c.result);
                format!(
                    "{}:{}{} proxy={ours} verifier={} not_established=[{}]",
                    u.upstream.as_deref().unwrap_or("-"),
                    u.result,
                    if u.required == Some(true) {
                        "(required)"
                    } else {
                        ""
                    },
                    u.verifier_id.as_deref().unwrap_or("-"),
                    open.join(",")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        log::info!(
            target: "access",
            request_id = outcome.request_id.as_str();
            "receipt model={model} id={} result={} route={} upstream={} request_hash_matches={} detail={}",
            outcome.receipt_id.as_deref().unwrap_or("-"),
            outcome.result,
            outcome.route.as_deref().unwrap_or("-"),
            if upstream.is_empty() { "-" } else { &upstream },
            outcome.request_hash_matches.map_or("-", |m| if m { "yes" } else { "no" }),
            outcome.detail,
        );
        let counts: Vec<&'static str> = outcome
            .upstream
            .iter()
            .map(|u| if u.verified() { "verified" } else { "failed" })
            .collect();
        let checks: Vec<&'static str> = outcome
            .sessions
            .iter()
            .filter_map(|s| s.upstream_check.as_ref())
            .map(|c| c.result)
            .collect();
        let result = outcome.result;
        if let Some(route) = &outcome.route {
            self.drift.routed(model, route, outcome.at);
        }
        {
            let refusal = outcome.refusal();
            let mut models = self.models.lock().expect("poisoned");
            let m = models.entry(model.to_string()).or_default();
            m.checked += 1;
            outcome.seq = m.checked;
            if let (ReceiptMode::Require, Some(why)) = (self.cfg.mode, refusal) {
                log::warn!("model {model}: refused until attested anew: {why}");
                m.blocked = Some((gateway_identity(entry), why));
            }
            let outcome = Arc::new(outcome);
            if m.recent.len() == RECENT_RECEIPTS {
                m.recent.pop_front();
            }
            m.recent.push_back(outcome.clone());
            m.last = Some(outcome);
        }
        METRICS.receipts.with_label_values(&[model, result]).inc();
        for r in counts {
            METRICS
                .upstream_verifications
                .with_label_values(&[model, r])
                .inc();
        }
        for r in checks {
            METRICS.upstream_checks.with_label_values(&[model, r]).inc();
        }
    }

    async fn fetch_receipt(&self, model: &str, id: &str) -> Result<Value, AciError> {
        let path = self
            .cfg
            .path
            .replace("{model}", &percent_encode(model))
            .replace("{id}", &percent_encode(id));
        // A receipt is finalized when the response completes; give a slow gateway a moment.
        let mut wait = Duration::from_millis(200);
        for attempt in 0..3 {
            match self.client.document(&path).await {
                Ok(v) if receipt_document(&v).is_some() => return Ok(v),
                Ok(_) => return Err(AciError::Malformed("the answer holds no receipt".into())),
                Err(UpstreamError::Status { status: 404, .. }) if attempt < 2 => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => return Err(AciError::Unavailable(e.to_string())),
            }
        }
        Err(AciError::Unavailable("not found".into()))
    }

    async fn check(&self, parts: TapParts, model: &str, chat_id: Option<String>) -> Outcome {
        let mut out = Outcome {
            seq: 0,
            at: now(),
            request_id: parts.request_id.clone(),
            receipt_id: parts.receipt_id.clone().or_else(|| chat_id.clone()),
            result: "missing",
            detail: String::new(),
            request_hash_matches: None,
            countersigned_by: None,
            route: None,
            upstream: Vec::new(),
            sessions: Vec::new(),
        };
        let Some(id) = out.receipt_id.clone() else {
            out.detail = "the answer named no receipt id and no answer id".into();
            return out;
        };
        let served = match self.fetch_receipt(model, &id).await {
            Ok(d) => d,
            Err(e) => {
                out.detail = format!("no receipt: {e}");
                return out;
            }
        };
        let doc = receipt_document(&served).expect("fetched answers hold a receipt");
        let keyset = parts.entry.key.keyset.as_ref().expect("taps have keysets");
        let seen = receipt::Observed {
            response_sha256: parts.response_sha256,
            request_sha256: parts.request_sha256,
            chat_id: chat_id.as_deref(),
            window: parts.window,
        };
        let checked = receipt::verify(doc, keyset, &seen).and_then(|v| {
            countersign::verify(&served, doc, &parts.entry.key.address).map(|c| (v, c))
        });
        let (verified, countersigned) = match checked {
            Ok(v) => v,
            Err(e) => {
                out.result = "failed";
                out.detail = e.to_string();
                return out;
            }
        };
        out.countersigned_by = match countersigned {
            Countersignature::By(address) => Some(address),
            Countersignature::Absent => None,
        };
        out.request_hash_matches = verified.request_hash_matches;
        out.receipt_id = Some(verified.receipt_id.clone())
            .filter(|r| !r.is_empty())
            .or(out.receipt_id);
        // One receipt, one answer: an id that already vouched for other bytes is a hop
        // relabelling answers. Both answers' receipts fail.
        if let Some(first) = self.vouch(model, &verified, chat_id.as_deref(), &parts) {
            out.result = Standing::Failed.as_str();
            out.detail = format!(
                "receipt {} (answer {}) already vouched for another answer at {}: a hop reused its id",
                verified.receipt_id,
                chat_id.as_deref().unwrap_or("-"),
                first.at
            );
            self.settle_reuse(&first, &verified.receipt_id, &parts.entry);
            return out;
        }
        // The quote binds the keyset itself, or the gateway's own quote anchors it.
        let anchor = self.anchors.anchor(&parts.entry).await;
        let anchored = matches!(parts.entry.key.binding, Binding::Statement { .. })
            || anchor.as_ref().is_some_and(|a| a.verified);
        let (standing, mut detail) =
            receipt::standing(&verified, anchored, out.countersigned_by.as_deref());
        if let Some(a) = &anchor {
            detail = if a.verified {
                format!(
                    "{detail}; keyset anchored by the gateway's own quote at {}",
                    a.origin.as_deref().unwrap_or("-")
                )
            } else {
                format!("{detail}; the keyset could not be anchored: {}", a.detail)
            };
        }
        (out.result, out.detail) = (standing.as_str(), detail);
        // The upstream verdict is the gateway's word only when the gateway's key signed it.
        if !standing.anchored() {
            return out;
        }
        out.route = verified.route.clone();
        for u in &verified.upstream {
            if let Some(sid) = u.session_id.as_deref().filter(|_| u.verified()) {
                out.sessions
                    .push(self.session(&parts.entry, sid, verified.served_at).await);
            }
        }
        if let Some(bad) = out.sessions.iter().find(|s| !s.verified) {
            out.result = Standing::Failed.as_str();
            out.detail = format!("cited session {}: {}", bad.session_id, bad.detail);
        }
        out.upstream = verified.upstream;
        out
    }

    /// The attested session `id`: fetched (from the gateway's own hosts, else through
    /// Venice), checked against its content address, then its upstream checked by the proxy
    /// itself. Sessions are content-addressed: a verified one is kept by id.
    async fn session(&self, entry: &Entry, id: &str, served_at: Option<u64>) -> SessionOutcome {
        let cached = self.sessions.lock().expect("poisoned").get(id).cloned();
        if let Some(outcome) = cached {
            return outcome;
        }
        let path = self.cfg.session_path.replace("{id}", &percent_encode(id));
        let doc = match self
            .anchors
            .gateway_document(entry, &format!("/v1/aci/sessions/{}", percent_encode(id)))
            .await
        {
            Some(Ok(doc)) => Ok(doc),
            _ => self
                .client
                .document(&path)
                .await
                .map_err(|e| AciError::Unavailable(format!("not fetched: {e}"))),
        };
        let mut outcome = match doc.and_then(|d| session::verify(&d, id, served_at)) {
            Ok(s) => SessionOutcome {
                session_id: id.to_string(),
                verified: true,
                detail: "hashes to its id; evidence hashes to its digest".into(),
                upstream_check: None,
                session: Some(s),
            },
            Err(e) => {
                return SessionOutcome {
                    session_id: id.to_string(),
                    verified: false,
                    detail: e.to_string(),
                    session: None,
                    upstream_check: None,
                }
            }
        };
        let session = outcome.session.as_ref().expect("verified above");
        outcome.upstream_check = Some(self.check_upstream(session).await);
        self.sessions
            .lock()
            .expect("poisoned")
            .put(id.to_string(), outcome.clone());
        outcome
    }

    /// The upstream's own report, inline in the session: its quote through Intel DCAP, the
    /// rest of the report, and the channel the gateway bound against its keyset.
    async fn check_upstream(&self, session: &Session) -> UpstreamCheck {
        let mut check = UpstreamCheck {
            result: "refuted",
            detail: String::new(),
            tcb: None,
            facts: Default::default(),
        };
        let upstream = match second_hop::read(&session.evidence) {
            Ok(u) => u,
            Err(e) => {
                check.detail = e.to_string();
                return check;
            }
        };
        check.facts = upstream.facts.clone();
        match self.anchors.verify_quote(&upstream.raw_quote).await {
            Ok(verdict) => check.tcb = Some(verdict.status),
            Err(e) => {
                check.detail = format!("the upstream's quote: {e}");
                return check;
            }
        }
        match second_hop::channel_bound(&session.tls, &upstream.keyset) {
            Ok(0) => {
                check.detail = "the session binds no TLS key: the channel to the upstream is not established".into();
                return check;
            }
            Ok(n) => check.facts.established.push(format!(
                "the TLS key{} the gateway bound {} listed in the upstream's keyset for the host it dialled",
                if n > 1 { "s" } else { "" },
                if n > 1 { "are" } else { "is" }
            )),
            Err(e) => {
                check.detail = e.to_string();
                return check;
            }
        }
        check.facts.unproven.push(
            "what serves behind the upstream (a router's GPU nodes), and the serving software and weights".into(),
        );
        let tcb = check.tcb.as_deref().unwrap_or("-");
        if check.facts.keyset_bound {
            check.result = "verified";
            check.detail = format!(
                "the upstream's own quote verifies (TCB {tcb}), binds its keyset, and the channel the gateway bound is a key in it"
            );
        } else {
            check.result = "genuine";
            check.detail = format!(
                "the upstream's quote is genuine (TCB {tcb}) and its keyset lists the channel the gateway bound, but that the keyset is this quote's is the gateway's check: its nonce is not published"
            );
        }
        check
    }
}

/// What the background check needs of a tap.
struct TapParts {
    response_sha256: [u8; 32],
    request_sha256: [u8; 32],
    receipt_id: Option<String>,
    request_id: String,
    entry: Arc<Entry>,
    window: (u64, u64),
}

impl Tap {
    fn into_parts(self) -> TapParts {
        TapParts {
            response_sha256: self.hasher.finalize().into(),
            request_sha256: self.request_sha256,
            receipt_id: self.receipt_id,
            request_id: self.request_id,
            entry: self.entry,
            window: (self.sent_at, self.ended_at.unwrap_or_else(now)),
        }
    }
}

/// The answer a receipt or answer id vouched for first: the response bytes it came with.
#[derive(Clone)]
struct Vouched {
    model: String,
    request_id: String,
    response_sha256: [u8; 32],
    at: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn receipts_are_found_bare_or_wrapped() {
        let doc = json!({"api_version": "aci/1", "event_log": []});
        assert_eq!(receipt_document(&doc), Some(&doc));
        for wrapped in [
            json!({"request_id": "x", "receipt": doc.clone()}),
            json!({"aci_receipt": doc.clone()}),
        ] {
            assert_eq!(receipt_document(&wrapped), Some(&doc));
        }
        assert_eq!(receipt_document(&json!({"signature": "00"})), None);
    }

    #[test]
    fn ids_are_percent_encoded() {
        assert_eq!(percent_encode("chatcmpl-1_a.b~"), "chatcmpl-1_a.b~");
        assert_eq!(percent_encode("a/b?c&d"), "a%2Fb%3Fc%26d");
    }
}
