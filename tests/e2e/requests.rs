//! Every invalid request is answered by the proxy, OpenAI-shaped, before anything reaches
//! Venice.

use crate::harness::*;
use serde_json::{json, Value};

async fn expect_error(r: reqwest::Response, status: u16, code: &str, param: Option<&str>) {
    assert_eq!(r.status().as_u16(), status);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().await.unwrap();
    let e = &v["error"];
    assert_eq!(e["code"], code, "{v}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(e["type"].is_string());
    assert_eq!(e["param"].as_str(), param, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_requests_never_reach_venice() {
    let p = Proxy::start(sim().await, |c| c.server.body_limit = 64 * 1024).await;
    let user = json!([{"role": "user", "content": "hi"}]);
    expect_error(
        p.post_raw(b"not json".to_vec()).await,
        400,
        "invalid_request",
        Some("body"),
    )
    .await;
    expect_error(
        p.post_raw(b"{\"model\":\"\xff\"}".to_vec()).await,
        400,
        "invalid_request",
        Some("body"),
    )
    .await;
    expect_error(
        p.post(&json!({"messages": user})).await,
        400,
        "invalid_request",
        Some("model"),
    )
    .await;
    expect_error(
        p.post(&json!({"model": MODEL, "messages": user, "n": 3}))
            .await,
        400,
        "unsupported_parameter",
        Some("n"),
    )
    .await;
    expect_error(
        p.post(&json!({"model": MODEL, "messages": user, "logprobs": true}))
            .await,
        400,
        "unsupported_parameter",
        Some("logprobs"),
    )
    .await;
    expect_error(
        p.post(&json!({"model": MODEL, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]})).await,
        400,
        "unsupported_parameter",
        Some("messages[0].content[0].type"),
    )
    .await;
    expect_error(
        p.post(&json!({"model": MODEL, "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]})).await,
        400,
        "unsupported_parameter",
        Some("messages[0].content[0].type"),
    )
    .await;
    expect_error(
        p.post(&json!({"model": MODEL, "messages": user, "venice_parameters": {"enable_web_search": "auto"}})).await,
        400,
        "unsupported_parameter",
        Some("venice_parameters.enable_web_search"),
    )
    .await;
    expect_error(
        p.post(&json!({"model": MODEL, "messages": user, "venice_parameters": {"include_venice_system_prompt": true}})).await,
        400,
        "unsupported_parameter",
        Some("venice_parameters.include_venice_system_prompt"),
    )
    .await;
    for model in [
        "tee-deepseek-r1",
        "venice-uncensored",
        "e2ee-flux-image",
        "gpt-4o",
    ] {
        expect_error(
            p.post(&json!({"model": model, "messages": user})).await,
            404,
            "model_not_found",
            Some("model"),
        )
        .await;
    }
    // Over the body limit, told by Content-Length before the body is read.
    let big =
        json!({"model": MODEL, "messages": [{"role": "user", "content": "x".repeat(70_000)}]});
    expect_error(p.post(&big).await, 413, "request_too_large", None).await;
    // Wrong method and unknown path.
    let r = p.http.get(p.url("/chat/completions")).send().await.unwrap();
    expect_error(r, 405, "method_not_allowed", None).await;
    // OpenAI endpoints Venice E2EE has no equivalent for: a 404 that says so.
    for path in [
        "/completions",
        "/embeddings",
        "/audio/speech",
        "/images/generations",
        "/files",
        "/batches",
        "/assistants",
    ] {
        let r = p.http.post(p.url(path)).body("{}").send().await.unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "unsupported_endpoint", "{path}");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("chat models only"));
    }
    let r = p
        .http
        .post(p.url("/nothing-here"))
        .body("{}")
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "unknown_url", None).await;

    let rec = p.sim.record();
    assert!(
        rec.chats.is_empty(),
        "{} requests reached Venice",
        rec.chats.len()
    );
    assert!(
        rec.attestations.is_empty(),
        "no attestation for requests that were refused"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn harmless_client_fields_are_accepted() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let body = json!({
        "model": MODEL, "n": 1, "user": "u-1", "metadata": {"k": "v"}, "store": false,
        "logprobs": false, "parallel_tool_calls": true, "service_tier": "auto",
        "modalities": ["text"], "response_format": {"type": "text"}, "seed": 7,
        "max_completion_tokens": 100, "stop": ["\n\n"], "top_p": 0.9,
        "reasoning_effort": "low", "venice_parameters": {"strip_thinking_response": true, "enable_e2ee": true},
        "some_future_field": {"x": 1},
        "messages": [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "ok"}]
    });
    let r = p.post(&body).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "ok");
    let sent = &p.sim.record().chats[0].body;
    assert_eq!(sent["seed"], 7);
    assert_eq!(sent["reasoning_effort"], "low");
    // The client's own words stay in the pod: stop sequences are applied there.
    assert!(sent.get("stop").is_none(), "{sent}");
    assert_eq!(sent["venice_parameters"]["strip_thinking_response"], true);
    assert_eq!(sent["messages"][0]["role"], "system");
    assert!(
        sent.get("user").is_none()
            && sent.get("metadata").is_none()
            && sent.get("some_future_field").is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_request_bodies_work() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let body = serde_json::to_vec(&chat("sent chunked", false)).unwrap();
    let stream = futures_util::stream::iter(
        body.chunks(10)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let r = p
        .http
        .post(p.url("/chat/completions"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "sent chunked");
}

/// A web page the user visits cannot use the sidecar: a cross-origin POST it may send without
/// a preflight (`text/plain`), a request under its own name pointed at the loopback port (DNS
/// rebinding), and a preflight for JSON are all refused, OpenAI-shaped, and nothing is sent.
#[tokio::test(flavor = "multi_thread")]
async fn web_pages_cannot_use_the_proxy() {
    let p = Proxy::start(sim().await, |c| {
        c.server.allowed_hosts = vec!["proxy.internal".into()]
    })
    .await;
    let body = serde_json::to_vec(&chat("from a web page", false)).unwrap();
    let page = p
        .http
        .post(p.url("/chat/completions"))
        .header("origin", "https://attacker.example")
        .header("content-type", "text/plain")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    expect_error(page, 415, "unsupported_media_type", None).await;
    let rebound = p
        .http
        .post(p.url("/chat/completions"))
        .header("host", "rebind.attacker.example:8080")
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    expect_error(rebound, 403, "host_not_allowed", None).await;
    let listing = p
        .http
        .get(p.url("/models"))
        .header("host", "rebind.attacker.example")
        .send()
        .await
        .unwrap();
    expect_error(listing, 403, "host_not_allowed", None).await;
    // The Messages API refuses in its own dialect.
    let messages = p
        .http
        .post(p.url("/messages"))
        .header("host", "rebind.attacker.example")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(messages.status(), 403);
    let v: Value = messages.json().await.unwrap();
    assert_eq!(v["type"], "error", "{v}");
    // A preflight for JSON is never granted.
    let preflight = p
        .http
        .request(reqwest::Method::OPTIONS, p.url("/chat/completions"))
        .header("origin", "https://attacker.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(!preflight.status().is_success());
    assert!(preflight
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    assert!(p.sim.record().chats.is_empty(), "nothing reaches Venice");
    assert_eq!(p.sim.record().chats_answered, 0);
    // Probes answer under any name; loopback names, the listen address, the configured names
    // and requests from pages that send JSON (same origin) work.
    let probe = p
        .http
        .get(p.url("/healthz"))
        .header("host", "10.1.2.3:9090")
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), 200);
    for host in ["localhost", "proxy.internal:8080"] {
        let r = p
            .http
            .post(p.url("/chat/completions"))
            .header("host", host)
            .header("origin", "http://localhost:3000")
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{host}");
    }
    // A Host that cannot be read is refused, not read as the name it begins with (issue 39).
    for host in ["[::1]evil", "localhost:evil", "127.0.0.1:8080:1"] {
        let r = p
            .http
            .get(p.url("/models"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{host}");
    }
    // The admin listener is guarded too: a rebinding page cannot read /metrics; a scraper
    // naming the pod by its address can.
    let admin = format!("http://{}", p.state.config.server.admin_listen.unwrap());
    let scrape = |host: &'static str| {
        let http = p.http.clone();
        let url = format!("{admin}/metrics");
        async move {
            http.get(url)
                .header("host", host)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(scrape("rebind.attacker.example:9090").await, 403);
    assert_eq!(scrape("localhost:evil").await, 403);
    assert_eq!(scrape("10.1.2.3:9090").await, 200);
    assert_eq!(scrape("localhost").await, 200);
}

/// Tool types are identifiers: one that is not (a header or log line injected through it) is
/// refused before anything is sent, in the dialect that named it, instead of failing the
/// answer after Venice was paid for it (issue 32, finding 9).
#[tokio::test(flavor = "multi_thread")]
async fn hostile_tool_types_are_refused_before_venice() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let messages = json!({"model": MODEL, "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "web_search\r\nx-injected: 1", "name": "web_search"}]});
    let responses = json!({"model": MODEL, "input": "hi",
        "tools": [{"type": "web_search_preview\nforged log line"}]});
    for (path, body) in [("/messages", messages), ("/responses", responses)] {
        let r = p.http.post(p.url(path)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let v: Value = r.json().await.unwrap();
        assert!(v.to_string().contains("tool type"), "{v}");
    }
    assert_eq!(p.sim.record().chats_answered, 0);
    // An ordinary hosted tool is still left out and named in the header.
    let body = json!({"model": MODEL, "input": "hi", "tools": [{"type": "web_search"}]});
    let r = p
        .http
        .post(p.url("/responses"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-venice-e2ee-tools-omitted"], "web_search");
}
