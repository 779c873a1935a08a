//! GLM's format: `<tool_call>F<arg_key>K</arg_key><arg_value>V</arg_value></tool_call>`, with
//! newlines between the parts in GLM-4.5/4.6 (`glm`) and none from 4.7 on (`glm47`).

use super::{text_value, tool_json, TOOLS_HEAD};
use crate::chat::tool_calls::defs::ToolDef;
use serde_json::Value;

/// What separates the parts: a newline before 4.7, nothing after.
fn sep(newlines: bool) -> &'static str {
    if newlines {
        "\n"
    } else {
        ""
    }
}

pub(super) fn tools(offered: &[&ToolDef], newlines: bool) -> String {
    let tools: String = offered
        .iter()
        .map(|t| format!("\n{}", tool_json(t)))
        .collect();
    let sep = sep(newlines);
    format!(
        "{TOOLS_HEAD}{tools}\n</tools>\n\nFor each function call, output the function name and arguments within the following XML format:\n<tool_call>{{function-name}}{sep}<arg_key>{{arg-key-1}}</arg_key>{sep}<arg_value>{{arg-value-1}}</arg_value>{sep}<arg_key>{{arg-key-2}}</arg_key>{sep}<arg_value>{{arg-value-2}}</arg_value>{sep}...{sep}</tool_call>"
    )
}

pub(super) fn call(name: &str, args: &Value, newlines: bool) -> String {
    let sep = sep(newlines);
    let mut s = format!("<tool_call>{name}");
    for (k, v) in args.as_object().into_iter().flatten() {
        s.push_str(&format!(
            "{sep}<arg_key>{k}</arg_key>{sep}<arg_value>{}</arg_value>",
            text_value(v)
        ));
    }
    s.push_str(sep);
    s.push_str("</tool_call>");
    s
}

pub(super) fn result(content: &str, newlines: bool) -> String {
    if newlines {
        format!("<tool_response>\n{content}\n</tool_response>")
    } else {
        format!("<tool_response>{content}</tool_response>")
    }
}
