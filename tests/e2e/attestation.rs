//! Attestation through the running server: every simulated attestation fault fails closed
//! with a 503 naming the failed check, and no chat request is sent.

use crate::harness::*;
use std::time::Duration;
use venice_e2ee_tools::sim::aci::Layout;
use venice_e2ee_tools::sim::AttestationFault;

#[tokio::test(flavor = "multi_thread")]
async fn attestation_faults_fail_closed_with_the_check_named() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let cases = [
        (AttestationFault::WrongNonce, "attestation_nonce_mismatch"),
        (AttestationFault::WrongModel, "attestation_model_mismatch"),
        (AttestationFault::DebugBit, "attestation_debug_td"),
        (
            AttestationFault::KeyNotBound,
            "attestation_report_data_mismatch",
        ),
        (AttestationFault::Unverified, "attestation_not_verified"),
        (
            AttestationFault::SubstitutedModel,
            "attestation_model_identity",
        ),
        (AttestationFault::ServerError, "attestation_fetch_failed"),
        // Bounded: a 9 MiB answer is not read to its end.
        (AttestationFault::Oversized, "attestation_fetch_failed"),
        (AttestationFault::BadEventLog, "attestation_rtmr_replay"),
        (AttestationFault::BadCompose, "attestation_mr_config_id"),
        (AttestationFault::GpuNonce, "attestation_gpu_nonce"),
        (
            AttestationFault::GpuSignature,
            "attestation_gpu_spdm_signature",
        ),
    ];
    attestation_faults_fail_closed(&p, &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn debug_enclaves_only_when_allowed() {
    let s = sim().await;
    s.set_attestation_fault(Some(AttestationFault::DebugBit));
    let p = Proxy::start(s, |c| c.attestation.allow_debug = true).await;
    assert_eq!(p.post(&chat("debug ok here", false)).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_model_key_is_verified_before_use() {
    let p = Proxy::start(sim().await, |c| {
        c.attestation.max_age = Duration::from_secs(2);
        c.attestation.refresh_lead = Duration::from_millis(1500);
    })
    .await;
    assert_eq!(p.post(&chat("before", false)).await.status(), 200);
    let old = p.sim.model_public_key(MODEL).unwrap();
    let new = p.sim.rotate_key(MODEL).unwrap();
    assert_ne!(old, new);
    // The background refresh picks the new key up, verified, before max_age runs out.
    let mut seen = false;
    for _ in 0..40 {
        if p.state
            .attestations
            .cached(MODEL)
            .is_some_and(|e| e.key.key_hex == new)
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "new key picked up by the background refresh");
    assert_eq!(p.post(&chat("after", false)).await.status(), 200);
    let rec = p.sim.record();
    assert_eq!(
        rec.chats
            .last()
            .unwrap()
            .header("x-venice-tee-model-pub-key"),
        Some(new.as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_refresh_serves_the_old_key_only_until_max_age() {
    let p = Proxy::start(sim().await, |c| {
        c.attestation.max_age = Duration::from_secs(2);
        c.attestation.refresh_lead = Duration::from_millis(1500);
        c.attestation.prewarm = vec![MODEL.into()];
    })
    .await;
    for _ in 0..40 {
        if p.get("/readyz").await.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(p.get("/readyz").await.0, 200);
    p.sim
        .set_attestation_fault(Some(AttestationFault::ServerError));
    // Refreshes now fail, but the verified key is still young enough.
    assert_eq!(p.post(&chat("still fine", false)).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let r = p.post(&chat("too old now", false)).await;
    assert_eq!(r.status(), 503);
    assert_eq!(p.get("/readyz").await.0, 503);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_reports_every_check_it_ran() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let r = p.post(&chat("report me", false)).await;
    assert_eq!(r.status(), 200);
    let warning = r.headers()["x-venice-e2ee-trust-warning"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        warning.contains("Intel root replaced") && warning.contains("NVIDIA root replaced"),
        "{warning}"
    );
    let (status, v) = p.get(&format!("/attestation/{MODEL}")).await;
    assert_eq!(status, 200);
    assert_eq!(v["usable"], true);
    let report = &v["report"];
    assert_eq!(report["verified"], true, "{report}");
    for name in [
        "envelope",
        "rtmr_replay",
        "mr_config_id",
        "gpu_cert_chain",
        "gpu_spdm_signature",
        "gpu_nonce",
    ] {
        assert_eq!(check(report, name)["status"], "pass", "{name}: {report}");
        assert_eq!(check(report, name)["enforced"], true);
    }
    assert_eq!(report["tcb"]["status"], "UpToDate");
    assert_eq!(report["gpus"], 2);
    assert!(report["workload"]["images"][0]
        .as_str()
        .unwrap()
        .starts_with("simulated/"));
    assert!(!report["trust_overrides"].as_array().unwrap().is_empty());
    let (_, all) = p.get("/attestation").await;
    assert_eq!(all["data"][0]["model"], MODEL);
    assert_eq!(p.get("/attestation/e2ee-glm-5-1").await.0, 404);

    // A failed verification is reported too, and the model is not usable.
    p.sim
        .set_attestation_fault(Some(AttestationFault::GpuSignature));
    assert_eq!(
        p.post(&chat("x", false).tap_model("e2ee-glm-5-1"))
            .await
            .status(),
        503
    );
    let (status, v) = p.get("/attestation/e2ee-glm-5-1").await;
    assert_eq!((status, v["usable"].as_bool()), (200, Some(false)));
    assert_eq!(check(&v["report"], "gpu_spdm_signature")["status"], "fail");
}

#[tokio::test(flavor = "multi_thread")]
async fn production_trust_refuses_the_simulator() {
    // Without the demo's test-PKI roots the simulator cannot pass: its quotes and GPUs
    // chain to no Intel or NVIDIA root.
    let p = Proxy::start(sim().await, |c| {
        c.attestation.intel_root_ca = None;
        c.attestation.nvidia_root_ca = None;
    })
    .await;
    let r = p.post(&chat("must not leave", true)).await;
    assert_eq!(r.status(), 503);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "attestation_tdx_quote_signature", "{v}");
    let (_, v) = p.get(&format!("/attestation/{MODEL}")).await;
    assert_eq!(check(&v["report"], "gpu_cert_chain")["status"], "fail");
    assert!(p.sim.record().chats.is_empty());
}

trait TapModel {
    fn tap_model(self, model: &str) -> Self;
}

impl TapModel for serde_json::Value {
    fn tap_model(mut self, model: &str) -> Self {
        self["model"] = serde_json::json!(model);
        self
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_weaker_attestation_form_is_refused_until_an_operator_accepts_it() {
    let p = Proxy::start(sim().await, |c| {
        c.attestation.max_age = Duration::from_secs(2);
        c.attestation.refresh_lead = Duration::from_millis(1500);
        c.server.admin_token = Some(venice_e2ee_proxy::config::Secret::new("adm-7f3e"));
    })
    .await;
    assert_eq!(p.post(&chat("first form", false)).await.status(), 200);
    // The same enclave now answers in another layout: refused on refresh, and once the
    // old verified key ages out, requests fail closed.
    p.sim.set_attestation_layout(Layout::Aci);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let r = p.post(&chat("must not leave", false)).await;
    assert_eq!(r.status(), 503);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "attestation_downgrade", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("layout"));
    assert_eq!(p.sim.record().chats.len(), 1);

    // The operator looks at the pin and the refused form, and accepts it: no restart.
    let admin = format!(
        "http://{}/admin",
        p.state.config.server.admin_listen.unwrap()
    );
    let http = reqwest::Client::new();
    let pin_url = format!("{admin}/pins/{MODEL}");
    assert_eq!(http.get(&pin_url).send().await.unwrap().status(), 401);
    assert_eq!(
        http.get(&pin_url)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let state: serde_json::Value = http
        .get(&pin_url)
        .bearer_auth("adm-7f3e")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["pinned"]["layout"], "dstack", "{state}");
    assert_eq!(state["refused"]["form"]["layout"], "aci/1", "{state}");
    assert!(state["refused"]["why"].as_str().unwrap().contains("layout"));
    let reviewed = state["refused"]["digest"].as_str().unwrap().to_string();
    let accept = |digest: Option<String>| {
        let mut url = format!("{pin_url}/accept");
        if let Some(d) = digest {
            url.push_str(&format!("?digest={d}"));
        }
        http.post(url).bearer_auth("adm-7f3e").send()
    };
    // Accepting names the form reviewed: without it, or with another, nothing is pinned and
    // the answer names the form stored now.
    let r = accept(None).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = accept(Some("00".repeat(32))).await.unwrap();
    assert_eq!(r.status(), 409);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["refused"]["digest"], reviewed.as_str(), "{v}");
    assert_eq!(v["refused"]["form"]["layout"], "aci/1", "{v}");
    let r = accept(Some(reviewed.clone())).await.unwrap();
    assert_eq!(r.status(), 200);
    let accepted: serde_json::Value = r.json().await.unwrap();
    assert_eq!(accepted["pinned"]["layout"], "aci/1");
    assert_eq!(p.post(&chat("accepted form", false)).await.status(), 200);
    // Nothing left to accept.
    let r = accept(Some(reviewed)).await.unwrap();
    assert_eq!(r.status(), 409);
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_actions_are_off_without_their_token() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let admin = format!(
        "http://{}/admin/pins",
        p.state.config.server.admin_listen.unwrap()
    );
    let r = reqwest::Client::new()
        .get(admin)
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_first_seen_in_the_aci_layout_verifies() {
    let s = sim().await;
    s.set_attestation_layout(Layout::Aci);
    let p = Proxy::start(s, |_| {}).await;
    assert_eq!(p.post(&chat("aci", false)).await.status(), 200);
    let (_, v) = p.get(&format!("/attestation/{MODEL}")).await;
    assert_eq!(v["report"]["layout"], "aci/1");
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_subcommand_checks_a_live_model() {
    let s = sim().await;
    let mut c = venice_e2ee_proxy::config::Config::default();
    s.configure(&mut c).unwrap();
    let run = |model: &'static str| {
        let root = c.attestation.nvidia_root_ca.clone().unwrap();
        let sigstore = c.attestation.sigstore_trusted_root.clone().unwrap();
        let policy = serde_json::to_string(&c.attestation.provenance_policy).unwrap();
        let workloads = serde_json::to_string(&c.attestation.extra_workloads).unwrap();
        let base = s.base_url();
        std::process::Command::new(env!("CARGO_BIN_EXE_venice-e2ee-proxy"))
            .args(["verify", "--json", "--model", model])
            .env("VENICE_API_KEY", SIM_KEY)
            .env("VENICE_E2EE_PROXY__VENICE__BASE_URL", base)
            .env("VENICE_E2EE_PROXY__ATTESTATION__NVIDIA_ROOT_CA", root)
            .env(
                "VENICE_E2EE_PROXY__ATTESTATION__SIGSTORE_TRUSTED_ROOT",
                sigstore,
            )
            .env(
                "VENICE_E2EE_PROXY__ATTESTATION__REKOR_URL",
                &c.attestation.rekor_url,
            )
            .env("VENICE_E2EE_PROXY__ATTESTATION__PROVENANCE_POLICY", policy)
            .env("VENICE_E2EE_PROXY__ATTESTATION__EXTRA_WORKLOADS", workloads)
            .env(
                "VENICE_E2EE_PROXY__ATTESTATION__PLAIN_HTTP_FOR_TESTS",
                "true",
            )
            .env(
                "VENICE_E2EE_PROXY__ATTESTATION__REPORT_ONLY",
                "[tdx_quote_signature, tdx_tcb_status]",
            )
            .env("RUST_LOG", "off")
            .output()
            .unwrap()
    };
    let out = tokio::task::block_in_place(|| run(MODEL));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verified"], true);
    assert_eq!(check(&report, "gpu_spdm_signature")["status"], "pass");
    assert_eq!(check(&report, "sigstore_provenance")["status"], "pass");
    s.set_attestation_fault(Some(AttestationFault::BadEventLog));
    let out = tokio::task::block_in_place(|| run(MODEL));
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(check(&report, "rtmr_replay")["status"], "fail");
}

/// The Venice key goes to Venice only: Intel PCS, its CRL host, NVIDIA NRAS and Rekor (here
/// the simulator's, which record every header they receive) see no credential at all.
#[tokio::test(flavor = "multi_thread")]
async fn third_parties_never_see_the_venice_key() {
    let s = sim().await;
    let base = format!("http://{}", s.addr);
    let p = Proxy::start(s, |c| {
        c.attestation.nras = true;
        c.attestation.nras_url = format!("{base}/nras/v3/attest/gpu");
        c.attestation.nras_jwks_url = format!("{base}/nras/.well-known/jwks.json");
    })
    .await;
    assert_eq!(p.post(&chat("key hygiene", false)).await.status(), 200);
    let seen = p.sim.record().third_party;
    for service in ["/pcs/", "/nras/", "/rekor/"] {
        assert!(
            seen.iter().any(|r| r.path.starts_with(service)),
            "{service} was not consulted: {seen:?}"
        );
    }
    for r in &seen {
        for (name, value) in &r.headers {
            assert!(
                !name.eq_ignore_ascii_case("authorization") && !value.contains(SIM_KEY),
                "{} received {name}: {value}",
                r.path
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn nras_tokens_are_verified_when_enabled() {
    let s = sim().await;
    let base = format!("http://{}", s.addr);
    let p = Proxy::start(s, |c| {
        c.attestation.nras = true;
        c.attestation.nras_url = format!("{base}/nras/v3/attest/gpu");
        c.attestation.nras_jwks_url = format!("{base}/nras/.well-known/jwks.json");
    })
    .await;
    assert_eq!(p.post(&chat("with NRAS", false)).await.status(), 200);
    let (_, v) = p.get(&format!("/attestation/{MODEL}")).await;
    let nras = check(&v["report"], "gpu_nras");
    assert_eq!(
        (nras["status"].as_str(), nras["enforced"].as_bool()),
        (Some("pass"), Some(true)),
        "{nras}"
    );
    // NRAS unreachable: the enforced check fails closed.
    let p2 = Proxy::start(sim().await, |c| {
        c.attestation.nras = true;
        c.attestation.nras_url = "http://127.0.0.1:9/nras".into();
    })
    .await;
    let r = p2.post(&chat("x", false)).await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "attestation_gpu_nras"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tcb_status_policy_is_enforced() {
    let p = Proxy::start(sim().await, |c| {
        c.attestation.tcb_statuses = vec!["OutOfDate".into()]
    })
    .await;
    let r = p.post(&chat("x", false)).await;
    assert_eq!(r.status(), 503);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "attestation_tdx_tcb_status", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("UpToDate"));
}

#[tokio::test(flavor = "multi_thread")]
async fn drifted_attestations_verify_with_every_check_enforced() {
    use venice_e2ee_tools::sim::Drift;
    let s = sim().await;
    s.set_attestation_drift(&Drift::ALL);
    let base = format!("http://{}", s.addr);
    // What the simulator serves really is drifted.
    let served: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{base}/api/v1/tee/attestation?model={MODEL}&nonce={}",
            "ab".repeat(32)
        ))
        .bearer_auth(SIM_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(served["nvidia_payload"].is_object() && served["info"].is_string());
    assert!(served["nonce"].as_str().unwrap().starts_with("0xAB"));
    let p = Proxy::start(s, |c| {
        c.attestation.nras = true;
        c.attestation.nras_url = format!("{base}/nras/v3/attest/gpu");
        c.attestation.nras_jwks_url = format!("{base}/nras/.well-known/jwks.json");
    })
    .await;
    let r = p.post(&chat("through drifted evidence", false)).await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("through drifted evidence"));
    let (events, broken) = sse_events(p.post(&chat("streamed too", true)).await).await;
    assert!(!broken && content_of(&events).contains("streamed too"));
    assert_eq!(events.last().unwrap(), "[DONE]");
    let (_, v) = p.get(&format!("/attestation/{MODEL}")).await;
    let report = &v["report"];
    assert_eq!(report["verified"], true, "{report}");
    for c in report["checks"].as_array().unwrap() {
        // ACI's own checks have nothing to examine in a dstack attestation.
        let aci_only = ["aci_keyset", "aci_report_data", "source_provenance"]
            .contains(&c["name"].as_str().unwrap());
        let expected = if aci_only { "not_applicable" } else { "pass" };
        assert_eq!(
            (c["status"].as_str(), c["enforced"].as_bool()),
            (Some(expected), Some(true)),
            "{c}"
        );
    }
    // Drifted framing never hides a changed signature.
    p.sim
        .set_attestation_fault(Some(AttestationFault::GpuSignature));
    let r = p.post(&chat("x", false).tap_model("e2ee-glm-5-1")).await;
    assert_eq!(r.status(), 503);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "attestation_gpu_spdm_signature");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("GPU 0"),
        "the failing GPU is named: {v}"
    );
}

/// Venice's attestation endpoint answering 502 for a model: one fetch with its retries, then
/// none until the backoff has passed (each failure doubling it), whatever the requests do;
/// they get the error at once meanwhile, and the model serves again after a fetch succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn an_attestation_502_storm_costs_bounded_fetches() {
    let s = sim().await;
    s.set_attestation_fault(Some(AttestationFault::ServerError));
    let p = Proxy::start(s, |c| {
        c.attestation.fetch_retry = venice_e2ee_proxy::config::FetchRetry::default()
    })
    .await;
    let fetches = |p: &Proxy| {
        let record = p.sim.record();
        record
            .attestations
            .iter()
            .filter(|(m, _)| m == MODEL)
            .count()
    };
    let refused = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 503);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "attestation_fetch_failed", "{v}");
        v["error"]["message"].as_str().unwrap().to_string()
    };
    refused(p.post(&chat("storm", false)).await).await;
    assert_eq!(fetches(&p), 3, "one fetch and its two retries");
    // A burst inside the backoff (1 s) fetches nothing and is answered at once.
    let burst = std::time::Instant::now();
    for stream in [false, true].repeat(5) {
        let message = refused(p.post(&chat("storm", stream)).await).await;
        assert!(message.contains("not fetched again for"), "{message}");
    }
    assert!(burst.elapsed() < Duration::from_millis(700));
    assert_eq!(fetches(&p), 3, "no fetch per request");
    // After the backoff, one more fetch (with its retries); the next backoff is 2 s.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    refused(p.post(&chat("storm", false)).await).await;
    assert_eq!(fetches(&p), 6);
    refused(p.post(&chat("storm", false)).await).await;
    assert_eq!(fetches(&p), 6);
    // Venice recovers: served again once the backoff allows a fetch.
    p.sim.set_attestation_fault(None);
    let mut served = false;
    for _ in 0..40 {
        if p.post(&chat("calm", false)).await.status() == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served);
    assert_eq!(fetches(&p), 7);
}
