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

/// DeepSeek V4's tools section (its encoder's template, thinking tokens filled in).
const DSML_TOOLS: &str = "## Tools\n\nYou have access to a set of tools to help answer the user's question. You can invoke tools by writing a \"<｜DSML｜tool_calls>\" block like the following:\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"$TOOL_NAME\">\n<｜DSML｜parameter name=\"$PARAMETER_NAME\" string=\"true|false\">$PARAMETER_VALUE</｜DSML｜parameter>\n...\n</｜DSML｜invoke>\n<｜DSML｜invoke name=\"$TOOL_NAME2\">\n...\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>\n\nString parameters should be specified as is and set `string=\"true\"`. For all other types (numbers, booleans, arrays, objects), pass the value in JSON format and set `string=\"false\"`.\n\nIf thinking_mode is enabled (triggered by <think>), you MUST output your complete reasoning inside <think>...</think> BEFORE any tool calls or final response.\n\nOtherwise, output directly after </think> with tool calls or final response.\n\n### Available Tool Schemas\n\n{tool_schemas}\n\nYou MUST strictly follow the above defined tool name and parameter schemas to invoke tool calls.";

/// Gemma 4's quote token: strings in its declarations and calls sit between two of them.
const GEMMA_QUOTE: &str = "<|\"|>";

/// One tool as Gemma 4's chat template declares it in the system turn:
/// `<|tool>declaration:NAME{description:…,parameters:{properties:{…},required:[…],type:…}}<tool|>`,
/// keys in sorted order, type names upper-case, only the schema keywords the template keeps.
fn gemma_declaration(t: &ToolDef) -> String {
    let q = GEMMA_QUOTE;
    let mut s = format!(
        "<|tool>declaration:{}{{description:{q}{}{q}",
        t.name,
        t.description.as_deref().unwrap_or("")
    );
    if let Some(params) = t.parameters.as_object().filter(|p| !p.is_empty()) {
        s.push_str(",parameters:{");
        s.push_str(&gemma_schema_fields(params, false));
        s.push('}');
    }
    s.push_str("}<tool|>");
    s
}

/// The fields of one schema object in Gemma 4's declaration notation. `with_description`:
/// a property's own description comes first (a tool's sits outside its parameters).
fn gemma_schema_fields(schema: &serde_json::Map<String, Value>, with_description: bool) -> String {
    let q = GEMMA_QUOTE;
    let mut parts = Vec::new();
    let nonempty = |key: &str| schema.get(key).filter(|v| !is_empty_value(v));
    if with_description {
        if let Some(d) = nonempty("description").and_then(Value::as_str) {
            parts.push(format!("description:{q}{d}{q}"));
        }
    }
    if let Some(e) = nonempty("enum") {
        parts.push(format!("enum:{}", gemma_value(e, true)));
    }
    if let Some(items) = nonempty("items").and_then(Value::as_object) {
        parts.push(format!("items:{{{}}}", gemma_schema_fields(items, true)));
    }
    if schema.get("nullable").and_then(Value::as_bool) == Some(true) {
        parts.push("nullable:true".into());
    }
    if let Some(props) = nonempty("properties").and_then(Value::as_object) {
        let mut keys: Vec<&String> = props.keys().collect();
        keys.sort();
        let inner: Vec<String> = keys
            .into_iter()
            .map(|k| {
                let body = props[k].as_object().map(|p| gemma_schema_fields(p, true));
                format!("{k}:{{{}}}", body.unwrap_or_default())
            })
            .collect();
        parts.push(format!("properties:{{{}}}", inner.join(",")));
    }
    if let Some(r) = nonempty("required") {
        parts.push(format!("required:{}", gemma_value(r, true)));
    }
    if let Some(ty) = gemma_type(schema.get("type")) {
        parts.push(format!("type:{ty}"));
    }
    parts.join(",")
}

/// A schema's `type` as the template prints it: upper-case, quoted; a list of types as a list.
fn gemma_type(ty: Option<&Value>) -> Option<String> {
    let upper = |v: &Value| v.as_str().map(|t| Value::String(t.to_ascii_uppercase()));
    let ty = match ty? {
        Value::Array(list) => Value::Array(list.iter().filter_map(upper).collect()),
        one => upper(one)?,
    };
    Some(gemma_value(&ty, true))
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

const QWEN_XML_FORMAT: &str = "If you choose to call a function ONLY reply in the following format with NO suffix:\n\n<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n- Function calls MUST follow the specified format: an inner <function=...></function> block must be nested within <tool_call></tool_call> XML tags\n- Required parameters MUST be specified\n- You may provide optional reasoning for your function call in natural language BEFORE the function call, but NOT after\n- If there is no function call available, answer the question like normal with your current knowledge and do not tell the user about function calls\n</IMPORTANT>";

/// The tools section's head, word for word the same in the Qwen2.5/3 and GLM templates.
const TOOLS_HEAD: &str = "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>";

/// The tool instructions for the system message; `None` when no tool is offered.
pub(crate) fn tools_prompt(family: Family, set: &ToolSet) -> Option<String> {
    let offered: Vec<_> = set.offered().collect();
    if offered.is_empty() {
        return None;
    }
    let tools = |sep: &str| -> String {
        offered
            .iter()
            .map(|t| format!("{sep}{}", tool_json(t)))
            .collect()
    };
    let mut p = match family {
        Family::QwenXml => format!(
            "# Tools\n\nYou have access to the following functions:\n\n<tools>{}\n</tools>\n\n{QWEN_XML_FORMAT}",
            tools("\n")
        ),
        Family::Qwen => format!(
            "{TOOLS_HEAD}{}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{{\"name\": <function-name>, \"arguments\": <args-json-object>}}\n</tool_call>",
            tools("\n")
        ),
        Family::Glm => format!(
            "{TOOLS_HEAD}{}\n</tools>\n\nFor each function call, output the function name and arguments within the following XML format:\n<tool_call>{{function-name}}\n<arg_key>{{arg-key-1}}</arg_key>\n<arg_value>{{arg-value-1}}</arg_value>\n<arg_key>{{arg-key-2}}</arg_key>\n<arg_value>{{arg-value-2}}</arg_value>\n...\n</tool_call>",
            tools("\n")
        ),
        Family::Glm47 => format!(
            "{TOOLS_HEAD}{}\n</tools>\n\nFor each function call, output the function name and arguments within the following XML format:\n<tool_call>{{function-name}}<arg_key>{{arg-key-1}}</arg_key><arg_value>{{arg-value-1}}</arg_value><arg_key>{{arg-key-2}}</arg_key><arg_value>{{arg-value-2}}</arg_value>...</tool_call>",
            tools("\n")
        ),
        Family::Gemma4 => offered.iter().map(|t| gemma_declaration(t)).collect(),
        Family::DeepseekDsml => DSML_TOOLS.replace(
            "{tool_schemas}",
            &offered
                .iter()
                .map(|t| tojson(&function_json(t)))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        Family::Hermes => format!(
            "You are a function calling AI model. You are provided with function signatures within <tools></tools> XML tags. You may call one or more functions to assist with the user query. Don't make assumptions about what values to plug into functions. Here are the available tools: <tools>{} </tools> Use the following pydantic model json schema for each tool call you will make: {{\"properties\": {{\"arguments\": {{\"title\": \"Arguments\", \"type\": \"object\"}}, \"name\": {{\"title\": \"Name\", \"type\": \"string\"}}}}, \"required\": [\"arguments\", \"name\"], \"title\": \"FunctionCall\", \"type\": \"object\"}} For each function call return a json object with function name and arguments within <tool_call></tool_call> XML tags as follows:\n<tool_call>\n{{\"arguments\": <args-dict>, \"name\": <function-name>}}\n</tool_call>",
            tools(" ")
        ),
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
    let pairs = || args.as_object().into_iter().flatten();
    match family {
        Family::Glm | Family::Glm47 => {
            let sep = if family == Family::Glm { "\n" } else { "" };
            let mut s = format!("<tool_call>{name}");
            for (k, v) in pairs() {
                s.push_str(&format!(
                    "{sep}<arg_key>{k}</arg_key>{sep}<arg_value>{}</arg_value>",
                    text_value(v)
                ));
            }
            s.push_str(sep);
            s.push_str("</tool_call>");
            s
        }
        Family::QwenXml => {
            let mut s = format!("<tool_call>\n<function={name}>\n");
            for (k, v) in pairs() {
                s.push_str(&format!(
                    "<parameter={k}>\n{}\n</parameter>\n",
                    text_value(v)
                ));
            }
            s.push_str("</function>\n</tool_call>");
            s
        }
        Family::Gemma4 => format!(
            "<|tool_call>call:{name}{}<tool_call|>",
            gemma_value(&args, false)
        ),
        Family::DeepseekDsml => {
            let mut s = format!("<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"{name}\">\n");
            for (k, v) in pairs() {
                // Non-text values as its encoder writes them: JSON with Python's separators.
                let (string, value) = match v {
                    Value::String(t) => (true, Cow::Borrowed(t.as_str())),
                    other => (false, Cow::Owned(tojson(other))),
                };
                s.push_str(&format!(
                    "<｜DSML｜parameter name=\"{k}\" string=\"{string}\">{value}</｜DSML｜parameter>\n"
                ));
            }
            s.push_str("</｜DSML｜invoke>\n</｜DSML｜tool_calls>");
            s
        }
        Family::Qwen | Family::Hermes => format!(
            "<tool_call>\n{}\n</tool_call>",
            tojson(&json!({"name": name, "arguments": args}))
        ),
    }
}

/// A value in Gemma 4's notation: text between quote tokens, keys sorted and bare (quoted
/// in a declaration's lists and values), the rest as JSON.
fn gemma_value(v: &Value, quote_keys: bool) -> String {
    let q = GEMMA_QUOTE;
    match v {
        Value::String(s) => format!("{q}{s}{q}"),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    let v = gemma_value(&map[k], quote_keys);
                    if quote_keys {
                        format!("{q}{k}{q}:{v}")
                    } else {
                        format!("{k}:{v}")
                    }
                })
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(|i| gemma_value(i, quote_keys)).collect();
            format!("[{}]", inner.join(","))
        }
        other => other.to_string(),
    }
}

fn render_result(family: Family, name: &str, content: &str) -> String {
    match family {
        Family::Hermes => format!(
            "<tool_response>\n{}\n</tool_response>",
            tojson(&json!({"name": name, "content": content}))
        ),
        Family::Glm47 => format!("<tool_response>{content}</tool_response>"),
        Family::Gemma4 => {
            let q = GEMMA_QUOTE;
            format!("<|tool_response>response:{name}{{value:{q}{content}{q}}}<tool_response|>")
        }
        Family::DeepseekDsml => format!("<tool_result>{content}</tool_result>"),
        Family::Qwen | Family::QwenXml | Family::Glm => {
            format!("<tool_response>\n{content}\n</tool_response>")
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::chat::parse;

    /// A request with tools, history with a call and its result, and a forced choice.
    fn conversation(model: &str) -> crate::chat::request::ChatRequest {
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
        parse::parse(body.to_string().as_bytes()).unwrap()
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
    fn gemma4_snapshot() {
        snapshot("gemma4", "e2ee-gemma-4-31b");
    }

    #[test]
    fn deepseek_dsml_snapshot() {
        snapshot("deepseek_dsml", "e2ee-deepseek-v4-flash");
    }

    #[test]
    fn every_family_reads_back_the_calls_it_renders() {
        use crate::chat::tool_calls::parser::{parse_all, AnyParser, ParamTypes, ParseEvent};
        struct Types;
        impl ParamTypes for Types {
            fn param_type(&self, _: &str, p: &str) -> Option<String> {
                Some(if p == "days" { "integer" } else { "string" }.into())
            }
        }
        let args = r#"{"city":"Paris, FR","days":2}"#;
        for family in [
            Family::Glm,
            Family::Glm47,
            Family::Qwen,
            Family::QwenXml,
            Family::Gemma4,
            Family::DeepseekDsml,
            Family::Hermes,
        ] {
            let text = format!("Checking.\n{}", render_call(family, "get_weather", args));
            let events = parse_all(&mut AnyParser::new(std::sync::Arc::new(Types)), &text);
            let ended: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    ParseEvent::End { name, arguments } => {
                        Some((name.as_str(), arguments.as_str()))
                    }
                    _ => None,
                })
                .collect();
            assert_eq!(ended, [("get_weather", args)], "{family:?}: {text}");
            assert_eq!(
                events[0],
                ParseEvent::Text("Checking.\n".into()),
                "{family:?}"
            );
        }
    }

    #[test]
    fn qwen_snapshot() {
        snapshot("qwen", "e2ee-qwen3-235b-a22b");
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
    fn qwen_xml_snapshot() {
        snapshot("qwen_xml", "e2ee-qwen3-5-122b-a10b");
    }

    #[test]
    fn glm47_snapshot() {
        snapshot("glm47", "e2ee-glm-5");
    }

    /// The wording of each family's chat template (its tools branch), as published with the
    /// models: the proxy must say what the model was trained to read.
    #[test]
    fn prompts_use_each_templates_own_wording() {
        let req = conversation("m");
        let set = req.tools.as_deref().unwrap();
        let qwen35 = tools_prompt(Family::QwenXml, set).unwrap();
        for line in [
            "# Tools\n\nYou have access to the following functions:\n\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Current weather\", \"parameters\": {",
            "\n</tools>\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n",
            "- Function calls MUST follow the specified format: an inner <function=...></function> block must be nested within <tool_call></tool_call> XML tags\n- Required parameters MUST be specified\n",
        ] {
            assert!(qwen35.contains(line), "{line:?} not in {qwen35}");
        }
        let qwen3 = tools_prompt(Family::Qwen, set).unwrap();
        assert!(qwen3.contains("For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>"));
        let glm46 = tools_prompt(Family::Glm, set).unwrap();
        assert!(glm46.contains(
            "<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\""
        ));
        assert!(glm46.contains("<tool_call>{function-name}\n<arg_key>{arg-key-1}</arg_key>\n<arg_value>{arg-value-1}</arg_value>\n"));
        let glm5 = tools_prompt(Family::Glm47, set).unwrap();
        assert!(glm5.contains("For each function call, output the function name and arguments within the following XML format:\n<tool_call>{function-name}<arg_key>{arg-key-1}</arg_key><arg_value>{arg-value-1}</arg_value><arg_key>{arg-key-2}</arg_key><arg_value>{arg-value-2}</arg_value>...</tool_call>"));
        // Qwen3.5 renders the tools block first, then the system text.
        let rendered = render(&req.messages, Family::QwenXml, Some(set));
        assert!(rendered[0].1.starts_with("# Tools\n\nYou have access"));
        assert!(rendered[0].1.ends_with("\n\nYou are a helpful assistant."));
    }

    /// One tool as a request declares it.
    fn tool_def(function: Value) -> ToolDef {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": function}]});
        let mut set = parse::parse(body.to_string().as_bytes())
            .unwrap()
            .tools
            .unwrap();
        std::sync::Arc::get_mut(&mut set).unwrap().tools.remove(0)
    }

    /// Gemma 4's template declares tools in its own notation: keys sorted, types upper-case,
    /// enums, items, nested objects, nullable and required kept, other keywords left out.
    #[test]
    fn gemma4_declares_tools_in_its_templates_notation() {
        let tool = tool_def(json!({"name": "search", "description": "Find files",
        "parameters": {"type": "object", "required": ["query"], "additionalProperties": false,
            "properties": {
                "query": {"type": "string", "description": "What to find", "minLength": 1},
                "mode": {"type": "string", "enum": ["exact", "fuzzy"]},
                "paths": {"type": "array", "items": {"type": "string"}},
                "limit": {"type": ["integer", "null"], "nullable": true},
                "filter": {"type": "object", "properties": {"ext": {"type": "string"}}, "required": ["ext"]}
            }}}));
        let q = GEMMA_QUOTE;
        assert_eq!(
            gemma_declaration(&tool),
            format!(
                "<|tool>declaration:search{{description:{q}Find files{q},parameters:{{properties:{{\
                 filter:{{properties:{{ext:{{type:{q}STRING{q}}}}},required:[{q}ext{q}],type:{q}OBJECT{q}}},\
                 limit:{{nullable:true,type:[{q}INTEGER{q},{q}NULL{q}]}},\
                 mode:{{enum:[{q}exact{q},{q}fuzzy{q}],type:{q}STRING{q}}},\
                 paths:{{items:{{type:{q}STRING{q}}},type:{q}ARRAY{q}}},\
                 query:{{description:{q}What to find{q},type:{q}STRING{q}}}}},\
                 required:[{q}query{q}],type:{q}OBJECT{q}}}}}<tool|>"
            )
        );
        // A tool without parameters (an empty object schema to the proxy) or description.
        assert_eq!(
            gemma_declaration(&tool_def(json!({"name": "now"}))),
            format!("<|tool>declaration:now{{description:{q}{q},parameters:{{type:{q}OBJECT{q}}}}}<tool|>")
        );
    }

    /// Gemma 4 keeps a call, its result and the model's next words in one model turn; other
    /// families put results in a user turn, consecutive results together.
    #[test]
    fn tool_results_sit_where_each_template_puts_them() {
        let body = json!({"model": "m", "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "w", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "b", "type": "function", "function": {"name": "w", "arguments": "{\"city\":\"Rome\"}"}}]},
            {"role": "tool", "tool_call_id": "a", "content": "sunny"},
            {"role": "tool", "tool_call_id": "b", "content": "rain"},
            {"role": "assistant", "content": "Sunny in Paris, rain in Rome."},
            {"role": "user", "content": "Thanks"}
        ]});
        let req = parse::parse(body.to_string().as_bytes()).unwrap();
        let roles = |family| -> Vec<(&str, String)> {
            render(&req.messages, family, None)
                .into_iter()
                .map(|(r, t)| (r, t.into_owned()))
                .collect()
        };
        let q = GEMMA_QUOTE;
        assert_eq!(
            roles(Family::Gemma4),
            [
                ("user", "Weather in Paris and Rome?".to_string()),
                ("assistant", format!(
                    "<|tool_call>call:w{{city:{q}Paris{q}}}<tool_call|>\n<|tool_call>call:w{{city:{q}Rome{q}}}<tool_call|>\
                     <|tool_response>response:w{{value:{q}sunny{q}}}<tool_response|>\
                     <|tool_response>response:w{{value:{q}rain{q}}}<tool_response|>\
                     Sunny in Paris, rain in Rome."
                )),
                ("user", "Thanks".to_string()),
            ]
        );
        let dsml = roles(Family::DeepseekDsml);
        assert_eq!(dsml.len(), 5);
        assert_eq!(
            dsml[2],
            (
                "user",
                "<tool_result>sunny</tool_result>\n<tool_result>rain</tool_result>".to_string()
            )
        );
        assert_eq!(
            dsml[3],
            ("assistant", "Sunny in Paris, rain in Rome.".to_string())
        );
    }

    #[test]
    fn history_calls_render_in_each_syntax() {
        let args = r#"{"city":"Paris","days":2,"opts":{"u":"C"}}"#;
        assert_eq!(
            render_call(Family::QwenXml, "w", args),
            "<tool_call>\n<function=w>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n2\n</parameter>\n<parameter=opts>\n{\"u\":\"C\"}\n</parameter>\n</function>\n</tool_call>"
        );
        assert_eq!(
            render_call(Family::Glm47, "w", r#"{"city":"Paris"}"#),
            "<tool_call>w<arg_key>city</arg_key><arg_value>Paris</arg_value></tool_call>"
        );
        assert_eq!(
            render_call(Family::Qwen, "w", r#"{"city":"Paris"}"#),
            "<tool_call>\n{\"name\": \"w\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"
        );
    }

    #[test]
    fn families_from_ids_and_config() {
        let none = HashMap::new();
        for (id, family) in [
            ("e2ee-glm-4-6", Family::Glm),
            ("e2ee-glm-4.5-air", Family::Glm),
            ("e2ee-glm-4-7", Family::Glm47),
            ("e2ee-glm-5", Family::Glm47),
            ("e2ee-glm-5-1", Family::Glm47),
            ("e2ee-qwen3-5-122b-a10b", Family::QwenXml),
            ("e2ee-Qwen3.5-35B", Family::QwenXml),
            ("e2ee-qwen3-coder-480b", Family::QwenXml),
            ("e2ee-qwen3-235b-a22b", Family::Qwen),
            ("e2ee-qwen-2-5-72b", Family::Qwen),
            ("e2ee-gpt-oss-120b", Family::Hermes),
            ("e2ee-llama", Family::Hermes),
            // Venice's E2EE list of 2026-08.
            ("e2ee-qwen3-6-27b", Family::QwenXml),
            ("e2ee-qwen3-6-35b-a3b", Family::QwenXml),
            ("e2ee-glm-5-2-p", Family::Glm47),
            ("e2ee-gemma-4-31b", Family::Gemma4),
            ("e2ee-gemma-4-26b-a4b-it", Family::Gemma4),
            ("e2ee-deepseek-v4-flash", Family::DeepseekDsml),
            ("e2ee-deepseek-v3.2", Family::DeepseekDsml),
            ("e2ee-gpt-oss-20b-p", Family::Hermes),
            ("e2ee-qwen3-vl-30b-a3b-p", Family::Qwen),
        ] {
            assert_eq!(Family::for_model(id, &none), family, "{id}");
        }
        let over = HashMap::from([("e2ee-llama".to_string(), Family::Qwen)]);
        assert_eq!(Family::for_model("e2ee-llama", &over), Family::Qwen);
    }

    #[test]
    fn no_tools_offered_under_tool_choice_none() {
        let mut req = conversation("e2ee-qwen3");
        let body = json!({"model": "m", "tool_choice": "none", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f"}}]});
        req.tools = parse::parse(body.to_string().as_bytes()).unwrap().tools;
        let rendered = render(&req.messages, req.family, req.tools.as_deref());
        assert!(!rendered[0].1.contains("<tools>"));
    }
}
