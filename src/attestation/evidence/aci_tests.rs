//! The real capture reframed in the ACI layout as Venice serves it (dstack's root fields,
//! evidence nested, a keyset): it verifies with every check named, each alteration fails the
//! check that owns it, and no unsigned field talks a check out of applying. The quote is Intel-signed and binds the
//! signing address, so these variants exercise the address binding; the statement binding
//! is exercised where a quote can be made for it (`envelope.rs`, the simulator end to end).

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

fn verify(c: &Capture, v: &Value) -> Report {
    super::tests::run(c, v, c.captured_at)
}

fn detail<'a>(r: &'a Report, name: &str) -> &'a str {
    &r.checks.iter().find(|c| c.name == name).unwrap().detail
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
        match name {
            // Added by the async provenance step, not `verify_all`.
            "sigstore_provenance" => continue,
            // NEAR's compose is a reviewed workload without a gateway: that fact, named.
            "source_provenance" => {
                assert_eq!(status(&r, name), Status::NotApplicable);
                assert!(
                    detail(&r, name)
                        .contains("reviewed workload `near-ai-gpu-2026-04`, which runs no gateway"),
                    "{}",
                    detail(&r, name)
                );
            }
            _ => assert_eq!(status(&r, name), Status::Pass, "{name}"),
        }
    }
    let a = r.aci.as_ref().unwrap();
    assert_eq!(a.binding, Some(aci::Binding::Address));
    assert_eq!(a.e2ee_key_id.as_deref(), Some("model-key"));
    assert!(r.gateway.is_none());
    assert_eq!(r.gpu_evidence, "attested_cvm");
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
                v["attestation"]["source_provenance"] =
                    json!({"image_digest": format!("sha256:{}", "cd".repeat(32))})
            }),
        ),
        // A digest the compose happens to pin is no gateway's image.
        (
            "source_provenance",
            Box::new(|v| {
                v["attestation"]["source_provenance"] = json!({"repo_url": "https://github.com/Dstack-TEE/private-ai-gateway",
                    "image_digest": format!("sha256:{CM}")})
            }),
        ),
        (
            "source_provenance",
            Box::new(|v| {
                v["attestation"]["source_provenance"] = json!({"repo_url": "https://github.com/Dstack-TEE/private-ai-gateway",
                    "repo_commit": "aa65d64c191949b8df7b1ebe210f5b8f8a8e6b99"})
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

/// compose-manager's digest, which the capture's compose pins.
const CM: &str = "a3c6e223ae5643689e6f0ae78461c2cb2d1b52d5b4ea306dc354b9ac7096d6e2";

/// Issue 32, finding 1: the unsigned fields that said "gateway" (the layout, `vm_config`, a
/// source claim corroborated by any digest the compose pins) no longer switch the GPU checks
/// off. The GPU checks apply, fail without evidence, and the attestation does not verify,
/// in both layouts.
#[test]
fn unsigned_fields_cannot_make_a_gateway() {
    let c = capture();
    let claims = json!({"evidence": {"vm_config": {"num_gpus": 0}},
        "source_provenance": {"image_digest": format!("sha256:{CM}")}});
    // The dstack capture with an `attestation` object added, as the finding describes it.
    let mut dstack = c.attestation.clone();
    dstack.as_object_mut().unwrap().remove("nvidia_payload");
    dstack["attestation"] = claims.clone();
    // The ACI framing saying the same.
    let mut framed = reframed(&c);
    framed.as_object_mut().unwrap().remove("nvidia_payload");
    framed["attestation"]["evidence"]["vm_config"] = json!({"num_gpus": 0, "vcpu": 8});
    framed["attestation"]["source_provenance"] = claims["source_provenance"].clone();
    framed["service_capabilities"] = json!({"serving": "aggregator"});
    for (name, v) in [("dstack", &dstack), ("aci", &framed)] {
        let r = verify(&c, v);
        assert!(!r.verified, "{name}");
        assert!(r.gateway.is_none(), "{name}");
        for check in ["gpu_cert_chain", "gpu_spdm_signature", "gpu_nonce"] {
            assert_eq!(status(&r, check), Status::Fail, "{name} {check}");
        }
        assert_eq!(status(&r, "source_provenance"), Status::Fail, "{name}");
        // No check may be excused without a measured or signed fact.
        for ch in r
            .checks
            .iter()
            .filter(|ch| ch.status == Status::NotApplicable)
        {
            assert!(
                ch.detail.contains("REPORTDATA") || ch.detail.contains("restated"),
                "{name}: {} n/a on {}",
                ch.name,
                ch.detail
            );
        }
        let text = super::report::render_text(&r);
        // The last line names each failed check.
        let last = text.lines().last().unwrap();
        assert!(last.starts_with("NOT VERIFIED: failed "), "{text}");
        for ch in r.checks.iter().filter(|c| c.status == Status::Fail) {
            assert!(last.contains(ch.name), "{last} misses {}", ch.name);
        }
    }
    // The layout comes from `api_version` alone.
    assert_eq!(verify(&c, &dstack).layout, Some("dstack"));
    // Saying "no GPUs" does not excuse GPU evidence that is there and wrong either.
    let mut v = reframed(&c);
    v["attestation"]["evidence"]["vm_config"] = json!({"num_gpus": 0});
    super::tests::mutate_gpu_cert(&mut v, 0, 0, 100);
    assert_eq!(status(&verify(&c, &v), "gpu_cert_chain"), Status::Fail);
}

/// The identity RTMR3 measures is what the report shows, said to be measured; Venice's
/// `info` is reported as its claim only where nothing measures the value.
#[test]
fn the_workload_identity_comes_from_the_measured_event_log() {
    let c = capture();
    let mut v = c.attestation.clone();
    // Venice's `info` claims another app and OS image; RTMR3 says otherwise.
    let mut info: Value = match &v["info"] {
        Value::String(s) => serde_json::from_str(s).unwrap(),
        other => other.clone(),
    };
    info["app_id"] = json!("ffffffffffffffffffffffffffffffffffffffff");
    info["os_image_hash"] = json!("00".repeat(32));
    v["info"] = info;
    let r = verify(&c, &v);
    assert!(r.verified, "{:?}", r.checks);
    let w = r.workload.as_ref().unwrap();
    let app = w.app_id.as_ref().unwrap();
    assert_eq!(app.value, "2c0a0c96cb6dbd659bf1446e2f3fce58172ff91b");
    assert_eq!(app.from, super::workload::FROM_RTMR3);
    let os = w.os_image_hash.as_ref().unwrap();
    assert_eq!(
        os.value,
        "9b69bb1698bacbb6985409a2c272bcb892e09cdcea63d5399c6768b67d3ff677"
    );
    assert_eq!(os.from, super::workload::FROM_RTMR3);
    assert!(w.key_provider.as_ref().unwrap().value.contains("kms"));
    assert!(detail(&r, "mr_config_id").contains("compose-hash event agrees"));
    // Without a log that replays, nothing is measured: the values are claims, said so.
    let mut v = c.attestation.clone();
    let mut events: Value = match &v["event_log"] {
        Value::String(s) => serde_json::from_str(s).unwrap(),
        other => other.clone(),
    };
    events[0]["digest"] = json!("00".repeat(48));
    v["event_log"] = events;
    let r = verify(&c, &v);
    assert_eq!(status(&r, "rtmr_replay"), Status::Fail);
    let w = r.workload.as_ref().unwrap();
    assert_eq!(w.app_id.as_ref().unwrap().from, super::workload::FROM_INFO);
}

/// An operator can require production OS images: the allowlist holds the measured hash only.
#[test]
fn the_os_image_allowlist_holds_the_measured_hash() {
    use super::report::Allowlists;
    let c = capture();
    let measured = "9b69bb1698bacbb6985409a2c272bcb892e09cdcea63d5399c6768b67d3ff677";
    let allow = |hash: &str| Allowlists {
        os_image_hash: vec![hash.into()],
        ..Allowlists::default()
    };
    let ok = super::tests::run_allowing(&c, &c.attestation, c.captured_at, &allow(measured));
    assert_eq!(status(&ok, "workload_allowlist"), Status::Pass);
    let other =
        super::tests::run_allowing(&c, &c.attestation, c.captured_at, &allow(&"ab".repeat(32)));
    assert_eq!(status(&other, "workload_allowlist"), Status::Fail);
    assert!(!other.verified);
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
    let e =
        crate::attestation::envelope::verify(&att, "m", &nonce, Default::default()).unwrap_err();
    assert_eq!(e.check, crate::attestation::Check::Quote);
}
