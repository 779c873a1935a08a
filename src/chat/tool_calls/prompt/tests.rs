//! The prompts and histories each family renders, against snapshots of its template.

use super::gemma::{declaration as gemma_declaration, GEMMA_QUOTE};
use super::*;
use crate::api::completions::parse;

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
                ParseEvent::End { name, arguments } => Some((name.as_str(), arguments.as_str())),
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
    assert!(glm46
        .contains("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\""));
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
        format!(
            "<|tool>declaration:now{{description:{q}{q},parameters:{{type:{q}OBJECT{q}}}}}<tool|>"
        )
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
