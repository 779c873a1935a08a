//! Client connections through raw sockets: idle keep-alive connections are closed after
//! `server.keepalive_timeout`, a stalled request body gets 408, a connection keeps serving
//! requests while it is used, a request header must be complete within
//! `server.header_read_timeout`, and connections beyond `server.max_connections` get a 503.

use crate::harness::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn request(body: &str) -> String {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Reads one HTTP/1.1 response with a Content-Length body; returns (status, body).
async fn response(s: &mut TcpStream) -> (u16, String) {
    let (status, _, body) = response_with_head(s).await;
    (status, body)
}

/// Reads to the end: the peer closed (a read of 0 bytes or a reset).
async fn closed(s: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(3), s.read(&mut byte))
        .await
        .is_ok_and(|r| r.map_or(true, |n| n == 0))
}

async fn response_with_head(s: &mut TcpStream) -> (u16, String, String) {
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
                return (status, head.to_ascii_lowercase(), body[..len].to_string());
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

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_cap_get_503_and_a_freed_place_is_reused() {
    // Three places. The harness's readiness probe may still hold one, or may have let it go
    // by now: connections are opened until one is refused, which must be the third or fourth.
    let p = Proxy::start(sim().await, |c| c.server.max_connections = 3).await;
    let body = chat("capped", false).to_string();
    let mut open = Vec::new();
    let (head, text) = loop {
        let mut s = TcpStream::connect(addr(&p)).await.unwrap();
        s.write_all(request(&body).as_bytes()).await.unwrap();
        let (status, head, text) = response_with_head(&mut s).await;
        if status == 200 {
            open.push(s);
            assert!(open.len() <= 3, "the cap holds");
            continue;
        }
        assert_eq!(status, 503, "{text}");
        assert!(closed(&mut s).await, "refused connections are closed");
        break (head, text);
    };
    assert!(
        open.len() >= 2,
        "the cap leaves room for three: {}",
        open.len()
    );
    assert!(head.contains("retry-after: 1"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "too_many_connections");
    assert_eq!(v["error"]["type"], "server_error");
    let chats = p.sim.record().chats.len();
    assert_eq!(
        chats,
        open.len(),
        "the refused request never reached Venice"
    );

    // The kept connections still work, and a closed one frees its place.
    open[0].write_all(request(&body).as_bytes()).await.unwrap();
    assert_eq!(response(&mut open[0]).await.0, 200);
    drop(open.pop());
    let mut s = loop {
        let mut s = TcpStream::connect(addr(&p)).await.unwrap();
        s.write_all(request(&body).as_bytes()).await.unwrap();
        match response(&mut s).await.0 {
            200 => break s,
            // The close may not have been seen yet.
            503 => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("status {other}"),
        }
    };
    s.write_all(request(&body).as_bytes()).await.unwrap();
    assert_eq!(response(&mut s).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trickled_request_header_gets_408_within_the_header_timeout() {
    let p = Proxy::start(sim().await, |c| {
        c.server.header_read_timeout = Duration::from_millis(600)
    })
    .await;
    let s = TcpStream::connect(addr(&p)).await.unwrap();
    assert_trickle_gets_408(s).await;

    // A connection that never sends anything is closed silently.
    let mut s = TcpStream::connect(addr(&p)).await.unwrap();
    assert!(closed(&mut s).await);

    // On a kept-alive connection the deadline starts with the next request's first byte:
    // idling longer than it between requests is fine (that is the keep-alive timeout's job).
    let mut s = TcpStream::connect(addr(&p)).await.unwrap();
    let body = chat("kept", false).to_string();
    for _ in 0..2 {
        s.write_all(request(&body).as_bytes()).await.unwrap();
        assert_eq!(response(&mut s).await.0, 200);
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    // ... and the next request's header has the same deadline as the first one's.
    assert_trickle_gets_408(s).await;
}

/// Starts a request header and then sends one byte every 100 ms: each read is quick, the
/// header never completes. The proxy must answer 408 and close within its 600 ms deadline.
async fn assert_trickle_gets_408(mut s: TcpStream) {
    s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let (mut reader, mut writer) = s.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer.write_all(b"X").await.is_err() {
                break;
            }
        }
    });
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut answer))
        .await
        .expect("closed by the proxy")
        .ok();
    let waited = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(waited < Duration::from_millis(1500), "{waited:?}");
    trickle.abort();
}

/// An answer's first chunk follows its header at once: the proxy writes them separately, and
/// with Nagle's algorithm on the client socket the chunk waited for the client's delayed ACK
/// (about 40 ms on Linux) on every stream. The simulator answers at once here, so a
/// median far above a millisecond or two is that wait.
#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_answer_is_not_held_back_after_its_header() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let mut waits = Vec::new();
    for i in 0..7 {
        let started = std::time::Instant::now();
        let mut r = p.post(&chat("quick", true)).await;
        assert_eq!(r.status(), 200);
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains("quick") {
            let chunk = r.chunk().await.unwrap().expect("the answer's content");
            seen.extend_from_slice(&chunk);
        }
        if i > 0 {
            waits.push(started.elapsed());
        }
        while r.chunk().await.unwrap().is_some() {}
    }
    waits.sort();
    let median = waits[waits.len() / 2];
    assert!(median < Duration::from_millis(25), "{waits:?}");
}
