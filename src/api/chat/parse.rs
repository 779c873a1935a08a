//! The OpenAI chat request → the validated, normalized internal request (sealed into
//! Venice's body by `chat::sealed`).
//!
//! Every top-level field is handled by exactly one arm of `apply_field`; that match is the
//! field table docs/DIALECTS.md documents.

use crate::chat::conversation::{Message, PastCall};
use crate::chat::request::ChatRequest;
use crate::chat::structured::OutputFormat;
use crate::chat::tool_calls::defs::ToolSet;
use crate::chat::tool_calls::prompt::Family;
use crate::config::ModelsSection;
use crate::error::ApiError;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Raw tool fields, checked together once all fields are read.
#[derive(Default)]
struct ToolFields {
    tools: Value,
    choice: Value,
    parallel: Value,
}

/// How a request's model name resolves, once: an alias to the model Venice serves, and that
/// model's family (configured per model, else read from its id).
#[derive(Clone, Copy)]
pub(crate) struct ModelNames<'a> {
    pub(crate) aliases: &'a ModelsSection,
    pub(crate) families: &'a HashMap<String, Family>,
}

/// Parses with no aliases, the family chosen from the model id alone.
pub fn parse(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let (aliases, families) = (ModelsSection::default(), HashMap::new());
    parse_with(
        body,
        ModelNames {
            aliases: &aliases,
            families: &families,
        },
    )
}

/// A request body as a JSON object, or the 400 saying why it is not one.
pub(crate) fn body_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("body", format!("request body is not valid JSON: {e}")))?;
    match value {
        Value::Object(fields) => Ok(fields),
        _ => Err(ApiError::invalid(
            "body",
            "request body must be a JSON object",
        )),
    }
}

/// Parses a chat completions body.
pub(crate) fn parse_with(body: &[u8], names: ModelNames<'_>) -> Result<ChatRequest, ApiError> {
    std::str::from_utf8(body)
        .map_err(|_| ApiError::invalid("body", "request body is not valid UTF-8"))?;
    from_fields(body_object(body)?, names)
}

/// A chat request's fields (a client's, or another dialect's translated at the edge) → the
/// internal request, its model resolved through the aliases.
pub(crate) fn from_fields(
    fields: Map<String, Value>,
    names: ModelNames<'_>,
) -> Result<ChatRequest, ApiError> {
    let mut req = ChatRequest {
        model: String::new(),
        messages: Vec::new(),
        tools: None,
        family: Family::Hermes,
        stream: false,
        include_usage: false,
        forwarded: Map::new(),
        stop: Vec::new(),
        venice_flags: Map::new(),
        format: None,
        session: None,
        prompt_cache_key: None,
    };
    let mut saw_messages = false;
    let mut tool_fields = ToolFields::default();
    for (name, value) in fields {
        saw_messages |= name == "messages";
        match name.as_str() {
            "tools" => tool_fields.tools = value,
            "tool_choice" => tool_fields.choice = value,
            "parallel_tool_calls" => tool_fields.parallel = value,
            _ => apply_field(&mut req, &name, value)?,
        }
    }
    req.tools =
        ToolSet::parse(tool_fields.tools, tool_fields.choice, tool_fields.parallel)?.map(Arc::new);
    if req.model.is_empty() {
        return Err(ApiError::invalid("model", "`model` is required"));
    }
    if !saw_messages {
        return Err(ApiError::invalid("messages", "`messages` is required"));
    }
    if let Some(target) = names.aliases.resolve(&req.model) {
        req.model = target.to_string();
    }
    // The prompt and call syntax are the real model's.
    req.family = Family::for_model(&req.model, names.families);
    Ok(req)
}

fn is_null_or(v: &Value, ok: impl Fn(&Value) -> bool) -> bool {
    v.is_null() || ok(v)
}

fn number_in(v: &Value, lo: f64, hi: f64) -> bool {
    v.as_f64().is_some_and(|x| (lo..=hi).contains(&x))
}

fn apply_field(req: &mut ChatRequest, name: &str, value: Value) -> Result<(), ApiError> {
    let invalid = |msg: &str| Err(ApiError::invalid(name, format!("`{name}` {msg}")));
    let unsupported = |msg: &str| Err(ApiError::unsupported(name, format!("`{name}` {msg}")));
    match name {
        "model" => match value {
            Value::String(s) if !s.is_empty() => req.model = s,
            _ => return invalid("must be a non-empty string"),
        },
        "messages" => req.messages = parse_messages(value)?,
        "stream" => match value {
            Value::Bool(b) => req.stream = b,
            Value::Null => {}
            _ => return invalid("must be a boolean"),
        },
        "stream_options" => match &value {
            Value::Null => {}
            Value::Object(o) => match o.get("include_usage") {
                None | Some(Value::Null) => {}
                Some(Value::Bool(b)) => req.include_usage = *b,
                Some(_) => {
                    return Err(ApiError::invalid(
                        "stream_options.include_usage",
                        "`stream_options.include_usage` must be a boolean",
                    ))
                }
            },
            _ => return invalid("must be an object"),
        },
        // Generation fields Venice honours under E2EE: validated, then forwarded.
        "temperature" if is_null_or(&value, |v| number_in(v, 0.0, 2.0)) => {
            forward(req, name, value)
        }
        "top_p" if is_null_or(&value, |v| number_in(v, 0.0, 1.0)) => forward(req, name, value),
        "frequency_penalty" | "presence_penalty"
            if is_null_or(&value, |v| number_in(v, -2.0, 2.0)) =>
        {
            forward(req, name, value)
        }
        "max_tokens" | "max_completion_tokens" | "seed"
            if is_null_or(&value, |v| {
                v.as_u64().is_some_and(|n| name == "seed" || n > 0)
            }) =>
        {
            forward(req, name, value)
        }
        "stop" if is_null_or(&value, valid_stop) => {
            req.stop = match value {
                Value::String(s) => vec![s],
                Value::Array(a) => a
                    .into_iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            }
        }
        "reasoning" if value.is_null() => {}
        "reasoning" => forward(req, name, reasoning_controls(&value)?),
        "reasoning_effort" if is_null_or(&value, is_effort) => forward(req, name, value),
        "temperature"
        | "top_p"
        | "frequency_penalty"
        | "presence_penalty"
        | "max_tokens"
        | "max_completion_tokens"
        | "seed"
        | "stop"
        | "reasoning_effort" => return invalid("has an invalid value"),
        "venice_parameters" => apply_venice_parameters(req, value)?,
        "metadata" => match value.get("session_id") {
            None | Some(Value::Null) => {}
            Some(Value::String(id)) => req.session = Some(id.clone()),
            Some(_) => {
                return Err(ApiError::invalid(
                    "metadata.session_id",
                    "`metadata.session_id` must be a string",
                ))
            }
        },
        "response_format" => req.format = OutputFormat::parse(&value, name)?.map(Arc::new),
        // Harmless fields real clients send: accepted, not forwarded.
        "prompt_cache_key" => req.prompt_cache_key = value.as_str().map(str::to_string),
        "user"
        | "store"
        | "service_tier"
        | "parallel_tool_calls"
        | "logit_bias"
        | "tool_choice"
        | "safety_identifier" => {}
        "n" if is_null_or(&value, |v| v.as_u64() == Some(1)) => {}
        "n" => return unsupported("must be 1: only one choice can be generated over E2EE"),
        "logprobs" if is_null_or(&value, |v| v == &Value::Bool(false)) => {}
        "logprobs" => return unsupported("is not available over E2EE"),
        "top_logprobs" if is_null_or(&value, |v| v.as_u64() == Some(0)) => {}
        "top_logprobs" => return unsupported("is not available over E2EE"),
        "modalities" if is_null_or(&value, |v| v == &json!(["text"])) => {}
        "modalities" => return unsupported("supports only [\"text\"] over E2EE"),
        "tools" if is_null_or(&value, |v| v.as_array().is_some_and(Vec::is_empty)) => {}
        "tools" => {
            return unsupported(
                "are not supported yet: Venice cannot see encrypted tool definitions",
            )
        }
        "audio" | "web_search_options" | "prediction" | "functions" | "function_call" => {
            if !value.is_null() {
                return unsupported("is not supported over E2EE");
            }
        }
        // Unknown fields are ignored, as OpenAI-compatible servers commonly do.
        // Debug-quoted: the client chose the name.
        _ => log::debug!("ignoring unknown request field {name:?}"),
    }
    Ok(())
}

fn forward(req: &mut ChatRequest, name: &str, value: Value) {
    if !value.is_null() {
        req.forwarded.insert(name.to_string(), value);
    }
}

/// Reasoning efforts as OpenAI names them.
const EFFORTS: [&str; 6] = ["none", "minimal", "low", "medium", "high", "xhigh"];

fn is_effort(v: &Value) -> bool {
    v.as_str().is_some_and(|e| EFFORTS.contains(&e))
}

/// The reasoning controls Venice takes, as known fields with known values: the object is
/// rebuilt from them, so nothing else the client put there leaves in clear. Others
/// (`summary`, …) are dropped.
fn reasoning_controls(value: &Value) -> Result<Value, ApiError> {
    let Value::Object(given) = value else {
        return Err(ApiError::invalid(
            "reasoning",
            "`reasoning` must be an object",
        ));
    };
    let mut kept = Map::new();
    for (key, v) in given {
        let valid = match key.as_str() {
            "effort" => is_effort(v),
            "max_tokens" => v.as_u64().is_some(),
            "enabled" | "exclude" => v.is_boolean(),
            _ => {
                log::debug!("not forwarding reasoning field {key:?}");
                continue;
            }
        };
        if v.is_null() {
            continue;
        }
        if !valid {
            return Err(ApiError::invalid(
                format!("reasoning.{key}"),
                format!("`reasoning.{key}` has an invalid value"),
            ));
        }
        kept.insert(key.clone(), v.clone());
    }
    Ok(Value::Object(kept))
}

fn valid_stop(v: &Value) -> bool {
    match v {
        Value::String(_) => true,
        Value::Array(a) => a.len() <= 4 && a.iter().all(Value::is_string),
        _ => false,
    }
}

/// Only flags that keep E2EE intact are accepted; anything that would turn on a feature
/// that sees plaintext is refused rather than silently dropped.
fn apply_venice_parameters(req: &mut ChatRequest, value: Value) -> Result<(), ApiError> {
    let Value::Object(params) = value else {
        if value.is_null() {
            return Ok(());
        }
        return Err(ApiError::invalid(
            "venice_parameters",
            "`venice_parameters` must be an object",
        ));
    };
    for (key, v) in params {
        let param = format!("venice_parameters.{key}");
        let refuse = |msg: &str| {
            Err(ApiError::unsupported(
                param.clone(),
                format!("`{param}` {msg}"),
            ))
        };
        match key.as_str() {
            "strip_thinking_response" | "disable_thinking" => match v {
                Value::Bool(_) => {
                    req.venice_flags.insert(key, v);
                }
                Value::Null => {}
                _ => {
                    return Err(ApiError::invalid(
                        param.clone(),
                        format!("`{param}` must be a boolean"),
                    ))
                }
            },
            "enable_e2ee" if v == json!(true) || v.is_null() => {}
            "enable_e2ee" => return refuse("cannot be turned off: this proxy only speaks E2EE"),
            "include_venice_system_prompt" if v == json!(false) || v.is_null() => {}
            "include_venice_system_prompt" => return refuse("is not supported over E2EE"),
            "enable_web_search" if v == json!("off") || v == json!(false) || v.is_null() => {}
            "enable_web_search" => return refuse("is not supported over E2EE"),
            _ => return refuse("is not supported over E2EE"),
        }
    }
    Ok(())
}

fn parse_messages(value: Value) -> Result<Vec<Message>, ApiError> {
    let Value::Array(items) = value else {
        return Err(ApiError::invalid("messages", "`messages` must be an array"));
    };
    if items.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "`messages` must not be empty",
        ));
    }
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let m = parse_message(i, item)?;
        // A tool result must answer a call made earlier in the conversation.
        if let Message::Tool { call_id, .. } = &m {
            let known = messages.iter().any(|p| matches!(p, Message::Assistant { calls, .. } if calls.iter().any(|c: &PastCall| &c.id == call_id)));
            if !known {
                return Err(ApiError::invalid(
                    format!("messages[{i}].tool_call_id"),
                    format!("no earlier assistant tool call has the id `{call_id}`"),
                ));
            }
        }
        messages.push(m);
    }
    Ok(messages)
}

fn parse_message(i: usize, item: Value) -> Result<Message, ApiError> {
    let at = |field: &str| format!("messages[{i}].{field}");
    let Value::Object(mut m) = item else {
        return Err(ApiError::invalid(
            format!("messages[{i}]"),
            "each message must be an object",
        ));
    };
    let role = match m.get("role").and_then(Value::as_str) {
        Some(r @ ("system" | "developer" | "user" | "assistant" | "tool")) => r.to_string(),
        Some(other) => {
            return Err(ApiError::invalid(
                at("role"),
                format!("unsupported role `{other}`"),
            ));
        }
        None => return Err(ApiError::invalid(at("role"), "`role` is required")),
    };
    let content = content_text(i, m.remove("content").unwrap_or(Value::Null))?;
    let required = |c: Option<String>| {
        c.ok_or_else(|| ApiError::invalid(at("content"), "`content` is required"))
    };
    Ok(match role.as_str() {
        "system" | "developer" => Message::System(required(content)?),
        "user" => Message::User(required(content)?),
        "tool" => Message::Tool {
            call_id: m
                .get("tool_call_id")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    ApiError::invalid(at("tool_call_id"), "tool messages need `tool_call_id`")
                })?
                .to_string(),
            content: required(content)?,
        },
        _ => Message::Assistant {
            content: content.unwrap_or_default(),
            calls: past_calls(i, m.remove("tool_calls").unwrap_or(Value::Null))?,
        },
    })
}

fn past_calls(i: usize, calls: Value) -> Result<Vec<PastCall>, ApiError> {
    let param = format!("messages[{i}].tool_calls");
    let calls = match calls {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        _ => return Err(ApiError::invalid(param, "`tool_calls` must be an array")),
    };
    calls
        .iter()
        .map(|call| {
            let f = call.get("function").unwrap_or(&Value::Null);
            let name = f.get("name").and_then(Value::as_str);
            let id = call.get("id").and_then(Value::as_str);
            let (Some(name), Some(id)) = (name, id) else {
                return Err(ApiError::invalid(
                    param.clone(),
                    "each tool call needs `id` and `function.name`",
                ));
            };
            Ok(PastCall {
                id: id.to_string(),
                name: name.to_string(),
                arguments: f
                    .get("arguments")
                    .and_then(Value::as_str)
                    .unwrap_or("{}")
                    .to_string(),
            })
        })
        .collect()
}

/// String content, or text parts joined into one string. `None` for null/absent content.
fn content_text(i: usize, content: Value) -> Result<Option<String>, ApiError> {
    match content {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Array(parts) => {
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                let param = format!("messages[{i}].content[{j}]");
                match part.get("type").and_then(Value::as_str) {
                    Some("text") | Some("refusal") => {
                        let t = part
                            .get("text")
                            .or_else(|| part.get("refusal"))
                            .and_then(Value::as_str)
                            .ok_or_else(|| ApiError::invalid(format!("{param}.text"), "text parts need `text`"))?;
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(t);
                    }
                    Some(other) => {
                        return Err(ApiError::unsupported(
                            format!("{param}.type"),
                            format!("content parts of type `{other}` are not supported over E2EE (text only)"),
                        ))
                    }
                    None => return Err(ApiError::invalid(format!("{param}.type"), "content parts need `type`")),
                }
            }
            Ok(Some(text))
        }
        _ => Err(ApiError::invalid(
            format!("messages[{i}].content"),
            "`content` must be a string or an array of content parts",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::tool_calls::prompt;

    fn parse_json(v: Value) -> Result<ChatRequest, ApiError> {
        parse(v.to_string().as_bytes())
    }

    fn param_of(v: Value) -> String {
        parse_json(v).unwrap_err().param.unwrap()
    }

    #[test]
    fn normalizes_roles_and_parts() {
        let r = parse_json(json!({
            "model": "e2ee-x", "stream": true, "stream_options": {"include_usage": true},
            "temperature": 0.2, "max_tokens": 10, "n": 1, "user": "u", "logprobs": false,
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"},
            ]
        }))
        .unwrap();
        assert!(r.stream && r.include_usage);
        assert_eq!(r.messages[0], Message::System("be brief".into()));
        assert_eq!(r.messages[1], Message::User("a\nb".into()));
        let rendered = prompt::render(&r.messages, r.family, None);
        let roles: Vec<_> = rendered.iter().map(|(role, _)| *role).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert!(
            rendered[2]
                .1
                .contains(r#"{"name": "f", "arguments": {"x": 1}}"#),
            "{}",
            rendered[2].1
        );
        assert!(rendered[3].1.starts_with("<tool_response>\n"));
        assert_eq!(r.forwarded.get("temperature"), Some(&json!(0.2)));
        assert!(!r.forwarded.contains_key("user"));
    }

    #[test]
    fn bad_input_names_the_field() {
        assert_eq!(parse(b"\xff\xfe").unwrap_err().param.unwrap(), "body");
        assert_eq!(parse(b"{nope").unwrap_err().param.unwrap(), "body");
        assert_eq!(parse(b"[]").unwrap_err().param.unwrap(), "body");
        let m = json!([{"role": "user", "content": "hi"}]);
        assert_eq!(param_of(json!({"messages": m})), "model");
        assert_eq!(param_of(json!({"model": "x"})), "messages");
        assert_eq!(param_of(json!({"model": "x", "messages": []})), "messages");
        assert_eq!(param_of(json!({"model": "x", "messages": m, "n": 2})), "n");
        assert_eq!(
            param_of(json!({"model": "x", "messages": m, "logprobs": true})),
            "logprobs"
        );
        assert_eq!(
            param_of(json!({"model": "x", "messages": m, "temperature": 9})),
            "temperature"
        );
        assert_eq!(
            param_of(json!({"model": "x", "messages": m, "stop": 3})),
            "stop"
        );
        assert_eq!(
            param_of(json!({"model": "x", "messages": m, "stream": "yes"})),
            "stream"
        );
        assert_eq!(
            param_of(
                json!({"model": "x", "messages": m, "venice_parameters": {"enable_web_search": "on"}})
            ),
            "venice_parameters.enable_web_search"
        );
        assert_eq!(
            param_of(
                json!({"model": "x", "messages": m, "venice_parameters": {"include_venice_system_prompt": true}})
            ),
            "venice_parameters.include_venice_system_prompt"
        );
        assert_eq!(
            param_of(
                json!({"model": "x", "messages": m, "venice_parameters": {"enable_e2ee": false}})
            ),
            "venice_parameters.enable_e2ee"
        );
        assert_eq!(
            param_of(
                json!({"model": "x", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]})
            ),
            "messages[0].content[0].type"
        );
        assert_eq!(
            param_of(json!({"model": "x", "messages": [{"role": "wizard", "content": "x"}]})),
            "messages[0].role"
        );
        assert_eq!(
            param_of(json!({"model": "x", "messages": [{"role": "user"}]})),
            "messages[0].content"
        );
        assert_eq!(
            param_of(
                json!({"model": "x", "messages": [{"role": "tool", "tool_call_id": "nope", "content": "1"}]})
            ),
            "messages[0].tool_call_id"
        );
        assert_eq!(
            param_of(json!({"model": "x", "messages": m, "tools": [{"type": "function"}]})),
            "tools[0].function"
        );
    }

    #[test]
    fn encrypted_body_hides_every_message() {
        let model = crate::e2ee::codec::KeyPair::generate();
        let r = parse_json(json!({
            "model": "e2ee-x", "stop": ["END"],
            "venice_parameters": {"disable_thinking": true},
            "messages": [{"role": "system", "content": "secret system"}, {"role": "user", "content": "secret user"}, {"role": "assistant", "content": "secret reply"}]
        }))
        .unwrap();
        let body = r.encrypted_body(&model.recipient());
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(!text.contains("secret"));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["stream"], true);
        // Stop sequences are the client's text: applied by the proxy, never sent.
        assert!(v.get("stop").is_none(), "{v}");
        assert_eq!(r.stop, ["END"]);
        assert_eq!(v["venice_parameters"]["enable_e2ee"], true);
        assert_eq!(v["venice_parameters"]["disable_thinking"], true);
        assert_eq!(v["venice_parameters"]["enable_web_search"], "off");
        let contents: Vec<String> = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| model.decrypt_str(m["content"].as_str().unwrap()).unwrap())
            .collect();
        assert_eq!(contents, ["secret system", "secret user", "secret reply"]);
    }

    #[test]
    fn reasoning_controls_leave_as_known_fields_and_values_only() {
        let r = parse(&serde_json::to_vec(&json!({
            "model": "e2ee-x", "messages": [{"role": "user", "content": "hi"}],
            "reasoning": {"effort": "high", "summary": "my private words", "max_tokens": 512, "note": "secret"},
            "reasoning_effort": "low"
        })).unwrap())
        .unwrap();
        assert_eq!(
            r.forwarded["reasoning"],
            json!({"effort": "high", "max_tokens": 512})
        );
        assert_eq!(r.forwarded["reasoning_effort"], "low");
        for (field, bad) in [
            (
                "reasoning",
                json!({"effort": "think very hard about my secret"}),
            ),
            ("reasoning", json!("high")),
            ("reasoning_effort", json!("anything the client writes")),
        ] {
            let body = json!({"model": "e2ee-x", "messages": [{"role": "user", "content": "hi"}], field: bad});
            assert!(
                parse(&serde_json::to_vec(&body).unwrap()).is_err(),
                "{body}"
            );
        }
    }
}
