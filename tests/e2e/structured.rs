//! Structured outputs through the real server: the schema travels inside the encrypted
//! conversation, the JSON is extracted and validated, invalid answers are retried (non-
//! streaming) or end the stream with an error event.

use crate::harness::*;
use serde_json::{json, Value};

fn person_format() -> Value {
    json!({"type": "json_schema", "json_schema": {"name": "person", "strict": true, "schema": {
        "type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"], "additionalProperties": false}}})
}

fn ask(stream: bool, format: Value) -> Value {
    json!({"model": MODEL, "stream": stream, "response_format": format,
           "messages": [{"role": "user", "content": "Who wrote the first program?"}]})
}

fn message_content(v: &Value) -> &str {
    v["choices"][0]["message"]["content"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn json_schema_answers_are_extracted_validated_and_retried() {
    let p = Proxy::start(sim().await, |_| {}).await;
    // Fenced and with prose around it: the client gets the bare JSON.
    p.sim.push_reply(
        "Here:\n```json\n{\"name\": \"Ada\", \"age\": 36}\n```",
        None,
    );
    let r = p.post(&ask(false, person_format())).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(message_content(&v), r#"{"name":"Ada","age":36}"#);
    let sent = &p.sim.record().chats[0].decrypted[0];
    assert!(
        sent.contains("valid against the following JSON Schema (named `person`)"),
        "{sent}"
    );
    assert!(!p.sim.record().chats[0]
        .body
        .to_string()
        .contains("additionalProperties"));

    // Invalid, then corrected: one retry that says what was wrong.
    p.sim.clear_record();
    p.sim.push_reply("{\"name\": \"Ada\"}", None);
    p.sim.push_reply("{\"name\": \"Ada\", \"age\": 36}", None);
    let v: Value = p
        .post(&ask(false, person_format()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(message_content(&v), r#"{"name":"Ada","age":36}"#);
    let rec = p.sim.record();
    assert_eq!(rec.chats.len(), 2);
    let correction = rec.chats[1].decrypted.last().unwrap();
    assert!(correction.contains("age"), "{correction}");

    // Still invalid after the retries: 502 structured_output_invalid.
    for _ in 0..3 {
        p.sim.push_reply("I'd rather not say.", None);
    }
    let r = p.post(&ask(false, person_format())).await;
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "structured_output_invalid");

    // json_object: any object.
    p.sim.push_reply("{\"anything\": [1, 2]}", None);
    let v: Value = p
        .post(&ask(false, json!({"type": "json_object"})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(message_content(&v), r#"{"anything":[1,2]}"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn streamed_structured_outputs_carry_only_the_json_and_are_checked_at_the_end() {
    let p = Proxy::start(sim().await, |_| {}).await;
    p.sim.push_reply(
        "Sure! {\"name\": \"Ada\", \"age\": 36} Anything else?",
        None,
    );
    let (events, broken) = sse_events(p.post(&ask(true, person_format())).await).await;
    assert!(!broken);
    assert_eq!(content_of(&events), "{\"name\": \"Ada\", \"age\": 36}");
    assert_eq!(events.last().unwrap(), "[DONE]");
    // Invalid: the stream ends with an error event, no [DONE].
    p.sim.push_reply("{\"name\": 7}", None);
    let (events, _) = sse_events(p.post(&ask(true, person_format())).await).await;
    assert_eq!(
        events.last().unwrap()["error"]["code"],
        "structured_output_invalid",
        "{events:?}"
    );
    // With buffered validation the invalid first answer is retried before anything streams.
    let p = Proxy::start(sim().await, |c| {
        c.tools.stream_validation = venice_e2ee_proxy::config::StreamValidation::Buffer
    })
    .await;
    p.sim.push_reply("{\"name\": 7}", None);
    p.sim.push_reply("{\"name\": \"Ada\", \"age\": 36}", None);
    let (events, _) = sse_events(p.post(&ask(true, person_format())).await).await;
    assert_eq!(content_of(&events), r#"{"name":"Ada","age":36}"#);
    assert_eq!(events.last().unwrap(), "[DONE]");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_formats_are_refused_before_venice() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let bad = json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 12}}});
    let r = p.post(&ask(false, bad)).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["param"], "response_format.json_schema.schema");
    let r = p.post(&ask(false, json!({"type": "grammar"}))).await;
    assert_eq!(r.status(), 400);
    assert!(p.sim.record().chats.is_empty());
}
