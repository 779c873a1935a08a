//! A Messages API request → the equivalent chat completions request, so it takes the one
//! chat path (validation, attestation, encryption, tool emulation). What Venice cannot be
//! given (images, documents, server tools) is refused or left out here, naming the field.

use super::Meta;
use crate::error::ApiError;
use serde_json::{json, Map, Value};
use std::sync::Arc;

#[derive(Debug)]
pub struct Translated {
    /// The request as chat completions fields.
    pub(crate) chat: Map<String, Value>,
    pub meta: Arc<Meta>,
}

pub fn translate(body: &[u8]) -> Result<Translated, ApiError> {
    let fields = crate::api::chat::parse::body_object(body)?;
    let mut chat = Map::new();
    let mut meta = Meta::default();
    let mut system: Vec<Value> = Vec::new();
    let mut messages: Option<Value> = None;
    let mut tool_choice: Option<Value> = None;
    let mut effort: Option<Value> = None;
    for (name, value) in fields {
        if value.is_null() {
            continue;
        }
        match name.as_str() {
            "model" => {
                meta.model = value.as_str().unwrap_or_default().to_string();
                chat.insert(name, value);
            }
            "max_tokens" | "temperature" | "top_p" | "stream" => {
                chat.insert(name, value);
            }
            "system" => {
                system.push(json!({"role": "system", "content": text_of(&value, "system")?}))
            }
            "messages" => messages = Some(value),
            "tools" => {
                let (tools, omitted) = tools(&value)?;
                chat.insert("tools".into(), Value::Array(tools));
                meta.omitted_tools = omitted;
            }
            "tool_choice" => tool_choice = Some(value),
            "stop_sequences" => match value.as_array() {
                Some(s) if s.len() <= 4 && s.iter().all(Value::is_string) => {
                    chat.insert("stop".into(), value);
                }
                _ => {
                    return Err(ApiError::invalid(
                        name,
                        "`stop_sequences` must be a list of at most 4 strings",
                    ))
                }
            },
            "thinking" => match value.get("type").and_then(Value::as_str) {
                Some("enabled") => {
                    let budget = value.get("budget_tokens").and_then(Value::as_u64);
                    effort = Some(json!(match budget {
                        Some(b) if b <= 4096 => "low",
                        Some(b) if b <= 16384 => "medium",
                        _ => "high",
                    }));
                    meta.hide_thinking = value["display"] == "omitted";
                }
                Some("adaptive") => meta.hide_thinking = value["display"] == "omitted",
                Some("disabled") => {
                    chat.insert(
                        "venice_parameters".into(),
                        json!({"disable_thinking": true}),
                    );
                    meta.hide_thinking = true;
                }
                _ => {
                    return Err(ApiError::invalid(
                        "thinking.type",
                        "`thinking.type` must be enabled, adaptive or disabled",
                    ))
                }
            },
            "output_config" => {
                if let Some(e) = value.get("effort").and_then(Value::as_str) {
                    // Anthropic's `max` is the most Venice's reasoning controls offer: high.
                    let e = if e == "max" { "high" } else { e };
                    effort.get_or_insert(json!(e));
                }
                if let Some(f) = value.get("format").filter(|f| !f.is_null()) {
                    chat.insert("response_format".into(), output_format(f)?);
                }
            }
            // The structured-outputs beta's name for the same.
            "output_format" => {
                chat.insert("response_format".into(), output_format(&value)?);
            }
            "metadata" => {
                if let Some(id) = value
                    .get("user_id")
                    .and_then(Value::as_str)
                    .and_then(session_of)
                {
                    chat.insert("metadata".into(), json!({"session_id": id}));
                }
            }
            "mcp_servers" if value.as_array().is_some_and(|a| !a.is_empty()) => {
                meta.omitted_tools.push("mcp_servers".into())
            }
            // top_k (Venice takes no such field under E2EE), service_tier, container,
            // context_management and future fields: nothing to honour, nothing to refuse.
            _ => log::debug!("messages: ignoring request field {name:?}"),
        }
    }
    if let Some(effort) = effort {
        chat.insert("reasoning_effort".into(), effort);
    }
    if let Some(choice) = tool_choice {
        translate_tool_choice(&choice, &mut chat)?;
    }
    let messages =
        messages.ok_or_else(|| ApiError::invalid("messages", "`messages` is required"))?;
    system.extend(chat_messages(messages)?);
    chat.insert("messages".into(), Value::Array(system));
    // The answer always reports usage.
    chat.insert("stream_options".into(), json!({"include_usage": true}));
    Ok(Translated {
        chat,
        meta: Arc::new(meta),
    })
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

/// `messages` → chat messages. A user turn's `tool_result` blocks become tool messages (ahead
/// of its text, as chat wants them); an assistant turn's `tool_use` blocks its tool calls;
/// earlier thinking is not sent back.
fn chat_messages(v: Value) -> Result<Vec<Value>, ApiError> {
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
        let blocks = match m.get("content") {
            Some(Value::String(s)) => {
                out.push(json!({"role": role, "content": s}));
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
        let mut text: Vec<Value> = Vec::new();
        let mut calls: Vec<Value> = Vec::new();
        for (j, b) in blocks.iter().enumerate() {
            let block_at = |f: &str| format!("messages.{i}.content.{j}.{f}");
            let kind = b.get("type").and_then(Value::as_str);
            match (role, kind) {
                (_, Some("text")) => text.push(
                    json!({"type": "text", "text": b.get("text").and_then(Value::as_str).unwrap_or_default()}),
                ),
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
                    calls.push(json!({"id": id, "type": "function",
                        "function": {"name": name, "arguments": arguments}}));
                }
                ("user", Some("tool_result")) => {
                    let Some(id) = b.get("tool_use_id").and_then(Value::as_str) else {
                        return Err(ApiError::invalid(
                            block_at("tool_use_id"),
                            "`tool_result` blocks need a `tool_use_id`",
                        ));
                    };
                    let mut result = match b.get("content") {
                        None | Some(Value::Null) => String::new(),
                        Some(c) => text_of(c, &block_at("content"))?,
                    };
                    // The model is told, in words, that the tool failed.
                    if b.get("is_error") == Some(&Value::Bool(true)) {
                        result.insert_str(0, "Error: ");
                    }
                    out.push(json!({"role": "tool", "tool_call_id": id, "content": result}));
                }
                _ => return Err(not_text(&block_at("type"), kind)),
            }
        }
        // Only tool results (or only earlier thinking): no text turn of its own.
        if text.is_empty() && calls.is_empty() && !blocks.is_empty() && role != "assistant" {
            continue;
        }
        let mut msg = json!({"role": role, "content": text});
        if !calls.is_empty() {
            msg["tool_calls"] = Value::Array(calls);
        }
        out.push(msg);
    }
    Ok(out)
}

/// Client tools become function tools. Server tools (`web_search_…`, `code_execution_…`,
/// `computer_…`, `bash_…`, …: any `type` but `custom`) run on Anthropic's side or carry a
/// schema only Claude is trained on; they are left out and named.
fn tools(v: &Value) -> Result<(Vec<Value>, Vec<String>), ApiError> {
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
        let mut f = Map::new();
        f.insert("name".into(), json!(name));
        if let Some(d) = t.get("description").filter(|d| !d.is_null()) {
            f.insert("description".into(), d.clone());
        }
        let schema = t
            .get("input_schema")
            .cloned()
            .unwrap_or_else(|| json!({"type": "object"}));
        f.insert("parameters".into(), schema);
        offered.push(json!({"type": "function", "function": f}));
    }
    Ok((offered, omitted))
}

fn translate_tool_choice(v: &Value, chat: &mut Map<String, Value>) -> Result<(), ApiError> {
    let choice = match v.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => match v.get("name").and_then(Value::as_str) {
            Some(name) => json!({"type": "function", "function": {"name": name}}),
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
    chat.insert("tool_choice".into(), choice);
    if v.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
        chat.insert("parallel_tool_calls".into(), json!(false));
    }
    Ok(())
}

/// `output_config.format` (`{"type": "json_schema", "schema": …}`) → chat `response_format`.
fn output_format(f: &Value) -> Result<Value, ApiError> {
    match (f.get("type").and_then(Value::as_str), f.get("schema")) {
        (Some("json_schema"), Some(schema)) => Ok(json!({"type": "json_schema",
            "json_schema": {"name": "output", "schema": schema, "strict": true}})),
        _ => Err(ApiError::invalid(
            "output_config.format",
            "`format` must be {\"type\": \"json_schema\", \"schema\": …}",
        )),
    }
}

/// An estimate of a request's input tokens for `count_tokens`: about four characters of
/// text per token, plus a few per message, over what would be sent (tools included). Not
/// the model's tokenizer, which the proxy does not have.
pub(crate) fn estimate_tokens(chat: &Map<String, Value>) -> u64 {
    fn chars(v: &Value) -> usize {
        match v {
            Value::String(s) => s.chars().count(),
            Value::Array(a) => a.iter().map(chars).sum(),
            Value::Object(o) => o.values().map(chars).sum(),
            _ => 0,
        }
    }
    let messages = chat
        .get("messages")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let tools = chat
        .get("tools")
        .map_or(0, |t| t.to_string().chars().count());
    let text = chat.get("messages").map_or(0, chars) + tools;
    (text as u64).div_ceil(4) + 4 * messages as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat_of(v: Value) -> Value {
        Value::Object(translate(v.to_string().as_bytes()).unwrap().chat)
    }

    fn err_of(v: Value) -> ApiError {
        translate(v.to_string().as_bytes()).unwrap_err()
    }

    #[test]
    fn a_claude_code_turn_translates() {
        let t = translate(
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
        let c = &t.chat;
        assert_eq!(t.meta.model, "claude-opus-5-5");
        assert_eq!(t.meta.omitted_tools, ["web_search_20250305"]);
        assert!(t.meta.hide_thinking);
        assert_eq!(c["reasoning_effort"], "medium");
        assert_eq!(c["parallel_tool_calls"], false);
        assert_eq!(c["tool_choice"], "auto");
        assert_eq!(c["metadata"]["session_id"], "c8ea1555");
        assert_eq!(c["stream_options"]["include_usage"], true);
        assert_eq!(c["tools"].as_array().unwrap().len(), 2);
        assert_eq!(c["tools"][0]["function"]["parameters"]["type"], "object");
        assert!(c.get("top_k").is_none());
        let m = c["messages"].as_array().unwrap();
        assert_eq!(
            m[0],
            json!({"role": "system", "content": "You are Claude Code.\n\nBe brief."})
        );
        assert_eq!(m[1]["content"][1]["text"], "write a file");
        assert_eq!(m[2]["role"], "system");
        assert_eq!(
            m[3]["content"],
            json!([{"type": "text", "text": "Writing."}])
        );
        assert_eq!(m[3]["tool_calls"][0]["id"], "toolu_1");
        assert_eq!(
            m[3]["tool_calls"][0]["function"]["arguments"],
            r#"{"file_path":"/a","content":"x"}"#
        );
        assert_eq!(
            m[4],
            json!({"role": "tool", "tool_call_id": "toolu_1", "content": "File created"})
        );
        assert_eq!(m[5]["content"][0]["text"], "thanks");
        assert_eq!(m[6]["content"], json!([]));
        assert_eq!(m[6]["tool_calls"][0]["function"]["arguments"], "{}");
        assert_eq!(m[7]["content"], "Error: denied");
        assert_eq!(m.len(), 8, "{m:?}");
    }

    #[test]
    fn controls_map_onto_chat() {
        let c = chat_of(
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}],
            "stop_sequences": ["END"], "temperature": 0.5, "top_p": 0.9,
            "thinking": {"type": "enabled", "budget_tokens": 2000},
            "tool_choice": {"type": "tool", "name": "w"},
            "tools": [{"name": "w", "input_schema": {"type": "object"}}],
            "metadata": {"user_id": "user_abc_account_x_session_s-1"}}),
        );
        assert_eq!(c["stop"], json!(["END"]));
        assert_eq!(c["reasoning_effort"], "low");
        assert_eq!(c["tool_choice"]["function"]["name"], "w");
        assert_eq!(c["metadata"]["session_id"], "s-1");
        assert_eq!(
            (c["temperature"].as_f64(), c["max_tokens"].as_u64()),
            (Some(0.5), Some(5))
        );
        let c = chat_of(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "thinking": {"type": "disabled"}, "tool_choice": {"type": "any"},
            "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
            "metadata": {"user_id": "has spaces in it"}}),
        );
        assert_eq!(c["venice_parameters"]["disable_thinking"], true);
        assert_eq!(c["tool_choice"], "required");
        assert_eq!(
            c["response_format"]["json_schema"]["schema"]["type"],
            "object"
        );
        assert!(c.get("metadata").is_none(), "not a usable session id");
        let c = chat_of(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "thinking": {"type": "enabled", "budget_tokens": 32000}, "output_config": {"effort": "low"}}),
        );
        assert_eq!(c["reasoning_effort"], "high", "thinking's budget decides");
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
        let e = err_of(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"input_schema": {}}]}),
        );
        assert_eq!(e.param.as_deref(), Some("tools.0.name"));
        // Server tools' own blocks from earlier turns carry nothing and are dropped.
        let c = chat_of(
            json!({"model": "m", "messages": [{"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}},
            {"type": "web_search_tool_result", "tool_use_id": "s", "content": []},
            {"type": "text", "text": "found"}]}]}),
        );
        assert_eq!(c["messages"][0]["content"][0]["text"], "found");
    }

    #[test]
    fn token_estimate_grows_with_the_request() {
        let small = chat_of(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
        let big = chat_of(json!({"model": "m", "system": "x".repeat(400),
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "w", "input_schema": {"type": "object"}}]}));
        // "user" and "hi": six characters, two tokens, and four for the message.
        assert_eq!(estimate_tokens(small.as_object().unwrap()), 2 + 4);
        assert!(estimate_tokens(big.as_object().unwrap()) > 100 + 8);
    }
}
