//! The real 2026-04-24 capture's images against the default policy, and every alteration of
//! what Rekor answered failing with a reason that names it.

use super::policy::{default_policy, Rule, RuleKind};
use super::*;
use crate::attestation::evidence::capture;
use base64::Engine;

const CM: &str = "a3c6e223ae5643689e6f0ae78461c2cb2d1b52d5b4ea306dc354b9ac7096d6e2";
const DD: &str = "5556fb80b952832719a76b016f905616c76ee0989a239c4680c6220148e865d6";
const CERTBOT: &str = "742dbd2e61c8709b930712c38958386c3cb3928e09eeb1f1e490600c127e2edb";

fn capture() -> capture::Capture {
    capture::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/capture"
    )))
    .unwrap()
}

fn images() -> Vec<String> {
    vec![
        format!("datadog/agent@sha256:{DD}"),
        format!("certbot/dns-cloudflare@sha256:{CERTBOT}"),
        format!("nearaidev/compose-manager@sha256:{CM}"),
    ]
}

fn run(
    rekor: &Recorded,
    policy: Vec<Rule>,
    images: &[String],
) -> (Result<String, String>, Vec<ImageResult>) {
    let p = Provenance::new(TrustedRoot::public_good().unwrap(), policy);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(p.check(images, rekor))
}

/// The compose-manager entry (DSSE, Fulcio) as a mutable JSON value.
fn cm_entry(r: &Recorded) -> (String, Value) {
    let uuid = r.index[CM][0].clone();
    (uuid.clone(), r.entries[&uuid].clone())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn the_captured_images_pass_the_default_policy() {
    let c = capture();
    let (verdict, results) = run(&c.rekor, default_policy(), &images());
    assert!(verdict.is_ok(), "{verdict:?} {results:#?}");
    let cm = &results[2];
    assert_eq!(cm.rule, Some(RuleKind::Fulcio));
    let id = cm.identity.as_ref().unwrap();
    assert_eq!(
        id.issuer.as_deref(),
        Some("https://token.actions.githubusercontent.com")
    );
    assert!(
        id.subject
            .as_deref()
            .unwrap()
            .starts_with("https://github.com/nearai/"),
        "{id:?}"
    );
    assert!(
        cm.outcome.contains("rests on Rekor's index"),
        "{}",
        cm.outcome
    );
    assert_eq!(results[0].rule, Some(RuleKind::Signed));
    assert!(
        results[0].outcome.contains("signed by key sha256:"),
        "{}",
        results[0].outcome
    );
    assert_eq!(results[1].rule, Some(RuleKind::ComposePinned));
    assert_eq!(results[1].entries_checked, 0);
}

#[test]
fn every_alteration_fails_naming_what() {
    let c = capture();
    let (uuid, entry) = cm_entry(&c.rekor);
    let altered = |f: &dyn Fn(&mut Value)| {
        let mut r = c.rekor.clone();
        let mut e = entry.clone();
        f(&mut e);
        r.entries.insert(uuid.clone(), e);
        r
    };
    let body = |e: &Value| -> Value {
        let raw = crate::attestation::framing::base64_bytes(e["body"].as_str().unwrap()).unwrap();
        serde_json::from_slice(&raw).unwrap()
    };
    let set_body =
        |e: &mut Value, b: &Value| e["body"] = Value::String(b64(&serde_json::to_vec(b).unwrap()));
    let cases: Vec<(&str, Recorded, &str)> = vec![
        (
            "entry body",
            altered(&|e| {
                let mut b = body(e);
                b["spec"]["payloadHash"]["value"] = Value::String("00".repeat(32));
                set_body(e, &b);
            }),
            "signed entry timestamp",
        ),
        (
            "integrated time",
            altered(&|e| e["integratedTime"] = (e["integratedTime"].as_u64().unwrap() + 1).into()),
            "signed entry timestamp",
        ),
        (
            "log index",
            altered(&|e| e["logIndex"] = (e["logIndex"].as_u64().unwrap() + 1).into()),
            "signed entry timestamp",
        ),
        (
            "proof hash",
            altered(&|e| {
                let h = e["verification"]["inclusionProof"]["hashes"][3]
                    .as_str()
                    .unwrap()
                    .to_string();
                let flipped = format!("{}{}", if h.starts_with('0') { "1" } else { "0" }, &h[1..]);
                e["verification"]["inclusionProof"]["hashes"][3] = Value::String(flipped);
            }),
            "inclusion proof",
        ),
        (
            "proof index",
            altered(&|e| {
                let i = e["verification"]["inclusionProof"]["logIndex"]
                    .as_u64()
                    .unwrap();
                e["verification"]["inclusionProof"]["logIndex"] = (i + 1).into();
            }),
            "inclusion proof",
        ),
        (
            "checkpoint",
            altered(&|e| {
                let cp = e["verification"]["inclusionProof"]["checkpoint"]
                    .as_str()
                    .unwrap();
                let mut lines: Vec<String> = cp.split('\n').map(str::to_string).collect();
                lines[1] = (lines[1].parse::<u64>().unwrap() + 1).to_string();
                e["verification"]["inclusionProof"]["checkpoint"] = Value::String(lines.join("\n"));
            }),
            "checkpoint",
        ),
        (
            "checkpoint root",
            altered(&|e| {
                e["verification"]["inclusionProof"]["rootHash"] = Value::String("11".repeat(32));
            }),
            "inclusion proof",
        ),
        (
            "signature",
            altered(&|e| {
                let set = e["verification"]["signedEntryTimestamp"].as_str().unwrap();
                let mut raw = crate::attestation::framing::base64_bytes(set).unwrap();
                let n = raw.len();
                raw[n - 2] ^= 1;
                e["verification"]["signedEntryTimestamp"] = Value::String(b64(&raw));
            }),
            "signed entry timestamp",
        ),
        (
            "uuid",
            {
                // Another (valid) entry served under this entry's UUID.
                let mut r = c.rekor.clone();
                let other = r.index[DD][0].clone();
                r.entries.insert(uuid.clone(), r.entries[&other].clone());
                r
            },
            "UUID",
        ),
        (
            "digest",
            {
                let mut r = c.rekor.clone();
                r.index.remove(CM);
                r
            },
            CM,
        ),
    ];
    for (what, rekor, expect) in cases {
        let (verdict, _) = run(&rekor, default_policy(), &images());
        let err = verdict.expect_err(what);
        assert!(
            err.contains("compose-manager") && err.contains(expect),
            "{what}: {err}"
        );
    }

    // The certificate: re-signed material no longer chains to Fulcio.
    let cert = altered(&|e| {
        let mut b = body(e);
        let v = b["spec"]["signatures"][0]["verifier"]
            .as_str()
            .unwrap()
            .to_string();
        let pem =
            String::from_utf8(crate::attestation::framing::base64_bytes(&v).unwrap()).unwrap();
        let der = crate::attestation::framing::pem_to_der(&pem).unwrap();
        let mut der = der.clone();
        let n = der.len();
        der[n - 10] ^= 1; // inside the signature
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            b64(&der)
        );
        b["spec"]["signatures"][0]["verifier"] = Value::String(b64(pem.as_bytes()));
        set_body(e, &b);
    });
    // The body changed, so the log's signature fails first; the altered certificate itself
    // no longer chains to Fulcio either.
    let (verdict, _) = run(&cert, default_policy(), &images());
    assert!(verdict.unwrap_err().contains("signed entry timestamp"));
    let b = body(&cert.entries[&uuid]);
    let v = b["spec"]["signatures"][0]["verifier"]
        .as_str()
        .unwrap()
        .to_string();
    let pem = crate::attestation::framing::base64_bytes(&v).unwrap();
    let bad_leaf = crate::attestation::framing::pem_certificates(&pem)
        .unwrap()
        .remove(0);
    let err = entry::verify_fulcio(
        &bad_leaf,
        &TrustedRoot::public_good().unwrap(),
        entry["integratedTime"].as_u64().unwrap(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, ProvenanceError::Invalid(m) if m.contains("does not lead to a trusted Fulcio CA")),
        "{err}"
    );

    // The identity: a policy wanting another organisation's workflows.
    let mut policy = default_policy();
    policy[0].subject_prefix = Some("https://github.com/someone-else/".into());
    let (verdict, _) = run(&c.rekor, policy, &images());
    let err = verdict.unwrap_err();
    assert!(err.contains("another identity"), "{err}");

    // Outside the certificate's ten minutes: the chain is not valid at another time.
    let entry_time = entry["integratedTime"].as_u64().unwrap();
    let leaf = {
        let b = body(&entry);
        let v = b["spec"]["signatures"][0]["verifier"]
            .as_str()
            .unwrap()
            .to_string();
        let pem = crate::attestation::framing::base64_bytes(&v).unwrap();
        crate::attestation::framing::pem_certificates(&pem)
            .unwrap()
            .remove(0)
    };
    let root = TrustedRoot::public_good().unwrap();
    assert!(entry::verify_fulcio(&leaf, &root, entry_time).is_ok());
    let err = entry::verify_fulcio(&leaf, &root, entry_time + 3600).unwrap_err();
    assert!(err.to_string().contains("not valid"), "{err}");
}

/// A lookup the log cannot answer is an outage, not a verdict on the image; what it answers
/// and does not verify is.
#[tokio::test]
async fn an_unanswered_lookup_is_unavailable_and_a_bad_entry_invalid() {
    let none = Recorded::default();
    assert!(matches!(
        none.uuids(&"ab".repeat(32)).await,
        Err(ProvenanceError::Unavailable(m)) if m.contains("no recorded Rekor lookup")
    ));
    let listed = rekor::parse_entries(&serde_json::json!([{"00": {"body": 1}}])).unwrap();
    assert!(matches!(&listed[0].1, Err(ProvenanceError::Invalid(m)) if m == "no body"));
}

#[test]
fn images_no_rule_covers_or_not_pinned_fail_naming_them() {
    let c = capture();
    let (verdict, results) = run(
        &c.rekor,
        default_policy(),
        &[
            "someone/app@sha256:".to_string() + CM,
            "nearaidev/x:latest".into(),
        ],
    );
    let err = verdict.unwrap_err();
    assert!(
        err.contains("no provenance rule covers repository someone/app"),
        "{err}"
    );
    assert!(err.contains("nearaidev/x:latest: not pinned"), "{err}");
    assert!(results.iter().all(|r| !r.passed));
}

#[test]
fn a_verified_image_is_cached_and_a_failed_one_is_not() {
    let c = capture();
    let p = Provenance::new(TrustedRoot::public_good().unwrap(), default_policy());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (v, _) = rt.block_on(p.check(&images(), &c.rekor));
    assert!(v.is_ok());
    // Rekor gone: the cached images still pass, a new one fails closed.
    let empty = Recorded::default();
    let (v, results) = rt.block_on(p.check(&images(), &empty));
    assert!(v.is_ok(), "{v:?}");
    assert!(results[0].cached && results[2].cached);
    let changed = vec![format!(
        "nearaidev/compose-manager@sha256:{}",
        "ab".repeat(32)
    )];
    let (v, _) = rt.block_on(p.check(&changed, &empty));
    assert!(v.unwrap_err().contains("no recorded Rekor lookup"));
}

#[test]
fn benign_framing_drift_in_rekor_answers_still_verifies() {
    let c = capture();
    let mut r = c.rekor.clone();
    let uuid = r.index[CM][0].clone();
    let mut e = r.entries[&uuid].clone();
    e["logID"] = Value::String(e["logID"].as_str().unwrap().to_uppercase());
    e["integratedTime"] = Value::String(e["integratedTime"].to_string());
    e["logIndex"] = Value::String(e["logIndex"].to_string());
    let proof = &mut e["verification"]["inclusionProof"];
    proof["rootHash"] = Value::String(proof["rootHash"].as_str().unwrap().to_uppercase());
    let hashes: Vec<Value> = proof["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| Value::String(h.as_str().unwrap().to_uppercase()))
        .collect();
    proof["hashes"] = Value::Array(hashes);
    proof["treeSize"] = Value::String(proof["treeSize"].to_string());
    r.entries.insert(uuid.clone(), e);
    // The index answers the UUID in upper case.
    r.index.insert(CM.into(), vec![uuid.to_uppercase()]);
    let (verdict, _) = run(&r, default_policy(), &images());
    assert!(verdict.is_ok(), "{verdict:?}");
}

/// What a third party can add to the log about the compose-manager digest, each listed
/// before (newer than) the real entry: a genuinely logged entry by another signer (the
/// datadog image's, signed by Datadog's key), a copy of the real entry changed after the log signed it, an
/// entry of a type no verifier reads, and a UUID the log does not return.
fn poisoned(r: &Recorded) -> (Recorded, Vec<String>) {
    let mut r = r.clone();
    let (good, entry) = cm_entry(&r);
    let other_artifact = r.index[DD][0].clone();
    let mut changed = entry.clone();
    changed["integratedTime"] = (entry["integratedTime"].as_u64().unwrap() + 60).into();
    let changed_uuid = format!("{}0", &good[..good.len() - 1]);
    let mut odd = entry.clone();
    odd["body"] = Value::String(b64(br#"{"apiVersion":"0.0.1","kind":"alpine","spec":{}}"#));
    let odd_uuid = format!("{}1", &good[..good.len() - 1]);
    r.entries.insert(changed_uuid.clone(), changed);
    r.entries.insert(odd_uuid.clone(), odd);
    let missing = "24296fb24b8ad77a".to_string() + &"ee".repeat(32);
    let junk = vec![other_artifact, changed_uuid, odd_uuid, missing];
    let mut listed = junk.clone();
    listed.push(good);
    r.index.insert(CM.into(), listed);
    (r, junk)
}

#[test]
fn entries_anyone_can_log_never_fail_an_image_a_good_entry_satisfies() {
    let c = capture();
    let (r, junk) = poisoned(&c.rekor);
    let (verdict, results) = run(&r, default_policy(), &images());
    assert!(verdict.is_ok(), "{verdict:?}");
    let cm = &results[2];
    assert!(cm.passed);
    assert_eq!((cm.entries_listed, cm.entries_checked), (5, 5));
    assert!(
        cm.outcome.contains("4 other entries did not count"),
        "{}",
        cm.outcome
    );
    let fate = |u: &str| cm.entries.iter().find(|f| f.uuid == u).unwrap();
    assert!(
        fate(&junk[0]).why.contains("signed by a key"),
        "{:?}",
        fate(&junk[0])
    );
    assert!(
        fate(&junk[1]).why.contains("does not verify in the log"),
        "{:?}",
        fate(&junk[1])
    );
    assert!(!fate(&junk[2]).satisfies);
    assert!(fate(&junk[3]).why.contains("not retrieved"));
    assert_eq!(cm.entries.iter().filter(|f| f.satisfies).count(), 1);

    // Without the good entry, the image fails, naming what was seen.
    let mut bad = r.clone();
    bad.index.insert(CM.into(), junk.clone());
    let (verdict, results) = run(&bad, default_policy(), &images());
    let err = verdict.unwrap_err();
    assert!(err.contains("no entry satisfies rule fulcio"), "{err}");
    assert!(err.contains("does not verify in the log"), "{err}");
    assert_eq!(results[2].entries.len(), 4);
}

/// Anyone can log an entry signed by a key of their own about a public image's digest: the
/// capture's Datadog entry counts under the rule naming Datadog's key, and under no other.
#[test]
fn a_signed_rule_counts_only_the_keys_it_names() {
    let c = capture();
    let dd = [format!("datadog/agent@sha256:{DD}")];
    let (verdict, results) = run(&c.rekor, default_policy(), &dd);
    assert!(verdict.is_ok(), "{results:#?}");
    assert!(
        results[0].outcome.contains("sha256:25bcab4e"),
        "{}",
        results[0].outcome
    );
    let mut policy = default_policy();
    for r in policy.iter_mut().filter(|r| r.rule == RuleKind::Signed) {
        r.keys = vec![format!("sha256:{}", "ab".repeat(32))];
    }
    let (verdict, results) = run(&c.rekor, policy, &dd);
    let err = verdict.unwrap_err();
    assert!(err.contains("which the rule does not name"), "{err}");
    assert!(!results[0].passed);
}

#[test]
fn an_entry_by_another_identity_does_not_count_and_does_not_block() {
    let c = capture();
    let mut policy = default_policy();
    policy.push(Rule {
        repository: "nearaidev/compose-manager".into(),
        rule: RuleKind::Fulcio,
        issuer: Some("https://token.actions.githubusercontent.com".into()),
        subject_prefix: Some("https://github.com/someone-else/".into()),
        keys: Vec::new(),
    });
    let (verdict, results) = run(&c.rekor, policy, &images());
    let err = verdict.unwrap_err();
    assert!(
        err.contains("another identity: https://github.com/nearai/"),
        "{err}"
    );
    assert!(!results[2].entries[0].satisfies);
}

#[test]
fn a_flood_of_entries_costs_bounded_work_and_says_it_stopped() {
    let c = capture();
    let (good, _) = cm_entry(&c.rekor);
    let flood: Vec<String> = (0..999u32)
        .map(|i| format!("24296fb24b8ad77a{:064x}", i))
        .collect();
    // The good entry newest: found in the first batch, the rest never fetched.
    let mut r = c.rekor.clone();
    let mut listed = vec![good.clone()];
    listed.extend(flood.iter().cloned());
    r.index.insert(CM.into(), listed);
    let (verdict, results) = run(&r, default_policy(), &images());
    assert!(verdict.is_ok(), "{verdict:?}");
    let cm = &results[2];
    assert_eq!(cm.entries_listed, 1000);
    assert_eq!(cm.entries_checked, 10, "one batch");
    assert!(
        cm.outcome.contains("10 of 1000 listed entries examined"),
        "{}",
        cm.outcome
    );

    // The good entry pushed out of the window by newer ones: the check fails closed and says
    // where it stopped (availability, never integrity).
    let mut r = c.rekor.clone();
    let mut listed = flood;
    listed.push(good);
    r.index.insert(CM.into(), listed);
    let (verdict, results) = run(&r, default_policy(), &images());
    let err = verdict.unwrap_err();
    assert!(
        err.contains("stopped at attestation.rekor_max_entries"),
        "{err}"
    );
    assert_eq!(results[2].entries_checked, DEFAULT_MAX_ENTRIES);
}

#[test]
fn offline_captures_with_only_some_entries_recorded_pass_on_a_recorded_one() {
    // As another verifier records a capture: the index lists three entries, one was fetched.
    let c = capture();
    let (good, _) = cm_entry(&c.rekor);
    let mut r = c.rekor.clone();
    let unrecorded = ["aa", "bb"].map(|b| format!("24296fb24b8ad77a{}", b.repeat(32)));
    r.index.insert(
        CM.into(),
        vec![unrecorded[0].clone(), good, unrecorded[1].clone()],
    );
    let (verdict, results) = run(&r, default_policy(), &images());
    assert!(verdict.is_ok(), "{verdict:?}");
    let not_retrieved = results[2]
        .entries
        .iter()
        .filter(|f| f.why.starts_with("not retrieved"))
        .count();
    assert_eq!(not_retrieved, 2);
}
