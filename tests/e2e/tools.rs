//! Emulated tool calls through the real server, with the simulated Venice scripted to answer
//! in each model family's call syntax.

use crate::harness::*;
use serde_json::{json, Value};
use venice_e2ee_proxy::config::{InvalidCalls, StreamValidation};

const QWEN: &str = "e2ee-qwen3-6-35b-a3b";
const GLM: &str = GLM_46_AS;
const HERMES: &str = "e2ee-gemma-3-27b-p";

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
                "required": ["city"], "additionalProperties": false}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
    ])
}

fn ask(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "tools": tools(),
           "messages": [{"role": "user", "content": "What's the weather in Paris?"}]})
}

const QWEN_CALL: &str = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}\n</tool_call>";
const GLM_CALL: &str = "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n<arg_key>days</arg_key>\n<arg_value>2</arg_value>\n</tool_call>";

fn call_of(v: &Value, i: usize) -> (&str, Value) {
    let c = &v["choices"][0]["message"]["tool_calls"][i];
    assert_eq!(c["type"], "function");
    assert!(c["id"].as_str().unwrap().starts_with("call_"));
    (
        c["function"]["name"].as_str().unwrap(),
        serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap(),
    )
}

/// Folds streamed tool-call deltas into (name, arguments text) per index.
fn streamed_calls(events: &[Value]) -> Vec<(String, String)> {
    let mut calls: Vec<(String, String)> = Vec::new();
    for e in events {
        for d in e
            .pointer("/choices/0/delta/tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let i = d["index"].as_u64().unwrap() as usize;
            if let Some(name) = d.pointer("/function/name").and_then(Value::as_str) {
                assert!(
                    d["id"].as_str().unwrap().starts_with("call_"),
                    "first delta carries the id"
                );
                assert_eq!(d["type"], "function");
                assert_eq!(calls.len(), i, "indexes are 0, 1, …");
                calls.push((name.to_string(), String::new()));
            }
            calls[i].1.push_str(
                d.pointer("/function/arguments")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
            );
        }
    }
    calls
}

fn finish_reason(events: &[Value]) -> Option<String> {
    events.iter().find_map(|e| {
        e.pointer("/choices/0/finish_reason")
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn non_streaming_calls_in_each_family() {
    let p = Proxy::start(sim().await, |_| {}).await;
    for (model, reply, content) in [
        (QWEN, QWEN_CALL, Some("Let me check.")),
        (GLM, GLM_CALL, None),
        (HERMES, "<tool_call>\n{\"arguments\": {\"city\": \"Paris\", \"days\": 2}, \"name\": \"get_weather\"}\n</tool_call>", None),
    ] {
        p.sim.push_reply(reply, None);
        let r = p.post(&ask(model, false)).await;
        assert_eq!(r.status(), 200, "{model}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{model}: {v}");
        assert_eq!(v["choices"][0]["message"]["content"].as_str(), content, "{model}");
        let (name, args) = call_of(&v, 0);
        assert_eq!((name, args), ("get_weather", json!({"city": "Paris", "days": 2})), "{model}");
    }
    // The tools travelled inside the encrypted system prompt, in each family's format.
    let rec = p.sim.record();
    assert!(rec.chats[0].decrypted[0].contains("<tool_call>\n<function=example_function_name>"));
    assert!(rec.chats[1].decrypted[0].contains("<arg_key>{arg-key-1}</arg_key>"));
    assert!(rec.chats[2].decrypted[0].contains("You are a function calling AI model"));
    for c in &rec.chats {
        assert!(c.body.get("tools").is_none());
        assert!(
            !c.body.to_string().contains("get_weather"),
            "tool definitions never cross in clear"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn streaming_calls_arrive_whole_once_valid() {
    let p = Proxy::start(sim().await, |_| {}).await;
    for (model, reply) in [(QWEN, QWEN_CALL), (GLM, GLM_CALL)] {
        p.sim.push_reply(reply, None);
        let r = p.post(&ask(model, true)).await;
        assert_eq!(r.status(), 200);
        let (events, _) = sse_events(r).await;
        assert_eq!(events.last().unwrap(), &json!("[DONE]"), "{events:?}");
        let calls = streamed_calls(&events);
        assert_eq!(calls.len(), 1, "{model}: {events:?}");
        assert_eq!(calls[0].0, "get_weather");
        assert_eq!(
            serde_json::from_str::<Value>(&calls[0].1).unwrap(),
            json!({"city": "Paris", "days": 2})
        );
        assert_eq!(finish_reason(&events).as_deref(), Some("tool_calls"));
        let text = content_of(&events);
        assert!(
            !text.contains("<tool_c") && !text.contains("arg_key"),
            "{text:?}"
        );
    }
    // The call is held until it closed and validated: one delta, whole; the text before it
    // streamed as it came.
    p.sim.push_reply(QWEN_CALL, None);
    let (events, _) = sse_events(p.post(&ask(QWEN, true)).await).await;
    let fragments = events
        .iter()
        .filter(|e| {
            e.pointer("/choices/0/delta/tool_calls/0/function/arguments")
                .is_some()
        })
        .count();
    assert_eq!(fragments, 1, "{events:?}");
    assert_eq!(content_of(&events), "Let me check.\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_calls_get_indexes() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let two = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
    p.sim.push_reply(two, None);
    let v: Value = p.post(&ask(HERMES, false)).await.json().await.unwrap();
    assert_eq!(call_of(&v, 0).0, "get_weather");
    assert_eq!(call_of(&v, 1), ("get_time", json!({})));
    p.sim.push_reply(two, None);
    let (events, _) = sse_events(p.post(&ask(HERMES, true)).await).await;
    let calls = streamed_calls(&events);
    assert_eq!(
        calls.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        ["get_weather", "get_time"]
    );
    // parallel_tool_calls: false makes a second call invalid before it is shown: corrected
    // (the model then leaves it at the first).
    p.sim.push_reply(two, None);
    p.sim.push_reply("I will wait for the weather first.", None);
    let mut body = ask(HERMES, true);
    body["parallel_tool_calls"] = json!(false);
    let (events, _) = sse_events(p.post(&body).await).await;
    let calls = streamed_calls(&events);
    assert_eq!(calls.len(), 1, "{events:?}");
    assert_eq!(calls[0].0, "get_weather");
    assert_eq!(finish_reason(&events).as_deref(), Some("tool_calls"));
    assert!(events.iter().all(|e| e.get("error").is_none()));
    // Configured to fail: one error event.
    let p = Proxy::start(sim().await, |c| {
        c.tools.max_retries = 0;
        c.tools.invalid_calls = InvalidCalls::Error;
    })
    .await;
    p.sim.push_reply(two, None);
    let (events, _) = sse_events(p.post(&body).await).await;
    assert_eq!(events.last().unwrap()["error"]["code"], "tool_call_invalid");
    assert_eq!(
        streamed_calls(&events).len(),
        1,
        "the second call never showed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_choice_variants() {
    let p = Proxy::start(sim().await, |c| {
        c.tools.max_retries = 0;
        c.tools.invalid_calls = InvalidCalls::Error;
    })
    .await;
    // none: no tools offered, the answer is plain text even if it looks like a call.
    let mut body = ask(QWEN, false);
    body["tool_choice"] = json!("none");
    p.sim.push_reply("No tools needed.", None);
    let v: Value = p.post(&body).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "No tools needed.");
    assert!(v["choices"][0]["message"].get("tool_calls").is_none());
    assert!(!p.sim.record().chats[0].decrypted[0].contains("<tools>"));
    // required: an answer without a call is invalid.
    body["tool_choice"] = json!("required");
    p.sim.push_reply("I refuse to call anything.", None);
    let r = p.post(&body).await;
    assert_eq!(r.status(), 502);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "tool_call_invalid"
    );
    // named: only that function is offered and must be called.
    body["tool_choice"] = json!({"type": "function", "function": {"name": "get_time"}});
    p.sim.push_reply(
        "<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call>",
        None,
    );
    let v: Value = p.post(&body).await.json().await.unwrap();
    assert_eq!(call_of(&v, 0).0, "get_time");
    let prompt = p.sim.record().chats.last().unwrap().decrypted[0].clone();
    assert!(
        prompt.contains("get_time")
            && !prompt.contains("get_weather")
            && prompt.contains("You must call the function `get_time`")
    );
    // auto with plain text: no calls, finish stop.
    p.sim.push_reply("It is sunny, I think.", None);
    let v: Value = p.post(&ask(QWEN, false)).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "It is sunny, I think."
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_calls_are_retried_with_a_correction() {
    let p = Proxy::start(sim().await, |_| {}).await;
    p.sim.push_reply(
        "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"town\": \"Paris\"}}</tool_call>",
        None,
    );
    p.sim.push_reply(QWEN_CALL, None);
    let r = p.post(&ask(QWEN, false)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(call_of(&v, 0).1, json!({"city": "Paris", "days": 2}));
    let rec = p.sim.record();
    assert_eq!(rec.chats.len(), 2);
    let retry = &rec.chats[1].decrypted;
    assert!(
        retry[retry.len() - 2].contains("\"town\""),
        "the bad answer is in the history"
    );
    assert!(
        retry.last().unwrap().contains("invalid tool call")
            && retry.last().unwrap().contains("city"),
        "{retry:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn spent_retries_pass_the_call_as_written_or_as_configured() {
    let bad = "<tool_call>{\"name\": \"launch_rockets\", \"arguments\": {}}</tool_call>";
    // By default, what a server without validation answers: the call as the model wrote it.
    let p = Proxy::start(sim().await, |_| {}).await;
    for _ in 0..3 {
        p.sim.push_reply(bad, None);
    }
    let v: Value = p.post(&ask(QWEN, false)).await.json().await.unwrap();
    assert_eq!(call_of(&v, 0).0, "launch_rockets");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        p.sim.record().chats.len(),
        3,
        "one try and tools.max_retries = 2 retries"
    );

    let p = Proxy::start(sim().await, |c| c.tools.invalid_calls = InvalidCalls::Error).await;
    for _ in 0..3 {
        p.sim.push_reply(bad, None);
    }
    let r = p.post(&ask(QWEN, false)).await;
    assert_eq!(r.status(), 502);
    let e = r.json::<Value>().await.unwrap();
    assert_eq!(e["error"]["code"], "tool_call_invalid");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("3 attempts"));

    let p = Proxy::start(sim().await, |c| {
        c.tools.max_retries = 0;
        c.tools.invalid_calls = InvalidCalls::Content;
    })
    .await;
    p.sim.push_reply(bad, None);
    let v: Value = p.post(&ask(QWEN, false)).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], bad);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

/// Issue 33: a streamed call is shown only once whole and valid; an invalid one is
/// corrected inside the stream (the client saw nothing of it); once the retries are spent
/// it is passed as written, or (configured) ends the stream with an error event; buffering
/// the whole answer first still works.
#[tokio::test(flavor = "multi_thread")]
async fn streamed_calls_are_held_until_valid_and_corrected_in_the_stream() {
    let missing = "I will write it.\n<tool_call>\n<function=get_weather>\n<parameter=days>\n2\n</parameter>\n</function>\n</tool_call>";
    let p = Proxy::start(sim().await, |_| {}).await;
    p.sim.push_reply(missing, None);
    p.sim.push_reply(QWEN_CALL, None);
    let (events, broken) = sse_events(p.post(&ask(QWEN, true)).await).await;
    assert!(!broken);
    assert_eq!(events.last().unwrap(), &json!("[DONE]"));
    let calls = streamed_calls(&events);
    assert_eq!(calls.len(), 1, "{events:?}");
    assert_eq!(calls[0].0, "get_weather");
    let args: Value = serde_json::from_str(&calls[0].1).unwrap();
    assert_eq!(args["city"], "Paris");
    assert_eq!(finish_reason(&events).as_deref(), Some("tool_calls"));
    assert!(
        !events.iter().any(|e| e.get("error").is_some()),
        "{events:?}"
    );
    // The text before the invalid call was shown; the call never was.
    let text: String = events
        .iter()
        .filter_map(|e| {
            e.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect();
    assert!(text.starts_with("I will write it."), "{text}");
    // The retry quoted the model's words and said what was wrong.
    let rec = p.sim.record();
    assert_eq!(rec.chats.len(), 2);
    let retry = &rec.chats[1].decrypted;
    assert!(
        retry.iter().any(|m| m.contains("<parameter=days>")),
        "{retry:?}"
    );
    assert!(retry.last().unwrap().contains("city"), "{retry:?}");

    // A tool that was not offered, every try: passed as written at the end.
    let stray = "<tool_call>{\"name\": \"launch_rockets\", \"arguments\": {}}</tool_call>";
    for _ in 0..3 {
        p.sim.push_reply(stray, None);
    }
    let (events, _) = sse_events(p.post(&ask(QWEN, true)).await).await;
    assert_eq!(streamed_calls(&events)[0].0, "launch_rockets");
    assert_eq!(events.last().unwrap(), &json!("[DONE]"));
    assert_eq!(p.sim.record().chats.len(), 5);

    // Configured to fail instead: one error event, after the retries.
    let p = Proxy::start(sim().await, |c| c.tools.invalid_calls = InvalidCalls::Error).await;
    for _ in 0..3 {
        p.sim.push_reply(missing, None);
    }
    let (events, _) = sse_events(p.post(&ask(QWEN, true)).await).await;
    let last = events.last().unwrap();
    assert_eq!(last["error"]["code"], "tool_call_invalid", "{events:?}");
    assert!(
        streamed_calls(&events).is_empty(),
        "nothing of the call was shown"
    );

    let p = Proxy::start(sim().await, |c| {
        c.tools.stream_validation = StreamValidation::Buffer
    })
    .await;
    p.sim.push_reply(missing, None);
    p.sim.push_reply(QWEN_CALL, None);
    let mut body = ask(QWEN, true);
    body["stream_options"] = json!({"include_usage": true});
    let r = p.post(&body).await;
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let (events, _) = sse_events(r).await;
    assert_eq!(events.last().unwrap(), &json!("[DONE]"));
    assert_eq!(streamed_calls(&events)[0].0, "get_weather");
    assert_eq!(finish_reason(&events).as_deref(), Some("tool_calls"));
    assert!(events
        .iter()
        .any(|e| e.get("usage").is_some_and(|u| u.is_object())));
    assert_eq!(p.sim.record().chats.len(), 2, "retried transparently");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_tool_definitions_are_refused_before_venice() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let cases = [
        (
            json!([{"type": "function", "function": {"name": "a"}}, {"type": "function", "function": {"name": "a"}}]),
            json!(null),
            "tools[1].function.name",
        ),
        (
            json!([{"type": "function", "function": {"name": "a", "parameters": [1]}}]),
            json!(null),
            "tools[0].function.parameters",
        ),
        (
            tools(),
            json!({"type": "function", "function": {"name": "nope"}}),
            "tool_choice.function.name",
        ),
    ];
    for (tools, choice, param) in cases {
        let body = json!({"model": QWEN, "tools": tools, "tool_choice": choice, "messages": [{"role": "user", "content": "x"}]});
        let r = p.post(&body).await;
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["param"], param);
    }
    assert!(p.sim.record().chats.is_empty());
}

const QWEN3: &str = "e2ee-qwen3-vl-30b-a3b-p";
const GLM5: &str = "e2ee-glm-5-2-p";
const GEMMA: &str = "e2ee-gemma-4-26b-a4b-uncensored-p";
const DEEPSEEK: &str = "e2ee-deepseek-v4-flash";

/// The same call (`get_weather(city="Paris", days=2)`) in each syntax the proxy reads.
const SYNTAXES: [(&str, &str); 6] = [
    ("json", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}\n</tool_call>"),
    ("glm", GLM_CALL),
    ("glm47", "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value><arg_key>days</arg_key><arg_value>2</arg_value></tool_call>"),
    ("qwen_xml", "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n2\n</parameter>\n</function>\n</tool_call>"),
    ("gemma4", "<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>,days:2}<tool_call|>"),
    ("dsml", "<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n<｜DSML｜parameter name=\"city\" string=\"true\">Paris</｜DSML｜parameter>\n<｜DSML｜parameter name=\"days\" string=\"false\">2</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>"),
];

/// Every family's model, answering in every syntax: whichever format a model was prompted
/// with, a call in another known syntax is still its call (typed by the schema: `days` is an
/// integer even where the syntax writes it as text).
#[tokio::test(flavor = "multi_thread")]
async fn every_family_reads_every_syntax_streaming_and_not() {
    let p = Proxy::start(sim().await, with_glm_46_family).await;
    for model in [QWEN, QWEN3, GLM, GLM5, GEMMA, DEEPSEEK, HERMES] {
        for (syntax, reply) in SYNTAXES {
            p.sim.push_reply(reply, None);
            let v: Value = p.post(&ask(model, false)).await.json().await.unwrap();
            assert_eq!(
                v["choices"][0]["finish_reason"], "tool_calls",
                "{model} {syntax}: {v}"
            );
            assert_eq!(
                call_of(&v, 0),
                ("get_weather", json!({"city": "Paris", "days": 2})),
                "{model} {syntax}"
            );
            p.sim.push_reply(reply, None);
            let (events, _) = sse_events(p.post(&ask(model, true)).await).await;
            let calls = streamed_calls(&events);
            assert_eq!(calls.len(), 1, "{model} {syntax}: {events:?}");
            assert_eq!(
                serde_json::from_str::<Value>(&calls[0].1).unwrap(),
                json!({"city": "Paris", "days": 2}),
                "{model} {syntax}"
            );
            assert_eq!(content_of(&events).trim(), "", "{model} {syntax}");
        }
    }
}

/// Each family is prompted in its own template's words, and its history is rendered in its
/// own call syntax, the tool result where its template puts it.
#[tokio::test(flavor = "multi_thread")]
async fn each_family_is_prompted_in_its_templates_words() {
    let p = Proxy::start(sim().await, with_glm_46_family).await;
    let xml_result = "<tool_response>\nsunny\n</tool_response>";
    let expected: [(&str, &str, &[&str]); 7] = [
        (QWEN, "You have access to the following functions:\n\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\"", &["<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>", xml_result]),
        (QWEN3, "For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:", &["<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>", xml_result]),
        (GLM, "<tool_call>{function-name}\n<arg_key>{arg-key-1}</arg_key>\n", &["<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n</tool_call>", xml_result]),
        (GLM5, "<tool_call>{function-name}<arg_key>{arg-key-1}</arg_key><arg_value>{arg-value-1}</arg_value>", &["<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value></tool_call>", "<tool_response>sunny</tool_response>"]),
        // Gemma 4: declarations straight after the system text; the result in the model's turn.
        (GEMMA, "Be brief.<|tool>declaration:get_weather{description:<|\"|>Current weather for a city<|\"|>,parameters:{properties:{city:{type:<|\"|>STRING<|\"|>},days:{type:<|\"|>INTEGER<|\"|>}},required:[<|\"|>city<|\"|>],type:<|\"|>OBJECT<|\"|>}}<tool|>", &["<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>}<tool_call|><|tool_response>response:get_weather{value:<|\"|>sunny<|\"|>}<tool_response|>"]),
        (DEEPSEEK, "### Available Tool Schemas\n\n{\"name\": \"get_weather\", \"description\": \"Current weather for a city\", \"parameters\": {", &["<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n<｜DSML｜parameter name=\"city\" string=\"true\">Paris</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>", "<tool_result>sunny</tool_result>"]),
        (HERMES, "You are a function calling AI model.", &["<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>", "<tool_response>\n{\"name\": \"get_weather\", \"content\": \"sunny\"}\n</tool_response>"]),
    ];
    for (model, prompt, history) in expected {
        p.sim.clear_record();
        p.sim.push_reply("Sunny.", None);
        let body = json!({"model": model, "tools": tools(), "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ]});
        assert_eq!(p.post(&body).await.status(), 200, "{model}");
        let sent = &p.sim.record().chats[0].decrypted;
        assert!(sent[0].contains(prompt), "{model}: {}", sent[0]);
        assert!(sent[0].contains("Be brief."), "{model}");
        assert_eq!(sent[1], "Weather in Paris?", "{model}");
        assert_eq!(sent[2..], *history, "{model}");
    }
}

/// Qwen3.5 may open its call inside its thinking: Venice then delivers it as reasoning.
/// When the answer has no call of its own, the call the reasoning ends with is the answer's.
#[tokio::test(flavor = "multi_thread")]
async fn a_call_at_the_end_of_the_reasoning_is_the_answers_call() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let (_, xml) = SYNTAXES[3];
    let reasoning = format!("The user wants the weather, so I call the tool.\n{xml}");
    p.sim.push_reply("", Some(&reasoning));
    let v: Value = p.post(&ask(QWEN, false)).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{v}");
    assert_eq!(
        call_of(&v, 0),
        ("get_weather", json!({"city": "Paris", "days": 2}))
    );
    assert_eq!(
        v["choices"][0]["message"]["reasoning_content"],
        "The user wants the weather, so I call the tool."
    );
    // Streaming: the reasoning before the call streams, the call arrives as deltas.
    p.sim.push_reply("", Some(&reasoning));
    let (events, _) = sse_events(p.post(&ask(QWEN, true)).await).await;
    let calls = streamed_calls(&events);
    assert_eq!(calls.len(), 1, "{events:?}");
    assert_eq!(finish_reason(&events).as_deref(), Some("tool_calls"));
    let streamed_reasoning = reasoning_of(&events);
    assert_eq!(
        streamed_reasoning.trim_end(),
        "The user wants the weather, so I call the tool."
    );
    // A call the reasoning only mentions, then a plain answer: nothing is taken, nothing lost.
    let musing = format!("{xml}\nOn second thought, I know this.");
    p.sim.push_reply("It is sunny.", Some(&musing));
    let (events, _) = sse_events(p.post(&ask(QWEN, true)).await).await;
    assert!(streamed_calls(&events).is_empty());
    assert_eq!(finish_reason(&events).as_deref(), Some("stop"));
    let streamed_reasoning = reasoning_of(&events);
    assert_eq!(streamed_reasoning, musing);
    assert_eq!(content_of(&events), "It is sunny.");
}

/// The recovery in every dialect: the Responses API and the Messages API stream the
/// corrected call as their own events, with nothing of the invalid one and no error.
#[tokio::test(flavor = "multi_thread")]
async fn a_call_is_corrected_inside_the_stream_in_every_dialect() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let missing = "<tool_call>\n<function=get_weather>\n<parameter=days>\n2\n</parameter>\n</function>\n</tool_call>";
    let weather = json!({"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"]});
    // Responses.
    p.sim.push_reply(missing, None);
    p.sim.push_reply(QWEN_CALL, None);
    let body = json!({"model": QWEN, "stream": true, "input": "Weather in Paris?",
        "tools": [{"type": "function", "name": "get_weather", "parameters": weather}]});
    let r = p
        .http
        .post(p.url("/responses"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let events = named_events(r).await;
    let done: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["type"] == "response.output_item.done" && e["item"]["type"] == "function_call"
        })
        .collect();
    assert_eq!(done.len(), 1, "{events:?}");
    assert_eq!(done[0]["item"]["name"], "get_weather");
    assert!(done[0]["item"]["arguments"]
        .as_str()
        .unwrap()
        .contains("Paris"));
    assert_eq!(events.last().unwrap()["type"], "response.completed");
    assert!(!events.iter().any(|e| e["type"] == "response.failed"));
    // Messages.
    p.sim.push_reply(missing, None);
    p.sim.push_reply(QWEN_CALL, None);
    let body = json!({"model": QWEN, "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [{"name": "get_weather", "input_schema": weather}]});
    let r = p
        .http
        .post(p.url("/messages"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let events = named_events(r).await;
    let uses: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "content_block_start" && e["content_block"]["type"] == "tool_use")
        .collect();
    assert_eq!(uses.len(), 1, "{events:?}");
    assert_eq!(uses[0]["content_block"]["name"], "get_weather");
    let stop = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert_eq!(stop["delta"]["stop_reason"], "tool_use");
    assert!(!events.iter().any(|e| e["type"] == "error"));
    assert_eq!(p.sim.record().chats.len(), 4, "one correction each");
}
