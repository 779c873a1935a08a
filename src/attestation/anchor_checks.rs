//! Anchoring an ACI gateway's keyset in hardware, off the request path. Venice's attestation
//! endpoint binds only the E2EE key's address, so the keyset holding the receipt keys is
//! Venice's word. The same enclave answers `GET /v1/aci/attestation?nonce=` on the hosts its
//! measured ingress serves; that report's quote binds the keyset and our nonce. When its
//! quote verifies (Intel DCAP, TCB policy), it is the same workload as the quote Venice
//! served, and its keyset is the one Venice served and lists the key we encrypt to, that
//! keyset is anchored: receipts signed under it are the gateway's own word.

use super::aci::anchor::{self, Custody, Endorsement, Measured};
use super::aci::AciError;
use super::cache::Entry;
use super::evidence::EvidenceError;
use super::unix_now as now;
use super::verifier::EvidenceVerifier;
use crate::venice::client::{read_limited, DOCUMENT_LIMIT};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A failed anchoring is tried again after this long (seconds), not on every receipt.
const RETRY_AFTER_FAILURE: u64 = 60;

/// Why one origin did not anchor the keyset: its report, or the quote in it.
#[derive(Debug, thiserror::Error)]
enum AnchorFailure {
    #[error(transparent)]
    Report(#[from] AciError),
    #[error(transparent)]
    Quote(#[from] EvidenceError),
}
/// Anchors kept, by keyset digest (one per gateway keyset in use).
const KEEP: usize = 64;

/// The outcome of anchoring one served keyset, as reported.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Anchor {
    pub(crate) keyset_digest: String,
    pub(crate) verified: bool,
    /// The origin whose report anchored it (or the last one tried).
    pub(crate) origin: Option<String>,
    pub(crate) detail: String,
    /// The gateway quote's TCB status.
    pub(crate) tcb: Option<String>,
    /// `spec` (§3.2) or `draft` (the statement with `workload_id` deployed gateways bind).
    pub(crate) statement: Option<&'static str>,
    pub(crate) endorsement: Option<Endorsement>,
    /// Whether the gateway's quote is of the same instance as Venice's (RTMR3 equal), or of
    /// another replica of the same workload.
    pub(crate) same_instance: Option<bool>,
    /// The receipt key's KMS custody chain, for what it is (its root is no measurement's).
    pub(crate) custody: Option<Custody>,
    pub(crate) at: u64,
    /// Used until then (unix seconds): the keyset's end, the report's `stale_after`, or the
    /// retry time of a failure.
    pub(crate) until: u64,
}

pub(crate) struct Anchors {
    http: reqwest::Client,
    verifier: Arc<EvidenceVerifier>,
    /// `attestation.aci_anchor_origins`: tried instead of the measured ingress's hosts.
    origins: Vec<String>,
    scheme: &'static str,
    max_age: u64,
    kept: Mutex<HashMap<String, Arc<Anchor>>>,
    /// One anchoring at a time: answers finishing together wait for the first.
    flight: tokio::sync::Mutex<()>,
}

impl Anchors {
    pub(crate) fn new(
        config: &crate::config::Config,
        verifier: Arc<EvidenceVerifier>,
    ) -> Result<Anchors, reqwest::Error> {
        let a = &config.attestation;
        Ok(Anchors {
            http: super::verifier::third_party_http(config)?,
            verifier,
            origins: a.aci_anchor_origins.clone(),
            scheme: if a.plain_http_for_tests {
                "http"
            } else {
                "https"
            },
            max_age: a.max_age.as_secs(),
            kept: Mutex::default(),
            flight: tokio::sync::Mutex::new(()),
        })
    }

    /// The anchor of the keyset `digest`, when one was tried.
    pub(crate) fn get(&self, digest: &str) -> Option<Arc<Anchor>> {
        self.kept.lock().expect("poisoned").get(digest).cloned()
    }

    /// Intel DCAP and the TCB policy for another quote than Venice's answer.
    pub(crate) async fn verify_quote(
        &self,
        raw_quote: &[u8],
    ) -> Result<super::evidence::dcap::TcbVerdict, EvidenceError> {
        self.verifier.verify_quote(raw_quote).await
    }

    /// A JSON document the gateway itself serves at `path` (an attested session), asked of
    /// its hosts in order without a credential; `None` when it names no host.
    pub(crate) async fn gateway_document(
        &self,
        entry: &Entry,
        path: &str,
    ) -> Option<Result<serde_json::Value, AciError>> {
        let mut last = None;
        for origin in self.origins(entry) {
            let url = format!("{}{path}", origin.trim_end_matches('/'));
            let fetched = self
                .get_json(&url)
                .await
                .map_err(|e| AciError::Unavailable(format!("{url}: {e}")));
            if fetched.is_ok() {
                return Some(fetched);
            }
            last = Some(fetched);
        }
        last
    }

    /// The anchor of `entry`'s served keyset, anchoring it when nothing current is known.
    /// `None` when there is nothing to anchor: no keyset, or one the quote binds already.
    pub(crate) async fn anchor(&self, entry: &Entry) -> Option<Arc<Anchor>> {
        let keyset = entry.key.keyset.as_ref()?;
        if matches!(entry.key.binding, super::aci::Binding::Statement { .. }) {
            return None;
        }
        let current = |this: &Self| this.get(&keyset.digest).filter(|a| now() < a.until);
        if let Some(a) = current(self) {
            return Some(a);
        }
        let _only = self.flight.lock().await;
        if let Some(a) = current(self) {
            return Some(a);
        }
        let anchor = Arc::new(self.establish(entry, &keyset.digest).await);
        if anchor.verified {
            log::info!(
                "keyset {} anchored in hardware by {}",
                anchor.keyset_digest,
                anchor.origin.as_deref().unwrap_or("-")
            );
        } else {
            log::warn!(
                "keyset {} not anchored: {}",
                anchor.keyset_digest,
                anchor.detail
            );
        }
        let mut kept = self.kept.lock().expect("poisoned");
        if kept.len() >= KEEP {
            kept.retain(|_, a| now() < a.until);
        }
        kept.insert(keyset.digest.clone(), anchor.clone());
        Some(anchor)
    }

    /// Where the gateway's own report is asked for: the configured origins, else the hosts
    /// its measured ingress serves.
    fn origins(&self, entry: &Entry) -> Vec<String> {
        if !self.origins.is_empty() {
            return self.origins.clone();
        }
        let compose = entry
            .report
            .workload
            .as_ref()
            .and_then(|w| w.compose.as_ref());
        compose
            .map(|c| c.ingress_hosts())
            .unwrap_or_default()
            .into_iter()
            .map(|host| format!("{}://{host}", self.scheme))
            .collect()
    }

    /// A JSON document from the gateway, asked without a credential and read bounded.
    /// Every failure here is the gateway not answering in protocol: no verdict.
    async fn get_json(&self, url: &str) -> Result<serde_json::Value, AciError> {
        let unavailable = AciError::Unavailable;
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!(
                "answered {}",
                response.status().as_u16()
            )));
        }
        let body = read_limited(response, DOCUMENT_LIMIT)
            .await
            .map_err(|e| unavailable(e.to_string()))?
            .ok_or_else(|| unavailable(format!("more than {DOCUMENT_LIMIT} bytes")))?;
        serde_json::from_slice(&body).map_err(|e| unavailable(format!("not JSON: {e}")))
    }

    async fn establish(&self, entry: &Entry, digest: &str) -> Anchor {
        let mut anchor = Anchor {
            keyset_digest: digest.to_string(),
            verified: false,
            origin: None,
            detail: String::new(),
            tcb: None,
            statement: None,
            endorsement: None,
            same_instance: None,
            custody: None,
            at: now(),
            until: now() + RETRY_AFTER_FAILURE,
        };
        let origins = self.origins(entry);
        if origins.is_empty() {
            anchor.detail = "the gateway's measured compose names no ingress host to ask for its own attestation (attestation.aci_anchor_origins can name one)".into();
            return anchor;
        }
        let mut failures = Vec::new();
        for origin in origins {
            anchor.origin = Some(origin.clone());
            match self.try_origin(entry, digest, &origin, &mut anchor).await {
                Ok(()) => {
                    anchor.verified = true;
                    return anchor;
                }
                Err(e) => failures.push(format!("{origin}: {e}")),
            }
        }
        anchor.detail = failures.join("; ");
        anchor
    }

    async fn try_origin(
        &self,
        entry: &Entry,
        digest: &str,
        origin: &str,
        anchor: &mut Anchor,
    ) -> Result<(), AnchorFailure> {
        let nonce: [u8; 32] = rand::random();
        let url = format!(
            "{}/v1/aci/attestation?nonce={}",
            origin.trim_end_matches('/'),
            hex::encode(nonce)
        );
        let raw = self.get_json(&url).await?;
        let native = anchor::read(&raw, &nonce)?;
        let verdict = self.verifier.verify_quote(&native.raw_quote).await?;
        anchor.tcb = Some(verdict.status);
        anchor.statement = Some(if native.workload_id.is_some() {
            "draft"
        } else {
            "spec"
        });
        anchor.endorsement = Some(native.endorsement.clone());
        let app_id = entry
            .report
            .workload
            .as_ref()
            .and_then(|w| w.app_id.as_ref())
            .filter(|a| a.from == super::evidence::workload::FROM_RTMR3)
            .and_then(|a| hex::decode(&a.value).ok());
        anchor.custody = Some(anchor::custody(&raw, &native.keyset, app_id.as_deref()));
        let served = entry
            .report
            .measurements
            .as_ref()
            .ok_or_else(|| AciError::Malformed("Venice's quote was not read".into()))?;
        let measured = Measured {
            mr_td: &served.mr_td,
            mr_config_id: &served.mr_config_id,
            rtmr: [
                &served.rtmr[0],
                &served.rtmr[1],
                &served.rtmr[2],
                &served.rtmr[3],
            ],
        };
        anchor.same_instance = Some(anchor::same_workload(&native.td, &measured)?);
        if native.keyset.digest != digest {
            return Err(AciError::Mismatch(format!(
                "its quote binds keyset {}, not the {digest} Venice served",
                native.keyset.digest
            ))
            .into());
        }
        if native.keyset.e2ee_entry_for(&entry.key.key).is_none() {
            return Err(AciError::Mismatch(
                "its keyset does not list the key the proxy encrypts to".into(),
            )
            .into());
        }
        if native.keyset.not_after <= now() {
            return Err(AciError::Expired("its keyset has expired".into()).into());
        }
        anchor.until = [
            Some(native.keyset.not_after),
            native.stale_after,
            Some(now() + self.max_age),
        ]
        .into_iter()
        .flatten()
        .min()
        .expect("max_age is always there");
        anchor.detail = format!(
            "the gateway's own quote (TCB {}, {} statement) binds this keyset and our nonce; same workload as Venice's quote{}",
            anchor.tcb.as_deref().unwrap_or("-"),
            anchor.statement.unwrap_or("-"),
            if anchor.same_instance == Some(true) {
                ", same instance"
            } else {
                ", another instance of it"
            }
        );
        Ok(())
    }
}
