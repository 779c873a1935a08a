//! Hermes' format, for every model without its own: JSON in `<tool_call>`, the tools in one
//! system sentence with a pydantic schema, results as JSON in `<tool_response>`.

use super::{tojson, tool_json};
use crate::chat::tool_calls::defs::ToolDef;
use serde_json::json;

pub(super) fn tools(offered: &[&ToolDef]) -> String {
    let tools: String = offered
        .iter()
        .map(|t| format!(" {}", tool_json(t)))
        .collect();
    format!(
        "You are a function calling AI model. You are provided with function signatures within <tools></tools> XML tags. You may call one or more functions to assist with the user query. Don't make assumptions about what values to plug into functions. Here are the available tools: <tools>{tools} </tools> Use the following pydantic model json schema for each tool call you will make: {{\"properties\": {{\"arguments\": {{\"title\": \"Arguments\", \"type\": \"object\"}}, \"name\": {{\"title\": \"Name\", \"type\": \"string\"}}}}, \"required\": [\"arguments\", \"name\"], \"title\": \"FunctionCall\", \"type\": \"object\"}} For each function call return a json object with function name and arguments within <tool_call></tool_call> XML tags as follows:\n<tool_call>\n{{\"arguments\": <args-dict>, \"name\": <function-name>}}\n</tool_call>"
    )
}

pub(super) fn result(name: &str, content: &str) -> String {
    format!(
        "<tool_response>\n{}\n</tool_response>",
        tojson(&json!({"name": name, "content": content}))
    )
}
