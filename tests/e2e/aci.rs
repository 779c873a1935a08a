//! Venice's ACI gateway (`aci/1`) through the running server: the statement binding and the
//! address binding both verify, every ACI fault fails closed with its check named, chat, tools
//! and the Responses API work, and receipts are fetched, verified and reported (or, with
//! `require`, refuse the model after a bad one).

use crate::harness::*;
use serde_json::{json, Value};
use std::time::Duration;
use venice_e2ee_proxy::attestation::receipt_checks::ReceiptMode;
use venice_e2ee_tools::sim::aci::{Forms, Layout, ReceiptBodies, ReceiptFault};
use venice_e2ee_tools::sim::{AciGpu, AnchorFault, AttestationFault};

async fn aci_sim(layout: Layout) -> venice_e2ee_tools::sim::Simulator {
    let s = sim().await;
    s.set_attestation_layout(layout);
    s
}

async fn metrics(p: &Proxy) -> String {
    let admin = format!("http://{}", p.state.config.server.admin_listen.unwrap());
    let r = p.http.get(format!("{admin}/metrics")).send().await.unwrap();
    r.text().await.unwrap()
}

/// Receipts of `MODEL` this proxy has checked so far.
async fn checked(p: &Proxy) -> u64 {
    let (_, v) = p.get(&format!("/attestation/{MODEL}")).await;
    v["receipt"]["seq"].as_u64().unwrap_or(0)
}

/// The model's latest receipt outcome, once more than `before` receipts were checked.
async fn receipt(p: &Proxy, before: u64) -> Value {
    for _ in 0..100 {
        let (_, v) = p.get(&format!("/attestation/{MODEL}")).await;
        if v["receipt"]["seq"].as_u64().unwrap_or(0) > before {
            return v["receipt"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no receipt was reported");
}

/// The chain in the forms Venice's gateway serves (private-ai-gateway `aa65d64`), and in
/// the spec's at HEAD: each reads end to end.
#[tokio::test(flavor = "multi_thread")]
async fn chat_through_an_aci_gateway_with_receipts_verified_and_reported() {
    for forms in [Forms::Deployed, Forms::Head] {
        chat_through_an_aci_gateway(forms).await;
    }
}

async fn chat_through_an_aci_gateway(forms: Forms) {
    let s = aci_sim(Layout::Aci).await;
    s.set_aci_forms(forms);
    let p = Proxy::start(s, |_| {}).await;
    let t0 = checked(&p).await;
    let r = p.post(&chat("through the gateway", true)).await;
    assert_eq!(r.status(), 200);
    let (events, broken) = sse_events(r).await;
    assert!(!broken);
    assert_eq!(content_of(&events), "through the gateway");

    let (_, v) = p.get(&format!("/attestation/{MODEL}")).await;
    let report = &v["report"];
    assert_eq!(report["layout"], "aci/1");
    assert_eq!(report["verified"], true);
    assert_eq!(report["aci"]["binding"]["form"], "statement");
    // The gateway is a reviewed workload's, not Venice's word.
    assert_eq!(
        report["gateway"]["workload"], "venice-aci-gateway-aa65d64",
        "{report}"
    );
    assert_eq!(report["gateway"]["service"], "launcher");
    assert_eq!(report["aci"]["serving"], "aggregator");
    assert!(report["aci"]["attested"]
        .as_str()
        .unwrap()
        .contains("routing gateway"));
    assert_eq!(
        report["aci"]["source"]["repo_commit"],
        venice_e2ee_tools::sim::aci::SOURCE_COMMIT
    );
    for name in [
        "envelope",
        "aci_keyset",
        "aci_report_data",
        "source_provenance",
        "rtmr_replay",
        "mr_config_id",
        "sigstore_provenance",
    ] {
        assert_eq!(check(report, name)["status"], "pass", "{name}: {report}");
    }
    // The GPU evidence it serves is its upstream's, relayed: verified, and said to be.
    assert_eq!(report["gpu_evidence"], "relayed");
    for name in ["gpu_cert_chain", "gpu_spdm_signature", "gpu_nonce"] {
        let c = check(report, name);
        assert_eq!(c["status"], "pass", "{name}");
        assert!(
            c["detail"].as_str().unwrap().contains("not to this CVM"),
            "{c}"
        );
    }
    // The tag-only image is reported with its rule.
    let images = report["provenance"].as_array().unwrap();
    assert!(images
        .iter()
        .any(|i| i["rule"] == "tag_only" && i["passed"] == true));

    // Venice re-wrapped the bodies (the receipt says so): authentic for this answer, its
    // hashes countersigned by the key the quote binds.
    let rc = receipt(&p, t0).await;
    assert_eq!(rc["result"], "authentic", "{rc}");
    assert!(rc["detail"]
        .as_str()
        .unwrap()
        .contains("transparency.response_modified"));
    assert_eq!(rc["request_hash_matches"], false);
    assert_eq!(rc["countersigned_by"], report["signing_address"], "{rc}");
    assert_eq!(rc["upstream"][0]["result"], "verified");
    assert_eq!(
        rc["upstream"][0]["upstream"],
        "https://upstream.sim.invalid"
    );
    assert_eq!(rc["upstream"][0]["verifier_id"], "simulated-verifier/1");
    let claims = rc["upstream"][0]["claims"].as_array().unwrap();
    assert!(
        claims.contains(&json!(["tee_attested", "asserted (hardware_proven)"])),
        "{rc}"
    );
    assert!(claims.contains(&json!(["gpu_attested", "unknown"])), "{rc}");
    assert_eq!(rc["sessions"][0]["verified"], true, "{rc}");
    // The second hop, checked by the proxy itself from the session's inline report, fetched
    // from the gateway's own host without a credential.
    assert_eq!(rc["route"], format!("simulated-upstream:{MODEL}"));
    let check = &rc["sessions"][0]["upstream_check"];
    // Genuine, not verified: the gateway bound the upstream's keyset with a nonce it does
    // not publish, so the proxy cannot tie the channel key to that quote itself.
    assert_eq!(check["result"], "genuine", "{check}");
    assert_eq!(check["tcb"], "UpToDate");
    let said = |k: &str, what: &str| {
        check[k]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().contains(what))
    };
    assert!(said("established", "event log replays"), "{check}");
    assert!(
        said("established", "listed in the upstream's keyset"),
        "{check}"
    );
    assert!(said("unproven", "nonce is not published"), "{check}");
    assert!(said("unproven", "behind the upstream"), "{check}");
    let fetched = p.sim.record().third_party;
    // Deployed session ids are `as_` over their material; the spec's, over the record.
    let prefix = match forms {
        Forms::Deployed => "/v1/aci/sessions/as_",
        Forms::Head => "/v1/aci/sessions/",
    };
    assert!(fetched.iter().any(|r| r.path.starts_with(prefix)));
    assert!(rc["sessions"][0]["session"]["claims"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c[0] == "tee_attested"));

    // A non-streaming answer (read whole by the proxy) has its receipt checked too.
    // Reached without re-wrapping, the hashes are of the very bytes exchanged: verified.
    p.sim.set_receipt_bodies(ReceiptBodies::Exact);
    let t1 = checked(&p).await;
    assert_eq!(p.post(&chat("whole", false)).await.status(), 200);
    let rc = receipt(&p, t1).await;
    assert_eq!(rc["result"], "verified", "{rc}");
    assert_eq!(rc["request_hash_matches"], true);

    let metrics = metrics(&p).await;
    assert!(metrics.contains(&format!(
        "venice_e2ee_proxy_receipts_total{{model=\"{MODEL}\",result=\"verified\"}}"
    )));
    assert!(metrics.contains("venice_e2ee_proxy_upstream_verifications_total"));
    assert!(metrics.contains(&format!(
        "venice_e2ee_proxy_upstream_checks_total{{model=\"{MODEL}\",result=\"genuine\"}}"
    )));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_legacy_address_binding_is_anchored_by_the_gateways_own_quote() {
    let p = Proxy::start(aci_sim(Layout::AciAddressBound).await, |_| {}).await;
    let t0 = checked(&p).await;
    assert_eq!(p.post(&chat("legacy binding", false)).await.status(), 200);
    let (_, v) = p.get(&format!("/attestation/{MODEL}")).await;
    assert_eq!(v["report"]["aci"]["binding"]["form"], "address");
    assert!(check(&v["report"], "aci_keyset")["detail"]
        .as_str()
        .unwrap()
        .contains("not bound by this quote"));
    // Venice's quote binds only the address; the gateway's own quote, fetched from the host
    // its measured ingress serves, binds the keyset: receipts under it are the gateway's.
    let rc = receipt(&p, t0).await;
    assert_eq!(rc["result"], "authentic", "{rc}");
    let origin = format!("http://{}", p.sim.addr);
    assert!(rc["detail"].as_str().unwrap().contains(&format!(
        "keyset anchored by the gateway's own quote at {origin}"
    )));
    assert!(rc["countersigned_by"].as_str().unwrap().starts_with("0x"));
    assert_eq!(rc["upstream"][0]["result"], "verified");
    let (_, v) = p.get(&format!("/attestation/{MODEL}")).await;
    let anchor = &v["anchor"];
    assert_eq!(anchor["verified"], true, "{anchor}");
    assert_eq!(anchor["origin"], origin.as_str());
    // Venice's gateway binds the statement with its workload id (aa65d64's form).
    assert_eq!(anchor["statement"], "draft");
    assert_eq!(anchor["same_instance"], true);
    assert_eq!(anchor["tcb"], "UpToDate");
    assert_eq!(
        anchor["keyset_digest"],
        v["report"]["aci"]["keyset"]["digest"]
    );
    // The receipt key's KMS custody chain, read to its root and reported for what it is.
    assert_eq!(anchor["custody"]["status"], "chain", "{anchor}");
    assert_eq!(anchor["custody"]["kms_root"], p.sim.kms_root().as_str());
    // The gateway's endpoint is asked without the Venice key, as a third party.
    let asked: Vec<_> = p
        .sim
        .record()
        .third_party
        .into_iter()
        .filter(|r| r.path == "/v1/aci/attestation")
        .collect();
    assert_eq!(asked.len(), 1, "one anchoring for the keyset, cached");
    assert!(asked[0]
        .headers
        .iter()
        .all(|(k, v)| !k.eq_ignore_ascii_case("authorization") && !v.contains(SIM_KEY)));
}

/// The gateway's own report does not anchor the keyset when it is another workload's, binds
/// another keyset or another nonce, or cannot be had: receipts stay unanchored, the
/// gateway's word on its upstream is not reported, and `require` refuses the model.
#[tokio::test(flavor = "multi_thread")]
async fn a_keyset_the_gateways_own_quote_does_not_bind_stays_unanchored() {
    let cases = [
        (AnchorFault::OtherWorkload, "another workload: its MRTD"),
        (AnchorFault::OtherKeyset, "Venice served"),
        (AnchorFault::WrongNonce, "our nonce"),
        (AnchorFault::Unavailable, "answered 503"),
    ];
    for (fault, why) in cases {
        let s = aci_sim(Layout::AciAddressBound).await;
        s.set_anchor_fault(Some(fault));
        let p = Proxy::start(s, |_| {}).await;
        let t0 = checked(&p).await;
        assert_eq!(p.post(&chat("unanchored", false)).await.status(), 200);
        let rc = receipt(&p, t0).await;
        assert_eq!(rc["result"], "unanchored", "{fault:?}: {rc}");
        let detail = rc["detail"].as_str().unwrap();
        assert!(detail.contains(why), "{fault:?}: {detail}");
        assert_eq!(rc["upstream"], json!([]), "{rc}");
        let (_, v) = p.get(&format!("/attestation/{MODEL}")).await;
        assert_eq!(v["anchor"]["verified"], false, "{fault:?}");
    }
    let s = aci_sim(Layout::AciAddressBound).await;
    s.set_anchor_fault(Some(AnchorFault::OtherWorkload));
    let p = Proxy::start(s, |c| c.attestation.receipts.mode = ReceiptMode::Require).await;
    assert_eq!(
        p.post(&chat("seen, then judged", false)).await.status(),
        200
    );
    receipt(&p, 0).await;
    let r = p.post(&chat("refused", false)).await;
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "attestation_receipt", "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn aci_faults_fail_closed_with_the_check_named() {
    let p = Proxy::start(aci_sim(Layout::Aci).await, |_| {}).await;
    let cases = [
        (
            AttestationFault::WrongStatement,
            "attestation_report_data_mismatch",
        ),
        (AttestationFault::KeyNotInKeyset, "attestation_aci_e2ee_key"),
        (AttestationFault::ExpiredKeyset, "attestation_aci_keyset"),
        (
            AttestationFault::KeysetDigestMismatch,
            "attestation_aci_keyset",
        ),
        (
            AttestationFault::RestatedReportData,
            "attestation_aci_report_data",
        ),
        (
            AttestationFault::UnmeasuredSource,
            "attestation_source_provenance",
        ),
        (AttestationFault::BadEventLog, "attestation_rtmr_replay"),
        (AttestationFault::BadCompose, "attestation_mr_config_id"),
        (AttestationFault::WrongNonce, "attestation_nonce_mismatch"),
    ];
    attestation_faults_fail_closed(&p, &cases).await;
}

/// A genuine gateway (its compose, bound by MRCONFIGID, builds the gateway's source) serves
/// whether it relays its upstream's GPU evidence, serves the empty placeholder or none; the
/// GPU checks are then not applicable, naming the measured fact. The same unsigned fields on
/// a workload that is no gateway (issue 32, finding 1) are refused.
#[tokio::test(flavor = "multi_thread")]
async fn gpu_checks_follow_the_measured_compose_not_venices_word() {
    for gpu in [AciGpu::Placeholder, AciGpu::Absent] {
        let s = aci_sim(Layout::Aci).await;
        s.script(|sc| sc.aci_gpu = gpu);
        let p = Proxy::start(s, |_| {}).await;
        assert_eq!(
            p.post(&chat("gateway", false)).await.status(),
            200,
            "{gpu:?}"
        );
        let (_, v) = p.get(&format!("/attestation/{MODEL}")).await;
        let report = &v["report"];
        assert_eq!(report["gpu_evidence"], "none");
        for name in [
            "gpu_cert_chain",
            "gpu_spdm_signature",
            "gpu_nonce",
            "gpu_nras",
        ] {
            let c = check(report, name);
            assert_eq!(c["status"], "not_applicable", "{gpu:?} {name}");
            let why = c["detail"].as_str().unwrap();
            assert!(
                why.contains("the compose MRCONFIGID binds is reviewed workload `venice-aci-gateway-aa65d64`")
                    && why.contains("Dstack-TEE/private-ai-gateway"),
                "{why}"
            );
        }
    }
    let s = sim().await;
    s.set_attestation_fault(Some(AttestationFault::GatewayClaimedOnly));
    let p = Proxy::start(s, |_| {}).await;
    let r = p.post(&chat("not a gateway", false)).await;
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "attestation_source_provenance", "{v}");
    let (_, v) = p.get(&format!("/attestation/{MODEL}")).await;
    for name in [
        "gpu_cert_chain",
        "gpu_spdm_signature",
        "gpu_nonce",
        "source_provenance",
    ] {
        assert_eq!(check(&v["report"], name)["status"], "fail", "{name}: {v}");
    }
    assert_eq!(v["report"]["layout"], "dstack");
    assert!(p.sim.record().chats.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_receipts_are_reported_and_requests_go_on_by_default() {
    // Bytes other than were received, in the spec's form (transparency events only where a
    // hop re-wrapped): failed. In the deployed form the gateway always records its own
    // re-encryption, so other bytes cannot be told from Venice's re-wrapping: the receipt is
    // this answer's (its window, its ids) and says nothing of the bytes.
    for (forms, result, why) in [
        (Forms::Head, "failed", "records no modification"),
        (
            Forms::Deployed,
            "authentic",
            "nothing in it covers the bytes received",
        ),
    ] {
        let s = aci_sim(Layout::Aci).await;
        s.set_aci_forms(forms);
        s.set_receipt_fault(Some(ReceiptFault::BodyHash));
        let p = Proxy::start(s, |_| {}).await;
        let t = checked(&p).await;
        assert_eq!(p.post(&chat("still served", false)).await.status(), 200);
        let rc = receipt(&p, t).await;
        assert_eq!(rc["result"], result, "{forms:?}: {rc}");
        assert!(
            rc["detail"].as_str().unwrap().contains(why),
            "{forms:?}: {rc}"
        );
    }
    let p = Proxy::start(aci_sim(Layout::Aci).await, |_| {}).await;
    let cases = [
        (ReceiptFault::Signature, "failed", "does not verify"),
        (
            ReceiptFault::ForeignCountersignature,
            "failed",
            "not the quote-bound",
        ),
        (ReceiptFault::KeysetDigest, "failed", "keyset"),
        (ReceiptFault::Missing, "missing", "no receipt"),
        (ReceiptFault::SessionAltered, "failed", "session"),
    ];
    for (fault, result, why) in cases {
        p.sim.set_receipt_fault(Some(fault));
        let t = checked(&p).await;
        let r = p.post(&chat("still served", true)).await;
        assert_eq!(r.status(), 200);
        // Read whole: a receipt covers only an answer that arrived whole.
        assert!(r.text().await.unwrap().contains("[DONE]"));
        let rc = receipt(&p, t).await;
        assert_eq!(rc["result"], result, "{fault:?}: {rc}");
        assert!(
            rc["detail"].as_str().unwrap().contains(why),
            "{fault:?}: {rc}"
        );
    }
    // The gateway verified an upstream the proxy's own check refutes.
    for (fault, why) in [
        (ReceiptFault::UpstreamQuoteAltered, "the upstream's quote"),
        (
            ReceiptFault::UpstreamChannelNotAttested,
            "not in the upstream's attested keyset",
        ),
    ] {
        p.sim.set_receipt_fault(Some(fault));
        let t = checked(&p).await;
        assert_eq!(p.post(&chat("second hop", false)).await.status(), 200);
        let rc = receipt(&p, t).await;
        assert_eq!(rc["result"], "authentic", "{fault:?}: {rc}");
        assert_eq!(rc["upstream"][0]["result"], "verified");
        let check = &rc["sessions"][0]["upstream_check"];
        assert_eq!(check["result"], "refuted", "{fault:?}: {check}");
        assert!(
            check["detail"].as_str().unwrap().contains(why),
            "{fault:?}: {check}"
        );
    }
    p.sim
        .set_receipt_fault(Some(ReceiptFault::UpstreamNotVerified));
    let t = checked(&p).await;
    assert_eq!(
        p.post(&chat("unverified upstream", false)).await.status(),
        200
    );
    let rc = receipt(&p, t).await;
    assert_eq!(rc["result"], "authentic");
    assert_eq!(rc["upstream"][0]["result"], "failed");
    assert_eq!(rc["upstream"][0]["required"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn required_receipts_refuse_the_model_after_a_bad_one_until_it_is_attested_anew() {
    let p = Proxy::start(aci_sim(Layout::Aci).await, |c| {
        c.attestation.receipts.mode = ReceiptMode::Require;
        c.attestation.max_age = Duration::from_secs(3);
        c.attestation.refresh_lead = Duration::from_millis(1000);
    })
    .await;
    assert_eq!(p.post(&chat("fine", false)).await.status(), 200);
    // That answer's receipt is checked first, so the next one counted is the bad one's.
    receipt(&p, 0).await;
    p.sim
        .set_receipt_fault(Some(ReceiptFault::UpstreamNotVerified));
    let t = checked(&p).await;
    assert_eq!(
        p.post(&chat("served, then judged", false)).await.status(),
        200
    );
    receipt(&p, t).await;
    let r = p.post(&chat("refused", true)).await;
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "attestation_receipt", "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("did not verify upstream"));
    // The proxy's own refutation of the second hop refuses too.
    let s = aci_sim(Layout::Aci).await;
    s.set_receipt_fault(Some(ReceiptFault::UpstreamChannelNotAttested));
    let q = Proxy::start(s, |c| c.attestation.receipts.mode = ReceiptMode::Require).await;
    assert_eq!(q.post(&chat("judged after", false)).await.status(), 200);
    receipt(&q, 0).await;
    let r = q.post(&chat("refused", false)).await;
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not verified by the proxy"),
        "{v}"
    );
    // A refresh that finds the same gateway (key and keyset) does not lift it.
    p.sim.set_receipt_fault(None);
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(p.post(&chat("same gateway", false)).await.status(), 503);
    // Once the gateway's key changes and is attested, the model is usable again.
    p.sim.rotate_key(MODEL).unwrap();
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(p.post(&chat("again", false)).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn tools_and_responses_through_an_aci_gateway() {
    let p = Proxy::start(aci_sim(Layout::Aci).await, |_| {}).await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    let call = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
    for stream in [false, true] {
        p.sim.push_reply(call, None);
        let r = p
            .post(&json!({"model": MODEL, "stream": stream, "tools": tools,
                "messages": [{"role": "user", "content": "Weather in Paris?"}]}))
            .await;
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(
            text.contains("get_weather") && text.contains("tool_calls"),
            "{text}"
        );
        assert!(!text.contains("<tool_call>"), "{text}");
    }
    p.sim.push_reply("Hello from the gateway.", None);
    let r = p
        .http
        .post(p.url("/responses"))
        .json(&json!({"model": MODEL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "completed");
    assert_eq!(
        v["output"][0]["content"][0]["text"],
        "Hello from the gateway."
    );
    // Every message crossed encrypted.
    for c in p.sim.record().chats {
        for m in c.body["messages"].as_array().unwrap() {
            let content = m["content"].as_str().unwrap_or_default();
            assert!(
                content.bytes().all(|b| b.is_ascii_hexdigit()),
                "plaintext upstream"
            );
        }
    }
}

/// A copy of the real capture with its attestation reframed in the ACI layout, `edit`ed.
fn aci_capture(edit: impl FnOnce(&mut Value)) -> std::path::PathBuf {
    use venice_e2ee_proxy::attestation::evidence::capture;
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/capture");
    let dir = std::env::temp_dir().join(format!(
        "venice-e2ee-proxy-aci-capture-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.join(f.file_name())).unwrap();
    }
    let c = capture::load(&src).unwrap();
    let mut v =
        venice_e2ee_proxy::attestation::variants::reframe(&c.attestation, c.captured_at + 86_400);
    edit(&mut v);
    std::fs::write(
        dir.join("0001_api.venice.ai_api_v1_tee_attestation.body"),
        serde_json::to_vec(&v).unwrap(),
    )
    .unwrap();
    dir
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn verify_offline(dir: &std::path::Path) -> (bool, Value) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_venice-e2ee-proxy"))
        .args(["verify", "--json", "--offline"])
        .arg(dir)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), report)
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_offline_checks_a_capture_in_the_aci_layout() {
    let dir = aci_capture(|_| {});
    let (ok, report) = verify_offline(&dir);
    assert!(ok, "{report}");
    assert_eq!(report["layout"], "aci/1");
    assert_eq!(report["aci"]["binding"]["form"], "address");
    // The capture's workload serves on its GPUs: no gateway, a measured fact.
    assert_eq!(
        check(&report, "source_provenance")["status"],
        "not_applicable"
    );
    assert_eq!(check(&report, "gpu_nonce")["status"], "pass");
    assert_eq!(check(&report, "sigstore_provenance")["status"], "pass");
    std::fs::remove_dir_all(&dir).unwrap();

    let dir =
        aci_capture(|v| v["workload_keyset_digest"] = json!(format!("sha256:{}", "ab".repeat(32))));
    let (ok, report) = verify_offline(&dir);
    assert!(!ok);
    assert_eq!(check(&report, "aci_keyset")["status"], "fail", "{report}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_that_stops_binding_its_keyset_is_a_downgrade() {
    let p = Proxy::start(aci_sim(Layout::Aci).await, |c| {
        c.attestation.max_age = Duration::from_secs(2);
        c.attestation.refresh_lead = Duration::from_millis(1500);
    })
    .await;
    assert_eq!(p.post(&chat("bound keyset", false)).await.status(), 200);
    p.sim.set_attestation_layout(Layout::AciAddressBound);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let r = p.post(&chat("must not leave", false)).await;
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "attestation_downgrade", "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no longer binds"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_serves_an_aci_gateway_on_request() {
    let demo = Demo::start(&["--layout", "aci"]).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = http
        .post(format!("{}/v1/chat/completions", demo.base))
        .json(&chat("hello gateway", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = http
        .get(format!("{}/v1/attestation/{MODEL}", demo.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["report"]["layout"], "aci/1");
    assert_eq!(v["report"]["aci"]["binding"]["form"], "statement");
}

/// `demo --layout venice`: the chain as Venice serves it, end to end through the demo binary:
/// the address bound, the keyset anchored by the gateway's own quote, the receipt authentic
/// with its bodies re-wrapped, the second hop checked by the proxy.
#[tokio::test(flavor = "multi_thread")]
async fn the_demo_serves_venices_chain() {
    let demo = Demo::start(&["--layout", "venice"]).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = http
        .post(format!("{}/v1/chat/completions", demo.base))
        .json(&chat("hello venice", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut v = Value::Null;
    for _ in 0..100 {
        v = http
            .get(format!("{}/v1/attestation/{MODEL}", demo.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["receipt"]["seq"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(v["report"]["aci"]["binding"]["form"], "address", "{v}");
    assert_eq!(v["anchor"]["verified"], true, "{v}");
    assert_eq!(v["receipt"]["result"], "authentic", "{v}");
    assert_eq!(
        v["receipt"]["sessions"][0]["upstream_check"]["result"], "genuine",
        "{v}"
    );
}

/// A keyset that ends soon is attested anew before it ends, in the background: requests are
/// served across several keyset epochs without waiting, and never with an ended keyset.
#[tokio::test(flavor = "multi_thread")]
async fn keysets_are_attested_anew_before_their_end() {
    let s = aci_sim(Layout::Aci).await;
    s.set_keyset_lifetime(Some(Duration::from_secs(4)));
    let p = Proxy::start(s, |c| c.attestation.refresh_lead = Duration::from_secs(2)).await;
    assert_eq!(p.post(&chat("epoch one", false)).await.status(), 200);
    let first = p.sim.record().attestations.len();
    let until = std::time::Instant::now() + Duration::from_secs(7);
    while std::time::Instant::now() < until {
        let r = p.post(&chat("across epochs", false)).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let refreshes = p.sim.record().attestations.len() - first;
    assert!(
        (2..=5).contains(&refreshes),
        "{refreshes} refreshes in 7 s of 4 s keysets"
    );
}

/// Issue 40, finding 3: a hop relabels every answer after the first with the first one's
/// chat id (and its `x-receipt-id`, when the hop passes that on), so the first, good receipt
/// would vouch for them all. A receipt vouches for one answer: the reused one fails both
/// answers' receipts, and `require` refuses the model as for any receipt fault.
#[tokio::test(flavor = "multi_thread")]
async fn a_receipt_vouches_for_one_answer_only() {
    for hide_receipt_id in [false, true] {
        let relabelling = || async {
            let s = aci_sim(Layout::AciAddressBound).await;
            s.set_receipt_fault(Some(ReceiptFault::Relabelled));
            s.script(|sc| sc.hide_receipt_id = hide_receipt_id);
            s
        };
        let p = Proxy::start(relabelling().await, |_| {}).await;
        assert_eq!(p.post(&chat("first", false)).await.status(), 200);
        let first = receipt(&p, 0).await;
        assert_eq!(first["result"], "authentic", "{first}");
        for n in 2..=3 {
            let t = checked(&p).await;
            assert_eq!(p.post(&chat("relabelled", false)).await.status(), 200);
            let rc = receipt(&p, t).await;
            assert_eq!(rc["result"], "failed", "answer {n}: {rc}");
            assert!(
                rc["detail"]
                    .as_str()
                    .unwrap()
                    .contains("already vouched for another answer"),
                "{rc}"
            );
            assert_eq!(rc["receipt_id"], first["receipt_id"]);
        }
        // The first answer's receipt failed too, each time its id came back for another
        // answer: two outcomes per reuse.
        assert_eq!(checked(&p).await, 5);
        drop(p);
        // Under `require`: refused after the reuse, as after any receipt fault.
        let p = Proxy::start(relabelling().await, |c| {
            c.attestation.receipts.mode = ReceiptMode::Require
        })
        .await;
        assert_eq!(p.post(&chat("first", false)).await.status(), 200);
        receipt(&p, 0).await;
        assert_eq!(p.post(&chat("relabelled", false)).await.status(), 200);
        receipt(&p, 1).await;
        let r = p.post(&chat("refused", false)).await;
        assert_eq!(r.status(), 503, "x-receipt-id hidden: {hide_receipt_id}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "attestation_receipt", "{v}");
    }
}

/// Each fault of the chain, under `require`: the answer it came with is served (judged after),
/// the model's next request is refused.
#[tokio::test(flavor = "multi_thread")]
async fn every_fault_of_the_chain_refuses_the_model_under_require() {
    let receipts = [
        (ReceiptFault::Signature, Forms::Deployed),
        (ReceiptFault::BodyHash, Forms::Head),
        (ReceiptFault::ForeignCountersignature, Forms::Deployed),
        (ReceiptFault::SessionAltered, Forms::Deployed),
        (ReceiptFault::UpstreamQuoteAltered, Forms::Deployed),
        (ReceiptFault::UpstreamNotVerified, Forms::Deployed),
    ];
    let anchors = [AnchorFault::OtherKeyset, AnchorFault::WrongNonce];
    let cases = receipts
        .iter()
        .map(|(f, forms)| (Some(*f), None, *forms))
        .chain(anchors.iter().map(|f| (None, Some(*f), Forms::Deployed)));
    for (receipt_fault, anchor_fault, forms) in cases {
        let s = aci_sim(Layout::AciAddressBound).await;
        s.set_aci_forms(forms);
        s.set_receipt_fault(receipt_fault);
        s.set_anchor_fault(anchor_fault);
        let p = Proxy::start(s, |c| c.attestation.receipts.mode = ReceiptMode::Require).await;
        assert_eq!(p.post(&chat("served", false)).await.status(), 200);
        receipt(&p, 0).await;
        let r = p.post(&chat("refused", false)).await;
        assert_eq!(r.status(), 503, "{receipt_fault:?} {anchor_fault:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "attestation_receipt", "{v}");
    }
}
