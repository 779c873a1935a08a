//! The chat completions request → the internal request, its fields read into typed values
//! (checked once, whichever door built it, by `ChatRequest::validate`).
//!
//! Every top-level field is handled by exactly one arm of `apply_field`; that match is the
//! field table docs/DIALECTS.md documents.

use super::super::fields;
use crate::chat::conversation::{Message, PastCall};
use crate::chat::request::{ChatRequest, ModelNames};
use crate::chat::structured::OutputFormat;
use crate::chat::tool_calls::defs::ToolSet;
use crate::config::ModelsSection;
use crate::error::ApiError;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Raw tool fields, checked together once all fields are read.
#[derive(Default)]
struct ToolFields {
    tools: Value,
    choice: Value,
    parallel: Value,
}

/// Parses, validates and resolves with no aliases, the family chosen from the model id alone.
pub fn parse(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let (aliases, families) = (ModelsSection::default(), HashMap::new());
    let names = ModelNames {
        aliases: &aliases,
        families: &families,
    };
    super::super::checked(parse_body(body)?, names)
}

/// A chat completions body → the internal request (validated and resolved by the caller).
pub(crate) fn parse_body(body: &[u8]) -> Result<ChatRequest, ApiError> {
    std::str::from_utf8(body)
        .map_err(|_| ApiError::invalid("body", "request body is not valid UTF-8"))?;
    let mut req = ChatRequest::new(String::new(), Vec::new());
    let mut saw_messages = false;
    let mut tool_fields = ToolFields::default();
    for (name, value) in fields::body_object(body)? {
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
    Ok(req)
}

fn is_null_or(v: &Value, ok: impl Fn(&Value) -> bool) -> bool {
    v.is_null() || ok(v)
}

fn apply_field(req: &mut ChatRequest, name: &str, value: Value) -> Result<(), ApiError> {
    let unsupported = |msg: &str| Err(ApiError::unsupported(name, format!("`{name}` {msg}")));
    let g = &mut req.generation;
    match name {
        "model" => req.model = fields::model(name, value)?,
        "messages" => req.messages = parse_messages(value)?,
        "stream" => req.stream = fields::flag(name, &value)?.unwrap_or(false),
        "stream_options" => match &value {
            Value::Null => {}
            Value::Object(o) => {
                let usage = o.get("include_usage").unwrap_or(&Value::Null);
                req.include_usage =
                    fields::flag("stream_options.include_usage", usage)?.unwrap_or(false);
            }
            _ => {
                return Err(ApiError::invalid(
                    name,
                    format!("`{name}` must be an object"),
                ))
            }
        },
        // Generation controls Venice honours under E2EE: typed here, ranges checked once on
        // the internal request, then forwarded.
        "temperature" => g.temperature = fields::number(name, &value)?,
        "top_p" => g.top_p = fields::number(name, &value)?,
        "frequency_penalty" => g.frequency_penalty = fields::number(name, &value)?,
        "presence_penalty" => g.presence_penalty = fields::number(name, &value)?,
        "max_tokens" => g.max_tokens = fields::count(name, &value)?,
        "max_completion_tokens" => g.max_completion_tokens = fields::count(name, &value)?,
        "seed" => g.seed = fields::count(name, &value)?,
        "reasoning" => g.reasoning = fields::reasoning(name, &value)?,
        "reasoning_effort" => g.reasoning_effort = fields::effort(name, &value)?,
        "stop" => req.stop = stop_sequences(value)?,
        "venice_parameters" => apply_venice_parameters(req, value)?,
        "metadata" => req.session = fields::session_id(&value)?,
        "response_format" => req.format = OutputFormat::parse(&value, name)?.map(Arc::new),
        // Harmless fields real clients send: accepted, not forwarded.
        "prompt_cache_key" => req.prompt_cache_key = value.as_str().map(str::to_string),
        "user" | "store" | "service_tier" | "logit_bias" | "safety_identifier" => {}
        "n" if is_null_or(&value, |v| v.as_u64() == Some(1)) => {}
        "n" => return unsupported("must be 1: only one choice can be generated over E2EE"),
        "logprobs" if is_null_or(&value, |v| v == &Value::Bool(false)) => {}
        "logprobs" => return unsupported("is not available over E2EE"),
        "top_logprobs" if is_null_or(&value, |v| v.as_u64() == Some(0)) => {}
        "top_logprobs" => return unsupported("is not available over E2EE"),
        "modalities" if is_null_or(&value, |v| v == &json!(["text"])) => {}
        "modalities" => return unsupported("supports only [\"text\"] over E2EE"),
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

/// `stop`: a string or a list of strings (how many is checked on the internal request).
fn stop_sequences(value: Value) -> Result<Vec<String>, ApiError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s]),
        Value::Array(a) if a.iter().all(Value::is_string) => Ok(a
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()),
        _ => Err(ApiError::invalid("stop", "`stop` has an invalid value")),
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
            "strip_thinking_response" => {
                req.venice.strip_thinking_response = fields::flag(&param, &v)?
            }
            "disable_thinking" => req.venice.disable_thinking = fields::flag(&param, &v)?,
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
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| parse_message(i, item))
        .collect()
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
        assert_eq!(r.generation.temperature, Some(0.2));
        let sent: Value = serde_json::from_slice(
            &r.encrypted_body(&crate::e2ee::codec::KeyPair::generate().recipient()),
        )
        .unwrap();
        assert!(sent.get("user").is_none(), "{sent}");
        assert_eq!(sent["temperature"], 0.2);
        assert_eq!(sent["max_tokens"], 10);
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
        let sent: Value = serde_json::from_slice(
            &r.encrypted_body(&crate::e2ee::codec::KeyPair::generate().recipient()),
        )
        .unwrap();
        assert_eq!(
            sent["reasoning"],
            json!({"effort": "high", "max_tokens": 512})
        );
        assert_eq!(sent["reasoning_effort"], "low");
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
