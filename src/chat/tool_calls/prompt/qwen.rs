//! Qwen's formats: Qwen2.5/3 (`qwen`: Hermes-style JSON in `<tool_call>`) and Qwen3.5/3-Coder
//! (`qwen_xml`: `<function=F>` with `<parameter=K>` blocks), worded as their templates.

use super::{text_value, tojson, tool_json, TOOLS_HEAD};
use crate::chat::tool_calls::defs::ToolDef;
use serde_json::{json, Value};

const QWEN_XML_FORMAT: &str = "If you choose to call a function ONLY reply in the following format with NO suffix:\n\n<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n- Function calls MUST follow the specified format: an inner <function=...></function> block must be nested within <tool_call></tool_call> XML tags\n- Required parameters MUST be specified\n- You may provide optional reasoning for your function call in natural language BEFORE the function call, but NOT after\n- If there is no function call available, answer the question like normal with your current knowledge and do not tell the user about function calls\n</IMPORTANT>";

pub(super) fn xml_tools(offered: &[&ToolDef]) -> String {
    let tools: String = offered
        .iter()
        .map(|t| format!("\n{}", tool_json(t)))
        .collect();
    format!("# Tools\n\nYou have access to the following functions:\n\n<tools>{tools}\n</tools>\n\n{QWEN_XML_FORMAT}")
}

pub(super) fn json_tools(offered: &[&ToolDef]) -> String {
    let tools: String = offered
        .iter()
        .map(|t| format!("\n{}", tool_json(t)))
        .collect();
    format!(
        "{TOOLS_HEAD}{tools}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{{\"name\": <function-name>, \"arguments\": <args-json-object>}}\n</tool_call>"
    )
}

pub(super) fn xml_call(name: &str, args: &Value) -> String {
    let mut s = format!("<tool_call>\n<function={name}>\n");
    for (k, v) in args.as_object().into_iter().flatten() {
        s.push_str(&format!(
            "<parameter={k}>\n{}\n</parameter>\n",
            text_value(v)
        ));
    }
    s.push_str("</function>\n</tool_call>");
    s
}

/// Qwen2.5/3's call, the same JSON Hermes writes.
pub(super) fn json_call(name: &str, args: &Value) -> String {
    format!(
        "<tool_call>\n{}\n</tool_call>",
        tojson(&json!({"name": name, "arguments": args}))
    )
}

pub(super) fn result(content: &str) -> String {
    format!("<tool_response>\n{content}\n</tool_response>")
}
