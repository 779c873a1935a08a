//! Secrets and conversation text never reach the log, even at `RUST_LOG=trace`: the real
//! `demo` binary serves chats (streaming and not, tools, Responses, a session, structured
//! output) and every kind of fault, and each log line is scanned for the upstream API key,
//! the client token, the session id and the words of every message and answer.

use crate::harness::*;
use serde_json::{json, Value};

const TOKEN: &str = "tok-3f9c1d2e-privacy-probe";
const SESSION: &str = "session-7a1b9c-privacy-probe";
/// Words of the conversation, each distinctive enough to find anywhere in a log line.
const WORDS: [&str; 4] = ["quokka", "zeppelin", "marzipan", "obsidian"];

async fn script(sim: &str, script: Value) {
    let r = reqwest::Client::new()
        .post(format!("{sim}/_sim/script"))
        .json(&script)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn trace_logs_never_hold_secrets_or_conversation_text() {
    let log = std::env::temp_dir().join(format!(
        "venice-e2ee-proxy-privacy-{}.log",
        std::process::id()
    ));
    let file = std::fs::File::create(&log).unwrap();
    let demo = Demo::start_with(
        &[],
        &[
            ("RUST_LOG", "trace".into()),
            (
                "VENICE_E2EE_PROXY__SERVER__AUTH_TOKENS",
                format!("[{TOKEN}]"),
            ),
        ],
        file.into(),
    )
    .await;
    let http = reqwest::Client::new();
    let said = format!("Tell me about the {} and the {}", WORDS[0], WORDS[1]);
    let answer = format!("The {} rides a {}", WORDS[2], WORDS[3]);
    let post = |path: &str, body: Value| {
        http.post(format!("{}/v1/{path}", demo.base))
            .bearer_auth(TOKEN)
            .header("X-Venice-Proxy-Session-Id", SESSION)
            .json(&body)
            .send()
    };
    let chat = |stream: bool| {
        json!({"model": "e2ee-qwen3-6-35b-a3b", "stream": stream,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": said}]})
    };
    let faults = [
        Value::Null,
        json!({"kind": "tamper", "at_chunk": 1}),
        json!({"kind": "plaintext", "at_chunk": 1}),
        json!({"kind": "drop", "after_chunks": 1}),
        json!({"kind": "stream_error", "after_chunks": 1, "message": "overloaded"}),
        // Venice's error text may echo the request: it is not logged.
        json!({"kind": "stream_error", "after_chunks": 1, "message": format!("bad input near {}", WORDS[1])}),
        json!({"kind": "status", "status": 400, "message": "context length exceeded"}),
    ];
    for fault in faults {
        for stream in [false, true] {
            script(
                &demo.sim_base,
                json!({"replies": [{"content": answer, "reasoning": answer}], "chat_fault": fault}),
            )
            .await;
            let r = post("chat/completions", chat(stream)).await.unwrap();
            let _ = r.bytes().await;
        }
    }
    // Tools, structured output, the Responses API.
    let call = format!("<tool_call>\n<function=lookup>\n<parameter=q>\n{}\n</parameter>\n</function>\n</tool_call>", WORDS[2]);
    script(&demo.sim_base, json!({"replies": [{"content": call}, {"content": format!("{{\"a\": \"{}\"}}", WORDS[3])}, {"content": answer}]})).await;
    let mut with_tools = chat(false);
    with_tools["tools"] = json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]);
    post("chat/completions", with_tools)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    // A streamed call to a tool that was not offered, named with the model's words: the
    // stream ends with an error event, and the log says only its code.
    let stray = format!("<tool_call>\n<function={}_tool>\n<parameter=q>\nx\n</parameter>\n</function>\n</tool_call>", WORDS[0]);
    script(&demo.sim_base, json!({"replies": [{"content": stray}]})).await;
    let mut streamed_tools = chat(true);
    streamed_tools["tools"] = json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]);
    post("chat/completions", streamed_tools)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut structured = chat(false);
    structured["response_format"] = json!({"type": "json_object"});
    post("chat/completions", structured)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    post(
        "responses",
        json!({"model": "e2ee-qwen3-6-35b-a3b", "input": said, "stream": true}),
    )
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    // A wrong token, too.
    http.post(format!("{}/v1/chat/completions", demo.base))
        .bearer_auth(format!("{TOKEN}-wrong"))
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    drop(demo);
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    // One access line per request made (and the log really is there).
    let access = text.lines().filter(|l| l.contains(" access]")).count();
    assert!(access >= 15, "{access} access lines:\n{text}");
    for line in text.lines() {
        for secret in ["sim-demo-key", TOKEN, SESSION].iter().chain(WORDS.iter()) {
            assert!(!line.contains(secret), "`{secret}` in the log: {line}");
        }
    }
}
