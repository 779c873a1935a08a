//! Attestation responses (as JSON) through the envelope checks and the evidence parsers:
//! quote decoding and parsing, event log, info/compose, NVIDIA payload. Cryptographic
//! verification against real collateral is exercised by the property tests.
#![no_main]
use libfuzzer_sys::fuzz_target;
use venice_e2ee_proxy::attestation::evidence::{nvidia, workload};
use venice_e2ee_proxy::attestation::{envelope, framing, quote};

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(att) = serde_json::from_value::<venice_e2ee_proxy::venice::Attestation>(v.clone()) {
        let _ = envelope::verify(&att, "m", &[0u8; 32], envelope::Policy::default());
        if let Some(q) = att.quote_text() {
            if let Ok(raw) = quote::decode_quote_text(q) {
                if let Ok(report) = quote::parse(&raw) {
                    if let Some(info) = v.get("info") {
                        let _ = workload::describe(info, &report);
                    }
                }
            }
        }
    }
    let _ = workload::find_event_log(&v);
    if let Some(p) = v.get("nvidia_payload") {
        if let Ok(payload) = nvidia::parse_payload(p) {
            for gpu in &payload.evidence_list {
                let _ = framing::pem_field(&gpu.certificate);
                let _ = framing::base64_bytes(&gpu.evidence);
            }
        }
    }
});
