//! The Responses API's tool kinds on the one chat path. Function tools pass as they are; the
//! functions of a `namespace` tool, `custom` tools (free-form text input) and `local_shell`
//! become function tools the model is offered (and their calls are turned back into the
//! items the client expects); hosted tools, which run on OpenAI's side and which neither
//! Venice (it cannot see encrypted tools) nor the proxy can run, are left out and named.

use crate::chat::tool_calls::defs::ToolSpec;
use crate::error::ApiError;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Where a tool the model is offered came from, when not a plain function tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToolOrigin {
    /// A function of a `namespace` tool.
    Namespaced { namespace: String, name: String },
    /// A `custom` tool, maybe inside a namespace.
    Custom {
        namespace: Option<String>,
        name: String,
    },
    /// The `local_shell` tool.
    LocalShell,
}

/// Hosted tools of the Responses API: they run on OpenAI's side, so none exists over E2EE.
const HOSTED_TOOLS: [&str; 12] = [
    "web_search",
    "web_search_preview",
    "file_search",
    "computer_use_preview",
    "computer_use",
    "computer",
    "code_interpreter",
    "image_generation",
    "mcp",
    "shell",
    "apply_patch",
    "tool_search",
];

/// Input items that only hosted tools produce: nothing of the conversation to carry.
pub(crate) const HOSTED_ITEMS: [&str; 8] = [
    "web_search_call",
    "file_search_call",
    "computer_call",
    "computer_call_output",
    "code_interpreter_call",
    "image_generation_call",
    "mcp_list_tools",
    "mcp_call",
];

/// The tools the model is offered, where each non-function tool came from (by the name the
/// model sees), and the hosted tools left out.
#[derive(Debug, Default)]
pub(crate) struct Translated {
    pub(crate) offered: Vec<ToolSpec>,
    pub(crate) origins: HashMap<String, ToolOrigin>,
    pub(crate) omitted: Vec<String>,
}

const LOCAL_SHELL: &str = "local_shell";

fn text(t: &Value, key: &str) -> Option<String> {
    t.get(key).and_then(Value::as_str).map(str::to_string)
}

fn function(name: &str, t: &Value) -> ToolSpec {
    ToolSpec {
        name: name.to_string(),
        description: text(t, "description"),
        parameters: t.get("parameters").filter(|p| !p.is_null()).cloned(),
    }
}

/// A custom tool as a function taking its free-form text as one string argument.
fn custom(name: &str, t: &Value) -> ToolSpec {
    let mut about = text(t, "description").unwrap_or_default();
    about.push_str(if about.is_empty() { "" } else { " " });
    about.push_str("Its input is free-form text, given as `input`.");
    let mut input = json!({"type": "string"});
    if let Some(f) = t.get("format").filter(|f| f["type"] == "grammar") {
        input["description"] = json!(format!(
            "Text in this {} grammar:\n{}",
            f["syntax"].as_str().unwrap_or("formal"),
            f["definition"].as_str().unwrap_or_default()
        ));
    }
    ToolSpec {
        name: name.to_string(),
        description: Some(about),
        parameters: Some(json!({"type": "object", "properties": {"input": input},
            "required": ["input"], "additionalProperties": false})),
    }
}

fn local_shell() -> ToolSpec {
    ToolSpec {
        name: LOCAL_SHELL.to_string(),
        description: Some("Runs a command on the user's machine and returns its output.".into()),
        parameters: Some(json!({"type": "object", "properties": {
            "command": {"type": "array", "items": {"type": "string"}, "description": "The program and its arguments."},
            "workdir": {"type": "string"}, "timeout_ms": {"type": "integer"}},
            "required": ["command"]})),
    }
}

/// The name a tool is offered as: its own, or `namespace__name` for a namespace's; a name
/// already taken gets a numbered suffix, so no two tools can clash.
fn offered_name(taken: &HashMap<String, ()>, namespace: Option<&str>, name: &str) -> String {
    let base = match namespace {
        Some(ns) => format!("{ns}__{name}"),
        None => name.to_string(),
    };
    let mut candidate = base.clone();
    let mut n = 2;
    while taken.contains_key(&candidate) {
        candidate = format!("{base}_{n}");
        n += 1;
    }
    candidate
}

/// The Responses `tools` → the tools the model is offered.
pub(crate) fn translate(v: &Value) -> Result<Translated, ApiError> {
    let Some(items) = v.as_array() else {
        return if v.is_null() {
            Ok(Translated::default())
        } else {
            Err(ApiError::invalid("tools", "`tools` must be an array"))
        };
    };
    let mut out = Translated::default();
    let specs = &mut out.offered;
    let mut taken: HashMap<String, ()> = HashMap::new();
    // Plain function names first: they keep their names whatever follows.
    for t in items.iter().filter(|t| t["type"] == "function") {
        if let Some(n) = t["name"].as_str() {
            taken.insert(n.to_string(), ());
        }
    }
    for (i, t) in items.iter().enumerate() {
        let kind = t.get("type").and_then(Value::as_str).unwrap_or("?");
        let name = t.get("name").and_then(Value::as_str).unwrap_or_default();
        match kind {
            "function" => specs.push(function(name, t)),
            "custom" => {
                let offered = offered_name(&taken, None, name);
                taken.insert(offered.clone(), ());
                specs.push(custom(&offered, t));
                out.origins.insert(
                    offered,
                    ToolOrigin::Custom {
                        namespace: None,
                        name: name.into(),
                    },
                );
            }
            "namespace" => {
                for (j, inner) in t["tools"].as_array().into_iter().flatten().enumerate() {
                    let inner_name = inner["name"].as_str().unwrap_or_default();
                    let offered = offered_name(&taken, Some(name), inner_name);
                    taken.insert(offered.clone(), ());
                    let origin = match inner["type"].as_str() {
                        Some("function") => {
                            specs.push(function(&offered, inner));
                            ToolOrigin::Namespaced {
                                namespace: name.into(),
                                name: inner_name.into(),
                            }
                        }
                        Some("custom") => {
                            specs.push(custom(&offered, inner));
                            ToolOrigin::Custom {
                                namespace: Some(name.into()),
                                name: inner_name.into(),
                            }
                        }
                        other => {
                            return Err(ApiError::unsupported(
                                format!("tools[{i}].tools[{j}].type"),
                                format!(
                                    "a namespace holds function and custom tools, not `{}`",
                                    other.unwrap_or("?")
                                ),
                            ))
                        }
                    };
                    out.origins.insert(offered, origin);
                }
            }
            LOCAL_SHELL => {
                specs.push(local_shell());
                out.origins
                    .insert(LOCAL_SHELL.into(), ToolOrigin::LocalShell);
            }
            hosted if HOSTED_TOOLS.iter().any(|h| hosted.starts_with(h)) => {
                out.omitted.push(hosted.to_string());
            }
            other => {
                return Err(ApiError::unsupported(
                    format!("tools[{i}].type"),
                    format!("tools of type `{other}` are not supported"),
                ))
            }
        }
    }
    Ok(out)
}

/// The name the model was offered a tool under, for a call the client sends back.
pub(crate) fn offered(
    origins: &HashMap<String, ToolOrigin>,
    namespace: Option<&str>,
    name: &str,
    custom: bool,
) -> String {
    let found = origins.iter().find(|(_, o)| match o {
        ToolOrigin::Namespaced {
            namespace: ns,
            name: n,
        } => !custom && namespace == Some(ns.as_str()) && n == name,
        ToolOrigin::Custom {
            namespace: ns,
            name: n,
        } => custom && namespace == ns.as_deref() && n == name,
        ToolOrigin::LocalShell => false,
    });
    match (found, namespace) {
        (Some((offered, _)), _) => offered.clone(),
        (None, Some(ns)) => format!("{ns}__{name}"),
        (None, None) => name.to_string(),
    }
}

/// The output item that opens for a call of the tool offered as `offered`.
pub(crate) fn call_item(
    origin: Option<&ToolOrigin>,
    offered: &str,
    id: &str,
    call_id: &str,
) -> Value {
    match origin {
        None => json!({"type": "function_call", "id": id, "call_id": call_id, "name": offered,
            "arguments": "", "status": "in_progress"}),
        Some(ToolOrigin::Namespaced { namespace, name }) => json!({"type": "function_call",
            "id": id, "call_id": call_id, "name": name, "namespace": namespace,
            "arguments": "", "status": "in_progress"}),
        Some(ToolOrigin::Custom { namespace, name }) => {
            let mut item = json!({"type": "custom_tool_call", "id": id, "call_id": call_id,
                "name": name, "input": "", "status": "in_progress"});
            if let Some(ns) = namespace {
                item["namespace"] = json!(ns);
            }
            item
        }
        Some(ToolOrigin::LocalShell) => json!({"type": "local_shell_call", "id": id,
            "call_id": call_id, "status": "in_progress",
            "action": {"type": "exec", "command": [], "env": {}}}),
    }
}

/// A custom tool call's text from the arguments the model gave (`{"input": …}`; anything
/// else is taken as the text itself).
pub(crate) fn custom_input(arguments: &str) -> String {
    serde_json::from_str::<Value>(arguments)
        .ok()
        .and_then(|v| v.get("input").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| arguments.to_string())
}

/// A `local_shell_call`'s action from the arguments the model gave.
pub(crate) fn shell_action(arguments: &str) -> Value {
    let v: Value = serde_json::from_str(arguments).unwrap_or(Value::Null);
    let command = match &v["command"] {
        Value::Array(parts) => Value::Array(parts.clone()),
        // A command line given as one string runs through the shell.
        Value::String(line) => json!(["bash", "-lc", line]),
        _ => json!([]),
    };
    let mut action = json!({"type": "exec", "command": command, "env": {}});
    if let Some(w) = v["workdir"].as_str() {
        action["working_directory"] = json!(w);
    }
    if let Some(t) = v["timeout_ms"].as_u64() {
        action["timeout_ms"] = json!(t);
    }
    action
}

/// A `local_shell_call` input item's arguments, as the model would have given them.
pub(crate) fn shell_arguments(action: &Value) -> String {
    let mut args = json!({"command": action.get("command").cloned().unwrap_or(json!([]))});
    if let Some(w) = action.get("working_directory").filter(|w| !w.is_null()) {
        args["workdir"] = w.clone();
    }
    if let Some(t) = action.get("timeout_ms").filter(|t| !t.is_null()) {
        args["timeout_ms"] = t.clone();
    }
    args.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_codex_and_agents_send() {
        let t = translate(&json!([
            {"type": "function", "name": "exec_command", "parameters": {"type": "object"}},
            {"type": "namespace", "name": "multi_agent_v1", "description": "agents", "tools": [
                {"type": "function", "name": "spawn_agent", "parameters": {"type": "object"}},
                {"type": "custom", "name": "note"}]},
            {"type": "custom", "name": "apply_patch", "description": "Edit files.",
             "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
            {"type": "local_shell"},
            {"type": "web_search", "external_web_access": false},
            {"type": "image_generation"}
        ]))
        .unwrap();
        let names: Vec<&str> = t.offered.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "exec_command",
                "multi_agent_v1__spawn_agent",
                "multi_agent_v1__note",
                "apply_patch",
                "local_shell"
            ]
        );
        assert_eq!(t.omitted, ["web_search", "image_generation"]);
        assert_eq!(
            t.origins["multi_agent_v1__spawn_agent"],
            ToolOrigin::Namespaced {
                namespace: "multi_agent_v1".into(),
                name: "spawn_agent".into()
            }
        );
        let patch = &t.offered[3];
        assert!(
            patch.parameters.as_ref().unwrap()["properties"]["input"]["description"]
                .as_str()
                .unwrap()
                .contains("lark")
        );
        assert_eq!(
            offered(&t.origins, Some("multi_agent_v1"), "spawn_agent", false),
            "multi_agent_v1__spawn_agent"
        );
        assert_eq!(
            offered(&t.origins, None, "apply_patch", true),
            "apply_patch"
        );
        assert_eq!(
            offered(&t.origins, None, "exec_command", false),
            "exec_command"
        );
    }

    #[test]
    fn offered_names_never_clash() {
        let t = translate(&json!([
            {"type": "function", "name": "ns__f"},
            {"type": "namespace", "name": "ns", "description": "", "tools": [{"type": "function", "name": "f"}]}
        ]))
        .unwrap();
        assert_eq!(t.offered[1].name, "ns__f_2");
        assert_eq!(offered(&t.origins, Some("ns"), "f", false), "ns__f_2");
        assert!(translate(&json!([{"type": "unknown_tool"}])).is_err());
        assert!(translate(
            &json!([{"type": "namespace", "name": "n", "tools": [{"type": "web_search"}]}])
        )
        .is_err());
    }

    #[test]
    fn calls_become_the_items_the_client_expects() {
        assert_eq!(
            custom_input(r#"{"input": "*** Begin Patch"}"#),
            "*** Begin Patch"
        );
        assert_eq!(custom_input("raw text"), "raw text");
        let a =
            shell_action(r#"{"command": ["ls", "-la"], "workdir": "/tmp", "timeout_ms": 5000}"#);
        assert_eq!(
            a,
            json!({"type": "exec", "command": ["ls", "-la"], "env": {}, "working_directory": "/tmp", "timeout_ms": 5000})
        );
        assert_eq!(
            shell_action(r#"{"command": "ls | wc"}"#)["command"],
            json!(["bash", "-lc", "ls | wc"])
        );
        let back: Value = serde_json::from_str(&shell_arguments(&a)).unwrap();
        assert_eq!(
            back,
            json!({"command": ["ls", "-la"], "workdir": "/tmp", "timeout_ms": 5000})
        );
        let item = call_item(
            Some(&ToolOrigin::Namespaced {
                namespace: "ns".into(),
                name: "f".into(),
            }),
            "ns__f",
            "fc_1",
            "call_1",
        );
        assert_eq!(
            (item["name"].as_str(), item["namespace"].as_str()),
            (Some("f"), Some("ns"))
        );
    }
}
