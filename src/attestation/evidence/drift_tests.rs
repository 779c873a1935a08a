//! The drift suite: the real capture in every benign framing still verifies, and no change
//! to what is signed or bound survives, whatever the framing (property tests).

use super::tests::{capture, failed, mutate_gpu_cert, run};
use crate::attestation::variants::drift::{apply_all, Drift};
use base64::Engine;
use proptest::prelude::*;
use serde_json::{json, Value};

fn assert_verifies(what: &str, v: &Value) {
    let c = capture();
    let r = run(&c, v, c.captured_at);
    assert!(
        r.verified,
        "{what}: {}",
        serde_json::to_string_pretty(&r.checks).unwrap()
    );
    for c in &r.checks {
        assert_eq!(
            c.status,
            super::tests::expected_for_dstack(c.name),
            "{what}: {}",
            c.name
        );
    }
    assert_eq!(r.gpus, 8, "{what}");
}

#[test]
fn every_drifted_form_of_the_real_capture_verifies() {
    let c = capture();
    for d in Drift::ALL {
        let mut v = c.attestation.clone();
        apply_all(&mut v, &[d]);
        assert_ne!(v, c.attestation, "{d:?} changed nothing");
        assert_verifies(&format!("{d:?}"), &v);
    }
    let mut all = c.attestation.clone();
    apply_all(&mut all, &Drift::ALL);
    assert_verifies("all drifts at once", &all);
}

/// The form Venice serves since mid-2026: NULs after each GPU chain's last PEM block.
#[test]
fn gpu_chains_padded_with_nuls_verify() {
    let c = capture();
    let mut v = c.attestation.clone();
    let mut payload: Value = serde_json::from_str(v["nvidia_payload"].as_str().unwrap()).unwrap();
    for gpu in payload["evidence_list"].as_array_mut().unwrap() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut pem = b64.decode(gpu["certificate"].as_str().unwrap()).unwrap();
        assert!(pem.ends_with(b"-----END CERTIFICATE-----\n"));
        pem.extend_from_slice(&[0; 5]);
        gpu["certificate"] = json!(b64.encode(pem));
    }
    v["nvidia_payload"] = json!(payload.to_string());
    assert_verifies("NUL-padded chains", &v);
}

#[test]
fn app_compose_as_an_object_binds_only_its_own_text() {
    let c = capture();
    let mut v = c.attestation.clone();
    apply_all(&mut v, &[Drift::AppComposeObject]);
    // A changed object has no serialization that MRCONFIGID binds.
    v["info"]["tcb_info"]["app_compose"]["name"] = json!("something-else");
    let r = run(&c, &v, c.captured_at);
    assert_eq!(failed(&r), ["mr_config_id"]);
}

/// Where a meaningful change lands: each target is a signed or bound byte string of the
/// capture, `at` picks a byte and `bit` a bit in it.
#[derive(Debug, Clone)]
enum Target {
    /// The TDX quote's signed parts: header, TD report, signature, attestation key, QE report
    /// and its signature.
    Quote,
    GpuEvidence(usize),
    GpuCertificate(usize, usize),
    EventDigest(usize),
    AppCompose,
    NonceEcho,
    SigningKey,
}

/// The quote's signed or signing bytes (v4, ECDSA): header and TD report (signed by the
/// attestation key), the signature, the attestation key, the QE report (signed by the PCK
/// key) and its signature. The length and certification-type fields between them are framing
/// no signature covers, and are left out.
const QUOTE_SIGNED: [std::ops::Range<usize>; 4] = [0..632, 636..764, 770..1154, 1154..1218];

fn quote_signed_byte(at: usize) -> usize {
    let total: usize = QUOTE_SIGNED.iter().map(|r| r.len()).sum();
    let mut at = at % total;
    for r in QUOTE_SIGNED {
        if at < r.len() {
            return r.start + at;
        }
        at -= r.len();
    }
    unreachable!("at < total")
}

fn flip_hex(s: &str, at: usize, bit: u8) -> String {
    let mut b = hex::decode(s).unwrap();
    let i = at % b.len();
    b[i] ^= 1 << bit;
    hex::encode(b)
}

fn apply_target(v: &mut Value, t: &Target, at: usize, bit: u8) {
    let b64 = base64::engine::general_purpose::STANDARD;
    match t {
        Target::Quote => {
            let mut q = hex::decode(v["intel_quote"].as_str().unwrap()).unwrap();
            q[quote_signed_byte(at)] ^= 1 << bit;
            v["intel_quote"] = json!(hex::encode(q));
        }
        Target::GpuEvidence(gpu) => {
            let mut p: Value = serde_json::from_str(v["nvidia_payload"].as_str().unwrap()).unwrap();
            let e = &mut p["evidence_list"][*gpu]["evidence"];
            let mut bytes = b64.decode(e.as_str().unwrap()).unwrap();
            let i = at % bytes.len();
            bytes[i] ^= 1 << bit;
            *e = json!(b64.encode(bytes));
            v["nvidia_payload"] = json!(p.to_string());
        }
        Target::GpuCertificate(gpu, index) => {
            // Any bit of any certificate's DER; `bit` folds into the byte position.
            mutate_gpu_cert(v, *gpu, *index, (at * 8 + bit as usize) as i64 / 8)
        }
        Target::EventDigest(i) => {
            let d = v["event_log"][*i]["digest"].as_str().unwrap().to_string();
            v["event_log"][*i]["digest"] = json!(flip_hex(&d, at, bit));
        }
        Target::AppCompose => {
            let mut text = v["info"]["tcb_info"]["app_compose"]
                .as_str()
                .unwrap()
                .as_bytes()
                .to_vec();
            let i = at % text.len();
            // Stay ASCII so the compose stays text: flip among the low 7 bits.
            text[i] ^= 1 << (bit % 7);
            v["info"]["tcb_info"]["app_compose"] = json!(String::from_utf8(text).unwrap());
        }
        Target::NonceEcho => {
            let n = v["nonce"].as_str().unwrap().to_string();
            v["nonce"] = json!(flip_hex(&n, at, bit));
        }
        Target::SigningKey => {
            // Both key fields, consistently: only the REPORTDATA binding can tell.
            let k = v["signing_key"].as_str().unwrap().to_string();
            let flipped = flip_hex(&k, 1 + at % 64, bit);
            v["signing_key"] = json!(flipped);
            v["signing_public_key"] = json!(flipped);
        }
    }
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::Quote),
        (0..8usize).prop_map(Target::GpuEvidence),
        (0..8usize, 0..3usize).prop_map(|(g, i)| Target::GpuCertificate(g, i)),
        (0..30usize).prop_map(Target::EventDigest),
        Just(Target::AppCompose),
        Just(Target::NonceEcho),
        Just(Target::SigningKey),
    ]
}

fn drifts() -> impl Strategy<Value = Vec<Drift>> {
    proptest::sample::subsequence(Drift::ALL.to_vec(), 0..=Drift::ALL.len())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// A flipped bit in anything signed or bound, in any framing, never verifies, and the
    /// report names a check that failed.
    #[test]
    fn a_changed_signed_byte_never_verifies(t in target(), at in 0..usize::MAX / 16, bit in 0..8u8, d in drifts()) {
        let c = capture();
        let mut v = c.attestation.clone();
        let events = v["event_log"].as_array().unwrap().len();
        let t = match t { Target::EventDigest(i) => Target::EventDigest(i % events), t => t };
        apply_target(&mut v, &t, at, bit);
        apply_all(&mut v, &d);
        let r = run(&c, &v, c.captured_at);
        prop_assert!(!r.verified, "{t:?} at {at} bit {bit} verified");
        prop_assert!(!failed(&r).is_empty(), "no check names the failure");
        prop_assert!(r.failure().is_some());
    }

    /// Arbitrary edits to the attestation's JSON text never panic the verifier, and its
    /// verdict and its first failure always agree.
    #[test]
    fn arbitrary_edits_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<Option<usize>>()) {
        let c = capture();
        let mut text = serde_json::to_vec(&c.attestation).unwrap();
        for (at, byte) in edits {
            let i = at % text.len();
            text[i] = byte;
        }
        if let Some(cut) = cut {
            text.truncate(cut % (text.len() + 1));
        }
        if let Ok(v) = serde_json::from_slice::<Value>(&text) {
            let r = run(&c, &v, c.captured_at);
            prop_assert_eq!(r.verified, r.failure().is_none());
        }
    }

    /// Type confusion in any field the verifier reads: a clean report, never a panic.
    #[test]
    fn wrong_types_never_panic(field in 0..12usize, replacement in prop_oneof![
        Just(Value::Null), Just(json!(7)), Just(json!(true)), Just(json!([])), Just(json!({})), Just(json!("")), Just(json!("0x"))
    ]) {
        let c = capture();
        let mut v = c.attestation.clone();
        // Fields Venice sends twice (either copy suffices) change together.
        let fields: [&[&str]; 12] = [&["/verified"], &["/nonce", "/request_nonce"], &["/model"],
            &["/signing_key", "/signing_public_key"], &["/signing_address"], &["/intel_quote"],
            &["/nvidia_payload"], &["/event_log"], &["/event_log/0/imr"], &["/event_log/0/digest"],
            &["/info"], &["/info/tcb_info"]];
        for pointer in fields[field] {
            let slot = v.pointer_mut(pointer).unwrap();
            prop_assume!(*slot != replacement, "not a change");
            *slot = replacement.clone();
        }
        let r = run(&c, &v, c.captured_at);
        prop_assert!(!r.verified, "{:?} = {replacement} verified", fields[field]);
        prop_assert!(r.failure().is_some());
    }
}
