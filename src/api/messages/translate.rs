//! A Messages API request → the internal request, built here from Anthropic's fields, so it
//! takes the one chat path (validation, attestation, encryption, tool emulation). What Venice
//! cannot be given (images, documents, server tools) is refused or left out here, naming the
//! field.

use super::Meta;
use crate::api::fields;
use crate::chat::conversation::{Message, PastCall};
use crate::chat::generation::Effort;
use crate::chat::request::ChatRequest;
use crate::chat::structured::OutputFormat;
use crate::chat::tool_calls::defs::{ToolChoice, ToolSet, ToolSpec};
use crate::error::ApiError;
use serde_json::Value;
use std::sync::Arc;

/// The internal request (checked by the caller) and what the answer echoes.
pub fn translate(body: &[u8]) -> Result<(ChatRequest, Meta), ApiError> {
    let mut req = ChatRequest::new(String::new(), Vec::new());
    // The answer always reports usage.
    req.include_usage = true;
    let mut meta = Meta::default();
    let mut system: Vec<Message> = Vec::new();
    let mut messages: Option<Value> = None;
    let mut specs: Vec<ToolSpec> = Vec::new();
    let mut choice = ToolChoice::Auto;
    let mut parallel = true;
    let mut effort: Option<Effort> = None;
    for (name, value) in fields::body_object(body)? {
        if value.is_null() {
            continue;
        }
        let g = &mut req.generation;
        match name.as_str() {
            "model" => {
                req.model = fields::model(&name, value)?;
                meta.model = req.model.clone();
            }
            "max_tokens" => g.max_tokens = fields::count(&name, &value)?,
            "temperature" => g.temperature = fields::number(&name, &value)?,
            "top_p" => g.top_p = fields::number(&name, &value)?,
            "stream" => req.stream = fields::flag(&name, &value)?.unwrap_or(false),
            "system" => system.push(Message::System(text_of(&value, "system")?)),
            "messages" => messages = Some(value),
            "tools" => (specs, meta.omitted_tools) = tools(&value)?,
            "tool_choice" => (choice, parallel) = tool_choice(&value)?,
            "stop_sequences" => req.stop = stop_sequences(&name, value)?,
            "thinking" => {
                let t = thinking(&value)?;
                effort = t.effort.or(effort);
                meta.hide_thinking = t.hidden;
                if t.disabled {
                    req.venice.disable_thinking = Some(true);
                }
            }
            "output_config" => {
                if let Some(e) = value.get("effort").filter(|e| !e.is_null()) {
                    // Anthropic's `max` is the most Venice's reasoning controls offer: high.
                    let e = if e == "max" { &Value::from("high") } else { e };
                    let e = fields::effort("output_config.effort", e)?;
                    effort = effort.or(e);
                }
                if let Some(f) = value.get("format").filter(|f| !f.is_null()) {
                    req.format = Some(Arc::new(output_format(f, "output_config.format")?));
                }
            }
            // The structured-outputs beta's name for the same.
            "output_format" => {
                req.format = Some(Arc::new(output_format(&value, "output_format")?));
            }
            "metadata" => {
                req.session = value
                    .get("user_id")
                    .and_then(Value::as_str)
                    .and_then(session_of)
            }
            "mcp_servers" if value.as_array().is_some_and(|a| !a.is_empty()) => {
                meta.omitted_tools.push("mcp_servers".into())
            }
            // top_k (Venice takes no such field under E2EE), service_tier, container,
            // context_management and future fields: nothing to honour, nothing to refuse.
            _ => log::debug!("messages: ignoring request field {name:?}"),
        }
    }
    req.generation.reasoning_effort = effort;
    req.tools = ToolSet::new(specs, choice, parallel)?.map(Arc::new);
    let messages =
        messages.ok_or_else(|| ApiError::invalid("messages", "`messages` is required"))?;
    system.extend(conversation(messages)?);
    req.messages = system;
    Ok((req, meta))
}

/// `stop_sequences`: a list of strings (their count is checked with the request).
fn stop_sequences(name: &str, value: Value) -> Result<Vec<String>, ApiError> {
    match value {
        Value::Array(s) if s.iter().all(Value::is_string) => Ok(s
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()),
        _ => Err(ApiError::invalid(
            name,
            "`stop_sequences` must be a list of at most 4 strings",
        )),
    }
}

/// What `thinking` asks for.
struct Thinking {
    /// `enabled` with a budget: the effort closest to it.
    effort: Option<Effort>,
    /// The answer leaves the thinking out (`display: omitted`, or thinking disabled).
    hidden: bool,
    disabled: bool,
}

fn thinking(value: &Value) -> Result<Thinking, ApiError> {
    let omitted = value["display"] == "omitted";
    match value.get("type").and_then(Value::as_str) {
        Some("enabled") => {
            let budget = value.get("budget_tokens").and_then(Value::as_u64);
            let effort = match budget {
                Some(b) if b <= 4096 => Effort::Low,
                Some(b) if b <= 16384 => Effort::Medium,
                _ => Effort::High,
            };
            Ok(Thinking {
                effort: Some(effort),
                hidden: omitted,
                disabled: false,
            })
        }
        Some("adaptive") => Ok(Thinking {
            effort: None,
            hidden: omitted,
            disabled: false,
        }),
        Some("disabled") => Ok(Thinking {
            effort: None,
            hidden: true,
            disabled: true,
        }),
        _ => Err(ApiError::invalid(
            "thinking.type",
            "`thinking.type` must be enabled, adaptive or disabled",
        )),
    }
}

/// The agent session in `metadata.user_id`: Claude Code's JSON (`{"session_id": …}`) or
/// older `…_session_<id>` form, else the whole id, when it is a usable session id.
fn session_of(user_id: &str) -> Option<String> {
    let from_json = serde_json::from_str::<Value>(user_id)
        .ok()
        .and_then(|v| v.get("session_id")?.as_str().map(str::to_string));
    let id = from_json
        .or_else(|| user_id.rsplit_once("_session_").map(|(_, s)| s.to_string()))
        .unwrap_or_else(|| user_id.to_string());
    (!id.is_empty() && id.len() <= 256 && id.bytes().all(|b| b.is_ascii_graphic())).then_some(id)
}

/// A string, or text blocks joined (`cache_control` and citations ignored).
fn text_of(v: &Value, at: &str) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => {
            let mut text = String::new();
            for (i, b) in blocks.iter().enumerate() {
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if !text.is_empty() {
                            text.push_str("\n\n");
                        }
                        text.push_str(b.get("text").and_then(Value::as_str).unwrap_or_default());
                    }
                    other => return Err(not_text(&format!("{at}.{i}.type"), other)),
                }
            }
            Ok(text)
        }
        _ => Err(ApiError::invalid(
            at,
            "must be a string or a list of text blocks",
        )),
    }
}

fn not_text(at: &str, kind: Option<&str>) -> ApiError {
    match kind {
        Some(k @ ("image" | "document" | "search_result" | "container_upload")) => {
            ApiError::unsupported(
                at,
                format!("`{k}` blocks cannot be sent over Venice end-to-end encryption, which carries text only"),
            )
        }
        Some(k) => ApiError::invalid(at, format!("unexpected block type `{k}`")),
        None => ApiError::invalid(at, "each block needs a `type`"),
    }
}

/// Blocks only server tools produce: nothing of the conversation to carry.
fn server_block(kind: &str) -> bool {
    kind == "server_tool_use" || kind == "mcp_tool_use" || kind.ends_with("_tool_result")
}

/// `messages` → the conversation. A user turn's `tool_result` blocks become tool results
/// (ahead of its text); an assistant turn's `tool_use` blocks its calls; earlier thinking is
/// not sent back.
fn conversation(v: Value) -> Result<Vec<Message>, ApiError> {
    let Value::Array(items) = v else {
        return Err(ApiError::invalid("messages", "`messages` must be a list"));
    };
    let mut out = Vec::with_capacity(items.len() + 1);
    for (i, m) in items.into_iter().enumerate() {
        let at = |f: &str| format!("messages.{i}.{f}");
        let role = match m.get("role").and_then(Value::as_str) {
            Some(r @ ("user" | "assistant" | "system")) => r,
            _ => {
                return Err(ApiError::invalid(
                    at("role"),
                    "`role` must be user or assistant",
                ))
            }
        };
        let turn = |content: String, calls: Vec<PastCall>| match role {
            "user" => Message::User(content),
            "system" => Message::System(content),
            _ => Message::Assistant { content, calls },
        };
        let blocks = match m.get("content") {
            Some(Value::String(s)) => {
                out.push(turn(s.clone(), Vec::new()));
                continue;
            }
            Some(Value::Array(blocks)) => blocks,
            _ => {
                return Err(ApiError::invalid(
                    at("content"),
                    "`content` must be a string or a list of blocks",
                ))
            }
        };
        let mut text: Vec<&str> = Vec::new();
        let mut calls: Vec<PastCall> = Vec::new();
        for (j, b) in blocks.iter().enumerate() {
            let block_at = |f: &str| format!("messages.{i}.content.{j}.{f}");
            let kind = b.get("type").and_then(Value::as_str);
            match (role, kind) {
                (_, Some("text")) => {
                    text.push(b.get("text").and_then(Value::as_str).unwrap_or_default())
                }
                (_, Some("thinking" | "redacted_thinking")) => {}
                (_, Some(k)) if server_block(k) => {}
                ("assistant", Some("tool_use")) => {
                    let id = b.get("id").and_then(Value::as_str);
                    let name = b.get("name").and_then(Value::as_str);
                    let (Some(id), Some(name)) = (id, name) else {
                        return Err(ApiError::invalid(
                            block_at("id"),
                            "`tool_use` blocks need an `id` and a `name`",
                        ));
                    };
                    // An object, as Anthropic sends it; some clients send it as JSON text.
                    let arguments = match b.get("input") {
                        None | Some(Value::Null) => "{}".to_string(),
                        Some(Value::String(text)) => text.clone(),
                        Some(input) => input.to_string(),
                    };
                    calls.push(PastCall {
                        id: id.to_string(),
                        name: name.to_string(),
                        arguments,
                    });
                }
                ("user", Some("tool_result")) => {
                    let Some(id) = b.get("tool_use_id").and_then(Value::as_str) else {
                        return Err(ApiError::invalid(
                            block_at("tool_use_id"),
                            "`tool_result` blocks need a `tool_use_id`",
                        ));
                    };
                    let mut content = match b.get("content") {
                        None | Some(Value::Null) => String::new(),
                        Some(c) => text_of(c, &block_at("content"))?,
                    };
                    // The model is told, in words, that the tool failed.
                    if b.get("is_error") == Some(&Value::Bool(true)) {
                        content.insert_str(0, "Error: ");
                    }
                    out.push(Message::Tool {
                        call_id: id.to_string(),
                        content,
                    });
                }
                _ => return Err(not_text(&block_at("type"), kind)),
            }
        }
        // Only tool results (or only earlier thinking): no text turn of its own.
        if text.is_empty() && calls.is_empty() && !blocks.is_empty() && role != "assistant" {
            continue;
        }
        out.push(turn(text.join("\n"), calls));
    }
    Ok(out)
}

/// Client tools are offered to the model. Server tools (`web_search_…`, `code_execution_…`,
/// `computer_…`, `bash_…`, …: any `type` but `custom`) run on Anthropic's side or carry a
/// schema only Claude is trained on; they are left out and named.
fn tools(v: &Value) -> Result<(Vec<ToolSpec>, Vec<String>), ApiError> {
    let Some(list) = v.as_array() else {
        return Err(ApiError::invalid("tools", "`tools` must be a list"));
    };
    let mut offered = Vec::with_capacity(list.len());
    let mut omitted = Vec::new();
    for (i, t) in list.iter().enumerate() {
        match t.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            Some(kind) => {
                omitted.push(kind.to_string());
                continue;
            }
        }
        let Some(name) = t.get("name").and_then(Value::as_str) else {
            return Err(ApiError::invalid(
                format!("tools.{i}.name"),
                "each tool needs a `name`",
            ));
        };
        offered.push(ToolSpec {
            name: name.to_string(),
            description: t
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string),
            parameters: Some(
                t.get("input_schema")
                    .cloned()
                    .unwrap_or_else(|| serde_json::json!({"type": "object"})),
            ),
        });
    }
    Ok((offered, omitted))
}

/// `tool_choice` → the choice, and whether calls may come in parallel.
fn tool_choice(v: &Value) -> Result<(ToolChoice, bool), ApiError> {
    let choice = match v.get("type").and_then(Value::as_str) {
        Some("auto") => ToolChoice::Auto,
        Some("any") => ToolChoice::Required,
        Some("none") => ToolChoice::None,
        Some("tool") => match v.get("name").and_then(Value::as_str) {
            Some(name) => ToolChoice::Named(name.to_string()),
            None => {
                return Err(ApiError::invalid(
                    "tool_choice.name",
                    "`tool_choice` of type tool needs a `name`",
                ))
            }
        },
        _ => {
            return Err(ApiError::invalid(
                "tool_choice.type",
                "`tool_choice.type` must be auto, any, tool or none",
            ))
        }
    };
    let parallel = v.get("disable_parallel_tool_use") != Some(&Value::Bool(true));
    Ok((choice, parallel))
}

/// `output_config.format` (`{"type": "json_schema", "schema": …}`): JSON valid against it.
fn output_format(f: &Value, at: &str) -> Result<OutputFormat, ApiError> {
    match (f.get("type").and_then(Value::as_str), f.get("schema")) {
        (Some("json_schema"), Some(schema)) => OutputFormat::json_schema(
            Some("output".into()),
            schema.clone(),
            &format!("{at}.schema"),
        ),
        _ => Err(ApiError::invalid(
            at,
            "`format` must be {\"type\": \"json_schema\", \"schema\": …}",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request_of(v: Value) -> ChatRequest {
        translate(v.to_string().as_bytes()).unwrap().0
    }

    fn err_of(v: Value) -> ApiError {
        let (req, _) = match translate(v.to_string().as_bytes()) {
            Ok(t) => t,
            Err(e) => return e,
        };
        req.validate().unwrap_err()
    }

    fn call(id: &str, name: &str, arguments: &str) -> PastCall {
        PastCall {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }

    #[test]
    fn a_claude_code_turn_translates() {
        let (req, meta) = translate(
            json!({"model": "claude-opus-5-5", "max_tokens": 128000, "stream": true,
                "system": [{"type": "text", "text": "You are Claude Code."},
                           {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "<system-reminder>x</system-reminder>"}, {"type": "text", "text": "write a file"}]},
                    {"role": "system", "content": [{"type": "text", "text": "# Environment"}]},
                    {"role": "assistant", "content": [
                        {"type": "thinking", "thinking": "plan", "signature": "sig"},
                        {"type": "text", "text": "Writing."},
                        {"type": "tool_use", "id": "toolu_1", "name": "Write", "input": {"file_path": "/a", "content": "x"}}]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "File created"}]},
                        {"type": "text", "text": "thanks"}]},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_2", "name": "Write", "input": "{}"}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_2", "content": "denied", "is_error": true}]}
                ],
                "tools": [{"name": "Write", "description": "Writes", "input_schema": {"type": "object"}},
                          {"name": "Later", "input_schema": {"type": "object"}, "defer_loading": true},
                          {"type": "web_search_20250305", "name": "web_search"}],
                "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
                "metadata": {"user_id": "{\"device_id\":\"d\",\"account_uuid\":\"\",\"session_id\":\"c8ea1555\"}"},
                "thinking": {"type": "adaptive", "display": "omitted"},
                "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
                "output_config": {"effort": "medium"}, "top_k": 5})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(meta.model, "claude-opus-5-5");
        assert_eq!(meta.omitted_tools, ["web_search_20250305"]);
        assert!(meta.hide_thinking);
        assert!(req.stream && req.include_usage);
        assert_eq!(req.generation.reasoning_effort, Some(Effort::Medium));
        assert_eq!(req.generation.max_tokens, Some(128000));
        let tools = req.tools.as_ref().unwrap();
        assert!(!tools.parallel);
        assert_eq!(tools.choice, ToolChoice::Auto);
        assert_eq!(tools.tools.len(), 2);
        assert_eq!(tools.tools[0].parameters["type"], "object");
        assert_eq!(req.session.as_deref(), Some("c8ea1555"));
        assert!(req.validate().is_ok());
        assert_eq!(
            req.messages,
            [
                Message::System("You are Claude Code.\n\nBe brief.".into()),
                Message::User("<system-reminder>x</system-reminder>\nwrite a file".into()),
                Message::System("# Environment".into()),
                Message::Assistant {
                    content: "Writing.".into(),
                    calls: vec![call(
                        "toolu_1",
                        "Write",
                        r#"{"file_path":"/a","content":"x"}"#
                    )],
                },
                Message::Tool {
                    call_id: "toolu_1".into(),
                    content: "File created".into()
                },
                Message::User("thanks".into()),
                Message::Assistant {
                    content: String::new(),
                    calls: vec![call("toolu_2", "Write", "{}")],
                },
                Message::Tool {
                    call_id: "toolu_2".into(),
                    content: "Error: denied".into()
                },
            ]
        );
    }

    #[test]
    fn controls_map_onto_the_internal_request() {
        let req = request_of(
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}],
            "stop_sequences": ["END"], "temperature": 0.5, "top_p": 0.9,
            "thinking": {"type": "enabled", "budget_tokens": 2000},
            "tool_choice": {"type": "tool", "name": "w"},
            "tools": [{"name": "w", "input_schema": {"type": "object"}}],
            "metadata": {"user_id": "user_abc_account_x_session_s-1"}}),
        );
        assert_eq!(req.stop, ["END"]);
        assert_eq!(req.generation.reasoning_effort, Some(Effort::Low));
        assert_eq!(
            req.tools.as_ref().unwrap().choice,
            ToolChoice::Named("w".into())
        );
        assert_eq!(req.session.as_deref(), Some("s-1"));
        assert_eq!(
            (req.generation.temperature, req.generation.max_tokens),
            (Some(0.5), Some(5))
        );
        let req = request_of(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "thinking": {"type": "disabled"}, "tool_choice": {"type": "any"},
            "tools": [{"name": "w", "input_schema": {"type": "object"}}],
            "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
            "metadata": {"user_id": "has spaces in it"}}),
        );
        assert_eq!(req.venice.disable_thinking, Some(true));
        assert_eq!(req.tools.as_ref().unwrap().choice, ToolChoice::Required);
        let format = req.format.as_ref().unwrap();
        assert_eq!(format.schema.as_ref().unwrap().0["type"], "object");
        assert!(req.session.is_none(), "not a usable session id");
        let req = request_of(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "thinking": {"type": "enabled", "budget_tokens": 32000}, "output_config": {"effort": "low"}}),
        );
        assert_eq!(
            req.generation.reasoning_effort,
            Some(Effort::High),
            "thinking's budget decides"
        );
        let req = request_of(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "output_config": {"effort": "max"}}),
        );
        assert_eq!(req.generation.reasoning_effort, Some(Effort::High));
    }

    #[test]
    fn what_cannot_be_sent_is_refused_by_field() {
        let image = json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": ""}});
        let e = err_of(
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "see"}, image]}]}),
        );
        assert_eq!(e.param.as_deref(), Some("messages.0.content.1.type"));
        assert_eq!(e.code, "unsupported_parameter");
        let e = err_of(json!({"model": "m", "messages": [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "r", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [image]}]}]}));
        assert_eq!(
            e.param.as_deref(),
            Some("messages.1.content.0.content.0.type")
        );
        let e = err_of(json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}));
        assert_eq!(e.param.as_deref(), Some("messages.0.role"));
        let e = err_of(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop_sequences": "END"}),
        );
        assert_eq!(e.param.as_deref(), Some("stop_sequences"));
        let e = err_of(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "thinking": {"type": "on"}}),
        );
        assert_eq!(e.param.as_deref(), Some("thinking.type"));
        let e = err_of(json!({"model": "m"}));
        assert_eq!(e.param.as_deref(), Some("messages"));
        let e = err_of(json!({"messages": [{"role": "user", "content": "x"}]}));
        assert_eq!(e.param.as_deref(), Some("model"));
        let e = err_of(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"input_schema": {}}]}),
        );
        assert_eq!(e.param.as_deref(), Some("tools.0.name"));
        let e = err_of(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 3}),
        );
        assert_eq!(e.param.as_deref(), Some("temperature"));
        // Server tools' own blocks from earlier turns carry nothing and are dropped.
        let req = request_of(
            json!({"model": "m", "messages": [{"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}},
            {"type": "web_search_tool_result", "tool_use_id": "s", "content": []},
            {"type": "text", "text": "found"}]}]}),
        );
        assert_eq!(
            req.messages,
            [Message::Assistant {
                content: "found".into(),
                calls: Vec::new()
            }]
        );
    }
}
