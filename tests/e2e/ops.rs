//! Operations: client tokens, the non-loopback rule, the cap on chats in flight, and
//! graceful shutdown of the real binary on SIGTERM.

use crate::harness::*;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use venice_e2ee_proxy::config::Secret;

#[tokio::test(flavor = "multi_thread")]
async fn client_tokens_are_required_when_configured() {
    let p = Proxy::start(sim().await, |c| {
        c.server.auth_tokens = vec![Secret::new("good-token")]
    })
    .await;
    let models = p.url("/models");
    let get = |token: Option<&'static str>| {
        let mut r = p.http.get(&models);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    for token in [None, Some("bad-token"), Some("good-token-but-longer")] {
        let r = get(token).await.unwrap();
        assert_eq!(r.status(), 401, "{token:?}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"]["code"],
            "invalid_api_key"
        );
    }
    assert_eq!(get(Some("good-token")).await.unwrap().status(), 200);
    assert_eq!(p.get("/healthz").await.0, 200, "probes need no token");
    let r = p
        .http
        .post(p.url("/chat/completions"))
        .bearer_auth("good-token")
        .json(&chat("hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = p.post(&chat("no token", false)).await;
    assert_eq!(r.status(), 401);
    assert_eq!(p.sim.record().chats.len(), 1);
}

#[test]
fn a_non_loopback_listener_without_tokens_refuses_to_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_venice-e2ee-proxy"))
        .arg("serve")
        .env("VENICE_API_KEY", "k")
        .env(
            "VENICE_E2EE_PROXY__SERVER__LISTEN",
            format!("0.0.0.0:{}", free_port()),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.auth_tokens"));
}

#[tokio::test(flavor = "multi_thread")]
async fn chats_beyond_the_cap_get_429() {
    let s = sim().await;
    s.set_pacing(venice_e2ee_tools::sim::Pacing {
        ttft: Duration::ZERO,
        tokens_per_second: 10.0,
    });
    let p = Proxy::start(s, |c| c.server.max_concurrent_chats = 2).await;
    let slow = "one two three four five six seven eight";
    let a = p.post(&chat(slow, true)).await;
    let b = p.post(&chat(slow, true)).await;
    let r = p.post(&chat("third", true)).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "too_many_concurrent_requests"
    );
    assert_eq!(content_of(&sse_events(a).await.0), slow);
    assert_eq!(content_of(&sse_events(b).await.0), slow);
    // Places are given back when streams end.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(p.post(&chat("again", false)).await.status(), 200);
}

/// The real demo with Pingora's grace period and runtime shutdown timeout set (seconds).
async fn demo_with_grace(grace: u32, shutdown: u32) -> Demo {
    let conf = std::env::temp_dir().join(format!("venice-e2ee-proxy-pingora-{}.yaml", free_port()));
    std::fs::write(
        &conf,
        format!("version: 1\nthreads: 2\ngrace_period_seconds: {grace}\ngraceful_shutdown_timeout_seconds: {shutdown}\n"),
    )
    .unwrap();
    let demo = Demo::start(&["--pingora-conf", conf.to_str().unwrap()]).await;
    let _ = std::fs::remove_file(&conf);
    demo
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_streams_finish_and_exits_zero() {
    let demo = demo_with_grace(4, 1).await;
    let (base, sim_base) = (demo.base.clone(), demo.sim_base.clone());
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    // A stream that takes about 1.5 s.
    http.post(format!("{sim_base}/_sim/script"))
        .json(&json!({"pacing": {"ttft": "0s", "tokens_per_second": 8.0}}))
        .send()
        .await
        .unwrap();
    let text = "a b c d e f g h i j k l";
    let stream = http
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({"model": MODEL, "stream": true, "messages": [{"role": "user", "content": text}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let started = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &demo.pid().to_string()])
        .status()
        .unwrap()
        .success());
    let (events, broken) = sse_events(stream).await;
    assert!(!broken, "the stream in flight completes");
    assert_eq!(content_of(&events), text);
    assert_eq!(events.last().unwrap(), &json!("[DONE]"));
    // New connections are refused once the listener has closed.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fresh = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    assert!(
        fresh.get(format!("{base}/healthz")).send().await.is_err(),
        "listener closed"
    );
    let status = tokio::task::spawn_blocking(move || demo.wait())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "exited within the grace period"
    );
}

/// With nothing in flight SIGTERM ends the process at once, not after the grace period.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_on_an_idle_proxy_exits_at_once() {
    let demo = demo_with_grace(20, 5).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    // A finished request, its keep-alive connection left open: idle, not in flight.
    let r = http
        .post(format!("{}/v1/chat/completions", demo.base))
        .json(&chat("done already", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await;
    let started = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &demo.pid().to_string()])
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || demo.wait())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "idle: no wait for the 20 s grace period ({:?})",
        started.elapsed()
    );
}

/// A metric's value summed over the label sets that contain all of `labels`.
fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter(|l| labels.iter().all(|lab| l.contains(lab)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_pass_promtool_and_move_with_traffic() {
    let p = Proxy::start(sim().await, |c| {
        c.server.auth_tokens = vec![Secret::new("t")]
    })
    .await;
    let admin = format!("http://{}", p.state.config.server.admin_listen.unwrap());
    let scrape = || async {
        p.http
            .get(format!("{admin}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = scrape().await;
    let post = |stream: bool| {
        p.http
            .post(p.url("/chat/completions"))
            .bearer_auth("t")
            .json(&chat("count these words", stream))
            .send()
    };
    assert_eq!(post(false).await.unwrap().status(), 200);
    let (events, _) = sse_events(post(true).await.unwrap()).await;
    assert_eq!(content_of(&events), "count these words");
    assert_eq!(p.post(&chat("no token", false)).await.status(), 401);
    let after = scrape().await;

    let chats = [
        "venice_e2ee_proxy_requests_total",
        "route=\"chat_completions\"",
        "status=\"200\"",
    ];
    assert!(
        metric(&after, chats[0], &chats[1..]) >= metric(&before, chats[0], &chats[1..]) + 2.0,
        "{after}"
    );
    assert!(
        metric(&after, "venice_e2ee_proxy_decrypted_chunks_total", &[])
            >= metric(&before, "venice_e2ee_proxy_decrypted_chunks_total", &[]) + 6.0
    );
    assert!(metric(&after, "venice_e2ee_proxy_client_auth_failures_total", &[]) >= 1.0);
    assert!(
        metric(
            &after,
            "venice_e2ee_proxy_attestation_refreshes_total",
            &["outcome=\"verified\""]
        ) >= 1.0
    );
    assert!(
        metric(
            &after,
            "venice_e2ee_proxy_upstream_first_byte_seconds_count",
            &[]
        ) >= 2.0
    );
    assert!(
        after.contains("venice_e2ee_proxy_attestation_age_seconds{model=\"e2ee-qwen3-6-35b-a3b\"}")
    );
    assert!(
        !after.contains("count these words"),
        "no message text in metrics"
    );

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/setup installs Debian's prometheus package)");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(after.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The admin listener also serves the probes, without a token.
    assert_eq!(
        p.http
            .get(format!("{admin}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// `logging.format: json` (the real binary): one JSON object per line; every line of a
/// request names it by the client's `x-request-id` (or one made for it), echoed on the
/// response, streaming or not, success or error; the access line names the peer.
#[tokio::test(flavor = "multi_thread")]
async fn json_logs_name_each_request_and_its_peer() {
    let log = std::env::temp_dir().join(format!(
        "venice-e2ee-proxy-json-log-{}.log",
        std::process::id()
    ));
    let file = std::fs::File::create(&log).unwrap();
    let demo = Demo::start_with(
        &[],
        &[
            ("RUST_LOG", "info".into()),
            ("VENICE_E2EE_PROXY__LOGGING__FORMAT", "json".into()),
        ],
        file.into(),
    )
    .await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let post = |id: &'static str, body: Value| {
        http.post(format!("{}/v1/chat/completions", demo.base))
            .header("x-request-id", id)
            .json(&body)
            .send()
    };
    let mut ids = Vec::new();
    for (id, body, status) in [
        ("req-whole-1", chat("hi", false), 200),
        ("req-stream-2", chat("hi", true), 200),
        (
            "req-unknown-3",
            json!({"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}),
            404,
        ),
    ] {
        let r = post(id, body).await.unwrap();
        assert_eq!(r.status(), status, "{id}");
        assert_eq!(r.headers()["x-request-id"], id);
        let _ = r.bytes().await;
        ids.push(id);
    }
    // An id that is not a plain token is replaced, not logged.
    let r = post("tell me a secret", chat("hi", false)).await.unwrap();
    let made = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(
        made.len() == 16 && made.bytes().all(|b| b.is_ascii_hexdigit()),
        "{made}"
    );
    let _ = r.bytes().await;
    // The access line is written once the response is: wait for it before stopping.
    for _ in 0..100 {
        if std::fs::read_to_string(&log).unwrap().contains(&made) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(demo);
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for id in ids.iter().copied().chain([made.as_str()]) {
        let access: Vec<&Value> = lines
            .iter()
            .filter(|l| l["target"] == "access" && l["request_id"] == id)
            .collect();
        assert_eq!(access.len(), 1, "{id}: {text}");
        let peer = access[0]["peer"].as_str().unwrap();
        assert!(peer.starts_with("127.0.0.1:"), "{peer}");
        assert!(access[0]["ts"].as_str().unwrap().ends_with('Z'));
    }
    assert!(!text.contains("tell me a secret"));
}
