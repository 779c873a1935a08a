//! Intel collateral fetched over HTTP the way Intel PCS serves it (here from a loopback
//! server replaying the captured PCS answers), verified with the captured quote, and cached
//! until its nextUpdate.

use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use venice_e2ee_proxy::attestation::evidence::{capture, dcap, pcs::Pcs, trust_roots};
use venice_e2ee_proxy::attestation::quote;

const CAPTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/capture");

/// Serves `NNNN_*.body` for a request whose path matches the saved URL's path, with the
/// saved response headers; answers 503 while `down` is set.
async fn replay_server(hits: Arc<AtomicUsize>, down: Arc<AtomicBool>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (hits, down) = (hits.clone(), down.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        hits.fetch_add(1, Ordering::SeqCst);
                        let response = if down.load(Ordering::SeqCst) {
                            hyper::Response::builder()
                                .status(503)
                                .body(Full::new(Bytes::new()))
                                .unwrap()
                        } else {
                            answer(req.uri().path())
                        };
                        async move { Ok::<_, std::convert::Infallible>(response) }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

fn answer(path: &str) -> hyper::Response<Full<Bytes>> {
    for entry in std::fs::read_dir(CAPTURE).unwrap().flatten() {
        let p = entry.path();
        if p.extension().is_none_or(|e| e != "json") || p.ends_with("manifest.json") {
            continue;
        }
        let meta: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let url = meta["url"].as_str().unwrap();
        let saved_path = url
            .split("://")
            .nth(1)
            .unwrap()
            .split_once('/')
            .map(|x| x.1)
            .unwrap_or("");
        let saved_path = format!("/{}", saved_path.split('?').next().unwrap());
        if saved_path == path {
            let mut resp = hyper::Response::builder().status(200);
            for (k, v) in meta["headers"].as_object().unwrap() {
                if k.to_ascii_lowercase().contains("chain") {
                    resp = resp.header(k.as_str(), v[0].as_str().unwrap());
                }
            }
            return resp
                .body(Full::new(Bytes::from(
                    std::fs::read(p.with_extension("body")).unwrap(),
                )))
                .unwrap();
        }
    }
    hyper::Response::builder()
        .status(404)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn setup() -> (capture::Capture, Vec<u8>) {
    let c = capture::load(std::path::Path::new(CAPTURE)).unwrap();
    let raw_quote =
        quote::decode_quote_text(c.attestation["intel_quote"].as_str().unwrap()).unwrap();
    (c, raw_quote)
}

fn pcs_at(addr: std::net::SocketAddr, grace: Duration) -> Pcs {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    Pcs::new(
        http,
        &format!("http://{addr}"),
        &format!("http://{addr}/IntelSGXRootCA.der"),
        grace,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn collateral_is_fetched_verified_and_cached() {
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = replay_server(hits.clone(), Arc::default()).await;
    let (c, raw_quote) = setup();
    let pcs = pcs_at(addr, Duration::ZERO);

    let fetched = pcs.collateral_at(&raw_quote, c.captured_at).await.unwrap();
    assert_eq!(
        hits.load(Ordering::SeqCst),
        4,
        "TCB info, QE identity, PCK CRL, root CA CRL"
    );
    assert_eq!(fetched.stale_verify_at, None);
    let roots = trust_roots::pinned().unwrap();
    let verdict = dcap::verify(
        &raw_quote,
        &fetched.collateral,
        &roots.intel_der,
        c.captured_at,
        false,
    )
    .unwrap();
    assert_eq!(verdict.status, "UpToDate");

    // Cached until nextUpdate; fetched again after it.
    pcs.collateral_at(&raw_quote, c.captured_at + 3600)
        .await
        .unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 4);
    pcs.collateral_at(&raw_quote, c.captured_at + 40 * 86_400)
        .await
        .unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pcs_outage_fails_closed_unless_within_the_grace_period() {
    let down = Arc::new(AtomicBool::new(false));
    let addr = replay_server(Arc::default(), down.clone()).await;
    let (c, raw_quote) = setup();
    let strict = pcs_at(addr, Duration::ZERO);
    let lenient = pcs_at(addr, Duration::from_secs(10 * 86_400));
    for p in [&strict, &lenient] {
        p.collateral_at(&raw_quote, c.captured_at).await.unwrap();
    }
    down.store(true, Ordering::SeqCst);
    // The collateral is valid until 2026-05-24 (its PCK CRL's nextUpdate): a day later, PCS
    // is down.
    let after = unix("2026-05-25T00:00:00Z");
    // No grace: fail closed, as an outage (no verdict on the quote).
    assert!(
        matches!(
            strict.collateral_at(&raw_quote, after).await,
            Err(venice_e2ee_proxy::attestation::evidence::EvidenceError::Unavailable(_))
        ),
        "no grace: fail closed"
    );
    let stale = lenient.collateral_at(&raw_quote, after).await.unwrap();
    let at = stale.stale_verify_at.expect("marked stale");
    let roots = trust_roots::pinned().unwrap();
    assert!(dcap::verify(&raw_quote, &stale.collateral, &roots.intel_der, at, false).is_ok());
    // Beyond the grace period it fails closed too.
    assert!(lenient
        .collateral_at(&raw_quote, after + 20 * 86_400)
        .await
        .is_err());
}

fn unix(t: &str) -> u64 {
    venice_e2ee_proxy::attestation::framing::unix_time(t).unwrap()
}
