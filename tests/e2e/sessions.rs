//! Agent sessions through the real server: a client key pair per session id, never shared,
//! never sent upstream, echoed back to the client.

use crate::harness::*;
use serde_json::{json, Value};

const HEADER: &str = "X-Venice-Proxy-Session-Id";

#[tokio::test(flavor = "multi_thread")]
async fn each_session_has_its_own_client_key() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let post = |id: Option<&'static str>, body: Value| {
        let mut r = p.http.post(p.url("/chat/completions")).json(&body);
        if let Some(id) = id {
            r = r.header(HEADER, id);
        }
        r.send()
    };
    let mut echoed = Vec::new();
    for (id, body) in [
        (Some("agent-a"), chat("one", false)),
        (Some("agent-a"), chat("two", true)),
        (Some("agent-b"), chat("three", false)),
        (None, chat("four", false)),
        (None, {
            let mut b = chat("five", false);
            b["metadata"] = json!({"session_id": "agent-b"});
            b
        }),
    ] {
        echoed.push(echoed_session(post(id, body).await.unwrap()).await);
    }
    assert_eq!(
        echoed,
        [
            Some("agent-a".to_string()),
            Some("agent-a".into()),
            Some("agent-b".into()),
            None,
            Some("agent-b".into())
        ]
    );
    let rec = p.sim.record();
    let keys = client_keys(&rec);
    assert_eq!(keys[0], keys[1], "same session, same key");
    assert_ne!(keys[0], keys[2], "other session, other key");
    assert_ne!(keys[3], keys[0]);
    assert_ne!(keys[3], keys[2], "no session: the proxy's own key");
    assert_eq!(keys[4], keys[2], "metadata.session_id is the same session");
    never_upstream(&rec, &["agent-"]);
    assert_eq!(p.state.sessions.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn unusable_session_ids_are_refused() {
    let p = Proxy::start(sim().await, |_| {}).await;
    for id in ["x".repeat(300), "has space".into()] {
        let mut body = chat("hi", false);
        body["metadata"] = json!({"session_id": id});
        let r = p.post(&body).await;
        assert_eq!(r.status(), 400);
    }
    let mut body = chat("hi", false);
    body["metadata"] = json!({"session_id": 7});
    let r = p.post(&body).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["param"], "metadata.session_id");
    assert!(p.sim.record().chats.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn codex_threads_get_their_own_keys_by_session_id_or_prompt_cache_key() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let responses = |header: Option<&'static str>, cache_key: Option<&'static str>| {
        let mut body = json!({"model": MODEL, "input": "hi"});
        if let Some(k) = cache_key {
            body["prompt_cache_key"] = json!(k);
        }
        let mut r = p.http.post(p.url("/responses")).json(&body);
        if let Some(id) = header {
            r = r.header("session-id", id);
        }
        r.send()
    };
    let mut echoed = Vec::new();
    for (header, key) in [
        (Some("thread-1"), Some("thread-1")),
        (None, Some("thread-2")),
        (None, Some("thread-1")),
        (None, None),
    ] {
        echoed.push(echoed_session(responses(header, key).await.unwrap()).await);
    }
    assert_eq!(
        echoed,
        [
            Some("thread-1".to_string()),
            Some("thread-2".into()),
            Some("thread-1".into()),
            None
        ]
    );
    let rec = p.sim.record();
    let keys = client_keys(&rec);
    assert_eq!(keys[0], keys[2], "one thread, one key");
    assert_ne!(keys[0], keys[1], "threads never share a key");
    assert_ne!(keys[3], keys[0]);
    // A prompt cache key that cannot be a session id is simply not one.
    let mut body = json!({"model": MODEL, "input": "hi", "prompt_cache_key": "has spaces in it"});
    body["stream"] = json!(false);
    let r = p
        .http
        .post(p.url("/responses"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-venice-e2ee-session").is_none());
}

/// Egress tenants (client tokens) never share a response key, with or without sessions, and
/// one tenant's session id is not another's: a hostile gateway answering tenant A with an
/// answer encrypted for tenant B gets an error for A, never B's text (issue 32, finding 6).
#[tokio::test(flavor = "multi_thread")]
async fn tenants_never_share_a_response_key() {
    use venice_e2ee_proxy::config::Secret;
    let p = Proxy::start(sim().await, |c| {
        c.server.auth_tokens = vec![Secret::new("tok-a"), Secret::new("tok-b")];
    })
    .await;
    let post = |token: &'static str, session: Option<&'static str>, body: Value| {
        let mut r = p
            .http
            .post(p.url("/chat/completions"))
            .bearer_auth(token)
            .json(&body);
        if let Some(id) = session {
            r = r.header(HEADER, id);
        }
        r.send()
    };
    for (token, session) in [
        ("tok-a", None),
        ("tok-b", None),
        ("tok-a", Some("same-id")),
        ("tok-b", Some("same-id")),
    ] {
        let r = post(token, session, chat("hello", false)).await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let rec = p.sim.record();
    let keys = client_keys(&rec);
    assert_ne!(keys[0], keys[1], "tenants without sessions");
    assert_ne!(keys[2], keys[3], "the same session id under two tenants");
    // The gateway answers tenant A with an answer encrypted for tenant B's key.
    assert_eq!(
        post("tok-b", None, chat("for b", false))
            .await
            .unwrap()
            .status(),
        200
    );
    p.sim.set_chat_fault(Some(
        venice_e2ee_tools::sim::ChatFault::AnswerToPreviousClient,
    ));
    let r = post("tok-a", None, chat("sealed for b", false))
        .await
        .unwrap();
    assert_eq!(r.status(), 502, "A never reads an answer sealed for B");
    let v: Value = r.json().await.unwrap();
    assert!(!v.to_string().contains("sealed for b"), "{v}");
    // Streaming: the stream ends with one error event instead.
    assert_eq!(
        post("tok-b", None, chat("again b", true))
            .await
            .unwrap()
            .status(),
        200
    );
    let r = post("tok-a", None, chat("streamed secret", true))
        .await
        .unwrap();
    let (events, _) = sse_events(r).await;
    assert!(!format!("{events:?}").contains("streamed secret"));
    assert!(
        events.iter().any(|e| e.get("error").is_some()),
        "{events:?}"
    );
}

/// Every session header the suite's agents send names a session: each gets its own key, the
/// same id under the same header keeps it, and the id is echoed (issue 33).
#[tokio::test(flavor = "multi_thread")]
async fn the_session_headers_agents_send_are_read() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let headers = [
        "session-id",
        "session_id",
        "x-claude-code-session-id",
        "x-session-affinity",
        "x-session-id",
        "x-opencode-session",
        "x-hermes-session-id",
        "conversation-id",
    ];
    for (i, name) in headers.iter().enumerate() {
        let id = format!("ses_{i:02}kilo");
        for _ in 0..2 {
            let r = p
                .http
                .post(p.url("/chat/completions"))
                .header(*name, &id)
                .json(&chat("hi", false))
                .send()
                .await
                .unwrap();
            assert_eq!(
                echoed_session(r).await.as_deref(),
                Some(id.as_str()),
                "{name}"
            );
        }
    }
    let rec = p.sim.record();
    let keys = client_keys(&rec);
    for pair in keys.chunks(2) {
        assert_eq!(pair[0], pair[1], "one session, one key");
    }
    let distinct: std::collections::BTreeSet<&&str> = keys.iter().collect();
    assert_eq!(
        distinct.len(),
        headers.len(),
        "every header a session of its own"
    );
    never_upstream(&rec, &["kilo"]);
}
