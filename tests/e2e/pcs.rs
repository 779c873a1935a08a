//! Intel collateral fetched over HTTP the way Intel PCS serves it (here from a loopback
//! server replaying the captured PCS answers), verified with the captured quote, and cached
//! until its nextUpdate.

use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use venice_e2ee_proxy::attestation::evidence::{capture, dcap, pcs::Pcs, trust_roots};
use venice_e2ee_proxy::attestation::quote;

const CAPTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/capture");

/// Serves `NNNN_*.body` for a request whose path matches the saved URL's path, with the
/// saved response headers.
async fn replay_server(hits: Arc<AtomicUsize>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let hits = hits.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        hits.fetch_add(1, Ordering::SeqCst);
                        let path = req.uri().path().to_string();
                        async move { Ok::<_, std::convert::Infallible>(answer(&path)) }
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

#[tokio::test(flavor = "multi_thread")]
async fn collateral_is_fetched_verified_and_cached() {
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = replay_server(hits.clone()).await;
    let c = capture::load(std::path::Path::new(CAPTURE)).unwrap();
    let raw_quote =
        quote::decode_quote_text(c.attestation["intel_quote"].as_str().unwrap()).unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let pcs = Pcs::new(
        http,
        &format!("http://{addr}"),
        &format!("http://{addr}/IntelSGXRootCA.der"),
    );

    let fetched = pcs.collateral_at(&raw_quote, c.captured_at).await.unwrap();
    assert_eq!(
        hits.load(Ordering::SeqCst),
        4,
        "TCB info, QE identity, PCK CRL, root CA CRL"
    );
    let roots = trust_roots::pinned().unwrap();
    let verdict =
        dcap::verify(&raw_quote, &fetched, &roots.intel_der, c.captured_at, false).unwrap();
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
