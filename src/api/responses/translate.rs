//! A Responses API request → the internal request, built here from the Responses fields, so
//! it takes the one chat path (validation, attestation, encryption, tool emulation,
//! structured outputs).

use super::items::{self, ToolOrigin};
use super::store::ResponseStore;
use super::Meta;
use crate::api::fields;
use crate::chat::conversation::{Message, PastCall};
use crate::chat::request::ChatRequest;
use crate::chat::structured::OutputFormat;
use crate::chat::tool_calls::defs::{ToolChoice, ToolSet};
use crate::config::Tenant;
use crate::error::ApiError;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The internal request (checked by the caller) and what the Response echoes. `store`: the
/// response store and the tenant whose stored responses this request may continue (and whose
/// store its answer goes to).
pub fn translate(
    body: &[u8],
    store: Option<(&ResponseStore, Tenant)>,
) -> Result<(ChatRequest, Meta), ApiError> {
    let mut req = ChatRequest::new(String::new(), Vec::new());
    // Responses always report usage.
    req.include_usage = true;
    let mut meta = Meta {
        store: true,
        parallel_tool_calls: true,
        tenant: store.map_or(0, |(_, t)| t),
        ..Meta::default()
    };
    let mut prior: Vec<Message> = Vec::new();
    let mut input: Option<Value> = None;
    let mut tools = items::Translated::default();
    let mut tool_choice_value = Value::Null;
    for (name, value) in fields::body_object(body)? {
        if let Some(why) = refused(&name, &value) {
            return Err(ApiError::unsupported(name, why));
        }
        let g = &mut req.generation;
        match name.as_str() {
            "model" => {
                req.model = fields::model(&name, value)?;
                meta.model = req.model.clone();
            }
            "input" => input = Some(value),
            "instructions" => meta.instructions = fields::string(&name, value)?,
            "tools" => {
                tools = items::translate(&value)?;
                meta.tools = value;
            }
            "tool_choice" => tool_choice_value = value,
            "parallel_tool_calls" => {
                meta.parallel_tool_calls = fields::flag(&name, &value)?.unwrap_or(true)
            }
            "max_output_tokens" => {
                g.max_tokens = fields::count(&name, &value)?;
                meta.max_output_tokens = value;
            }
            "temperature" => {
                g.temperature = fields::number(&name, &value)?;
                meta.sampling.insert(name, value);
            }
            "top_p" => {
                g.top_p = fields::number(&name, &value)?;
                meta.sampling.insert(name, value);
            }
            "reasoning" => {
                let effort = value.get("effort").unwrap_or(&Value::Null);
                g.reasoning_effort = fields::effort("reasoning.effort", effort)?;
                meta.reasoning = value;
            }
            "text" => {
                if let Some(format) = value.get("format").filter(|f| !f.is_null()) {
                    req.format = text_format(format)?.map(Arc::new);
                }
                meta.text = value;
            }
            "metadata" => {
                req.session = fields::session_id(&value)?;
                meta.metadata = value;
            }
            "store" => meta.store = value != json!(false),
            "stream" => req.stream = fields::flag(&name, &value)?.unwrap_or(false),
            "previous_response_id" => {
                if let Some(id) = fields::string(&name, value)? {
                    prior = previous(store, &id)?;
                    meta.previous_response_id = Some(id);
                }
            }
            "prompt_cache_key" => req.prompt_cache_key = value.as_str().map(str::to_string),
            // include (`reasoning.encrypted_content`: the model's reasoning is never sent
            // back), truncation, client_metadata, stream_options, user, safety_identifier,
            // service_tier and future fields: nothing to honour over E2EE, nothing to refuse.
            _ => {}
        }
    }
    // Both need the tools' names as offered, whatever order the fields came in.
    let choice = tool_choice(&tool_choice_value, &tools.origins)?;
    req.tools = ToolSet::new(tools.offered, choice, meta.parallel_tool_calls)?.map(Arc::new);
    meta.tool_origins = tools.origins;
    meta.omitted_tools = tools.omitted;
    let input = input.ok_or_else(|| ApiError::invalid("input", "`input` is required"))?;
    meta.history = prior;
    meta.history
        .extend(input_messages(input, &meta.tool_origins)?);
    // Instructions apply to this response only: never carried over, never stored.
    let mut messages = Vec::with_capacity(meta.history.len() + 1);
    if let Some(instructions) = &meta.instructions {
        messages.push(Message::System(instructions.clone()));
    }
    messages.extend(meta.history.iter().cloned());
    req.messages = messages;
    Ok((req, meta))
}

/// Why a field, as given, cannot be honoured here.
fn refused(name: &str, value: &Value) -> Option<&'static str> {
    match name {
        "background" if value == &json!(true) => {
            Some("background responses are not supported by this proxy")
        }
        "conversation" | "prompt" if !value.is_null() => {
            Some("is not supported by this proxy: send `input` (and `previous_response_id`)")
        }
        "top_logprobs" if value.as_u64().unwrap_or(0) > 0 => Some("is not available over E2EE"),
        _ => None,
    }
}

/// The conversation a stored response holds, for `previous_response_id`.
fn previous(store: Option<(&ResponseStore, Tenant)>, id: &str) -> Result<Vec<Message>, ApiError> {
    let (store, tenant) = store.ok_or_else(|| {
        ApiError::invalid(
            "previous_response_id",
            "previous_response_id needs the proxy's response store, which is off: set responses.store_size above 0 (and responses.store_ttl) in its configuration, or send the whole conversation as `input`",
        )
    })?;
    let previous = store.get(tenant, id).ok_or_else(|| {
        ApiError::invalid(
            "previous_response_id",
            format!("no stored response `{id}` (unknown, expired or not stored)"),
        )
    })?;
    Ok(previous.as_ref().clone())
}

fn tool_choice(v: &Value, origins: &HashMap<String, ToolOrigin>) -> Result<ToolChoice, ApiError> {
    let kind = v.get("type").and_then(Value::as_str);
    match (v, kind) {
        (Value::Null, _) => Ok(ToolChoice::Auto),
        (Value::String(word), _) => ToolChoice::by_word(word).ok_or_else(|| {
            ApiError::invalid(
                "tool_choice",
                "`tool_choice` must be none, auto, required or a tool",
            )
        }),
        (Value::Object(o), Some(k @ ("function" | "custom"))) => {
            let name = o.get("name").and_then(Value::as_str).unwrap_or_default();
            let ns = o.get("namespace").and_then(Value::as_str);
            Ok(ToolChoice::Named(items::offered(
                origins,
                ns,
                name,
                k == "custom",
            )))
        }
        // A hosted tool is not offered: the model chooses among what is.
        (Value::Object(_), Some(_)) => Ok(ToolChoice::Auto),
        _ => Err(ApiError::unsupported(
            "tool_choice",
            "only auto, none, required or a tool can be chosen",
        )),
    }
}

/// `text.format`: JSON valid against a schema, any JSON object, or text.
fn text_format(f: &Value) -> Result<Option<OutputFormat>, ApiError> {
    match f.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(OutputFormat::json_object())),
        Some("json_schema") => OutputFormat::json_schema(
            f.get("name").and_then(Value::as_str).map(str::to_string),
            f.get("schema").cloned().unwrap_or_else(|| json!({})),
            "text.format.schema",
        )
        .map(Some),
        Some(other) => Err(ApiError::unsupported(
            "text.format.type",
            format!("response format `{other}` is not supported"),
        )),
        None => Err(ApiError::invalid("text.format.type", "`type` is required")),
    }
}

/// Text of a message's content: a string, or `input_text` / `output_text` / `text` /
/// `refusal` parts joined; other parts are refused by name.
fn content_text(content: Option<&Value>, at: &str) -> Result<Option<String>, ApiError> {
    match content {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (j, p) in parts.iter().enumerate() {
                let piece = match p.get("type").and_then(Value::as_str) {
                    Some("input_text" | "output_text" | "text") => p.get("text"),
                    Some("refusal") => p.get("refusal"),
                    Some(other) => {
                        return Err(ApiError::unsupported(
                            format!("{at}[{j}].type"),
                            format!("content parts of type `{other}` are not supported over E2EE (text only)"),
                        ))
                    }
                    None => {
                        return Err(ApiError::invalid(
                            format!("{at}[{j}].type"),
                            "content parts need `type`",
                        ))
                    }
                };
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(piece.and_then(Value::as_str).unwrap_or_default());
            }
            Ok(Some(text))
        }
        Some(_) => Err(ApiError::invalid(
            at,
            "`content` must be a string or a list of content parts",
        )),
    }
}

/// An assistant tool call, joining the assistant turn before it.
fn push_call(out: &mut Vec<Message>, call: PastCall) {
    match out.last_mut() {
        Some(Message::Assistant { calls, .. }) => calls.push(call),
        _ => out.push(Message::Assistant {
            content: String::new(),
            calls: vec![call],
        }),
    }
}

/// A tool's output (text, or content parts) as the result answering its call.
fn tool_output(i: usize, item: &Value) -> Result<Message, ApiError> {
    let call_id = item
        .get("call_id")
        .or_else(|| item.get("id"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::invalid(format!("input[{i}].call_id"), "tool outputs need `call_id`")
        })?;
    let content = match item.get("output") {
        Some(Value::String(s)) => s.clone(),
        Some(parts @ Value::Array(_)) => {
            content_text(Some(parts), &format!("input[{i}].output"))?.unwrap_or_default()
        }
        None | Some(Value::Null) => "null".to_string(),
        Some(other) => other.to_string(),
    };
    Ok(Message::Tool {
        call_id: call_id.to_string(),
        content,
    })
}

/// A call of any tool kind the client sends back, under the name the model was offered.
fn past_call(
    i: usize,
    kind: &str,
    item: &Value,
    origins: &HashMap<String, ToolOrigin>,
) -> Result<PastCall, ApiError> {
    let text = |k: &str| item.get(k).and_then(Value::as_str);
    let (name, arguments) = match kind {
        "function_call" => (
            items::offered(
                origins,
                text("namespace"),
                text("name").unwrap_or_default(),
                false,
            ),
            text("arguments").unwrap_or("{}").to_string(),
        ),
        "custom_tool_call" => (
            items::offered(
                origins,
                text("namespace"),
                text("name").unwrap_or_default(),
                true,
            ),
            json!({"input": text("input").unwrap_or_default()}).to_string(),
        ),
        _ => (
            "local_shell".to_string(),
            items::shell_arguments(item.get("action").unwrap_or(&Value::Null)),
        ),
    };
    let id = text("call_id").or_else(|| text("id")).ok_or_else(|| {
        ApiError::invalid(format!("input[{i}].call_id"), "tool calls need `call_id`")
    })?;
    Ok(PastCall {
        id: id.to_string(),
        name,
        arguments,
    })
}

/// `input` (a string, or a list of items) → the conversation. Calls of every tool kind join
/// the assistant turn before them, under the names the model was offered.
fn input_messages(
    input: Value,
    origins: &HashMap<String, ToolOrigin>,
) -> Result<Vec<Message>, ApiError> {
    let items = match input {
        Value::String(s) => return Ok(vec![Message::User(s)]),
        Value::Array(items) => items,
        _ => {
            return Err(ApiError::invalid(
                "input",
                "`input` must be a string or a list of items",
            ))
        }
    };
    let mut out: Vec<Message> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message");
        match kind {
            "message" => out.push(input_message(i, item)?),
            "function_call" | "custom_tool_call" | "local_shell_call" => {
                push_call(&mut out, past_call(i, kind, item, origins)?)
            }
            "function_call_output" | "custom_tool_call_output" | "local_shell_call_output" => {
                out.push(tool_output(i, item)?)
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

/// A message item: a turn of the system (or developer), the user or the assistant.
fn input_message(i: usize, item: &Value) -> Result<Message, ApiError> {
    let at = |f: &str| format!("input[{i}].{f}");
    let content = content_text(item.get("content"), &at("content"))?;
    let required = |c: Option<String>| {
        c.ok_or_else(|| ApiError::invalid(at("content"), "`content` is required"))
    };
    match item.get("role").and_then(Value::as_str) {
        Some("system" | "developer") => Ok(Message::System(required(content)?)),
        Some("user") => Ok(Message::User(required(content)?)),
        Some("assistant") => Ok(Message::Assistant {
            content: content.unwrap_or_default(),
            calls: Vec::new(),
        }),
        Some(other) => Err(ApiError::invalid(
            at("role"),
            format!("unsupported role `{other}`"),
        )),
        None => Err(ApiError::invalid(at("role"), "`role` is required")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::generation::Effort;

    fn translated(v: Value) -> (ChatRequest, Meta) {
        translate(v.to_string().as_bytes(), None).unwrap()
    }

    fn call(id: &str, name: &str, arguments: &str) -> PastCall {
        PastCall {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }

    fn tool(call_id: &str, content: &str) -> Message {
        Message::Tool {
            call_id: call_id.into(),
            content: content.into(),
        }
    }

    #[test]
    fn strings_items_and_instructions() {
        let (req, _) = translated(
            json!({"model": "m", "input": "hi", "instructions": "be brief", "max_output_tokens": 50,
            "reasoning": {"effort": "low"}, "metadata": {"session_id": "s"}}),
        );
        assert_eq!(
            req.messages,
            [
                Message::System("be brief".into()),
                Message::User("hi".into())
            ]
        );
        assert_eq!(req.generation.max_tokens, Some(50));
        assert_eq!(req.generation.reasoning_effort, Some(Effort::Low));
        assert_eq!(req.session.as_deref(), Some("s"));
        assert!(req.include_usage);
        let (req, meta) = translated(json!({"model": "m", "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call", "call_id": "c2", "name": "w", "arguments": "{}"},
            {"type": "reasoning", "summary": []},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        ]}));
        assert_eq!(
            req.messages,
            [
                Message::User("weather?".into()),
                Message::Assistant {
                    content: "Checking.".into(),
                    calls: vec![
                        call("c1", "w", "{\"city\":\"Paris\"}"),
                        call("c2", "w", "{}")
                    ],
                },
                tool("c1", "sunny"),
            ]
        );
        assert_eq!(
            meta.history, req.messages,
            "no instructions: all of it is kept"
        );
        assert!(req.validate().is_ok());
    }

    #[test]
    fn codex_requests_translate_and_their_calls_come_back_under_the_offered_names() {
        let (req, meta) = translated(
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
            ]}),
        );
        assert_eq!(meta.omitted_tools, ["web_search"]);
        assert!(!meta.store);
        assert_eq!(
            req.tools.as_ref().unwrap().choice,
            ToolChoice::Named("ns__f".into())
        );
        assert_eq!(req.prompt_cache_key.as_deref(), Some("thread-1"));
        let assistant = |c: PastCall| Message::Assistant {
            content: String::new(),
            calls: vec![c],
        };
        assert_eq!(
            req.messages,
            [
                Message::System("be careful".into()),
                assistant(call("c1", "ns__f", "{}")),
                tool("c1", "ok"),
                assistant(call("c2", "apply_patch", r#"{"input":"*** Begin Patch"}"#)),
                tool("c2", "Done"),
                assistant(call("c3", "local_shell", r#"{"command":["ls"]}"#)),
                tool("c3", "a.txt"),
            ],
            "hosted calls and reasoning carry nothing"
        );
        assert!(req.validate().is_ok());
    }

    #[test]
    fn tools_choice_and_formats() {
        let (req, _) = translated(json!({"model": "m", "input": "x",
            "tools": [{"type": "function", "name": "w", "description": "d", "parameters": {"type": "object"}, "strict": true}],
            "tool_choice": {"type": "function", "name": "w"},
            "text": {"format": {"type": "json_schema", "name": "p", "schema": {"type": "object"}, "strict": true}}}));
        let tools = req.tools.as_ref().unwrap();
        assert_eq!(tools.tools[0].name, "w");
        assert_eq!(tools.tools[0].description.as_deref(), Some("d"));
        assert_eq!(tools.choice, ToolChoice::Named("w".into()));
        assert_eq!(req.format.as_ref().unwrap().name.as_deref(), Some("p"));
        let (req, meta) = translated(
            json!({"model": "m", "input": "x", "tools": [{"type": "web_search_preview"}],
                "tool_choice": {"type": "web_search_preview"}}),
        );
        assert_eq!(meta.omitted_tools, ["web_search_preview"]);
        assert!(req.tools.is_none(), "nothing is offered");
        let err = |v: Value| translate(v.to_string().as_bytes(), None).unwrap_err();
        let e = err(json!({"model": "m", "input": "x", "previous_response_id": "resp_1"}));
        assert!(e.message.contains("responses.store_size"));
        let e = err(json!({"model": "m", "input": [{"type": "input_image_call"}]}));
        assert_eq!(e.code, "unsupported_parameter");
        let e = err(
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}),
        );
        assert_eq!(e.param.as_deref(), Some("input[0].content[0].type"));
        let e = err(
            json!({"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "schema": {"type": 5}}}}),
        );
        assert_eq!(e.param.as_deref(), Some("text.format.schema"));
    }
}
