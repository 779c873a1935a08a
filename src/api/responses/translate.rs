//! A Responses API request → the equivalent chat completions request, so it takes the one
//! chat path (validation, attestation, encryption, tool emulation, structured outputs).

use super::items::{self, ToolOrigin};
use super::store::ResponseStore;
use super::Meta;
use crate::config::Tenant;
use crate::error::ApiError;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// A translated request: the chat request body, what the response echoes, and the chat
/// messages of the conversation so far (kept when the response is stored).
#[derive(Debug)]
pub struct Translated {
    /// The request as chat completions fields.
    pub(crate) chat: Map<String, Value>,
    pub meta: Arc<Meta>,
}

/// `store`: the response store and the tenant whose stored responses this request may
/// continue (and whose store its answer goes to).
pub fn translate(
    body: &[u8],
    store: Option<(&ResponseStore, Tenant)>,
) -> Result<Translated, ApiError> {
    let fields = crate::api::chat::parse::body_object(body)?;
    let mut chat = Map::new();
    let mut meta = Meta {
        store: true,
        parallel_tool_calls: true,
        tenant: store.map_or(0, |(_, t)| t),
        ..Meta::default()
    };
    let mut prior: Vec<Value> = Vec::new();
    let mut input: Option<Value> = None;
    let mut tool_choice_value: Option<Value> = None;
    for (name, value) in fields {
        let unsupported = |msg: &str| Err(ApiError::unsupported(name.clone(), msg.to_string()));
        match name.as_str() {
            "model" => {
                meta.model = value.as_str().unwrap_or_default().to_string();
                chat.insert(name, value);
            }
            "input" => input = Some(value),
            "instructions" => match value {
                Value::String(s) => meta.instructions = Some(s),
                Value::Null => {}
                _ => return Err(ApiError::invalid(name, "`instructions` must be a string")),
            },
            "tools" => {
                let t = items::translate(&value)?;
                chat.insert("tools".into(), t.chat);
                meta.tool_origins = t.origins;
                meta.omitted_tools = t.omitted;
                meta.tools = value;
            }
            "tool_choice" => {
                tool_choice_value = Some(value.clone());
                meta.tool_choice = value;
            }
            "parallel_tool_calls" => {
                meta.parallel_tool_calls = value.as_bool().unwrap_or(true);
                chat.insert(name, value);
            }
            "max_output_tokens" => {
                meta.max_output_tokens = value.clone();
                chat.insert("max_tokens".into(), value);
            }
            "temperature" | "top_p" => {
                meta.sampling.insert(name.clone(), value.clone());
                chat.insert(name, value);
            }
            "reasoning" => {
                if let Some(effort) = value.get("effort").filter(|e| !e.is_null()) {
                    chat.insert("reasoning_effort".into(), effort.clone());
                }
                meta.reasoning = value;
            }
            "text" => {
                if let Some(format) = value.get("format").filter(|f| !f.is_null()) {
                    chat.insert("response_format".into(), response_format(format));
                }
                meta.text = value;
            }
            "metadata" => {
                meta.metadata = value.clone();
                chat.insert(name, value);
            }
            "store" => meta.store = value != json!(false),
            "stream" => {
                chat.insert(name, value);
            }
            "previous_response_id" => match value {
                Value::Null => {}
                Value::String(id) => {
                    let store = store.ok_or_else(|| {
                        ApiError::invalid(
                            "previous_response_id",
                            "previous_response_id needs the proxy's response store, which is off: set responses.store_size above 0 (and responses.store_ttl) in its configuration, or send the whole conversation as `input`",
                        )
                    })?;
                    let (store, tenant) = store;
                    let previous = store.get(tenant, &id).ok_or_else(|| {
                        ApiError::invalid(
                            "previous_response_id",
                            format!("no stored response `{id}` (unknown, expired or not stored)"),
                        )
                    })?;
                    prior = previous.as_ref().clone();
                    meta.previous_response_id = Some(id);
                }
                _ => {
                    return Err(ApiError::invalid(
                        name,
                        "`previous_response_id` must be a string",
                    ))
                }
            },
            "background" if value == json!(true) => {
                return unsupported("background responses are not supported by this proxy")
            }
            "conversation" | "prompt" if !value.is_null() => {
                return unsupported(
                    "is not supported by this proxy: send `input` (and `previous_response_id`)",
                )
            }
            "top_logprobs" if value.as_u64().unwrap_or(0) > 0 => {
                return unsupported("is not available over E2EE")
            }
            "user" | "safety_identifier" | "prompt_cache_key" | "service_tier" => {
                chat.insert(name, value);
            }
            // include (`reasoning.encrypted_content`: the model's reasoning is never sent
            // back), truncation, client_metadata, stream_options and future fields: nothing
            // to honour over E2EE, nothing to refuse.
            _ => {}
        }
    }
    // Both need the tools' names as offered, whatever order the fields came in.
    if let Some(choice) = tool_choice_value {
        chat.insert(
            "tool_choice".into(),
            tool_choice(&choice, &meta.tool_origins)?,
        );
    }
    let input = input.ok_or_else(|| ApiError::invalid("input", "`input` is required"))?;
    meta.history = prior;
    meta.history
        .extend(input_messages(input, &meta.tool_origins)?);
    // Instructions apply to this response only: never carried over, never stored.
    let mut messages = Vec::with_capacity(meta.history.len() + 1);
    if let Some(instructions) = &meta.instructions {
        messages.push(json!({"role": "system", "content": instructions}));
    }
    messages.extend(meta.history.iter().cloned());
    // Responses always report usage.
    chat.insert("stream_options".into(), json!({"include_usage": true}));
    chat.insert("messages".into(), Value::Array(messages));
    Ok(Translated {
        chat,
        meta: Arc::new(meta),
    })
}

fn tool_choice(v: &Value, origins: &HashMap<String, ToolOrigin>) -> Result<Value, ApiError> {
    let kind = v.get("type").and_then(Value::as_str);
    match (v, kind) {
        (Value::String(_) | Value::Null, _) => Ok(v.clone()),
        (Value::Object(o), Some(k @ ("function" | "custom"))) => {
            let name = o.get("name").and_then(Value::as_str).unwrap_or_default();
            let ns = o.get("namespace").and_then(Value::as_str);
            let offered = items::offered(origins, ns, name, k == "custom");
            Ok(json!({"type": "function", "function": {"name": offered}}))
        }
        // A hosted tool is not offered: the model chooses among what is.
        (Value::Object(_), Some(_)) => Ok(json!("auto")),
        _ => Err(ApiError::unsupported(
            "tool_choice",
            "only auto, none, required or a tool can be chosen",
        )),
    }
}

/// `text.format` → chat `response_format`.
fn response_format(f: &Value) -> Value {
    match f.get("type").and_then(Value::as_str) {
        Some("json_schema") => {
            let mut spec = Map::new();
            for k in ["name", "schema", "strict", "description"] {
                if let Some(x) = f.get(k) {
                    spec.insert(k.into(), x.clone());
                }
            }
            json!({"type": "json_schema", "json_schema": spec})
        }
        _ => f.clone(),
    }
}

/// Text of a content list: `input_text` / `output_text` / `text` parts joined; other parts
/// are passed on for the chat parser to refuse by name.
fn content(v: Value) -> Value {
    let Value::Array(parts) = v else {
        return v;
    };
    Value::Array(
        parts
            .into_iter()
            .map(|p| match p.get("type").and_then(Value::as_str) {
                Some("input_text" | "output_text" | "text") => {
                    json!({"type": "text", "text": p.get("text").cloned().unwrap_or_default()})
                }
                Some("refusal") => json!({"type": "refusal", "refusal": p.get("refusal").cloned().unwrap_or_default()}),
                _ => p,
            })
            .collect(),
    )
}

/// An assistant tool call, joining the assistant message before it as one chat turn.
fn push_call(out: &mut Vec<Value>, call: Value) {
    match out.last_mut() {
        Some(last) if last["role"] == "assistant" => {
            match last.get_mut("tool_calls").and_then(Value::as_array_mut) {
                Some(calls) => calls.push(call),
                None => last["tool_calls"] = json!([call]),
            }
        }
        _ => out.push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
    }
}

/// A tool's output (text, or content parts) as the tool message answering `call_id`.
fn tool_output(call_id: Option<&Value>, output: Option<&Value>) -> Value {
    let output = match output.cloned().unwrap_or_default() {
        Value::String(s) => Value::String(s),
        other @ Value::Array(_) => content(other),
        other => Value::String(other.to_string()),
    };
    json!({"role": "tool", "tool_call_id": call_id.cloned().unwrap_or(Value::Null), "content": output})
}

/// `input` (a string, or a list of items) → chat messages. Calls of every tool kind join
/// the assistant message before them, under the names the model was offered.
fn input_messages(
    input: Value,
    origins: &HashMap<String, ToolOrigin>,
) -> Result<Vec<Value>, ApiError> {
    let items = match input {
        Value::String(s) => return Ok(vec![json!({"role": "user", "content": s})]),
        Value::Array(items) => items,
        _ => {
            return Err(ApiError::invalid(
                "input",
                "`input` must be a string or a list of items",
            ))
        }
    };
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message");
        match kind {
            "message" => {
                let role = item.get("role").cloned().unwrap_or(Value::Null);
                let text = content(item.get("content").cloned().unwrap_or(Value::Null));
                out.push(json!({"role": role, "content": text}));
            }
            "function_call" | "custom_tool_call" | "local_shell_call" => {
                let text = |k: &str| item.get(k).and_then(Value::as_str);
                let (name, arguments) = match kind {
                    "function_call" => (
                        items::offered(
                            origins,
                            text("namespace"),
                            text("name").unwrap_or_default(),
                            false,
                        ),
                        item.get("arguments").cloned().unwrap_or(json!("{}")),
                    ),
                    "custom_tool_call" => (
                        items::offered(
                            origins,
                            text("namespace"),
                            text("name").unwrap_or_default(),
                            true,
                        ),
                        json!(json!({"input": text("input").unwrap_or_default()}).to_string()),
                    ),
                    _ => (
                        "local_shell".to_string(),
                        json!(items::shell_arguments(
                            item.get("action").unwrap_or(&Value::Null)
                        )),
                    ),
                };
                let call_id = item.get("call_id").or_else(|| item.get("id")).cloned();
                push_call(
                    &mut out,
                    json!({"id": call_id.unwrap_or(Value::Null), "type": "function",
                        "function": {"name": name, "arguments": arguments}}),
                );
            }
            "function_call_output" | "custom_tool_call_output" | "local_shell_call_output" => {
                let call_id = item.get("call_id").or_else(|| item.get("id"));
                out.push(tool_output(call_id, item.get("output")));
            }
            // What only hosted tools produce carries nothing to continue from.
            hosted if items::HOSTED_ITEMS.contains(&hosted) => {}
            // The model's own reasoning is not sent back.
            "reasoning" => {}
            other => {
                return Err(ApiError::unsupported(
                    format!("input[{i}].type"),
                    format!("input items of type `{other}` are not supported over E2EE"),
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat_of(v: Value) -> Value {
        Value::Object(translate(v.to_string().as_bytes(), None).unwrap().chat)
    }

    #[test]
    fn strings_items_and_instructions() {
        let c = chat_of(
            json!({"model": "m", "input": "hi", "instructions": "be brief", "max_output_tokens": 50,
            "reasoning": {"effort": "low"}, "metadata": {"session_id": "s"}}),
        );
        assert_eq!(
            c["messages"],
            json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
        );
        assert_eq!(c["max_tokens"], 50);
        assert_eq!(c["reasoning_effort"], "low");
        assert_eq!(c["metadata"]["session_id"], "s");
        let c = chat_of(json!({"model": "m", "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call", "call_id": "c2", "name": "w", "arguments": "{}"},
            {"type": "reasoning", "summary": []},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        ]}));
        let m = c["messages"].as_array().unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[1]["tool_calls"].as_array().unwrap().len(), 2);
        assert_eq!(m[1]["content"][0]["text"], "Checking.");
        assert_eq!(
            m[2],
            json!({"role": "tool", "tool_call_id": "c1", "content": "sunny"})
        );
    }

    #[test]
    fn codex_requests_translate_and_their_calls_come_back_under_the_offered_names() {
        let t = translate(
            json!({"model": "m", "store": false, "include": ["reasoning.encrypted_content"],
                "reasoning": {"summary": "auto"}, "prompt_cache_key": "thread-1",
                "client_metadata": {"x": "y"}, "truncation": "auto", "service_tier": "auto",
                "tools": [
                    {"type": "function", "name": "exec_command", "parameters": {"type": "object"}},
                    {"type": "namespace", "name": "ns", "description": "", "tools": [{"type": "function", "name": "f"}]},
                    {"type": "custom", "name": "apply_patch"},
                    {"type": "local_shell"},
                    {"type": "web_search", "external_web_access": false}],
                "tool_choice": {"type": "function", "name": "f", "namespace": "ns"},
                "input": [
                    {"type": "message", "role": "developer", "content": "be careful"},
                    {"type": "function_call", "call_id": "c1", "name": "f", "namespace": "ns", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "c1", "output": "ok"},
                    {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin Patch"},
                    {"type": "custom_tool_call_output", "call_id": "c2", "output": "Done"},
                    {"type": "local_shell_call", "call_id": "c3", "id": "ls_1", "status": "completed",
                     "action": {"type": "exec", "command": ["ls"], "env": {}}},
                    {"type": "local_shell_call_output", "id": "c3", "output": "a.txt"},
                    {"type": "web_search_call", "id": "ws_1", "status": "completed"},
                    {"type": "reasoning", "summary": [], "encrypted_content": "opaque"}
                ]})
            .to_string()
            .as_bytes(),
            None,
        )
        .unwrap();
        assert_eq!(t.meta.omitted_tools, ["web_search"]);
        assert!(!t.meta.store);
        let c = &t.chat;
        assert_eq!(c["tool_choice"]["function"]["name"], "ns__f");
        assert_eq!(c["prompt_cache_key"], "thread-1");
        let m = c["messages"].as_array().unwrap();
        let calls = m[1]["tool_calls"].as_array().unwrap();
        assert_eq!(calls[0]["function"]["name"], "ns__f");
        assert_eq!(
            m[2],
            json!({"role": "tool", "tool_call_id": "c1", "content": "ok"})
        );
        let custom = &m[3]["tool_calls"][0]["function"];
        assert_eq!(custom["name"], "apply_patch");
        assert_eq!(custom["arguments"], r#"{"input":"*** Begin Patch"}"#);
        assert_eq!(m[5]["tool_calls"][0]["function"]["name"], "local_shell");
        assert_eq!(m[6]["tool_call_id"], "c3");
        assert_eq!(
            m.len(),
            7,
            "hosted calls and reasoning carry nothing: {m:?}"
        );
    }

    #[test]
    fn tools_choice_and_formats() {
        let c = chat_of(json!({"model": "m", "input": "x",
            "tools": [{"type": "function", "name": "w", "description": "d", "parameters": {"type": "object"}, "strict": true}],
            "tool_choice": {"type": "function", "name": "w"},
            "text": {"format": {"type": "json_schema", "name": "p", "schema": {"type": "object"}, "strict": true}}}));
        assert_eq!(c["tools"][0]["function"]["name"], "w");
        assert_eq!(c["tool_choice"]["function"]["name"], "w");
        assert_eq!(c["response_format"]["json_schema"]["name"], "p");
        let t = translate(
            json!({"model": "m", "input": "x", "tools": [{"type": "web_search_preview"}],
                "tool_choice": {"type": "web_search_preview"}})
            .to_string()
            .as_bytes(),
            None,
        )
        .unwrap();
        assert_eq!(t.meta.omitted_tools, ["web_search_preview"]);
        assert_eq!(t.chat["tool_choice"], "auto");
        let e = translate(
            json!({"model": "m", "input": "x", "previous_response_id": "resp_1"})
                .to_string()
                .as_bytes(),
            None,
        )
        .unwrap_err();
        assert!(e.message.contains("responses.store_size"));
        let e = translate(
            json!({"model": "m", "input": [{"type": "input_image_call"}]})
                .to_string()
                .as_bytes(),
            None,
        )
        .unwrap_err();
        assert_eq!(e.code, "unsupported_parameter");
    }
}
