//! The tool prompt and conversation history, in each model family's trained format, worded
//! as the family's chat template words it (the tools block, the call syntax, tool results as
//! `<tool_response>` turns). Venice never sees the tools (they travel inside the encrypted
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
//! The Gemma 4 and DSML call syntaxes are the ones vLLM's parsers for those models read; the
//! instructions around them are worded here (their chat templates' tool sections were not at
//! hand).

use super::defs::{ToolChoice, ToolDef, ToolSet};
use crate::conversation::Message;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::borrow::Cow;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Glm,
    Glm47,
    Qwen,
    QwenXml,
    Gemma4,
    DeepseekDsml,
    Hermes,
}

impl Family {
    /// From the model id, unless the configuration names the family for that model.
    pub fn for_model(model: &str, overrides: &HashMap<String, Family>) -> Family {
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

/// A tool as clients send it (and the templates print it).
fn tool_json(t: &ToolDef) -> String {
    let mut f = serde_json::Map::new();
    f.insert("name".into(), json!(t.name));
    if let Some(d) = &t.description {
        f.insert("description".into(), json!(d));
    }
    f.insert("parameters".into(), t.parameters.clone());
    tojson(&json!({"type": "function", "function": f}))
}

const QWEN_XML_FORMAT: &str = "If you choose to call a function ONLY reply in the following format with NO suffix:\n\n<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n- Function calls MUST follow the specified format: an inner <function=...></function> block must be nested within <tool_call></tool_call> XML tags\n- Required parameters MUST be specified\n- You may provide optional reasoning for your function call in natural language BEFORE the function call, but NOT after\n- If there is no function call available, answer the question like normal with your current knowledge and do not tell the user about function calls\n</IMPORTANT>";

/// The tools section's head, word for word the same in the Qwen2.5/3 and GLM templates.
const TOOLS_HEAD: &str = "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>";

/// The tool instructions for the system message; `None` when no tool is offered.
pub fn tools_prompt(family: Family, set: &ToolSet) -> Option<String> {
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
        Family::Gemma4 => format!(
            "You have access to the following functions:\n<tools>{}\n</tools>\n\nTo call a function, reply with it in this format, and nothing after it:\n<|tool_call>call:function_name{{key:<|\"|>a text value<|\"|>,count:42,flag:true,list:[<|\"|>a<|\"|>,<|\"|>b<|\"|>],object:{{inner:<|\"|>value<|\"|>}}}}<tool_call|>\n\nKeys are written bare, text values between <|\"|> marks, numbers, booleans and null as they are. Several calls follow one another without a separator. If no function fits, answer normally.",
            tools("\n")
        ),
        Family::DeepseekDsml => format!(
            "## Tools\n\nYou have access to the following functions:\n<tools>{}\n</tools>\n\nTo call functions, reply with a block in this format:\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"function_name\">\n<｜DSML｜parameter name=\"text_parameter\" string=\"true\">the text, as it is</｜DSML｜parameter>\n<｜DSML｜parameter name=\"other_parameter\" string=\"false\">a JSON value: 42, true, [1, 2] or {{\"k\": \"v\"}}</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>\n\nUse string=\"true\" for text parameters and string=\"false\" for all others. Several invokes may share one block. If no function fits, answer normally.",
            tools("\n")
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
pub fn render_call(family: Family, name: &str, arguments: &str) -> String {
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
        Family::Gemma4 => format!("<|tool_call>call:{name}{}<tool_call|>", gemma_value(&args)),
        Family::DeepseekDsml => {
            let mut s = format!("<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"{name}\">\n");
            for (k, v) in pairs() {
                let string = v.is_string();
                s.push_str(&format!(
                    "<｜DSML｜parameter name=\"{k}\" string=\"{string}\">{}</｜DSML｜parameter>\n",
                    text_value(v)
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

/// A value in Gemma 4's notation: text between `<|"|>`, keys bare, the rest as JSON.
fn gemma_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("<|\"|>{s}<|\"|>"),
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", gemma_value(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(gemma_value).collect();
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
        Family::Qwen | Family::QwenXml | Family::Glm | Family::Gemma4 | Family::DeepseekDsml => {
            format!("<tool_response>\n{content}\n</tool_response>")
        }
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
                out.push(("assistant", Cow::Owned(text)));
            }
            Message::Tool { call_id, content } => {
                let name = names.get(call_id.as_str()).copied().unwrap_or("unknown");
                let rendered = render_result(family, name, content);
                // Consecutive results share one user turn, as the templates do.
                match out.last_mut() {
                    Some(("user", prev)) if prev.ends_with("</tool_response>") => {
                        let merged = prev.to_mut();
                        if family != Family::Glm47 {
                            merged.push('\n');
                        }
                        merged.push_str(&rendered);
                    }
                    _ => out.push(("user", Cow::Owned(rendered))),
                }
            }
        }
    }
    if let Some(prompt) = tools.and_then(|t| tools_prompt(family, t)) {
        match out.first_mut() {
            // Qwen3.5's template puts the tools first and the system text after them.
            Some(("system", first)) if family == Family::QwenXml => {
                *first = Cow::Owned(format!("{prompt}\n\n{}", first.trim()));
            }
            _ => add_system(&mut out, &prompt),
        }
    }
    out
}

/// Appends `text` to the first system message, or adds one.
pub fn add_system(out: &mut Vec<(&'static str, Cow<'_, str>)>, text: &str) {
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
    fn gemma4_snapshot() {
        snapshot("gemma4", "e2ee-gemma-4-31b");
    }

    #[test]
    fn deepseek_dsml_snapshot() {
        snapshot("deepseek_dsml", "e2ee-deepseek-v4-flash");
    }

    #[test]
    fn every_family_reads_back_the_calls_it_renders() {
        use crate::tools::parser::{parse_all, AnyParser, ParamTypes, ParseEvent};
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
        req.tools = request::parse(body.to_string().as_bytes()).unwrap().tools;
        let rendered = render(&req.messages, req.family, req.tools.as_deref());
        assert!(!rendered[0].1.contains("<tools>"));
    }
}
