//! A Responses API request → the equivalent chat completions request, so it takes the one
//! chat path (validation, attestation, encryption, tool emulation, structured outputs).

use super::store::ResponseStore;
use super::Meta;
use crate::openai::error::ApiError;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// A translated request: the chat request body, what the response echoes, and the chat
/// messages of the conversation so far (kept when the response is stored).
#[derive(Debug)]
pub struct Translated {
    pub chat: Value,
    pub meta: Arc<Meta>,
}

/// Hosted tools of the Responses API that run on OpenAI's side: none exists over E2EE.
const HOSTED_TOOLS: [&str; 10] = [
    "web_search",
    "web_search_preview",
    "file_search",
    "computer_use_preview",
    "computer_use",
    "code_interpreter",
    "image_generation",
    "mcp",
    "local_shell",
    "custom",
];

pub fn translate(body: &[u8], store: Option<&ResponseStore>) -> Result<Translated, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("body", format!("request body is not valid JSON: {e}")))?;
    let Value::Object(fields) = v else {
        return Err(ApiError::invalid(
            "body",
            "request body must be a JSON object",
        ));
    };
    let mut chat = Map::new();
    let mut meta = Meta {
        store: true,
        parallel_tool_calls: true,
        ..Meta::default()
    };
    let mut prior: Vec<Value> = Vec::new();
    let mut input: Option<Value> = None;
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
                chat.insert("tools".into(), tools(&value)?);
                meta.tools = value;
            }
            "tool_choice" => {
                chat.insert("tool_choice".into(), tool_choice(&value)?);
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
                    let previous = store.get(&id).ok_or_else(|| {
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
            // include, truncation, stream_options and future fields: nothing to do.
            _ => {}
        }
    }
    let input = input.ok_or_else(|| ApiError::invalid("input", "`input` is required"))?;
    meta.history = prior;
    meta.history.extend(input_messages(input)?);
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
        chat: Value::Object(chat),
        meta: Arc::new(meta),
    })
}

/// The flat Responses function tool → the chat tool.
fn tools(v: &Value) -> Result<Value, ApiError> {
    let Some(items) = v.as_array() else {
        return if v.is_null() {
            Ok(Value::Null)
        } else {
            Err(ApiError::invalid("tools", "`tools` must be an array"))
        };
    };
    items
        .iter()
        .enumerate()
        .map(|(i, t)| match t.get("type").and_then(Value::as_str) {
            Some("function") => {
                let mut f = Map::new();
                for k in ["name", "description", "parameters", "strict"] {
                    if let Some(x) = t.get(k).filter(|x| !x.is_null()) {
                        f.insert(k.into(), x.clone());
                    }
                }
                Ok(json!({"type": "function", "function": f}))
            }
            Some(hosted) if HOSTED_TOOLS.iter().any(|h| hosted.starts_with(h)) => {
                Err(ApiError::unsupported(
                    format!("tools[{i}].type"),
                    format!("the hosted tool `{hosted}` is not available over E2EE: only function tools are"),
                ))
            }
            other => Err(ApiError::unsupported(
                format!("tools[{i}].type"),
                format!("tools of type `{}` are not supported: only function tools are", other.unwrap_or("?")),
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn tool_choice(v: &Value) -> Result<Value, ApiError> {
    match v {
        Value::String(_) | Value::Null => Ok(v.clone()),
        Value::Object(o) if o.get("type") == Some(&json!("function")) => {
            let name = o.get("name").cloned().unwrap_or(Value::Null);
            Ok(json!({"type": "function", "function": {"name": name}}))
        }
        _ => Err(ApiError::unsupported(
            "tool_choice",
            "only auto, none, required or a function can be chosen",
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

/// `input` (a string, or a list of items) → chat messages. Function calls join the
/// assistant message before them, as one chat turn.
fn input_messages(input: Value) -> Result<Vec<Value>, ApiError> {
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
            "function_call" => {
                let call = json!({
                    "id": item.get("call_id").cloned().unwrap_or(Value::Null),
                    "type": "function",
                    "function": {"name": item.get("name").cloned().unwrap_or(Value::Null),
                                 "arguments": item.get("arguments").cloned().unwrap_or(json!("{}"))},
                });
                match out.last_mut() {
                    Some(last) if last["role"] == "assistant" => {
                        match last.get_mut("tool_calls").and_then(Value::as_array_mut) {
                            Some(calls) => calls.push(call),
                            None => last["tool_calls"] = json!([call]),
                        }
                    }
                    _ => out
                        .push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
                }
            }
            "function_call_output" => {
                let output = match item.get("output").cloned().unwrap_or_default() {
                    Value::String(s) => Value::String(s),
                    other @ Value::Array(_) => content(other),
                    other => Value::String(other.to_string()),
                };
                out.push(json!({"role": "tool", "tool_call_id": item.get("call_id").cloned().unwrap_or(Value::Null), "content": output}));
            }
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
        translate(v.to_string().as_bytes(), None).unwrap().chat
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
    fn tools_choice_and_formats() {
        let c = chat_of(json!({"model": "m", "input": "x",
            "tools": [{"type": "function", "name": "w", "description": "d", "parameters": {"type": "object"}, "strict": true}],
            "tool_choice": {"type": "function", "name": "w"},
            "text": {"format": {"type": "json_schema", "name": "p", "schema": {"type": "object"}, "strict": true}}}));
        assert_eq!(c["tools"][0]["function"]["name"], "w");
        assert_eq!(c["tool_choice"]["function"]["name"], "w");
        assert_eq!(c["response_format"]["json_schema"]["name"], "p");
        let e = translate(
            json!({"model": "m", "input": "x", "tools": [{"type": "web_search_preview"}]})
                .to_string()
                .as_bytes(),
            None,
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[0].type"));
        assert!(e.message.contains("web_search_preview"));
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
