//! The controller prompt and conversation history, in each model family's trained format:
//! GLM's `<arg_key>/<arg_value>` calls, Qwen's and Hermes' JSON in `<tool_call>` tags, and
//! tool results as `<tool_response>` turns.

use super::defs::{ToolChoice, ToolSet};
use super::parser::{GlmParser, JsonTagParser, ToolCallParser};
use crate::openai::request::Message;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Glm,
    Qwen,
    Hermes,
}

impl Family {
    /// From the model id, unless the configuration names the family for that model.
    pub fn for_model(model: &str, overrides: &HashMap<String, Family>) -> Family {
        if let Some(f) = overrides.get(model) {
            return *f;
        }
        let id = model.to_ascii_lowercase();
        if id.contains("glm") {
            Family::Glm
        } else if id.contains("qwen") {
            Family::Qwen
        } else {
            Family::Hermes
        }
    }

    pub fn parser(self, tools: Arc<ToolSet>) -> Box<dyn ToolCallParser> {
        match self {
            Family::Glm => Box::new(GlmParser::new(tools)),
            Family::Qwen | Family::Hermes => Box::new(JsonTagParser::new()),
        }
    }
}

fn function_json(t: &super::defs::ToolDef) -> Value {
    let mut f = json!({"name": t.name, "parameters": t.parameters});
    if let Some(d) = &t.description {
        f["description"] = json!(d);
    }
    f
}

/// The tool instructions for the first system message; `None` when no tool is offered.
pub fn tools_prompt(family: Family, set: &ToolSet) -> Option<String> {
    let offered: Vec<_> = set.offered().collect();
    if offered.is_empty() {
        return None;
    }
    let mut p = String::new();
    match family {
        Family::Qwen => {
            p.push_str("# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>");
            for t in &offered {
                p.push('\n');
                p.push_str(&json!({"type": "function", "function": function_json(t)}).to_string());
            }
            p.push_str("\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>");
        }
        Family::Glm => {
            p.push_str("# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>");
            for t in &offered {
                p.push('\n');
                p.push_str(&function_json(t).to_string());
            }
            p.push_str("\n</tools>\n\nFor each function call, output the function name and arguments within the following XML format:\n<tool_call>{function-name}\n<arg_key>{arg-key-1}</arg_key>\n<arg_value>{arg-value-1}</arg_value>\n<arg_key>{arg-key-2}</arg_key>\n<arg_value>{arg-value-2}</arg_value>\n...\n</tool_call>");
        }
        Family::Hermes => {
            p.push_str("You are a function calling AI model. You are provided with function signatures within <tools></tools> XML tags. You may call one or more functions to assist with the user query. Don't make assumptions about what values to plug into functions. Here are the available tools: <tools>");
            for t in &offered {
                p.push(' ');
                p.push_str(&json!({"type": "function", "function": function_json(t)}).to_string());
            }
            p.push_str(" </tools> Use the following pydantic model json schema for each tool call you will make: {\"properties\": {\"arguments\": {\"title\": \"Arguments\", \"type\": \"object\"}, \"name\": {\"title\": \"Name\", \"type\": \"string\"}}, \"required\": [\"arguments\", \"name\"], \"title\": \"FunctionCall\", \"type\": \"object\"} For each function call return a json object with function name and arguments within <tool_call></tool_call> XML tags as follows:\n<tool_call>\n{\"arguments\": <args-dict>, \"name\": <function-name>}\n</tool_call>");
        }
    }
    match &set.choice {
        ToolChoice::Required => {
            p.push_str("\n\nYou must call at least one of these functions in your reply.")
        }
        ToolChoice::Named(n) => p.push_str(&format!(
            "\n\nYou must call the function `{n}` in your reply."
        )),
        _ => {}
    }
    if !set.parallel {
        p.push_str("\n\nCall at most one function per reply.");
    }
    Some(p)
}

/// One call in the family's own syntax, as the model would have written it.
pub fn render_call(family: Family, name: &str, arguments: &str) -> String {
    let args: Value =
        serde_json::from_str(arguments).unwrap_or_else(|_| Value::String(arguments.into()));
    match family {
        Family::Glm => {
            let mut s = format!("<tool_call>{name}");
            if let Value::Object(map) = &args {
                for (k, v) in map {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    s.push_str(&format!(
                        "\n<arg_key>{k}</arg_key>\n<arg_value>{v}</arg_value>"
                    ));
                }
            }
            s.push_str("\n</tool_call>");
            s
        }
        Family::Qwen | Family::Hermes => {
            format!(
                "<tool_call>\n{}\n</tool_call>",
                json!({"name": name, "arguments": args})
            )
        }
    }
}

fn render_result(family: Family, name: &str, content: &str) -> String {
    match family {
        Family::Hermes => format!(
            "<tool_response>\n{}\n</tool_response>",
            json!({"name": name, "content": content})
        ),
        Family::Qwen | Family::Glm => format!("<tool_response>\n{content}\n</tool_response>"),
    }
}

/// The conversation as Venice receives it (roles system/user/assistant), before encryption:
/// tool instructions merged into the first system message, calls and results rendered.
pub fn render<'a>(
    messages: &'a [Message],
    family: Family,
    tools: Option<&ToolSet>,
) -> Vec<(&'static str, Cow<'a, str>)> {
    let mut out: Vec<(&'static str, Cow<'a, str>)> = Vec::with_capacity(messages.len() + 1);
    let mut names: HashMap<&str, &str> = HashMap::new();
    for m in messages {
        match m {
            Message::System(t) => out.push(("system", Cow::Borrowed(t))),
            Message::User(t) => out.push(("user", Cow::Borrowed(t))),
            Message::Assistant { content, calls } if calls.is_empty() => {
                out.push(("assistant", Cow::Borrowed(content)))
            }
            Message::Assistant { content, calls } => {
                let mut text = content.clone();
                for c in calls {
                    names.insert(&c.id, &c.name);
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(&render_call(family, &c.name, &c.arguments));
                }
                out.push(("assistant", Cow::Owned(text)));
            }
            Message::Tool { call_id, content } => {
                let name = names.get(call_id.as_str()).copied().unwrap_or("unknown");
                let rendered = render_result(family, name, content);
                // Consecutive results share one user turn, as the templates do.
                match out.last_mut() {
                    Some(("user", prev)) if prev.ends_with("</tool_response>") => {
                        let merged = prev.to_mut();
                        merged.push('\n');
                        merged.push_str(&rendered);
                    }
                    _ => out.push(("user", Cow::Owned(rendered))),
                }
            }
        }
    }
    if let Some(prompt) = tools.and_then(|t| tools_prompt(family, t)) {
        match out.first_mut() {
            Some(("system", first)) => {
                let merged = first.to_mut();
                merged.push_str("\n\n");
                merged.push_str(&prompt);
            }
            _ => out.insert(0, ("system", Cow::Owned(prompt))),
        }
    }
    out
}

/// The turn that asks the model to try again after an invalid call.
pub fn correction(reason: &str) -> String {
    format!(
        "Your previous reply contained an invalid tool call: {reason}. Reply again, calling only the offered functions, with arguments that match their JSON Schema, in exactly the required format."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::request;

    /// A request with tools, history with a call and its result, and a forced choice.
    fn conversation(model: &str) -> request::ChatRequest {
        let body = json!({
            "model": model,
            "tool_choice": "required",
            "parallel_tool_calls": false,
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}}}],
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Weather in Paris for 2 days?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\",\"days\":2}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\": 18}"},
                {"role": "user", "content": "And tomorrow?"}
            ]
        });
        request::parse(body.to_string().as_bytes()).unwrap()
    }

    fn snapshot(family: &str, model: &str) {
        let req = conversation(model);
        let rendered = render(&req.messages, req.family, req.tools.as_deref());
        let text: String = rendered
            .iter()
            .map(|(role, t)| format!("<<{role}>>\n{t}\n"))
            .collect();
        let path = format!(
            "{}/tests/data/prompts/{family}.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text, expected,
            "rendering for {family} changed (UPDATE_SNAPSHOTS=1 rewrites {path})"
        );
    }

    #[test]
    fn qwen_snapshot() {
        snapshot("qwen", "e2ee-qwen3-5-122b-a10b");
    }

    #[test]
    fn glm_snapshot() {
        snapshot("glm", "e2ee-glm-4-6");
    }

    #[test]
    fn hermes_snapshot() {
        snapshot("hermes", "e2ee-llama-3-3-70b");
    }

    #[test]
    fn families_from_ids_and_config() {
        let none = HashMap::new();
        assert_eq!(Family::for_model("e2ee-glm-4-6", &none), Family::Glm);
        assert_eq!(Family::for_model("e2ee-Qwen3-coder", &none), Family::Qwen);
        assert_eq!(Family::for_model("e2ee-llama", &none), Family::Hermes);
        let over = HashMap::from([("e2ee-llama".to_string(), Family::Qwen)]);
        assert_eq!(Family::for_model("e2ee-llama", &over), Family::Qwen);
    }

    #[test]
    fn no_tools_offered_under_tool_choice_none() {
        let mut req = conversation("e2ee-qwen3");
        let body = json!({"model": "m", "tool_choice": "none", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f"}}]});
        req.tools = request::parse(body.to_string().as_bytes()).unwrap().tools;
        let rendered = render(&req.messages, req.family, req.tools.as_deref());
        assert!(!rendered[0].1.contains("<tools>"));
    }
}
