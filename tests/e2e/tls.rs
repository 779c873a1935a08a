//! The production upstream path: HTTPS with certificate and SNI verification (HTTP/2 via
//! ALPN) for models, attestation and chat; a CA the proxy does not trust fails closed.

use crate::harness::*;
use venice_e2ee_tools::sim::{SimOptions, Simulator};

fn write_ca(name: &str, pem: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "venice-e2ee-proxy-{}-{name}.pem",
        std::process::id()
    ));
    std::fs::write(&path, pem).unwrap();
    path
}

async fn tls_sim() -> Simulator {
    Simulator::start(SimOptions {
        api_key: SIM_KEY.into(),
        tls: true,
        ..SimOptions::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn verified_tls_upstream_with_http2() {
    let s = tls_sim().await;
    let (addr, ca) = s.tls.clone().unwrap();
    let ca_file = write_ca("good", &ca);
    let p = Proxy::start(s, |c| {
        c.venice.base_url = format!("https://localhost:{}/api/v1", addr.port());
        c.venice.ca_file = Some(ca_file.clone());
    })
    .await;
    let (status, models) = p.get("/models").await;
    assert_eq!(status, 200, "{models}");
    let (events, broken) = sse_events(p.post(&chat("over verified TLS", true)).await).await;
    assert!(!broken);
    assert_eq!(content_of(&events), "over verified TLS", "{events:?}");
    let rec = p.sim.record();
    assert_eq!(rec.attestations.len(), 1);
    assert_eq!(rec.chats.len(), 1);
    assert_eq!(rec.chats[0].http_version, "HTTP/2.0");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_fails_closed() {
    let s = tls_sim().await;
    let (addr, _) = s.tls.clone().unwrap();
    let other = venice_e2ee_tools::sim::tls::generate(&["localhost"]).unwrap();
    let ca_file = write_ca("wrong", &other.ca_pem);
    let p = Proxy::start(s, |c| {
        c.venice.base_url = format!("https://localhost:{}/api/v1", addr.port());
        c.venice.ca_file = Some(ca_file.clone());
    })
    .await;
    let (status, v) = p.get("/models").await;
    assert_eq!(status, 502, "{v}");
    let r = p.post(&chat("must not leave", true)).await;
    assert!(r.status().as_u16() >= 500);
    let rec = p.sim.record();
    assert!(rec.chats.is_empty() && rec.attestations.is_empty() && rec.model_lists == 0);
}
