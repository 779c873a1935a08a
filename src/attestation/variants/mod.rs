//! Variants of real attestations for tests: the same signed evidence in other framings
//! (`drift`) or in the ACI layout (`reframe`). The verifier's unit tests and the simulator
//! (behind the `testkit` feature) use them; none of it is in the product's build.

pub mod drift;

use super::aci::jcs;
use super::evidence::{nvidia, workload};
use super::quote;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A dstack-layout attestation `v` reframed as Venice's ACI layout serves it, over the same
/// (address-bound) quote: the quote, event log and compose under `attestation.evidence`, a
/// keyset listing the attested key and expiring at `not_after`, and `vm_config` with the GPUs
/// it has evidence for. No source provenance is claimed: the capture's workload serves the
/// model on its GPUs and runs no gateway. For variants of real captures (drift suite,
/// `verify --offline`).
pub fn reframe(v: &Value, not_after: u64) -> Value {
    let mut v = v.clone();
    let Some(o) = v.as_object_mut() else {
        return v;
    };
    let quote_text = o.remove("intel_quote").unwrap_or(Value::Null);
    let events = o.remove("event_log").unwrap_or(Value::Null);
    let key = o
        .get("signing_key")
        .or(o.get("signing_public_key"))
        .cloned();
    let keyset = json!({"subject": null, "not_after": not_after,
        "receipt_signing_keys": [{"key_id": "receipt-1", "algo": "ed25519",
            "public_key": hex::encode(Sha256::digest(b"receipt key of a reframed capture"))}],
        "e2ee_public_keys": [{"key_id": "model-key", "algo": "secp256k1-aes-256-gcm-hkdf-sha256", "public_key": key}],
        "tls_public_keys": []});
    let report = quote_text
        .as_str()
        .and_then(|q| quote::decode_quote_text(q).ok())
        .and_then(|q| quote::parse(&q).ok());
    let compose = match (&report, o.get("info")) {
        (Some(r), Some(info)) => workload::describe(info, r).ok().map(|(c, _)| c),
        _ => None,
    };
    let report_data = report.as_ref().map(|r| hex::encode(r.report_data));
    let gpus = o
        .get("nvidia_payload")
        .and_then(|p| nvidia::parse_payload(p).ok())
        .map_or(0, |p| p.evidence_list.len());
    o.remove("info");
    v["api_version"] = json!("aci/1");
    v["workload_keyset_digest"] = json!(jcs::digest(&keyset));
    v["attestation"] = json!({
        "tee_type": "tdx",
        "workload_keyset": keyset,
        "report_data": report_data,
        "evidence": {"quote": quote_text, "quote_report_data": report_data,
            "event_log": events.to_string(), "app_compose": compose,
            "vm_config": json!({"num_gpus": gpus}).to_string()}
    });
    v
}
