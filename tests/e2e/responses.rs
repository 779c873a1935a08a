//! The Responses API through the real server: translated onto the chat path (same
//! attestation, encryption, tool emulation), answered as Response objects and events.

use crate::harness::*;
use serde_json::{json, Value};

async fn create(p: &Proxy, body: Value) -> reqwest::Response {
    p.http
        .post(p.url("/responses"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn weather_tool() -> Value {
    json!([{"type": "function", "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
}

#[tokio::test(flavor = "multi_thread")]
async fn responses_plain_and_streamed() {
    let p = Proxy::start(sim().await, |_| {}).await;
    p.sim.push_reply("Hello there.", Some("Greeting."));
    let r = create(
        &p,
        json!({"model": MODEL, "input": "hi", "instructions": "Be kind."}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-venice-e2ee-signing-address"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["object"].as_str(), v["status"].as_str()),
        (Some("response"), Some("completed"))
    );
    assert_eq!(v["output"][0]["type"], "reasoning");
    assert_eq!(v["output"][0]["summary"][0]["text"], "Greeting.");
    assert_eq!(v["output"][1]["content"][0]["text"], "Hello there.");
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let sent = &p.sim.record().chats[0].decrypted;
    assert_eq!(sent[0], "Be kind.");
    assert_eq!(sent[1], "hi");

    p.sim.push_reply("Streamed answer.", None);
    let events =
        named_events(create(&p, json!({"model": MODEL, "input": "go", "stream": true})).await)
            .await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds[..2], ["response.created", "response.in_progress"]);
    assert_eq!(*kinds.last().unwrap(), "response.completed");
    assert!(kinds.contains(&"response.output_text.delta"));
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], i as u64);
    }
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Streamed answer.");
    assert_eq!(
        events.last().unwrap()["response"]["output"][0]["content"][0]["text"],
        "Streamed answer."
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn function_calls_round_trip_and_structured_text() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let call = "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>";
    for stream in [false, true] {
        p.sim.push_reply(call, None);
        let r = create(&p, json!({"model": MODEL, "input": "Weather in Paris?", "tools": weather_tool(), "stream": stream})).await;
        let output = if stream {
            let events = named_events(r).await;
            assert!(events
                .iter()
                .any(|e| e["type"] == "response.function_call_arguments.delta"));
            events.last().unwrap()["response"]["output"].clone()
        } else {
            r.json::<Value>().await.unwrap()["output"].clone()
        };
        let fc = output
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["type"] == "function_call")
            .unwrap()
            .clone();
        assert_eq!(fc["name"], "get_weather");
        assert_eq!(fc["arguments"], r#"{"city":"Paris"}"#);
        assert!(fc["call_id"].as_str().unwrap().starts_with("call_"));
    }
    // The call and its output fed back: rendered as history inside the encrypted conversation.
    p.sim.clear_record();
    p.sim.push_reply("It is sunny.", None);
    let v: Value = create(&p, json!({"model": MODEL, "tools": weather_tool(), "input": [
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny, 21C"},
    ]})).await.json().await.unwrap();
    assert_eq!(v["output"][0]["content"][0]["text"], "It is sunny.");
    let sent = &p.sim.record().chats[0].decrypted;
    assert!(sent.iter().any(|m| m.contains("<function=get_weather>")));
    assert!(sent
        .iter()
        .any(|m| m.contains("<tool_response>\nsunny, 21C\n</tool_response>")));
    // text.format: the bare JSON as output_text.
    p.sim
        .push_reply("```json\n{\"city\": \"Paris\"}\n```", None);
    let v: Value = create(&p, json!({"model": MODEL, "input": "json please", "text": {"format": {"type": "json_schema",
        "name": "place", "schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}}))
        .await.json().await.unwrap();
    assert_eq!(v["output"][0]["content"][0]["text"], r#"{"city":"Paris"}"#);
    assert_eq!(v["text"]["format"]["name"], "place");
}

#[tokio::test(flavor = "multi_thread")]
async fn hosted_tools_and_previous_responses() {
    // Hosted tools cannot run over E2EE: by default left out (and named), the request answered.
    let p = Proxy::start(sim().await, |_| {}).await;
    let r = create(
        &p,
        json!({"model": MODEL, "input": "x", "tools": [{"type": "web_search_preview"},
            {"type": "code_interpreter", "container": {"type": "auto"}}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-venice-e2ee-tools-omitted"],
        "web_search_preview, code_interpreter"
    );
    let strict = Proxy::start(sim().await, |c| {
        c.responses.hosted_tools = venice_e2ee_proxy::config::HostedTools::Error
    })
    .await;
    let r = create(
        &strict,
        json!({"model": MODEL, "input": "x", "tools": [{"type": "web_search_preview"}]}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("web_search_preview"),
        "{v}"
    );
    assert!(strict.sim.record().chats.is_empty());
    p.sim.clear_record();
    let r = create(
        &p,
        json!({"model": MODEL, "input": "x", "previous_response_id": "resp_1"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("responses.store_size"),
        "{v}"
    );
    assert!(p.sim.record().chats.is_empty());

    let p = Proxy::start(sim().await, |c| c.responses.store_size = 16).await;
    p.sim.push_reply("First answer.", None);
    let first: Value = create(&p, json!({"model": MODEL, "input": "first question"}))
        .await
        .json()
        .await
        .unwrap();
    p.sim.push_reply("Second answer.", None);
    let id = first["id"].as_str().unwrap();
    let second = create(
        &p,
        json!({"model": MODEL, "input": "second question", "previous_response_id": id}),
    )
    .await;
    assert_eq!(second.status(), 200, "{}", second.text().await.unwrap());
    let sent = &p.sim.record().chats[1].decrypted;
    assert_eq!(
        sent,
        &["first question", "First answer.", "second question"]
    );
    let r = create(
        &p,
        json!({"model": MODEL, "input": "x", "previous_response_id": "resp_nope"}),
    )
    .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_that_fails_ends_with_response_failed() {
    let p = Proxy::start(sim().await, |_| {}).await;
    p.sim.push_reply("one two three four five six", None);
    p.sim
        .set_chat_fault(Some(venice_e2ee_tools::sim::ChatFault::Tamper {
            at_chunk: 2,
        }));
    let events =
        named_events(create(&p, json!({"model": MODEL, "input": "x", "stream": true})).await).await;
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.failed", "{events:?}");
    assert_eq!(last["response"]["status"], "failed");
    assert_eq!(last["response"]["error"]["code"], "e2ee_decryption_failed");
    assert!(!events.iter().any(|e| e["type"] == "response.completed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn namespaced_and_custom_tool_calls_come_back_in_their_own_shapes() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let tools = json!([
        {"type": "namespace", "name": "crm", "description": "Customer records", "tools": [
            {"type": "function", "name": "lookup", "parameters": {"type": "object",
                "properties": {"id": {"type": "string"}}, "required": ["id"]}}]},
        {"type": "custom", "name": "apply_patch", "description": "Edit files with a patch."}
    ]);
    // The model calls the namespaced function as offered (`crm__lookup`).
    p.sim.push_reply(
        "<tool_call>\n<function=crm__lookup>\n<parameter=id>\n42\n</parameter>\n</function>\n</tool_call>",
        None,
    );
    let v: Value = create(
        &p,
        json!({"model": MODEL, "input": "find 42", "tools": tools}),
    )
    .await
    .json()
    .await
    .unwrap();
    let call = &v["output"][0];
    assert_eq!(
        (
            call["type"].as_str(),
            call["name"].as_str(),
            call["namespace"].as_str()
        ),
        (Some("function_call"), Some("lookup"), Some("crm")),
        "{v}"
    );
    // A custom tool, streamed: its free-form input arrives whole in custom_tool_call events.
    p.sim.push_reply(
        "<tool_call>\n<function=apply_patch>\n<parameter=input>\n*** Begin Patch\n</parameter>\n</function>\n</tool_call>",
        None,
    );
    let r = create(
        &p,
        json!({"model": MODEL, "input": "patch it", "tools": tools, "stream": true}),
    )
    .await;
    let events = named_events(r).await;
    let done = events
        .iter()
        .find(|e| e["type"] == "response.custom_tool_call_input.done")
        .expect("custom tool input events");
    assert_eq!(done["input"], "*** Begin Patch");
    let completed = events.last().unwrap();
    assert_eq!(
        completed["response"]["output"][0]["type"],
        "custom_tool_call"
    );
    // The call and its output go back as input items, to the model under the offered names.
    p.sim.push_reply("Patched.", None);
    let r = create(&p, json!({"model": MODEL, "tools": tools, "input": [
        {"role": "user", "content": "patch it"},
        {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "c1", "output": "Done!"},
        {"type": "function_call", "call_id": "c2", "name": "lookup", "namespace": "crm", "arguments": "{\"id\":\"42\"}"},
        {"type": "function_call_output", "call_id": "c2", "output": "Ada"}
    ]}))
    .await;
    assert_eq!(r.status(), 200);
    let sent = p.sim.record().chats.last().unwrap().decrypted.join("\n");
    assert!(sent.contains("Done!") && sent.contains("Ada"), "{sent}");
    assert!(sent.contains("crm__lookup"), "{sent}");
}
