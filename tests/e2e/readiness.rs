//! `/readyz` under Intel PCS and NVIDIA NRAS outages. Ready means every prewarmed model holds
//! a usable verified key. A cold start during an outage is not ready (nothing can be
//! verified); an outage after warm-up changes nothing while cached collateral is valid:
//! refreshes re-verify with it, so the proxy stays ready and keeps serving.

use crate::harness::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A PCS stand-in that forwards to the simulator's PCS while up and answers 503 while down.
async fn switchable_pcs(target: String, down: Arc<AtomicBool>, hits: Arc<AtomicUsize>) -> String {
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (client, target, down, hits) =
                (client.clone(), target.clone(), down.clone(), hits.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (client, target, down, hits) =
                        (client.clone(), target.clone(), down.clone(), hits.clone());
                    async move {
                        hits.fetch_add(1, Ordering::SeqCst);
                        let mut out = hyper::Response::builder();
                        if down.load(Ordering::SeqCst) {
                            return Ok::<_, std::convert::Infallible>(
                                out.status(503)
                                    .body(Full::new(bytes::Bytes::new()))
                                    .unwrap(),
                            );
                        }
                        let path = req
                            .uri()
                            .path_and_query()
                            .map(|p| p.as_str().to_string())
                            .unwrap_or_default();
                        let _ = req.into_body().collect().await;
                        let r = client.get(format!("{target}{path}")).send().await.unwrap();
                        out = out.status(r.status().as_u16());
                        for (k, v) in r.headers() {
                            out = out.header(k, v);
                        }
                        let body = r.bytes().await.unwrap();
                        Ok(out.body(Full::new(body)).unwrap())
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    format!("http://{addr}/pcs")
}

async fn ready(p: &Proxy) -> (u16, serde_json::Value) {
    p.get("/readyz").await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cold_start_during_an_outage_is_not_ready() {
    // PCS down: the quote cannot be verified.
    let p = Proxy::start(sim().await, |c| {
        c.attestation.prewarm = vec![MODEL.into()];
        c.attestation.pcs_url = "http://127.0.0.1:9/pcs".into();
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, v) = ready(&p).await;
    assert_eq!(
        (status, v["waiting_for_attestation"][0].as_str()),
        (503, Some(MODEL)),
        "{v}"
    );
    assert_eq!(p.get("/healthz").await.0, 200, "live, just not ready");
    // NRAS enforced and down: the GPUs cannot be checked.
    let s = sim().await;
    let base = format!("http://{}", s.addr);
    let p = Proxy::start(s, |c| {
        c.attestation.prewarm = vec![MODEL.into()];
        c.attestation.nras = true;
        c.attestation.nras_url = "http://127.0.0.1:9/nras".into();
        c.attestation.nras_jwks_url = format!("{base}/nras/.well-known/jwks.json");
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ready(&p).await.0, 503);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_after_warm_up_keeps_the_proxy_ready_on_cached_collateral() {
    let s = sim().await;
    let (down, hits) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let pcs = switchable_pcs(format!("http://{}", s.addr), down.clone(), hits.clone()).await;
    let p = Proxy::start(s, |c| {
        c.attestation.prewarm = vec![MODEL.into()];
        c.attestation.pcs_url = pcs;
        c.attestation.max_age = Duration::from_secs(2);
        c.attestation.refresh_lead = Duration::from_millis(1500);
    })
    .await;
    let mut warm = false;
    for _ in 0..60 {
        if ready(&p).await.0 == 200 {
            warm = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(warm, "ready once the prewarmed model verified");
    assert!(hits.load(Ordering::SeqCst) > 0, "collateral came from PCS");
    down.store(true, Ordering::SeqCst);
    let before = p.sim.record().attestations.len();
    // Several refresh cycles (max_age 2 s) later: re-verified each time, still ready.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert!(
        p.sim.record().attestations.len() > before,
        "refreshed during the outage"
    );
    assert_eq!(ready(&p).await.0, 200);
    assert_eq!(
        p.post(&chat("during the outage", false)).await.status(),
        200
    );
}

/// Issue 41: readiness that tells the truth. With `prewarm: []` the proxy is ready once
/// Venice answers with the key, and not while it cannot be reached, or while every model
/// asked for so far failed; a not-ready answer says why, per model with its last error and
/// its time, and `/v1/attestation` lists the models that failed.
#[tokio::test(flavor = "multi_thread")]
async fn readiness_tells_the_truth() {
    // Venice unreachable (a closed port): not ready, and why.
    let p = Proxy::start(sim().await, |c| {
        c.venice.base_url = "http://127.0.0.1:9/api/v1".into();
    })
    .await;
    let mut last = (0, serde_json::Value::Null);
    for _ in 0..40 {
        last = ready(&p).await;
        if last.1["venice"]["error"]
            .as_str()
            .is_some_and(|e| !e.contains("not been fetched"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, v) = last;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["venice"]["reachable"], false, "{v}");
    assert!(
        v["why"]
            .as_str()
            .unwrap()
            .starts_with("Venice cannot be reached"),
        "{v}"
    );
    assert!(v["venice"]["at"].as_str().unwrap().ends_with('Z'), "{v}");
    drop(p);

    // Reachable, nothing asked for yet: ready.
    let p = Proxy::start(sim().await, |_| {}).await;
    let mut status = 0;
    for _ in 0..40 {
        status = ready(&p).await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200);
    // Every model asked for fails: not ready, each failure named with its time.
    p.sim
        .set_attestation_fault(Some(venice_e2ee_tools::sim::AttestationFault::DebugBit));
    assert_eq!(p.post(&chat("refused", false)).await.status(), 503);
    let (status, v) = ready(&p).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["why"], "no model asked for so far has verified");
    assert_eq!(
        v["last_errors"][MODEL]["code"], "attestation_debug_td",
        "{v}"
    );
    let (_, list) = p.get("/attestation").await;
    let entry = &list["data"][0];
    assert_eq!(entry["model"], MODEL);
    assert_eq!(entry["usable"], false);
    assert_eq!(entry["last_error"]["code"], "attestation_debug_td");
    // Once it verifies, ready again, and the error is gone.
    p.sim.set_attestation_fault(None);
    assert_eq!(p.post(&chat("now verified", false)).await.status(), 200);
    assert_eq!(ready(&p).await.0, 200);
    let (_, list) = p.get("/attestation").await;
    assert!(list["data"][0]["last_error"].is_null(), "{list}");
}
