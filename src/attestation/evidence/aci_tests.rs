//! The real capture reframed in the ACI layout as Venice serves it (dstack's root fields,
//! evidence nested, a keyset, source provenance): it verifies with every check named, and
//! each alteration fails the check that owns it. The quote is Intel-signed and binds the
//! signing address, so these variants exercise the address binding; the statement binding
//! is exercised where a quote can be made for it (`verify.rs`, the simulator end to end).

use super::report::{Report, Status};
use super::tests::{capture, Capture};
use crate::attestation::aci::{self, jcs};
use serde_json::{json, Value};

fn status(r: &Report, name: &str) -> Status {
    r.checks.iter().find(|c| c.name == name).unwrap().status
}

fn reframed(c: &Capture) -> Value {
    crate::attestation::variants::reframe(&c.attestation, c.captured_at + 86_400)
}

fn open_policy() -> aci::source::SourcePolicy {
    // The capture's workload is NEAR's compose, not the private-ai-gateway: any repository.
    aci::source::SourcePolicy {
        repositories: Vec::new(),
        allow_built_at_boot: true,
    }
}

fn verify(c: &Capture, v: &Value) -> Report {
    super::tests::run_with_source(c, v, c.captured_at, &open_policy())
}

#[test]
fn the_capture_in_the_aci_layout_verifies_with_every_check_named() {
    let c = capture();
    let r = verify(&c, &reframed(&c));
    assert!(
        r.verified,
        "{}",
        serde_json::to_string_pretty(&r.checks).unwrap()
    );
    for name in super::report::CHECK_NAMES {
        if name == "sigstore_provenance" {
            continue; // added by the async provenance step, not `verify_all`
        }
        assert_eq!(status(&r, name), Status::Pass, "{name}");
    }
    let a = r.aci.as_ref().unwrap();
    assert_eq!(a.binding, Some(aci::Binding::Address));
    assert_eq!(a.e2ee_key_id.as_deref(), Some("model-key"));
    assert!(!a.gateway);
    assert_eq!(r.layout, Some("aci/1"));
    assert_eq!(r.gpus, 8);
    let detail = &r
        .checks
        .iter()
        .find(|c| c.name == "aci_keyset")
        .unwrap()
        .detail;
    assert!(detail.contains("not bound by this quote"), "{detail}");
}

#[test]
fn each_alteration_fails_the_check_that_owns_it() {
    let c = capture();
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "aci_keyset",
            Box::new(|v| {
                v["workload_keyset_digest"] = json!(format!("sha256:{}", "ab".repeat(32)))
            }),
        ),
        (
            "aci_keyset",
            Box::new(|v| v["attestation"]["workload_keyset"]["not_after"] = json!(1)),
        ),
        (
            "aci_keyset",
            Box::new(|v| v["attestation"]["workload_keyset"]["not_after"] = json!("soon")),
        ),
        (
            "aci_report_data",
            Box::new(|v| v["attestation"]["report_data"] = json!("00".repeat(32))),
        ),
        (
            "aci_report_data",
            Box::new(|v| {
                v["attestation"]["evidence"]["quote_report_data"] = json!("00".repeat(64))
            }),
        ),
        (
            "source_provenance",
            Box::new(|v| {
                v["attestation"]["source_provenance"]["image_digest"] =
                    json!(format!("sha256:{}", "cd".repeat(32)))
            }),
        ),
        (
            "source_provenance",
            Box::new(|v| {
                v["attestation"]
                    .as_object_mut()
                    .unwrap()
                    .remove("source_provenance");
            }),
        ),
        (
            "rtmr_replay",
            Box::new(|v| {
                let mut events: Value = serde_json::from_str(
                    v["attestation"]["evidence"]["event_log"].as_str().unwrap(),
                )
                .unwrap();
                events[0]["digest"] = json!("00".repeat(48));
                v["attestation"]["evidence"]["event_log"] = json!(events.to_string());
            }),
        ),
        (
            "mr_config_id",
            Box::new(|v| {
                let compose = v["attestation"]["evidence"]["app_compose"]
                    .as_str()
                    .unwrap()
                    .replace("services", "servicez");
                v["attestation"]["evidence"]["app_compose"] = json!(compose);
            }),
        ),
        (
            "gpu_cert_chain",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("nvidia_payload");
            }),
        ),
    ];
    for (owner, edit) in cases {
        let mut v = reframed(&c);
        edit(&mut v);
        let r = verify(&c, &v);
        assert!(!r.verified, "{owner}");
        assert_eq!(status(&r, owner), Status::Fail, "{owner}: {:?}", r.checks);
        assert_eq!(status(&r, "envelope"), Status::Pass, "{owner}");
    }
}

#[test]
fn a_gateway_without_gpus_has_no_gpu_evidence_to_check() {
    let c = capture();
    let mut v = reframed(&c);
    v.as_object_mut().unwrap().remove("nvidia_payload");
    v["attestation"]["evidence"]["vm_config"] = json!({"num_gpus": 0, "vcpu": 8});
    let r = verify(&c, &v);
    assert!(r.verified, "{:?}", r.checks);
    for name in [
        "gpu_cert_chain",
        "gpu_spdm_signature",
        "gpu_nonce",
        "gpu_nras",
    ] {
        assert_eq!(status(&r, name), Status::NotApplicable, "{name}");
    }
    let a = r.aci.unwrap();
    assert!(a.gateway);
    assert!(a.attested.contains("gateway"));
    // Saying "no GPUs" does not excuse GPU evidence that is there and wrong.
    let mut v = reframed(&c);
    v["attestation"]["evidence"]["vm_config"] = json!({"num_gpus": 0});
    super::tests::mutate_gpu_cert(&mut v, 0, 0, 100);
    assert_eq!(status(&verify(&c, &v), "gpu_cert_chain"), Status::Fail);
}

#[test]
fn evidence_without_event_log_or_compose_leaves_provenance_nothing_to_rest_on() {
    let c = capture();
    let mut v = reframed(&c);
    v["attestation"]["evidence"]["event_log"] = Value::Null;
    v["attestation"]["evidence"]["app_compose"] = Value::Null;
    let r = verify(&c, &v);
    assert_eq!(status(&r, "rtmr_replay"), Status::NotApplicable);
    assert_eq!(status(&r, "mr_config_id"), Status::NotApplicable);
    assert_eq!(status(&r, "source_provenance"), Status::Fail);
    assert!(!r.verified);
}

#[test]
fn a_keyset_is_optional_under_the_address_binding() {
    let c = capture();
    let mut v = reframed(&c);
    v["attestation"]
        .as_object_mut()
        .unwrap()
        .remove("workload_keyset");
    v.as_object_mut().unwrap().remove("workload_keyset_digest");
    let r = verify(&c, &v);
    assert!(r.verified, "{:?}", r.checks);
    assert_eq!(status(&r, "aci_keyset"), Status::NotApplicable);
}

#[test]
fn every_drifted_framing_of_the_aci_capture_verifies() {
    use crate::attestation::variants::drift::{apply_all, Drift};
    let c = capture();
    let base = reframed(&c);
    for d in Drift::ALL {
        let mut v = base.clone();
        apply_all(&mut v, &[d]);
        // Only `info.tcb_info` has no place in the ACI layout.
        assert!(
            v != base || d == Drift::TcbInfoString,
            "{d:?} changed nothing"
        );
        let r = verify(&c, &v);
        assert!(r.verified, "{d:?}: {:?}", r.checks);
    }
    let mut all = reframed(&c);
    apply_all(&mut all, &Drift::ALL);
    assert!(verify(&c, &all).verified);
}

/// The spec's report fixture (tests/fixtures/aci_report_fixture.json of the reference
/// gateway), rebuilt from its values: the keyset digest and statement recompute exactly, and
/// its stub quote (not a TDX quote) fails closed.
#[test]
fn the_spec_fixture_recomputes_and_its_stub_quote_fails_closed() {
    let keyset = json!({"subject": null, "not_after": 2000000000u64,
        "receipt_signing_keys": [{"key_id": "static-receipt-ed25519", "algo": "ed25519",
            "public_key": "34b4d9043156cb6dcf0beb0a2949b7559c940d2bcb6dbe8c53a9b30278e3a746"}],
        "e2ee_public_keys": [
            {"key_id": "static-e2ee-key-secp256k1", "algo": "secp256k1-aes-256-gcm-hkdf-sha256",
             "public_key": "042c0b7cf95324a07d05398b240174dc0c2be444d96b159aa6c7f7b1e668680991ae31a9c671a36543f46cea8fce6984608aa316aa0472a7eed08847440218cb2f"},
            {"key_id": "static-e2ee-x25519-key", "algo": "x25519-aes-256-gcm-hkdf-sha256",
             "public_key": "38ab664bd86f77d7e66bdd9ae0792913a94fd8b33a1260027e4b46c1f4884c67"}],
        "tls_public_keys": []});
    let digest = jcs::digest(&keyset);
    assert_eq!(
        digest,
        "sha256:e338157d18d77aaa3d1186c9d96147c2d4edc0f1a169ace1243c0bc3ad701fad"
    );
    let nonce: [u8; 32] =
        hex::decode("cd20088d763605cf78564e5b35524ad52715419624b76e029582a3652758708d")
            .unwrap()
            .try_into()
            .unwrap();
    let slot = aci::report_data(&digest, &nonce);
    assert_eq!(
        hex::encode(&slot[..32]),
        "80b6c8449dd6a6d9c3a89d5df05439fa5c2587a98a9dff21a3b68653a64d2b00"
    );
    let ks = aci::Keyset::parse(&keyset).unwrap();
    let listed =
        crate::e2ee::codec::parse_public_key(ks.e2ee_public_keys[0].public_key.as_str()).unwrap();
    assert_eq!(
        ks.e2ee_entry_for(&listed).unwrap().key_id,
        "static-e2ee-key-secp256k1"
    );
    // The fixture's quote is `aci-stub-quote|` ‖ report_data: no verifier may accept it.
    let mut stub = b"aci-stub-quote|".to_vec();
    stub.extend_from_slice(&slot[..32]);
    let att: crate::venice::Attestation = serde_json::from_value(json!({
        "verified": true, "nonce": hex::encode(nonce), "model": "m",
        "signing_public_key": ks.e2ee_public_keys[0].public_key,
        "signing_address": format!("0x{}", hex::encode(crate::e2ee::codec::address(&listed))),
        "api_version": "aci/1", "workload_keyset_digest": digest,
        "attestation": {"tee_type": "tdx", "workload_keyset": keyset,
            "report_data": hex::encode(&slot[..32]),
            "evidence": {"quote": hex::encode(stub)}}
    }))
    .unwrap();
    let e = crate::attestation::verify::verify(&att, "m", &nonce, Default::default()).unwrap_err();
    assert_eq!(e.check, crate::attestation::Check::Quote);
}
