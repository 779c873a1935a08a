//! Client connections through raw sockets: idle keep-alive connections are closed after
//! `server.keepalive_timeout`, a stalled request body gets 408, and a connection keeps
//! serving requests while it is used.

use crate::harness::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn request(body: &str) -> String {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Reads one HTTP/1.1 response with a Content-Length body; returns (status, body).
async fn response(s: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed before a whole response");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                let status = head[9..12].parse().unwrap();
                return (status, body[..len].to_string());
            }
        }
    }
}

fn addr(p: &Proxy) -> String {
    p.state.config.server.listen.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_keepalive_connections_are_closed_and_used_ones_are_kept() {
    let p = Proxy::start(sim().await, |c| {
        c.server.keepalive_timeout = Duration::from_secs(1)
    })
    .await;
    let mut s = TcpStream::connect(addr(&p)).await.unwrap();
    let body = chat("first", false).to_string();
    for _ in 0..3 {
        s.write_all(request(&body).as_bytes()).await.unwrap();
        assert_eq!(
            response(&mut s).await.0,
            200,
            "the connection serves request after request"
        );
    }
    // Idle past the timeout: the proxy closes it.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let mut byte = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut byte))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "closed by the proxy");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_request_body_gets_408() {
    let p = Proxy::start(sim().await, |c| {
        c.server.body_read_timeout = Duration::from_millis(500)
    })
    .await;
    let mut s = TcpStream::connect(addr(&p)).await.unwrap();
    let body = chat("stalled", false).to_string();
    let full = request(&body);
    // The headers and half the body, then nothing.
    let cut = full.len() - body.len() / 2;
    s.write_all(&full.as_bytes()[..cut]).await.unwrap();
    let (status, text) = response(&mut s).await;
    assert_eq!(status, 408, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "request_timeout");
    assert!(p.sim.record().chats.is_empty());
}
