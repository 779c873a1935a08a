//! DeepSeek V3.2/V4's DSML: `<｜DSML｜tool_calls>` blocks of `<｜DSML｜invoke>` with typed
//! `<｜DSML｜parameter>`s, its encoder's "## Tools" section, results in `<tool_result>`.

use super::{function_json, tojson};
use crate::chat::tool_calls::defs::ToolDef;
use serde_json::Value;
use std::borrow::Cow;

/// DeepSeek V4's tools section (its encoder's template, thinking tokens filled in).
const DSML_TOOLS: &str = "## Tools\n\nYou have access to a set of tools to help answer the user's question. You can invoke tools by writing a \"<｜DSML｜tool_calls>\" block like the following:\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"$TOOL_NAME\">\n<｜DSML｜parameter name=\"$PARAMETER_NAME\" string=\"true|false\">$PARAMETER_VALUE</｜DSML｜parameter>\n...\n</｜DSML｜invoke>\n<｜DSML｜invoke name=\"$TOOL_NAME2\">\n...\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>\n\nString parameters should be specified as is and set `string=\"true\"`. For all other types (numbers, booleans, arrays, objects), pass the value in JSON format and set `string=\"false\"`.\n\nIf thinking_mode is enabled (triggered by <think>), you MUST output your complete reasoning inside <think>...</think> BEFORE any tool calls or final response.\n\nOtherwise, output directly after </think> with tool calls or final response.\n\n### Available Tool Schemas\n\n{tool_schemas}\n\nYou MUST strictly follow the above defined tool name and parameter schemas to invoke tool calls.";

pub(super) fn tools(offered: &[&ToolDef]) -> String {
    let schemas: Vec<String> = offered.iter().map(|t| tojson(&function_json(t))).collect();
    DSML_TOOLS.replace("{tool_schemas}", &schemas.join("\n"))
}

pub(super) fn call(name: &str, args: &Value) -> String {
    let mut s = format!("<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"{name}\">\n");
    for (k, v) in args.as_object().into_iter().flatten() {
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

pub(super) fn result(content: &str) -> String {
    format!("<tool_result>{content}</tool_result>")
}
