//! Check `sigstore_provenance` end to end: the simulated compose pins images whose provenance
//! lives in the simulator's own Rekor (its log key, its Fulcio-like CA), verified by the proxy
//! for real; every Rekor fault fails the attestation closed; a verified image digest is
//! cached, so a second model running the same images needs no Rekor call, and a Rekor outage
//! only fails a workload that changed.

use crate::harness::*;
use serde_json::Value;
use venice_e2ee_tools::sim::rekor::{RekorFault, SUBJECT};

const OTHER: &str = "e2ee-glm-5-1";

fn with_model(mut body: Value, model: &str) -> Value {
    body["model"] = Value::String(model.into());
    body
}

fn provenance_check(report: &Value) -> &Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "sigstore_provenance")
        .unwrap_or_else(|| panic!("no sigstore_provenance in {report}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulated_images_pass_and_the_report_lists_each() {
    let p = Proxy::start(sim().await, |_| {}).await;
    assert_eq!(p.post(&chat("provenance", false)).await.status(), 200);
    let (_, v) = p.get(&format!("/attestation/{MODEL}")).await;
    let report = &v["report"];
    let check = provenance_check(report);
    assert_eq!(check["status"], "pass", "{check}");
    assert_eq!(check["enforced"], true);
    let images = report["provenance"].as_array().unwrap();
    assert_eq!(images.len(), 2, "{report}");
    let model = &images[0];
    assert_eq!(model["rule"], "fulcio");
    assert_eq!(model["identity"]["subject"], SUBJECT);
    assert_eq!(
        model["identity"]["issuer"],
        "https://token.actions.githubusercontent.com"
    );
    assert_eq!(model["entries_checked"], 1);
    assert!(model["digest"].as_str().unwrap().len() == 64);
    let agent = &images[1];
    assert_eq!(agent["rule"], "signed");
    assert!(
        agent["outcome"]
            .as_str()
            .unwrap()
            .contains("signed by key sha256:"),
        "{agent}"
    );
    assert!(
        report["trust_overrides"]
            .to_string()
            .contains("Sigstore trusted root replaced"),
        "the simulated Sigstore is said loudly"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_rekor_fault_fails_the_attestation_closed_naming_why() {
    for (fault, why) in [
        (RekorFault::MissingEntry, "no Rekor entry"),
        (RekorFault::AlteredEntry, "signed entry timestamp"),
        (RekorFault::BrokenProof, "inclusion proof"),
        (RekorFault::WrongIdentity, "another identity"),
        (RekorFault::Down, "Rekor answered 503"),
    ] {
        let p = Proxy::start(sim().await, |_| {}).await;
        p.sim.set_rekor_fault(Some(fault));
        let r = p.post(&chat("must not leave", true)).await;
        assert_eq!(r.status(), 503, "{fault:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v["error"]["code"], "attestation_sigstore_provenance",
            "{fault:?}: {v}"
        );
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("simulated/vllm") && message.contains(why),
            "{fault:?}: {message}"
        );
        assert!(
            p.sim.record().chats.is_empty(),
            "{fault:?}: nothing was sent"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn report_only_relaxes_the_check() {
    let p = Proxy::start(sim().await, |c| {
        c.attestation.report_only = vec!["sigstore_provenance".into()]
    })
    .await;
    p.sim.set_rekor_fault(Some(RekorFault::WrongIdentity));
    assert_eq!(p.post(&chat("relaxed", false)).await.status(), 200);
    let (_, v) = p.get(&format!("/attestation/{MODEL}")).await;
    let check = provenance_check(&v["report"]);
    assert_eq!(
        (check["status"].as_str(), check["enforced"].as_bool()),
        (Some("fail"), Some(false))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verified_digests_are_cached_so_rekor_is_needed_only_for_new_images() {
    let p = Proxy::start(sim().await, |_| {}).await;
    assert_eq!(p.post(&chat("first model", false)).await.status(), 200);
    let after_first = p.sim.record().rekor_requests;
    assert!(after_first >= 3, "index lookups and entries: {after_first}");
    // A second model runs the same images: no Rekor call.
    let r = p
        .post(&with_model(chat("second model", false), OTHER))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(p.sim.record().rekor_requests, after_first);
    let (_, v) = p.get(&format!("/attestation/{OTHER}")).await;
    assert!(v["report"]["provenance"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["cached"] == true));

    // Rekor down: a re-attestation with the cached images still passes…
    p.sim.set_rekor_fault(Some(RekorFault::Down));
    let attested = p.sim.record().attestations.len();
    for m in [MODEL, OTHER] {
        p.state.attestations.get(m).await.unwrap().invalidate();
    }
    let r = p
        .post(&with_model(chat("rekor down, same images", false), OTHER))
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        p.sim.record().attestations.len() > attested,
        "attested again"
    );

    // …while a proxy that never verified these images fails closed.
    let fresh = Proxy::start(sim().await, |_| {}).await;
    fresh.sim.set_rekor_fault(Some(RekorFault::Down));
    let r = fresh.post(&chat("rekor down, nothing cached", false)).await;
    assert_eq!(r.status(), 503);
}

#[tokio::test(flavor = "multi_thread")]
async fn entries_third_parties_log_leave_a_model_usable() {
    for (fault, listed) in [(RekorFault::PoisonedLog, 5), (RekorFault::Flood, 1000)] {
        let p = Proxy::start(sim().await, |_| {}).await;
        p.sim.set_rekor_fault(Some(fault));
        assert_eq!(
            p.post(&chat("still usable", false)).await.status(),
            200,
            "{fault:?}"
        );
        let (_, v) = p.get(&format!("/attestation/{MODEL}")).await;
        let model = &v["report"]["provenance"][0];
        assert_eq!(model["passed"], true, "{fault:?}: {model}");
        assert_eq!(model["entries_listed"], listed, "{fault:?}");
        let entries = model["entries"].as_array().unwrap();
        assert_eq!(
            entries.iter().filter(|e| e["satisfies"] == true).count(),
            1,
            "{fault:?}"
        );
        assert!(entries.len() <= 16, "bounded: {}", entries.len());
        if fault == RekorFault::PoisonedLog {
            let whys: Vec<&str> = entries.iter().map(|e| e["why"].as_str().unwrap()).collect();
            for reason in [
                "another identity",
                "unreadable",
                "does not verify in the log",
                "not retrieved",
            ] {
                assert!(
                    whys.iter().any(|w| w.contains(reason)),
                    "{reason}: {whys:?}"
                );
            }
        }
    }
}
