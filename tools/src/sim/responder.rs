//! What the simulated model says when no reply is scripted: it echoes the last user message
//! (`echo`), or (`agent`, for the demo) it acts like a small tool-calling model: asked to
//! create a file while tools are offered, it calls the tool that writes files (or a shell
//! tool) in the syntax Qwen models are trained on (`<tool_call><function=…>`), the same way a
//! real model reads the tools from its system prompt; given the tool's result, it says it is
//! done. Anything else is echoed. Deterministic, so a newcomer can watch an agent work
//! through the sidecar with no key.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// How the simulated model answers an unscripted request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Responder {
    #[default]
    Echo,
    Agent,
}

/// One offered tool, as the system prompt lists it.
#[derive(Debug, Clone)]
struct Tool {
    name: String,
    properties: Map<String, Value>,
    required: Vec<String>,
}

/// The tools the system prompt lists between `<tools>` and `</tools>`, one JSON object a line
/// (`{"type": "function", "function": {...}}` or the function object itself).
fn offered(system: &str) -> Vec<Tool> {
    let Some(start) = system.find("<tools>") else {
        return Vec::new();
    };
    let block = &system[start + "<tools>".len()..];
    let block = &block[..block.find("</tools>").unwrap_or(block.len())];
    block
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter_map(|v| {
            let f = v.get("function").unwrap_or(&v);
            let params = f.get("parameters").cloned().unwrap_or(json!({}));
            Some(Tool {
                name: f.get("name")?.as_str()?.to_string(),
                properties: params
                    .get("properties")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
                required: params
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| {
                        r.iter()
                            .filter_map(|s| s.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// A request to create a file: its name and what to put in it ("create hello.txt
/// containing hi there"; without one, a greeting).
fn file_request(text: &str) -> Option<(String, String)> {
    let lower = text.to_lowercase();
    if !["create", "write", "make", "save"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return None;
    }
    let name = text
        .split(|c: char| c.is_whitespace() || matches!(c, '`' | '"' | '\'' | ',' | ':'))
        .map(|w| w.trim_end_matches('.'))
        .find(|w| {
            w.split_once('.').is_some_and(|(stem, ext)| {
                !stem.is_empty()
                    && !ext.is_empty()
                    && ext.chars().all(|c| c.is_ascii_alphanumeric())
                    && stem
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-/".contains(c))
            })
        })?
        .to_string();
    let content = [
        "containing ",
        "with the text ",
        "with content ",
        "that says ",
        "saying ",
    ]
    .iter()
    .find_map(|marker| {
        let at = lower.find(marker)?;
        Some(text[at + marker.len()..].trim())
    })
    .map(|c| {
        c.trim_matches(|ch| matches!(ch, '"' | '\'' | '`' | '.'))
            .to_string()
    })
    .filter(|c| !c.is_empty())
    .unwrap_or_else(|| "Hello from the enclave!".into());
    Some((name, content))
}

fn first_property<'a>(tool: &Tool, names: &[&'a str]) -> Option<&'a str> {
    names
        .iter()
        .find(|n| tool.properties.contains_key(**n))
        .copied()
}

/// The arguments for a file-writing tool (`write_file`, `create_file`, an editor's
/// `create`) writing `content` to `path`.
fn file_args(tool: &Tool, path: &str, content: &str) -> Option<Map<String, Value>> {
    let name = tool.name.to_lowercase();
    if !["write", "create", "edit"].iter().any(|w| name.contains(w)) {
        return None;
    }
    let path_key = first_property(
        tool,
        &[
            "path",
            "file_path",
            "filePath",
            "filename",
            "file",
            "absolute_path",
        ],
    )?;
    let content_key = first_property(tool, &["content", "contents", "file_text", "text"])?;
    let mut args = Map::new();
    args.insert(path_key.into(), json!(path));
    args.insert(content_key.into(), json!(content));
    // An editor tool with subcommands (create, str_replace, …).
    if let Some(command) = tool.properties.get("command") {
        let creates = command
            .get("enum")
            .and_then(Value::as_array)
            .is_some_and(|e| e.iter().any(|v| v == "create"));
        if !creates {
            return None;
        }
        args.insert("command".into(), json!("create"));
    }
    Some(args)
}

/// The arguments for a shell tool running a command that writes `content` to `path`.
fn shell_args(tool: &Tool, path: &str, content: &str) -> Option<Map<String, Value>> {
    let key = first_property(tool, &["command", "cmd"])?;
    let shell = format!(
        "printf '%s\\n' '{}' > '{}'",
        content.replace('\'', "'\\''"),
        path
    );
    let is_array = tool.properties[key].get("type") == Some(&json!("array"));
    let mut args = Map::new();
    args.insert(
        key.into(),
        if is_array {
            json!(["bash", "-lc", shell])
        } else {
            json!(shell)
        },
    );
    Some(args)
}

/// The first of `tools` that can write the file (a file tool before a shell), with every
/// parameter it requires filled.
fn write_call<'a>(tools: &'a [Tool], path: &str, content: &str) -> Option<(&'a Tool, Value)> {
    let complete = |t: &Tool, args: Option<Map<String, Value>>| {
        args.filter(|a| t.required.iter().all(|r| a.contains_key(r)))
            .map(Value::Object)
    };
    tools
        .iter()
        .find_map(|t| complete(t, file_args(t, path, content)).map(|a| (t, a)))
        .or_else(|| {
            tools
                .iter()
                .find_map(|t| complete(t, shell_args(t, path, content)).map(|a| (t, a)))
        })
}

/// A Qwen-style (`qwen_xml`) call.
fn xml_call(name: &str, args: &Value) -> String {
    let mut s = format!("<tool_call>\n<function={name}>\n");
    for (k, v) in args.as_object().into_iter().flatten() {
        let value = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        s.push_str(&format!("<parameter={k}>\n{value}\n</parameter>\n"));
    }
    s.push_str("</function>\n</tool_call>");
    s
}

/// The `agent` answer to a conversation of (role, plain text) for `model`: a call, a "done",
/// or `None` (echo).
pub(crate) fn agent_reply(model: &str, conversation: &[(&str, &str)]) -> Option<String> {
    // Qwen models write Qwen's call syntax; other families are echoed.
    if !model.contains("qwen") {
        return None;
    }
    let system = conversation
        .iter()
        .filter(|(role, _)| *role == "system")
        .map(|(_, t)| *t)
        .collect::<Vec<_>>()
        .join("\n");
    let tools = offered(&system);
    let (_, last) = conversation
        .iter()
        .rev()
        .find(|(role, _)| *role != "system")?;
    if last.contains("<tool_response>") || conversation.last().is_some_and(|(r, _)| *r == "tool") {
        return Some("Done: the file is written.".into());
    }
    if tools.is_empty() {
        return None;
    }
    let (path, content) = file_request(last)?;
    let (tool, args) = write_call(&tools, &path, &content)?;
    Some(format!(
        "I'll create {path} with the {} tool.\n\n{}",
        tool.name,
        xml_call(&tool.name, &args)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system(tools: &[Value]) -> String {
        let lines: String = tools.iter().map(|t| format!("\n{t}")).collect();
        format!("You are an agent.\n# Tools\n\nYou have access to the following functions:\n\n<tools>{lines}\n</tools>\n")
    }

    #[test]
    fn asked_to_create_a_file_it_calls_the_writing_tool() {
        let write = json!({"type": "function", "function": {"name": "write_file", "parameters": {
            "type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["path", "content"]}}});
        let shell = json!({"type": "function", "function": {"name": "shell", "parameters": {
            "type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}},
            "required": ["command"]}}});
        let sys = system(&[shell.clone(), write]);
        let said = agent_reply(
            "e2ee-qwen3-6-35b-a3b",
            &[
                ("system", &sys),
                ("user", "Please create hello.txt containing hi there"),
            ],
        )
        .unwrap();
        assert!(said.contains("<function=write_file>"), "{said}");
        assert!(
            said.contains("<parameter=path>\nhello.txt\n</parameter>"),
            "{said}"
        );
        assert!(
            said.contains("<parameter=content>\nhi there\n</parameter>"),
            "{said}"
        );
        // Only a shell: the command writes it.
        let sys = system(&[shell]);
        let said = agent_reply(
            "e2ee-qwen3-6-35b-a3b",
            &[("system", &sys), ("user", "create notes.md")],
        )
        .unwrap();
        assert!(
            said.contains("<function=shell>") && said.contains("> 'notes.md'"),
            "{said}"
        );
        // The tool's result: done. No tools, another family, another request: echoed (None).
        let done = agent_reply(
            "e2ee-qwen3-6-35b-a3b",
            &[
                ("system", &sys),
                ("user", "<tool_response>\nok\n</tool_response>"),
            ],
        );
        assert_eq!(done.as_deref(), Some("Done: the file is written."));
        assert_eq!(
            agent_reply("e2ee-qwen3-6-35b-a3b", &[("user", "create a.txt")]),
            None
        );
        assert_eq!(
            agent_reply(
                "e2ee-glm-5-1",
                &[("system", &sys), ("user", "create a.txt")]
            ),
            None
        );
        assert_eq!(
            agent_reply(
                "e2ee-qwen3-6-35b-a3b",
                &[("system", &sys), ("user", "what is 2+2?")]
            ),
            None
        );
    }
}
