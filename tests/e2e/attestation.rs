//! Attestation through the running server: every simulated attestation fault fails closed
//! with a 503 naming the failed check, and no chat request is sent.

use crate::harness::*;
use std::time::Duration;
use venice_e2ee_proxy::sim::AttestationFault;

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
        (AttestationFault::ServerError, "attestation_fetch_failed"),
    ];
    for (fault, code) in cases {
        p.sim.set_attestation_fault(Some(fault));
        for stream in [true, false] {
            let r = p.post(&chat("must not leave", stream)).await;
            assert_eq!(r.status(), 503, "{fault:?}");
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], code, "{v}");
            assert_eq!(v["error"]["type"], "attestation_error");
        }
    }
    assert!(
        p.sim.record().chats.is_empty(),
        "nothing was sent to an unverified enclave"
    );
    p.sim.set_attestation_fault(None);
    assert_eq!(p.post(&chat("now it may", false)).await.status(), 200);
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
