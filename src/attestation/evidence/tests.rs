//! The real captured attestation verifies end to end offline, and each mutation of it fails
//! the check it should.

use super::capture;
pub(super) use super::capture::Capture;
use super::nvidia;
use super::report::{verify_all, Report, Status, Trust, DEFAULT_TCB_STATUSES};
use crate::attestation::envelope::Policy;
use base64::Engine;
use serde_json::{json, Value};
use std::path::Path;

use super::trust_roots::{INTEL_SGX_ROOT_CA as INTEL_ROOT, NVIDIA_DEVICE_ROOT_CA as NVIDIA_ROOT};
use crate::attestation::framing::pem_to_der;

pub(super) fn capture() -> Capture {
    capture::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/capture")).unwrap()
}

fn intel_root_der() -> Vec<u8> {
    pem_to_der(INTEL_ROOT).unwrap()
}

pub(super) fn run(c: &Capture, raw: &Value, now: u64) -> Report {
    run_allowing(c, raw, now, &Default::default())
}

pub(super) fn run_allowing(
    c: &Capture,
    raw: &Value,
    now: u64,
    allow: &crate::attestation::evidence::report::Allowlists,
) -> Report {
    run_full(
        c,
        raw,
        now,
        allow,
        &crate::config::attestation::default_workloads(),
    )
}

fn run_full(
    c: &Capture,
    raw: &Value,
    now: u64,
    allow: &crate::attestation::evidence::report::Allowlists,
    workloads: &[crate::config::attestation::ReviewedWorkload],
) -> Report {
    let nvidia_root = nvidia::parse_root(NVIDIA_ROOT).unwrap();
    let intel = intel_root_der();
    let statuses: Vec<String> = DEFAULT_TCB_STATUSES.iter().map(|s| s.to_string()).collect();
    let trust = Trust {
        intel_root_der: &intel,
        nvidia_root: &nvidia_root,
        collateral: Some(&c.collateral),
        tcb_statuses: &statuses,
        policy: Policy::default(),
        now,
        report_only: &[],
        collateral_error: None,
        dcap_at: None,
        trust_overrides: Vec::new(),
        allow,
        nras: Some(Ok((
            c.nras_answer.clone().unwrap(),
            c.nras_jwks.clone().unwrap(),
        ))),
        workloads,
        workload_mode: Default::default(),
        os_images: &Default::default(),
        model_names: &Default::default(),
    };
    verify_all(raw, &c.model, &c.nonce, &trust).0
}

pub(super) fn status(r: &Report, name: &str) -> Status {
    r.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}"))
        .status
}

/// What a check says of a genuine dstack attestation: ACI's checks do not apply, the rest
/// pass.
pub(super) fn expected_for_dstack(name: &str) -> Status {
    if ["aci_keyset", "aci_report_data", "source_provenance"].contains(&name) {
        Status::NotApplicable
    } else {
        Status::Pass
    }
}

/// The checks that failed, by name.
pub(super) fn failed(r: &Report) -> Vec<&'static str> {
    r.checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.name)
        .collect()
}

#[test]
fn the_real_capture_verifies_end_to_end() {
    use crate::attestation::provenance::{policy, trusted_root::TrustedRoot, Provenance};
    let c = capture();
    let mut r = run(&c, &c.attestation, c.captured_at);
    // The images' provenance, from the Rekor answers recorded with the capture.
    let provenance = Provenance::new(
        TrustedRoot::public_good().unwrap(),
        policy::default_policy(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(super::report::add_provenance(
        &mut r,
        &provenance,
        &c.rekor,
        &[],
    ));
    assert!(r.verified, "{}", serde_json::to_string_pretty(&r).unwrap());
    assert_eq!(r.provenance.len(), 3, "each distinct image once");
    for name in super::report::CHECK_NAMES {
        assert_eq!(status(&r, name), expected_for_dstack(name), "{name}");
    }
    assert_eq!(r.gpus, 8);
    assert_eq!(
        r.signing_address.as_deref(),
        Some("0x6525e128afcffebf7eed05d485d7be983cdae934")
    );
    let w = r.workload.as_ref().unwrap();
    assert_eq!(
        Some(w.compose_hash.as_str()),
        c.attestation
            .pointer("/info/compose_hash")
            .and_then(Value::as_str)
    );
    assert!(!w.images.is_empty());
    assert!(r
        .tcb
        .as_ref()
        .is_some_and(|t| t.status == "UpToDate" || t.status == "SWHardeningNeeded"));
}

fn mutate_quote(v: &mut Value, at: usize) {
    let mut q = hex::decode(v["intel_quote"].as_str().unwrap()).unwrap();
    q[at] ^= 0x01;
    v["intel_quote"] = json!(hex::encode(q));
}

fn mutate_gpu(v: &mut Value, f: impl FnOnce(&mut Value)) {
    let mut p: Value = serde_json::from_str(v["nvidia_payload"].as_str().unwrap()).unwrap();
    f(&mut p);
    v["nvidia_payload"] = json!(p.to_string());
}

fn gpu_evidence_byte(p: &mut Value, at: usize) {
    let e = &mut p["evidence_list"][3]["evidence"];
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(e.as_str().unwrap())
        .unwrap();
    bytes[at] ^= 0x01;
    *e = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
}

#[test]
fn each_mutation_fails_its_check() {
    let c = capture();
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation, &[&str])> = vec![
        // A byte of MRTD: REPORTDATA still binds, the Intel signature does not.
        (
            "flipped quote byte",
            Box::new(|v| mutate_quote(v, 200)),
            &["tdx_quote_signature"],
        ),
        // The nonce inside REPORTDATA: the binding fails, and so does the signature over it.
        (
            "REPORTDATA nonce",
            Box::new(|v| mutate_quote(v, 568 + 40)),
            &["envelope", "tdx_quote_signature"],
        ),
        (
            "different signing key",
            Box::new(|v| {
                let other = crate::e2ee::codec::KeyPair::generate();
                v["signing_key"] = json!(other.public_hex());
                v["signing_public_key"] = json!(other.public_hex());
                v["signing_address"] = json!(format!(
                    "0x{}",
                    hex::encode(crate::e2ee::codec::address(&other.public_key()))
                ));
            }),
            &["envelope"],
        ),
        (
            "altered event log entry",
            Box::new(|v| {
                let d = v["event_log"][5]["digest"].as_str().unwrap().to_string();
                let first = if d.starts_with('0') { "1" } else { "0" };
                let flipped = format!("{first}{}", &d[1..]);
                v["event_log"][5]["digest"] = json!(flipped);
            }),
            // Nothing measures the OS image then: no reviewed workload runs on it.
            &["rtmr_replay", "workload_policy"],
        ),
        (
            "altered app_compose",
            Box::new(|v| {
                let compose = v
                    .pointer("/info/tcb_info/app_compose")
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .replace("image", "imagE");
                v["info"]["tcb_info"]["app_compose"] = json!(compose);
            }),
            &["mr_config_id"],
        ),
        (
            "GPU evidence byte",
            Box::new(|v| mutate_gpu(v, |p| gpu_evidence_byte(p, 200))),
            &["gpu_spdm_signature"],
        ),
        (
            "GPU nonce in the signed request",
            Box::new(|v| mutate_gpu(v, |p| gpu_evidence_byte(p, 10))),
            &["gpu_spdm_signature"],
        ),
        (
            "GPU payload nonce",
            Box::new(|v| mutate_gpu(v, |p| p["nonce"] = json!("00".repeat(32)))),
            &["gpu_nonce"],
        ),
        (
            "signature byte of GPU 2's intermediate certificate",
            Box::new(|v| mutate_gpu_cert(v, 2, 1, -3)),
            &["gpu_cert_chain"],
        ),
        (
            "subject of GPU 5's device certificate",
            Box::new(|v| mutate_gpu_cert(v, 5, 0, 100)),
            &["gpu_cert_chain"],
        ),
        (
            "RTMR3 measurement in the quote",
            Box::new(|v| mutate_quote(v, 520 + 7)),
            &["tdx_quote_signature", "rtmr_replay", "workload_policy"],
        ),
        (
            "nonce echo",
            Box::new(|v| v["nonce"] = json!("11".repeat(32))),
            &["envelope"],
        ),
        (
            "GPU certificate",
            Box::new(|v| {
                mutate_gpu(v, |p| {
                    let chain = base64::engine::general_purpose::STANDARD
                        .decode(p["evidence_list"][0]["certificate"].as_str().unwrap())
                        .unwrap();
                    let text = String::from_utf8(chain).unwrap();
                    // Drop the device certificate: the SPDM report no longer verifies with the chain's leaf.
                    let rest = &text[text.find("-----END CERTIFICATE-----").unwrap() + 26..];
                    p["evidence_list"][0]["certificate"] =
                        json!(base64::engine::general_purpose::STANDARD.encode(rest));
                })
            }),
            &["gpu_spdm_signature"],
        ),
    ];
    for (what, mutate, expected) in cases {
        let mut v = c.attestation.clone();
        mutate(&mut v);
        // The same change must fail the same checks when the framing has drifted too.
        let mut drifted = v.clone();
        crate::attestation::variants::drift::apply_all(
            &mut drifted,
            &crate::attestation::variants::drift::Drift::ALL,
        );
        for (form, v) in [("", &v), (" (drifted)", &drifted)] {
            let r = run(&c, v, c.captured_at);
            assert!(!r.verified, "{what}{form}");
            assert_eq!(
                failed(&r),
                expected,
                "{what}{form}: {}",
                serde_json::to_string_pretty(&r.checks).unwrap()
            );
        }
    }
}

/// Flips a bit in the DER of certificate `index` of GPU `gpu`'s chain, at byte `at` (from
/// the end when negative).
pub(super) fn mutate_gpu_cert(v: &mut Value, gpu: usize, index: usize, at: i64) {
    mutate_gpu(v, |p| {
        let field = &mut p["evidence_list"][gpu]["certificate"];
        let pem = base64::engine::general_purpose::STANDARD
            .decode(field.as_str().unwrap())
            .unwrap();
        let pem = String::from_utf8(pem).unwrap();
        let blocks: Vec<&str> = pem.split_inclusive("-----END CERTIFICATE-----\n").collect();
        let block = blocks[index];
        let body: String = block.lines().filter(|l| !l.starts_with("-----")).collect();
        let mut der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        let at = if at < 0 { der.len() as i64 + at } else { at } as usize % der.len();
        der[at] ^= 0x01;
        let encoded = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = encoded
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let rebuilt = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        );
        let new_pem = pem.replacen(block, &rebuilt, 1);
        *field = json!(base64::engine::general_purpose::STANDARD.encode(new_pem));
    });
}

#[test]
fn expired_collateral_fails_dcap() {
    let c = capture();
    let later = c.captured_at + 60 * 86_400;
    let r = run(&c, &c.attestation, later);
    assert_eq!(
        status(&r, "tdx_quote_signature"),
        Status::Fail,
        "{:?}",
        r.checks
    );
    assert!(!r.verified);
}

#[test]
fn missing_collateral_is_skipped_and_not_verified() {
    let c = capture();
    let nvidia_root = nvidia::parse_root(NVIDIA_ROOT).unwrap();
    let intel = intel_root_der();
    let trust = Trust {
        intel_root_der: &intel,
        nvidia_root: &nvidia_root,
        collateral: None,
        tcb_statuses: &[],
        policy: Policy::default(),
        now: c.captured_at,
        report_only: &[],
        collateral_error: Some("offline".into()),
        dcap_at: None,
        trust_overrides: Vec::new(),
        allow: &Default::default(),
        nras: None,
        workloads: &crate::config::attestation::default_workloads(),
        workload_mode: Default::default(),
        os_images: &Default::default(),
        model_names: &Default::default(),
    };
    let r = verify_all(&c.attestation, &c.model, &c.nonce, &trust).0;
    assert_eq!(
        r.failure().unwrap().check.code(),
        "attestation_tdx_quote_signature"
    );
    assert_eq!(status(&r, "tdx_quote_signature"), Status::Skipped);
    assert!(
        !r.verified,
        "an enforced check that could not run does not pass"
    );
}

#[test]
fn workload_allowlists() {
    let c = capture();
    let r = run(&c, &c.attestation, c.captured_at);
    let m = r.measurements.clone().unwrap();
    let compose = r.workload.clone().unwrap().compose_hash;
    let allow = crate::attestation::evidence::report::Allowlists {
        mrtd: vec![format!("0x{}", m.mr_td.to_uppercase())],
        rtmr0: vec!["00".repeat(48), m.rtmr[0].clone()],
        compose_hash: vec![compose],
        ..Default::default()
    };
    let r = run_allowing(&c, &c.attestation, c.captured_at, &allow);
    assert!(r.verified, "{:?}", r.checks);
    let other = crate::attestation::evidence::report::Allowlists {
        mrtd: vec!["00".repeat(48)],
        ..Default::default()
    };
    let r = run_allowing(&c, &c.attestation, c.captured_at, &other);
    assert_eq!(failed(&r), ["workload_allowlist"]);
    assert_eq!(
        r.failure().unwrap().check.code(),
        "attestation_workload_not_allowed"
    );
}

/// What `sigstore_provenance` refuses without asking Rekor: a service built from a Dockerfile
/// and an image the deployer names (overrides and the pre-launch script are the workload
/// policy's).
#[test]
fn images_no_digest_covers_are_refused() {
    use super::compose::AppCompose;
    use super::report::images_to_check;
    use crate::attestation::provenance::policy::DeployerNamedImages;
    let digest = "ab".repeat(32);
    let compose = |yaml: String| {
        AppCompose::parse(
            &json!({"docker_compose_file": yaml, "allowed_envs": ["IMG"], "pre_launch_script": "docker compose pull"})
                .to_string(),
        )
        .unwrap()
    };
    let c = compose(format!(
        "x: &a\n  image: repo/a@sha256:{digest}\nservices:\n  a:\n    <<: *a\n    entrypoint: /bin/sh\n  b:\n    build: .\n  c:\n    image: ${{IMG:-repo/c@sha256:{digest}}}\n"
    ));
    let plan = images_to_check(&c, DeployerNamedImages::Refuse);
    assert_eq!(plan.images, [format!("repo/a@sha256:{digest}")]);
    let verdict = plan.conclude(Ok("looked up".into())).unwrap_err();
    assert!(
        verdict.contains("`b` is built from a Dockerfile"),
        "{verdict}"
    );
    assert!(
        verdict.contains("`c` runs an image named through IMG"),
        "{verdict}"
    );
    let plan = images_to_check(&c, DeployerNamedImages::Report);
    assert_eq!(plan.images.len(), 2);
    let c = compose(format!(
        "services:\n  a:\n    image: repo/a@sha256:{digest}\n    command: [x]\n"
    ));
    let ok = images_to_check(&c, DeployerNamedImages::Refuse)
        .conclude(Ok("1 image".into()))
        .unwrap();
    assert_eq!(ok, "1 image");
}

#[test]
fn what_venice_states_and_this_proxy_does_not_verify_is_named() {
    let c = capture();
    // Another upstream model than the one asked for: refused, whatever else verifies.
    let mut v = c.attestation.clone();
    v["upstream_model"] = serde_json::json!("Qwen/Qwen3-32B");
    let r = run(&c, &v, c.captured_at);
    assert_eq!(failed(&r), ["model_identity"]);
    // NEAR's extra evidence is served, not checked: said, not silently passed over.
    let mut v = c.attestation.clone();
    v["compose_manager_attestation"] = serde_json::json!({"quote": "00"});
    v["ohttp_key_config"] = serde_json::json!("0020");
    let r = run(&c, &v, c.captured_at);
    assert!(r.verified);
    assert_eq!(r.not_verified.len(), 2, "{:?}", r.not_verified);
    // A Chutes report is not a format this proxy verifies: refused, and named.
    let mut v = c.attestation.clone();
    v["attestation_type"] = serde_json::json!("chutes");
    let r = run(&c, &v, c.captured_at);
    assert!(!r.verified);
    let envelope = r.checks.iter().find(|c| c.name == "envelope").unwrap();
    assert!(envelope.detail.contains("chutes"), "{envelope:?}");
}
