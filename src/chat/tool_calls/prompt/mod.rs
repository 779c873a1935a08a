//! The tool prompt and conversation history, in each model family's trained format, worded
//! as the family's chat template words it (the tools block, the call syntax, tool results). Venice never sees the tools (they travel inside the encrypted
//! conversation), so the template's tools branch is reproduced here as text.
//!
//! | family | models | call syntax |
//! |---|---|---|
//! | `qwen_xml` | Qwen3.5, Qwen3-Coder | `<tool_call>\n<function=F>\n<parameter=K>\nV\n</parameter>\n</function>\n</tool_call>` |
//! | `qwen` | Qwen2.5, Qwen3 | `<tool_call>\n{"name": F, "arguments": {…}}\n</tool_call>` |
//! | `glm` | GLM-4.5, GLM-4.6 | `<tool_call>F\n<arg_key>K</arg_key>\n<arg_value>V</arg_value>\n</tool_call>` |
//! | `glm47` | GLM-4.7, GLM-5.x | `<tool_call>F<arg_key>K</arg_key><arg_value>V</arg_value></tool_call>` |
//! | `gemma4` | Gemma 4 | `<\|tool_call>call:F{K:<\|"\|>V<\|"\|>,N:42}<tool_call\|>` |
//! | `deepseek_dsml` | DeepSeek V3.2, V4 | `<｜DSML｜tool_calls>` `<｜DSML｜invoke name="F">` `<｜DSML｜parameter name="K" string="true">V</｜DSML｜parameter>` … |
//! | `hermes` | everything else (Llama, gpt-oss, older DeepSeek, …) | Hermes JSON in `<tool_call>` |
//!
//! Gemma 4's template has no instructions, only tool declarations in its own notation, and
//! keeps results in the model's turn; DeepSeek V4's encoder words its "## Tools" section and
//! wraps results in `<tool_result>`. Both are reproduced as they render.

mod deepseek;
mod gemma;
mod glm;
mod hermes;
mod qwen;
#[cfg(test)]
mod tests;

use super::defs::{ToolChoice, ToolDef, ToolSet};
use crate::chat::conversation::Message;
use serde::Serialize;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::collections::HashMap;

pub(crate) use crate::config::Family;

impl Family {
    /// From the model id, unless the configuration names the family for that model.
    pub(crate) fn for_model(model: &str, overrides: &HashMap<String, Family>) -> Family {
        if let Some(f) = overrides.get(model) {
            return *f;
        }
        let raw = model.to_ascii_lowercase();
        if ["gemma-4", "gemma4"].iter().any(|g| raw.contains(g)) {
            return Family::Gemma4;
        }
        if [
            "deepseek-v4",
            "deepseek-v3.2",
            "deepseek-v3-2",
            "deepseek-v32",
        ]
        .iter()
        .any(|d| raw.contains(d))
        {
            return Family::DeepseekDsml;
        }
        // Version separators vary across ids (`qwen3.5`, `qwen3-5`, `qwen3p5`).
        let id: String = model
            .to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c == '.' || c == '_' || c == 'p' {
                    '-'
                } else {
                    c
                }
            })
            .collect();
        let has = |s: &str| id.contains(s);
        if has("glm") {
            // GLM-4.5 and 4.6 put newlines between the parts; 4.7 and later do not.
            if has("glm-4-5") || has("glm-4-6") || has("glm4-5") || has("glm4-6") {
                Family::Glm
            } else {
                Family::Glm47
            }
        } else if has("qwen3-5") || has("qwen3-6") || has("qwen3-coder") || has("qwen4") {
            Family::QwenXml
        } else if has("qwen") {
            Family::Qwen
        } else {
            Family::Hermes
        }
    }
}

/// JSON as the templates' `tojson` writes it (Python's `json.dumps`: `", "` and `": "`).
fn tojson(v: &Value) -> String {
    struct PySeparators;
    fn item<W: ?Sized + std::io::Write>(w: &mut W, first: bool) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    impl serde_json::ser::Formatter for PySeparators {
        fn begin_array_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            item(w, first)
        }
        fn begin_object_key<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            item(w, first)
        }
        fn begin_object_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
        ) -> std::io::Result<()> {
            w.write_all(b": ")
        }
    }
    let mut out = Vec::new();
    v.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out,
        PySeparators,
    ))
    .expect("JSON values serialize");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// A tool's function object, as clients send it.
fn function_json(t: &ToolDef) -> Value {
    let mut f = serde_json::Map::new();
    f.insert("name".into(), json!(t.name));
    if let Some(d) = &t.description {
        f.insert("description".into(), json!(d));
    }
    f.insert("parameters".into(), t.parameters.clone());
    Value::Object(f)
}

/// A tool as clients send it (and the templates print it).
fn tool_json(t: &ToolDef) -> String {
    tojson(&json!({"type": "function", "function": function_json(t)}))
}

/// The tools section's head, word for word the same in the Qwen2.5/3 and GLM templates.
const TOOLS_HEAD: &str = "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>";

/// The tool instructions for the system message; `None` when no tool is offered.
pub(crate) fn tools_prompt(family: Family, set: &ToolSet) -> Option<String> {
    let offered: Vec<_> = set.offered().collect();
    if offered.is_empty() {
        return None;
    }
    let mut p = match family {
        Family::QwenXml => qwen::xml_tools(&offered),
        Family::Qwen => qwen::json_tools(&offered),
        Family::Glm => glm::tools(&offered, true),
        Family::Glm47 => glm::tools(&offered, false),
        Family::Gemma4 => gemma::tools(&offered),
        Family::DeepseekDsml => deepseek::tools(&offered),
        Family::Hermes => hermes::tools(&offered),
    };
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

/// A value as the text templates print it: strings verbatim, anything else as JSON.
fn text_value(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

/// One call in the family's own syntax, as the model would have written it.
pub(crate) fn render_call(family: Family, name: &str, arguments: &str) -> String {
    let args: Value =
        serde_json::from_str(arguments).unwrap_or_else(|_| Value::String(arguments.into()));
    match family {
        Family::Glm => glm::call(name, &args, true),
        Family::Glm47 => glm::call(name, &args, false),
        Family::QwenXml => qwen::xml_call(name, &args),
        Family::Gemma4 => gemma::call(name, &args),
        Family::DeepseekDsml => deepseek::call(name, &args),
        Family::Qwen | Family::Hermes => qwen::json_call(name, &args),
    }
}

/// One tool result in the family's own wrapping.
fn render_result(family: Family, name: &str, content: &str) -> String {
    match family {
        Family::Hermes => hermes::result(name, content),
        Family::Glm => glm::result(content, true),
        Family::Glm47 => glm::result(content, false),
        Family::Gemma4 => gemma::result(name, content),
        Family::DeepseekDsml => deepseek::result(content),
        Family::Qwen | Family::QwenXml => qwen::result(content),
    }
}

/// The conversation as Venice receives it (roles system/user/assistant), before encryption:
/// tool instructions merged into the first system message, calls and results rendered.
/// Results share one user turn, as the templates do; Gemma 4's template keeps them in the
/// model's turn, right after the calls, and the model's next words continue that turn.
pub(crate) fn render<'a>(
    messages: &'a [Message],
    family: Family,
    tools: Option<&ToolSet>,
) -> Vec<(&'static str, Cow<'a, str>)> {
    let mut out: Vec<(&'static str, Cow<'a, str>)> = Vec::with_capacity(messages.len() + 1);
    let mut names: HashMap<&str, &str> = HashMap::new();
    // Whether the last turn in `out` ends with a tool result (more may join it).
    let mut after_result = false;
    let in_turn = family == Family::Gemma4;
    for m in messages {
        let (role, text): (&'static str, Cow<'a, str>) = match m {
            Message::System(t) => ("system", Cow::Borrowed(t)),
            Message::User(t) => ("user", Cow::Borrowed(t)),
            Message::Assistant { content, calls } if calls.is_empty() => {
                ("assistant", Cow::Borrowed(content))
            }
            Message::Assistant { content, calls } => {
                let mut text = content.clone();
                for (i, c) in calls.iter().enumerate() {
                    names.insert(&c.id, &c.name);
                    // Qwen3.5's template: a blank line after the text, one newline between calls.
                    match (i, text.trim().is_empty()) {
                        (_, true) => text.clear(),
                        (0, false) if family == Family::QwenXml => text.push_str("\n\n"),
                        _ => text.push('\n'),
                    }
                    text.push_str(&render_call(family, &c.name, &c.arguments));
                }
                ("assistant", Cow::Owned(text))
            }
            Message::Tool { call_id, content } => {
                let name = names.get(call_id.as_str()).copied().unwrap_or("unknown");
                let rendered = render_result(family, name, content);
                // A result joins Gemma 4's call turn, or the results before it.
                let joins = match out.last() {
                    Some(("assistant", _)) => in_turn,
                    Some(("user", _)) => after_result,
                    _ => false,
                };
                match out.last_mut() {
                    Some((_, prev)) if joins => {
                        let merged = prev.to_mut();
                        if !matches!(family, Family::Glm47 | Family::Gemma4) {
                            merged.push('\n');
                        }
                        merged.push_str(&rendered);
                    }
                    _ => out.push(("user", Cow::Owned(rendered))),
                }
                after_result = true;
                continue;
            }
        };
        match out.last_mut() {
            Some(("assistant", prev)) if in_turn && after_result && role == "assistant" => {
                prev.to_mut().push_str(&text)
            }
            _ => out.push((role, text)),
        }
        after_result = false;
    }
    if let Some(prompt) = tools.and_then(|t| tools_prompt(family, t)) {
        match out.first_mut() {
            // Qwen3.5's template puts the tools first and the system text after them.
            Some(("system", first)) if family == Family::QwenXml => {
                *first = Cow::Owned(format!("{prompt}\n\n{}", first.trim()));
            }
            // Gemma 4's declarations follow the system text directly.
            Some(("system", first)) if family == Family::Gemma4 => first.to_mut().push_str(&prompt),
            _ => add_system(&mut out, &prompt),
        }
    }
    out
}

/// Appends `text` to the first system message, or adds one.
pub(crate) fn add_system(out: &mut Vec<(&'static str, Cow<'_, str>)>, text: &str) {
    match out.first_mut() {
        Some(("system", first)) => {
            let merged = first.to_mut();
            merged.push_str("\n\n");
            merged.push_str(text);
        }
        _ => out.insert(0, ("system", Cow::Owned(text.to_string()))),
    }
}

/// The turn that asks the model to try again after an invalid call.
pub(crate) fn correction(reason: &str) -> String {
    format!(
        "Your previous reply contained an invalid tool call: {reason}. Reply again, calling only the offered functions, with arguments that match their JSON Schema, in exactly the required format."
    )
}
