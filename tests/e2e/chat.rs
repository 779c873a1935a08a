use crate::harness::*;
use serde_json::{json, Value};
use venice_e2ee_proxy::e2ee::codec;

#[tokio::test(flavor = "multi_thread")]
async fn streaming_chat_decrypts_every_chunk() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let r = p
        .post(&chat("Hello through the enclave, twice over", true))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let address = r.headers()["x-venice-e2ee-signing-address"]
        .to_str()
        .unwrap()
        .to_string();
    let model_key = codec::parse_public_key(&p.sim.model_public_key(MODEL).unwrap()).unwrap();
    assert_eq!(
        address,
        format!("0x{}", hex::encode(codec::address(&model_key)))
    );
    let (events, broken) = sse_events(r).await;
    assert!(!broken);
    assert_eq!(events.last().unwrap(), &json!("[DONE]"));
    let chunks: Vec<&Value> = events.iter().filter(|e| e.is_object()).collect();
    assert!(
        chunks.len() >= 7,
        "one OpenAI chunk per upstream chunk: {}",
        chunks.len()
    );
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], MODEL);
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(content_of(&events), "Hello through the enclave, twice over");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none()),
        "usage only when asked"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn streaming_usage_when_asked() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let mut body = chat("count me", true);
    body["stream_options"] = json!({"include_usage": true});
    let (events, _) = sse_events(p.post(&body).await).await;
    let usage = events
        .iter()
        .rev()
        .find(|e| e.get("usage").is_some())
        .unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn non_streaming_chat_aggregates_reasoning_and_usage() {
    let p = Proxy::start(sim().await, |_| {}).await;
    p.sim
        .push_reply("The answer is 42.", Some("Let me think about it."));
    let r = p.post(&chat("What is the answer?", false)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], "The answer is 42.");
    assert_eq!(
        v["choices"][0]["message"]["reasoning_content"],
        "Let me think about it."
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["completion_tokens"], 9);
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_ciphertext_crosses_to_venice() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let secrets = [
        "SYSTEM-SECRET-7f3a",
        "USER-SECRET-91bc",
        "ASSISTANT-SECRET-44de",
        "TOOL-SECRET-0a0a",
    ];
    let body = json!({
        "model": MODEL, "stream": true, "temperature": 0.3, "max_tokens": 50,
        "messages": [
            {"role": "system", "content": secrets[0]},
            {"role": "user", "content": [{"type": "text", "text": secrets[1]}]},
            {"role": "assistant", "content": secrets[2], "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "lookup", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": secrets[3]},
            {"role": "user", "content": "and now?"},
        ]
    });
    let r = p
        .http
        .post(p.url("/chat/completions"))
        .header("authorization", "Bearer client-token-should-not-travel")
        .header("cookie", "session=abc")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (events, _) = sse_events(r).await;
    assert_eq!(content_of(&events), "and now?");

    let rec = p.sim.record();
    assert_eq!(rec.chats.len(), 1);
    let c = &rec.chats[0];
    let wire = c.body.to_string();
    for s in secrets {
        assert!(!wire.contains(s), "{s} crossed in clear");
    }
    for m in c.body["messages"].as_array().unwrap() {
        assert!(codec::looks_packed(m["content"].as_str().unwrap()), "{m}");
    }
    assert!(c.decrypted[0].contains(secrets[0]) && c.decrypted[3].contains(secrets[3]));
    assert_eq!(c.body["stream"], true);
    assert_eq!(c.body["temperature"], 0.3);
    assert_eq!(c.body["venice_parameters"]["enable_e2ee"], true);
    assert_eq!(
        c.body["venice_parameters"]["include_venice_system_prompt"],
        false
    );
    assert_eq!(c.header("x-venice-tee-signing-algo"), Some("ecdsa"));
    assert_eq!(
        c.header("x-venice-tee-model-pub-key"),
        p.sim.model_public_key(MODEL).as_deref()
    );
    assert!(c
        .header("x-venice-tee-client-pub-key")
        .is_some_and(|k| k.len() == 130));
    assert_eq!(c.header("cookie"), None);
    assert_eq!(c.header("accept"), Some("text/event-stream"));
}

fn big_conversation() -> Value {
    // 400 messages, 2 MiB: far past Pingora's 64 KiB replay buffer.
    let filler = "lorem ipsum dolor sit amet ".repeat(194);
    let mut messages: Vec<Value> = (0..399)
        .map(|i| {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            json!({"role": role, "content": format!("{i}: {filler}")})
        })
        .collect();
    messages.push(json!({"role": "user", "content": "final question after a long history"}));
    json!({"model": MODEL, "messages": messages})
}

#[tokio::test(flavor = "multi_thread")]
async fn two_mebibyte_conversation_streamed_and_not() {
    // 400 decryptions in a debug-build simulator on a loaded 2-core machine take a while.
    let p = Proxy::start(sim().await, |c| {
        c.venice.first_byte_timeout = std::time::Duration::from_secs(20);
        c.venice.idle_timeout = std::time::Duration::from_secs(20);
    })
    .await;
    let mut body = big_conversation();
    assert!(
        body.to_string().len() >= 2 << 20,
        "{}",
        body.to_string().len()
    );
    body["stream"] = json!(true);
    let (events, broken) = sse_events(p.post(&body).await).await;
    assert!(!broken);
    assert_eq!(content_of(&events), "final question after a long history");
    body["stream"] = json!(false);
    let v: Value = p.post(&body).await.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "final question after a long history"
    );
    let rec = p.sim.record();
    assert_eq!(rec.chats.len(), 2);
    for c in &rec.chats {
        assert_eq!(c.status, 200);
        assert_eq!(c.decrypted.len(), 400);
        assert!(c.decrypted[398].starts_with("398: lorem"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn models_list_and_lookup() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let (status, v) = p.get("/models").await;
    assert_eq!(status, 200);
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "e2ee-deepseek-v4-flash",
            "e2ee-glm-5-1",
            "e2ee-glm-5-2-p",
            "e2ee-gemma-3-27b-p",
            "e2ee-gemma-4-26b-a4b-uncensored-p",
            "e2ee-gpt-oss-120b-p",
            "e2ee-gpt-oss-20b-p",
            "e2ee-qwen-2-5-7b-p",
            "e2ee-qwen3-6-35b-a3b",
            "e2ee-qwen3-6-35b-a3b-uncensored-p",
            "e2ee-qwen3-vl-30b-a3b-p"
        ]
    );
    assert_eq!(v["data"][0]["object"], "model");
    assert_eq!(v["data"][0]["capabilities"]["supportsE2EE"], true);
    let (status, m) = p.get(&format!("/models/{MODEL}")).await;
    assert_eq!((status, m["id"].as_str()), (200, Some(MODEL)));
    for unusable in [
        "tee-deepseek-r1",
        "venice-uncensored",
        "e2ee-flux-image",
        "nope",
    ] {
        let (status, e) = p.get(&format!("/models/{unusable}")).await;
        assert_eq!(status, 404);
        assert_eq!(e["error"]["code"], "model_not_found");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_waits_for_prewarmed_attestations() {
    let s = sim().await;
    s.set_attestation_fault(Some(venice_e2ee_tools::sim::AttestationFault::ServerError));
    let p = Proxy::start(s, |c| {
        c.attestation.prewarm = vec![MODEL.into(), "e2ee-glm-5-1".into()];
        c.attestation.refresh_lead = std::time::Duration::from_secs(1);
    })
    .await;
    let (status, v) = p.get("/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(v["waiting_for_attestation"].as_array().unwrap().len(), 2);
    assert_eq!(p.get("/healthz").await.0, 200);
    p.sim.set_attestation_fault(None);
    let mut ready = false;
    for _ in 0..60 {
        if p.get("/readyz").await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "ready once both prewarmed models are attested");
    // Prewarmed: a chat needs no attestation fetch of its own.
    let before = p.sim.record().attestations.len();
    assert_eq!(p.post(&chat("hi", false)).await.status(), 200);
    assert_eq!(p.sim.record().attestations.len(), before);
}

/// A prewarmed model Venice no longer lists (Qwen3.5 122B, gone since August 2026) is named
/// by /readyz, on both listeners, instead of leaving the pod silently not ready; it is never
/// attested.
#[tokio::test(flavor = "multi_thread")]
async fn readyz_names_a_prewarmed_model_venice_does_not_list() {
    let gone = "e2ee-qwen3-5-122b-a10b";
    let p = Proxy::start(sim().await, |c| {
        c.attestation.prewarm = vec![MODEL.into(), gone.into()];
    })
    .await;
    let admin = format!(
        "http://{}/readyz",
        p.state.config.server.admin_listen.unwrap()
    );
    let mut seen = Value::Null;
    for _ in 0..60 {
        let (status, v) = p.get("/readyz").await;
        assert_eq!(status, 503);
        if v["not_listed_by_venice"] == json!([gone])
            && v["waiting_for_attestation"] == json!([gone])
        {
            seen = v;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(seen["status"], "not_ready", "{seen}");
    let v: Value = p
        .http
        .get(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["not_listed_by_venice"], json!([gone]));
    assert!(p.sim.record().attestations.iter().all(|(m, _)| m != gone));
}

#[tokio::test(flavor = "multi_thread")]
async fn cold_model_hit_by_twenty_requests_fetches_once() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let bodies: Vec<Value> = (0..20)
        .map(|i| chat(&format!("request {i}"), i % 2 == 0))
        .collect();
    let requests = bodies.iter().map(|b| p.post(b));
    let responses = futures_util::future::join_all(requests).await;
    for r in responses {
        assert_eq!(r.status(), 200);
    }
    let rec = p.sim.record();
    assert_eq!(rec.attestations.len(), 1, "{:?}", rec.attestations);
    assert_eq!(rec.chats.len(), 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_finish_with_the_client_key_they_started_with() {
    let s = sim().await;
    s.set_pacing(venice_e2ee_tools::sim::Pacing {
        ttft: std::time::Duration::ZERO,
        tokens_per_second: 8.0,
    });
    let p = Proxy::start(s, |c| {
        c.keys.client_key_rotation = std::time::Duration::from_secs(1);
        c.attestation.refresh_lead = std::time::Duration::from_secs(1);
    })
    .await;
    let text = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen";
    let (events, broken) = sse_events(p.post(&chat(text, true)).await).await;
    assert!(!broken);
    assert_eq!(content_of(&events), text);
    let (events, _) = sse_events(p.post(&chat("after", true)).await).await;
    assert_eq!(content_of(&events), "after");
    let rec = p.sim.record();
    let first = rec.chats[0].header("x-venice-tee-client-pub-key").unwrap();
    let second = rec.chats[1].header("x-venice-tee-client-pub-key").unwrap();
    assert_ne!(first, second, "the key rotated while the first stream ran");
}

/// A client that offers compression still gets plain SSE: tokens are flushed as they come,
/// and compressing a few bytes at a time would only delay and bloat them.
#[tokio::test(flavor = "multi_thread")]
async fn streams_are_never_compressed() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let r = p
        .http
        .post(p.url("/chat/completions"))
        .header("accept-encoding", "gzip, deflate, br, zstd")
        .json(&chat("Plain text, please", true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers().get("content-encoding"), None);
    let (events, broken) = sse_events(r).await;
    assert!(!broken);
    assert_eq!(content_of(&events), "Plain text, please");
}

/// Stop sequences are the client's text: they never leave the pod. The proxy ends the
/// decrypted answer before the first one, as OpenAI does (streaming and not, split across
/// chunks), the stream ends cleanly right away and the rest is not waited for: the upstream
/// is cancelled (issue 32, finding 7).
#[tokio::test(flavor = "multi_thread")]
async fn stop_sequences_are_applied_by_the_proxy_and_never_sent() {
    use std::time::{Duration, Instant};
    let p = Proxy::start(sim().await, |_| {}).await;
    let long: String = (0..200).map(|i| format!("w{i} ")).collect();
    p.sim.set_pacing(venice_e2ee_tools::sim::Pacing {
        ttft: Duration::ZERO,
        tokens_per_second: 40.0,
    });
    for stream in [true, false] {
        p.sim
            .push_reply(&format!("alpha beta\n\nObservation: {long}"), None);
        let mut body = chat("count", stream);
        body["stop"] = json!(["\n\nObservation:", "never"]);
        let started = Instant::now();
        let r = p.post(&body).await;
        assert_eq!(r.status(), 200);
        let (content, finish) = if stream {
            let (events, broken) = sse_events(r).await;
            assert!(!broken, "the stream ends cleanly");
            assert_eq!(events.last().unwrap(), &json!("[DONE]"));
            let finish = events
                .iter()
                .filter_map(|e| e["choices"][0]["finish_reason"].as_str())
                .next_back()
                .map(str::to_string);
            (content_of(&events), finish)
        } else {
            let v: Value = r.json().await.unwrap();
            (
                v["choices"][0]["message"]["content"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                v["choices"][0]["finish_reason"]
                    .as_str()
                    .map(str::to_string),
            )
        };
        assert_eq!(content, "alpha beta", "stream {stream}");
        assert_eq!(finish.as_deref(), Some("stop"));
        // The 200 paced words after the stop (5 s) were not waited for.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    // The connection serves the next request, and nothing of the stop left the pod.
    assert_eq!(p.post(&chat("next", false)).await.status(), 200);
    for c in &p.sim.record().chats {
        assert!(c.body.get("stop").is_none(), "{}", c.body);
        assert!(!c.body.to_string().contains("Observation"));
    }
    // An operator may send them instead (Venice then applies them).
    let p = Proxy::start(sim().await, |c| c.encryption.send_stop_sequences = true).await;
    let mut body = chat("one END two", false);
    body["stop"] = json!(["END"]);
    let v: Value = p.post(&body).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "one ");
    assert_eq!(p.sim.record().chats[0].body["stop"], json!(["END"]));
}
