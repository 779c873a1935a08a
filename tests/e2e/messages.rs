//! Anthropic's Messages API through the real server: translated onto the chat path (same
//! attestation, encryption, tool emulation), answered as `message` objects and Messages
//! stream events, errors in Anthropic's shape.

use crate::harness::*;
use serde_json::{json, Value};
use venice_e2ee_proxy::config::{HostedTools, Secret};

/// The Claude name Claude Code asks for, aliased to the simulated E2EE model.
const CLAUDE: &str = "claude-sonnet-5";

async fn proxy() -> Proxy {
    Proxy::start(sim().await, |c| {
        c.models.aliases.insert("claude-*".into(), MODEL.into());
    })
    .await
}

async fn create(p: &Proxy, body: Value) -> reqwest::Response {
    p.http
        .post(p.url("/messages?beta=true"))
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn ask(text: &str) -> Value {
    json!({"model": CLAUDE, "max_tokens": 1024, "messages": [{"role": "user", "content": text}]})
}

fn write_tool() -> Value {
    json!([{"name": "Write", "description": "Writes a file",
        "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["file_path", "content"], "additionalProperties": false}}])
}

const WRITE_CALL: &str = "I'll write it.\n<tool_call>\n<function=Write>\n<parameter=file_path>\n/tmp/a.txt\n</parameter>\n<parameter=content>\nhello\n</parameter>\n</function>\n</tool_call>";

/// A Messages stream's events.
async fn events(r: reqwest::Response) -> Vec<Value> {
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    named_events(r).await
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

/// The blocks a stream built, from its events alone (as an SDK accumulates them).
fn accumulate(events: &[Value]) -> Vec<Value> {
    let mut blocks: Vec<Value> = Vec::new();
    let mut json_parts: Vec<String> = Vec::new();
    for e in events {
        let i = e["index"].as_u64().unwrap_or(0) as usize;
        match e["type"].as_str().unwrap() {
            "content_block_start" => {
                assert_eq!(i, blocks.len(), "blocks open in order");
                blocks.push(e["content_block"].clone());
                json_parts.push(String::new());
            }
            "content_block_delta" => {
                let d = &e["delta"];
                match d["type"].as_str().unwrap() {
                    "text_delta" => {
                        let t = blocks[i]["text"].as_str().unwrap().to_string();
                        blocks[i]["text"] = json!(t + d["text"].as_str().unwrap());
                    }
                    "thinking_delta" => {
                        let t = blocks[i]["thinking"].as_str().unwrap().to_string();
                        blocks[i]["thinking"] = json!(t + d["thinking"].as_str().unwrap());
                    }
                    "input_json_delta" => {
                        json_parts[i].push_str(d["partial_json"].as_str().unwrap())
                    }
                    other => panic!("unexpected delta {other}"),
                }
            }
            "content_block_stop" if blocks[i]["type"] == "tool_use" => {
                blocks[i]["input"] = serde_json::from_str(&json_parts[i]).unwrap();
            }
            _ => {}
        }
    }
    blocks
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_whole_and_streamed_with_thinking() {
    let p = proxy().await;
    p.sim
        .push_reply("Hello there.", Some("The user greets me."));
    let mut body = ask("hi");
    body["system"] =
        json!([{"type": "text", "text": "Be kind.", "cache_control": {"type": "ephemeral"}}]);
    let r = create(&p, body).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-venice-e2ee-signing-address"));
    let m: Value = r.json().await.unwrap();
    assert_eq!(
        (m["type"].as_str(), m["role"].as_str()),
        (Some("message"), Some("assistant"))
    );
    assert!(m["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(m["model"], CLAUDE, "the model as the client named it");
    assert_eq!(m["content"][0]["type"], "thinking");
    assert_eq!(m["content"][0]["thinking"], "The user greets me.");
    assert_eq!(
        m["content"][1],
        json!({"type": "text", "text": "Hello there."})
    );
    assert_eq!(m["stop_reason"], "end_turn");
    assert!(m["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(m["usage"]["output_tokens"].as_u64().unwrap() > 0);
    let chat = &p.sim.record().chats[0];
    assert_eq!(
        chat.body["model"], MODEL,
        "the alias resolved before Venice"
    );
    assert_eq!(chat.decrypted[..2], ["Be kind.", "hi"]);

    p.sim
        .push_reply("Streamed answer.", Some("Thinking it over."));
    let mut body = ask("go");
    body["stream"] = json!(true);
    let evs = events(create(&p, body).await).await;
    let k = kinds(&evs);
    assert_eq!(k[..2], ["message_start", "ping"]);
    assert_eq!(k[k.len() - 2..], ["message_delta", "message_stop"]);
    assert_eq!(evs[0]["message"]["content"], json!([]));
    assert_eq!(evs[0]["message"]["model"], CLAUDE);
    let blocks = accumulate(&evs);
    assert_eq!(blocks[0]["thinking"], "Thinking it over.");
    assert_eq!(blocks[1]["text"], "Streamed answer.");
    assert_eq!(blocks.len(), 2);
    let delta = &evs[evs.len() - 2];
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);

    // `display: omitted` (Claude Code's default): no thinking text reaches the client.
    p.sim.push_reply("Quiet.", Some("hidden"));
    let mut body = ask("go");
    body["stream"] = json!(true);
    body["thinking"] = json!({"type": "adaptive", "display": "omitted"});
    let blocks = accumulate(&events(create(&p, body).await).await);
    assert_eq!(blocks, [json!({"type": "text", "text": "Quiet."})]);
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_use_and_its_result_round_trip() {
    let p = proxy().await;
    for stream in [false, true] {
        p.sim.push_reply(WRITE_CALL, None);
        let mut body = ask("write hello to /tmp/a.txt");
        body["tools"] = write_tool();
        body["stream"] = json!(stream);
        let r = create(&p, body).await;
        let (content, stop) = if stream {
            let evs = events(r).await;
            assert!(evs.iter().any(|e| e["delta"]["type"] == "input_json_delta"));
            let stop = evs[evs.len() - 2]["delta"]["stop_reason"].clone();
            (accumulate(&evs), stop)
        } else {
            let m: Value = r.json().await.unwrap();
            (
                m["content"].as_array().unwrap().clone(),
                m["stop_reason"].clone(),
            )
        };
        assert_eq!(stop, "tool_use");
        assert_eq!(
            content[0]["text"].as_str().unwrap().trim(),
            "I'll write it."
        );
        let call = &content[1];
        assert_eq!(call["type"], "tool_use");
        assert!(call["id"].as_str().unwrap().starts_with("toolu_"), "{call}");
        assert_eq!(call["name"], "Write");
        assert_eq!(
            call["input"],
            json!({"file_path": "/tmp/a.txt", "content": "hello"})
        );
    }
    // The call and its result fed back: history inside the encrypted conversation.
    p.sim.clear_record();
    p.sim.push_reply("Done.", None);
    let m: Value = create(&p, json!({"model": CLAUDE, "max_tokens": 100, "tools": write_tool(), "messages": [
        {"role": "user", "content": "write hello to /tmp/a.txt"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "plan", "signature": "c2ln"},
            {"type": "tool_use", "id": "toolu_01", "name": "Write", "input": {"file_path": "/tmp/a.txt", "content": "hello"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01",
            "content": [{"type": "text", "text": "File created successfully"}]}]},
    ]})).await.json().await.unwrap();
    assert_eq!(m["content"][0]["text"], "Done.");
    assert_eq!(m["stop_reason"], "end_turn");
    let sent = &p.sim.record().chats[0].decrypted;
    assert!(
        sent.iter().any(|m| m.contains("<function=Write>")),
        "{sent:?}"
    );
    assert!(sent.iter().any(|m| m.contains("File created successfully")));
    assert!(
        !sent.iter().any(|m| m.contains("plan")),
        "earlier thinking is not re-sent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_sequences_and_the_token_limit_end_the_answer_as_anthropic_reports() {
    let p = proxy().await;
    p.sim.push_reply("one two END three", None);
    let mut body = ask("count");
    body["stop_sequences"] = json!(["END"]);
    let m: Value = create(&p, body.clone()).await.json().await.unwrap();
    assert_eq!(m["stop_reason"], "stop_sequence");
    assert_eq!(m["stop_sequence"], "END");
    assert_eq!(m["content"][0]["text"], "one two ");
    p.sim.push_reply("one two END three", None);
    body["stream"] = json!(true);
    let evs = events(create(&p, body).await).await;
    let delta = &evs[evs.len() - 2]["delta"];
    assert_eq!(
        (
            delta["stop_reason"].as_str(),
            delta["stop_sequence"].as_str()
        ),
        (Some("stop_sequence"), Some("END"))
    );

    assert!(
        p.sim
            .record()
            .chats
            .iter()
            .all(|c| c.body.get("stop").is_none()),
        "stop sequences never leave the pod"
    );
    p.sim.push_reply("a b c d e f g h", None);
    let mut body = ask("long");
    body["max_tokens"] = json!(3);
    let m: Value = create(&p, body).await.json().await.unwrap();
    assert_eq!(m["stop_reason"], "max_tokens");
    assert_eq!(m["stop_sequence"], Value::Null);
    assert_eq!(m["content"][0]["text"], "a b c");
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_come_in_anthropic_shape_with_anthropic_statuses() {
    let p = proxy().await;
    let error_of = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["type"], "error", "{v}");
        (
            status,
            v["error"]["type"].as_str().unwrap().to_string(),
            v["error"]["message"].as_str().unwrap().to_string(),
        )
    };
    let image = json!({"model": CLAUDE, "max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}]});
    let (status, kind, message) = error_of(create(&p, image).await).await;
    assert_eq!((status, kind.as_str()), (400, "invalid_request_error"));
    assert!(message.contains("messages.0.content.1.type"), "{message}");
    let (status, kind, _) = error_of(create(&p, json!({"model": "gpt-9", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]})).await).await;
    assert_eq!((status, kind.as_str()), (404, "not_found_error"));
    let r = p
        .http
        .post(p.url("/messages"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, kind, _) = error_of(r).await;
    assert_eq!((status, kind.as_str()), (400, "invalid_request_error"));
    assert!(
        p.sim.record().chats.is_empty(),
        "nothing bad reached Venice"
    );

    p.sim
        .set_chat_fault(Some(venice_e2ee_tools::sim::ChatFault::Status {
            status: 429,
            message: "slow down".into(),
            retry_after: Some("3".into()),
        }));
    let r = create(&p, ask("x")).await;
    assert_eq!(r.headers()["retry-after"], "3");
    let (status, kind, _) = error_of(r).await;
    assert_eq!((status, kind.as_str()), (429, "rate_limit_error"));

    // A failure after the stream began: an `error` event, then the stream ends.
    p.sim
        .set_chat_fault(Some(venice_e2ee_tools::sim::ChatFault::Tamper {
            at_chunk: 2,
        }));
    p.sim.push_reply("one two three four five", None);
    let mut body = ask("x");
    body["stream"] = json!(true);
    let evs = events(create(&p, body).await).await;
    let last = evs.last().unwrap();
    assert_eq!(last["type"], "error", "{evs:?}");
    assert_eq!(last["error"]["type"], "api_error");
    assert!(!kinds(&evs).contains(&"message_stop"));
    p.sim.set_chat_fault(None);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_tokens_from_x_api_key_and_sessions_from_claude_code() {
    let p = Proxy::start(sim().await, |c| {
        c.models.aliases.insert("claude-*".into(), MODEL.into());
        c.server.auth_tokens = vec![Secret::new("good-token")];
    })
    .await;
    let send = |key: Option<&'static str>,
                headers: &'static [(&'static str, &'static str)],
                body: Value| {
        let mut r = p.http.post(p.url("/messages")).json(&body);
        if let Some(k) = key {
            r = r.header("x-api-key", k);
        }
        for (h, v) in headers {
            r = r.header(*h, *v);
        }
        r.send()
    };
    let r = send(None, &[], ask("x")).await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "authentication_error");
    assert_eq!(
        send(Some("bad"), &[], ask("x")).await.unwrap().status(),
        401
    );
    let r = p
        .http
        .post(p.url("/messages"))
        .bearer_auth("good-token")
        .json(&ask("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "Authorization works as well");
    r.bytes().await.unwrap();

    // Claude Code's session: its header, or the session in `metadata.user_id`.
    let mut with_metadata = ask("x");
    with_metadata["metadata"] =
        json!({"user_id": "{\"device_id\":\"d1\",\"session_id\":\"cc-7\"}"});
    let a = echoed_session(
        send(
            Some("good-token"),
            &[("x-claude-code-session-id", "cc-7")],
            ask("x"),
        )
        .await
        .unwrap(),
    )
    .await;
    let b = echoed_session(send(Some("good-token"), &[], with_metadata).await.unwrap()).await;
    let c = echoed_session(send(Some("good-token"), &[], ask("x")).await.unwrap()).await;
    assert_eq!(
        (a.as_deref(), b.as_deref(), c),
        (Some("cc-7"), Some("cc-7"), None)
    );
    let rec = p.sim.record();
    let keys = client_keys(&rec);
    let n = keys.len();
    assert_eq!(keys[n - 3], keys[n - 2], "one session, one client key");
    assert_ne!(keys[n - 2], keys[n - 1]);
    never_upstream(&rec, &["good-token", "cc-7"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn count_tokens_aliases_and_server_tools() {
    let p = proxy().await;
    let count = |body: Value| {
        p.http
            .post(p.url("/messages/count_tokens"))
            .json(&body)
            .send()
    };
    let small: Value = count(ask("hi")).await.unwrap().json().await.unwrap();
    let mut big = ask(&"many words here ".repeat(100));
    big["tools"] = write_tool();
    let big: Value = count(big).await.unwrap().json().await.unwrap();
    let (small, big) = (
        small["input_tokens"].as_u64().unwrap(),
        big["input_tokens"].as_u64().unwrap(),
    );
    assert!(small > 0 && big > small + 300, "{small} {big}");
    let r = count(json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        p.sim.record().chats.is_empty(),
        "counting sends nothing upstream"
    );

    // Aliases are listed next to the models (a pattern is no name) and resolve.
    let p = Proxy::start(sim().await, |c| {
        c.models.aliases.insert("claude-*".into(), MODEL.into());
        c.models.aliases.insert("fast".into(), MODEL.into());
        c.models
            .aliases
            .insert("missing".into(), "e2ee-no-such-model".into());
    })
    .await;
    let (_, list) = p.get("/models").await;
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"fast") && ids.contains(&MODEL), "{ids:?}");
    assert!(
        !ids.iter().any(|i| i.contains('*') || *i == "missing"),
        "{ids:?}"
    );
    assert_eq!(p.get("/models/fast").await.0, 200);
    assert_eq!(
        p.get("/models/claude-haiku-5").await.1["id"],
        "claude-haiku-5"
    );
    assert_eq!(p.get("/models/gpt-9").await.0, 404);
    p.sim.push_reply("via alias", None);
    let r = p
        .post(&json!({"model": "fast", "messages": [{"role": "user", "content": "x"}]}))
        .await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["choices"][0]["message"]["content"],
        "via alias",
        "chat takes aliases too"
    );

    // Server tools are not offered and the request proceeds, named in a header...
    p.sim.push_reply("no search here", None);
    let mut body = ask("search");
    body["tools"] = json!([{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}, write_tool()[0]]);
    let r = create(&p, body.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-venice-e2ee-tools-omitted"],
        "web_search_20250305"
    );
    r.bytes().await.unwrap();
    let sent = p.sim.record().chats.last().unwrap().decrypted.join("\n");
    assert!(
        sent.contains("Write") && !sent.contains("web_search"),
        "{sent}"
    );
    // ...or refused, when so configured.
    let p = Proxy::start(sim().await, |c| {
        c.models.aliases.insert("claude-*".into(), MODEL.into());
        c.responses.hosted_tools = HostedTools::Error;
    })
    .await;
    let r = create(&p, body).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("web_search_20250305"));
}
