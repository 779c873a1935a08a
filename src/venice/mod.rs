//! Venice's wire types: the model list, the attestation envelope, streamed chat chunks.

pub(crate) mod catalog;
pub mod client;
pub(crate) mod selection;
pub(crate) mod status;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;

pub const HEADER_CLIENT_PUB_KEY: &str = "X-Venice-TEE-Client-Pub-Key";
pub const HEADER_MODEL_PUB_KEY: &str = "X-Venice-TEE-Model-Pub-Key";
pub const HEADER_SIGNING_ALGO: &str = "X-Venice-TEE-Signing-Algo";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ModelList {
    pub(crate) data: Vec<Model>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Model {
    pub(crate) id: String,
    #[serde(rename = "type", default)]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) created: i64,
    #[serde(default)]
    pub(crate) owned_by: Option<String>,
    #[serde(default)]
    pub(crate) model_spec: Value,
}

impl Model {
    pub(crate) fn capabilities(&self) -> Option<&serde_json::Map<String, Value>> {
        self.model_spec.get("capabilities")?.as_object()
    }

    fn capability(&self, name: &str) -> bool {
        self.capabilities()
            .and_then(|c| c.get(name))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Venice's scheduled retirement of the model (`model_spec.deprecation`), when it has one.
    pub(crate) fn deprecation(&self) -> Option<Deprecation> {
        let d = self.model_spec.get("deprecation")?.as_object()?;
        let text = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
        let removes_at = text("removesAt").or_else(|| text("date"))?;
        Some(Deprecation {
            unix: time::OffsetDateTime::parse(
                &removes_at,
                &time::format_description::well_known::Rfc3339,
            )
            .ok()
            .and_then(|t| u64::try_from(t.unix_timestamp()).ok()),
            removes_at,
            auto_remap: d.get("autoRemap").and_then(Value::as_bool),
        })
    }

    /// Usable through the proxy: a text model with E2EE and TEE attestation.
    pub(crate) fn is_e2ee_text(&self) -> bool {
        self.kind == "text"
            && self.capability("supportsE2EE")
            && self.capability("supportsTeeAttestation")
    }
}

/// A model Venice will retire: when (as served, and as Unix seconds when it parses), and
/// whether its id will then route to a successor (`autoRemap`; else 410 Gone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Deprecation {
    pub(crate) removes_at: String,
    #[serde(skip)]
    pub(crate) unix: Option<u64>,
    pub(crate) auto_remap: Option<bool>,
}

/// The attestation envelope in both known layouts (dstack/NEAR at the root, or "aci/1" with
/// the evidence nested); every field optional so the verifier decides what is missing.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Attestation {
    pub(crate) verified: Option<bool>,
    pub(crate) nonce: Option<String>,
    pub(crate) request_nonce: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) signing_algo: Option<String>,
    pub(crate) signing_key: Option<String>,
    pub(crate) signing_public_key: Option<String>,
    pub(crate) signing_address: Option<String>,
    pub(crate) intel_quote: Option<String>,
    pub(crate) api_version: Option<String>,
    pub(crate) attestation: Option<AciAttestation>,
    /// ACI: the keyset and its digest, at the root as Venice frames it or under
    /// `attestation` as the spec does (both accepted; the verifier recomputes the digest).
    pub(crate) workload_keyset: Option<Value>,
    pub(crate) workload_keyset_digest: Option<String>,
    /// The spec's drafts before August 2026 also restated a workload id.
    pub(crate) workload_id: Option<String>,
    pub(crate) service_capabilities: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct AciAttestation {
    pub(crate) tee_type: Option<String>,
    pub(crate) vendor: Option<String>,
    pub(crate) workload_keyset: Option<Value>,
    pub(crate) workload_keyset_digest: Option<String>,
    pub(crate) workload_id: Option<String>,
    pub(crate) report_data: Option<String>,
    pub(crate) source_provenance: Option<Value>,
    pub(crate) evidence: Option<AciEvidence>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct AciEvidence {
    pub(crate) quote: Option<String>,
    pub(crate) quote_report_data: Option<String>,
}

impl Attestation {
    /// The layout the report declares (`api_version`). Unsigned, so it only chooses where to
    /// read; what is checked follows from the quote and the measured compose.
    pub(crate) fn layout(&self) -> &'static str {
        if self.api_version.as_deref() == Some("aci/1") {
            "aci/1"
        } else {
            "dstack"
        }
    }

    pub fn quote_text(&self) -> Option<&str> {
        self.intel_quote.as_deref().or_else(|| {
            self.attestation
                .as_ref()?
                .evidence
                .as_ref()?
                .quote
                .as_deref()
        })
    }

    /// The served workload keyset (spec place first); `null` counts as absent.
    pub(crate) fn keyset(&self) -> Option<&Value> {
        self.attestation
            .as_ref()
            .and_then(|a| a.workload_keyset.as_ref())
            .or(self.workload_keyset.as_ref())
            .filter(|v| !v.is_null())
    }

    /// Every keyset digest the report restates.
    pub(crate) fn restated_digests(&self) -> Vec<&str> {
        let nested = self
            .attestation
            .as_ref()
            .and_then(|a| a.workload_keyset_digest.as_deref());
        [self.workload_keyset_digest.as_deref(), nested]
            .into_iter()
            .flatten()
            .collect()
    }

    /// Every restated workload id (the drafts' statement binds one).
    pub(crate) fn restated_workload_ids(&self) -> Vec<&str> {
        let nested = self
            .attestation
            .as_ref()
            .and_then(|a| a.workload_id.as_deref());
        [self.workload_id.as_deref(), nested]
            .into_iter()
            .flatten()
            .collect()
    }

    /// Every restated `report_data`, named by where it was found.
    pub(crate) fn restated_report_data(&self) -> Vec<(&'static str, &str)> {
        let Some(a) = self.attestation.as_ref() else {
            return Vec::new();
        };
        let quote_rd = a
            .evidence
            .as_ref()
            .and_then(|e| e.quote_report_data.as_deref());
        [
            ("attestation.report_data", a.report_data.as_deref()),
            ("attestation.evidence.quote_report_data", quote_rd),
        ]
        .into_iter()
        .filter_map(|(n, v)| Some((n, v?)))
        .collect()
    }

    pub(crate) fn signing_key_text(&self) -> Option<&str> {
        self.signing_key
            .as_deref()
            .or(self.signing_public_key.as_deref())
    }
}

/// One streamed chat chunk as Venice sends it. Only the fields the proxy re-emits are kept;
/// text borrows from the event (a copy only where JSON escapes had to be undone).
#[derive(Debug, Deserialize)]
pub(crate) struct ChatChunk<'a> {
    #[serde(default, borrow)]
    pub(crate) id: Option<Text<'a>>,
    #[serde(default)]
    pub(crate) created: Option<i64>,
    #[serde(default, borrow)]
    pub(crate) choices: Vec<ChunkChoice<'a>>,
    #[serde(default)]
    pub(crate) usage: Option<Value>,
    /// Venice reports mid-stream failures as an `error` member.
    #[serde(default)]
    pub(crate) error: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChunkChoice<'a> {
    #[serde(default)]
    pub(crate) index: u32,
    #[serde(default, borrow)]
    pub(crate) delta: Delta<'a>,
    #[serde(default)]
    pub(crate) finish_reason: Option<String>,
    /// vLLM's `stop_reason`: the stop sequence that ended the answer (a string), a stop
    /// token id, or null.
    #[serde(default)]
    pub(crate) stop_reason: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Delta<'a> {
    #[serde(default)]
    pub(crate) role: Option<String>,
    #[serde(default, borrow)]
    pub(crate) content: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub(crate) reasoning_content: Option<Text<'a>>,
}

/// A JSON string borrowed from the input unless it had escapes (serde borrows a `Cow` only
/// as a struct field, not inside an `Option`, hence the newtype).
#[derive(Debug, Deserialize)]
pub(crate) struct Text<'a>(#[serde(borrow)] pub Cow<'a, str>);

/// Pulls a human-readable message out of an upstream error body, whatever its shape
/// (`{"error":"…"}`, `{"error":{"message":"…"}}`, `{"message":"…"}` or plain text).
pub(crate) fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let found = parsed.as_ref().and_then(|v| {
        let e = v.get("error").unwrap_or(v);
        e.as_str()
            .or_else(|| e.get("message").and_then(Value::as_str))
            .or_else(|| v.get("message").and_then(Value::as_str))
            .or_else(|| v.get("details").and_then(Value::as_str))
            .map(str::to_string)
    });
    let msg = found.unwrap_or_else(|| text.trim().to_string());
    // Bound what an upstream can make us echo.
    msg.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As Venice's model list served `e2ee-qwen3-6-27b` before its retirement (api-docs
    /// data/static-models.json, 2026-08-22).
    #[test]
    fn a_scheduled_retirement_is_read() {
        let m: Model = serde_json::from_value(serde_json::json!({
            "id": "e2ee-qwen3-6-27b", "type": "text",
            "model_spec": {"deprecation": {"autoRemap": false,
                "date": "2026-08-27T13:00:00.000Z", "removesAt": "2026-08-27T13:00:00.000Z"}}
        }))
        .unwrap();
        assert_eq!(
            m.deprecation(),
            Some(Deprecation {
                removes_at: "2026-08-27T13:00:00.000Z".into(),
                unix: Some(1_787_835_600),
                auto_remap: Some(false),
            })
        );
        // The documented minimal form; none at all.
        let m: Model = serde_json::from_value(serde_json::json!({"id": "x",
            "model_spec": {"deprecation": {"date": "2025-03-01T00:00:00.000Z"}}}))
        .unwrap();
        assert_eq!(m.deprecation().unwrap().unix, Some(1_740_787_200));
        let m: Model =
            serde_json::from_value(serde_json::json!({"id": "x", "model_spec": {}})).unwrap();
        assert_eq!(m.deprecation(), None);
    }

    #[test]
    fn error_messages_in_every_shape() {
        assert_eq!(
            error_message(br#"{"error":"E2EE requires streaming"}"#),
            "E2EE requires streaming"
        );
        assert_eq!(
            error_message(br#"{"error":{"message":"slow down"}}"#),
            "slow down"
        );
        assert_eq!(error_message(b"Bad Gateway"), "Bad Gateway");
    }

    #[test]
    fn the_captured_envelope_parses() {
        let body = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/capture/0001_api.venice.ai_api_v1_tee_attestation.body"
        ))
        .unwrap();
        let a: Attestation = serde_json::from_slice(&body).unwrap();
        assert_eq!(a.layout(), "dstack");
        assert_eq!(a.model.as_deref(), Some("e2ee-qwen3-5-122b-a10b"));
        assert_eq!(a.quote_text().unwrap().len(), 10020);
    }
}
