//! Cases from vLLM's and llama.cpp's known tool-parser failures, run whole and split at
//! every character boundary.

use super::*;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Text(String),
    Call(String, String),
    Invalid,
}

/// Folds events into what a client ends up with, checking the streaming invariants:
/// `Start` before `Args`, and `Args` fragments concatenating to `End.arguments`.
fn fold(events: Vec<ParseEvent>) -> Vec<Seen> {
    let mut seen = Vec::new();
    let mut open: Option<(String, String)> = None;
    for e in merge_text(events) {
        match e {
            ParseEvent::Text(t) => {
                assert!(open.is_none(), "text inside a call");
                seen.push(Seen::Text(t));
            }
            ParseEvent::Start { name } => {
                assert!(open.is_none());
                open = Some((name, String::new()));
            }
            ParseEvent::Args(a) => open.as_mut().expect("args after start").1.push_str(&a),
            ParseEvent::End { name, arguments } => {
                let (n, streamed) = open.take().expect("end after start");
                assert_eq!(n, name);
                assert_eq!(
                    streamed, arguments,
                    "fragments concatenate to the arguments"
                );
                serde_json::from_str::<serde_json::Value>(&arguments).expect("arguments are JSON");
                seen.push(Seen::Call(name, arguments));
            }
            ParseEvent::Invalid { .. } => {
                open = None;
                seen.push(Seen::Invalid);
            }
        }
    }
    seen
}

fn whole(make: &dyn Fn() -> Box<dyn ToolCallParser>, text: &str) -> Vec<Seen> {
    fold(parse_all(make().as_mut(), text))
}

/// Whole, every two-way split, and char by char must all agree.
fn check(make: &dyn Fn() -> Box<dyn ToolCallParser>, text: &str, expected: &[Seen]) {
    assert_eq!(whole(make, text), expected, "whole: {text:?}");
    let bounds: Vec<usize> = (0..=text.len())
        .filter(|&i| text.is_char_boundary(i))
        .collect();
    for &i in &bounds {
        let mut p = make();
        let mut out = Vec::new();
        p.push(&text[..i], &mut out);
        p.push(&text[i..], &mut out);
        p.finish(&mut out);
        assert_eq!(fold(out), expected, "split at {i}: {text:?}");
    }
    let mut p = make();
    let mut out = Vec::new();
    for c in text.chars() {
        p.push(&c.to_string(), &mut out);
    }
    p.finish(&mut out);
    assert_eq!(fold(out), expected, "char by char: {text:?}");
}

fn json_parser() -> Box<dyn ToolCallParser> {
    Box::new(JsonTagParser::new())
}

fn text(s: &str) -> Seen {
    Seen::Text(s.into())
}

fn call(name: &str, args: &str) -> Seen {
    Seen::Call(name.into(), args.into())
}

#[test]
fn json_plain_call() {
    check(
        &json_parser,
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 3}}\n</tool_call>",
        &[call("get_weather", r#"{"city":"Paris","days":3}"#)],
    );
}

#[test]
fn json_text_around_and_two_calls_back_to_back() {
    check(
        &json_parser,
        "Let me check. <tool_call>{\"name\":\"a\",\"arguments\":{}}</tool_call><tool_call>{\"name\":\"b\",\"arguments\":{\"x\":[1,2]}}</tool_call> Done.",
        &[text("Let me check. "), call("a", "{}"), call("b", r#"{"x":[1,2]}"#), text(" Done.")],
    );
}

#[test]
fn json_nested_braces_and_escapes_inside_strings() {
    check(
        &json_parser,
        r#"<tool_call>{"name": "run", "arguments": {"code": "fn x() { return \"}\"; } // ]]", "q": "naïve \"quoted\" ✓ {"}}</tool_call>"#,
        &[call(
            "run",
            r#"{"code":"fn x() { return \"}\"; } // ]]","q":"naïve \"quoted\" ✓ {"}"#,
        )],
    );
}

#[test]
fn json_parameterless_and_missing_arguments() {
    check(
        &json_parser,
        r#"<tool_call>{"name": "now", "arguments": {}}</tool_call>"#,
        &[call("now", "{}")],
    );
    check(
        &json_parser,
        r#"<tool_call>{"name": "now"}</tool_call>"#,
        &[call("now", "{}")],
    );
}

#[test]
fn json_arguments_first_and_parameters_alias() {
    check(
        &json_parser,
        r#"<tool_call>{"arguments": {"a": 1}, "name": "f"}</tool_call>"#,
        &[call("f", r#"{"a":1}"#)],
    );
    check(
        &json_parser,
        r#"<tool_call>{"name": "f", "parameters": {"a": true}}</tool_call>"#,
        &[call("f", r#"{"a":true}"#)],
    );
}

#[test]
fn json_arguments_as_a_string() {
    check(
        &json_parser,
        r#"<tool_call>{"name": "f", "arguments": "{\"a\": \"b c\"}"}</tool_call>"#,
        &[call("f", r#"{"a":"b c"}"#)],
    );
}

#[test]
fn json_code_fences_and_whitespace_around_markers() {
    check(
        &json_parser,
        "Sure.\n\n<tool_call>\n```json\n{\n  \"name\": \"f\",\n  \"arguments\": {\"a\": 1}\n}\n```\n</tool_call>\n",
        &[text("Sure.\n\n"), call("f", r#"{"a":1}"#), text("\n")],
    );
}

#[test]
fn json_marker_quoted_in_prose_is_text() {
    let s = "Wrap calls in <tool_call> tags, like `<tool_call>` here.";
    check(&json_parser, s, &[text(s)]);
}

#[test]
fn json_missing_close_tag_and_truncated_call() {
    check(
        &json_parser,
        r#"<tool_call>{"name": "f", "arguments": {"a": 1}}"#,
        &[call("f", r#"{"a":1}"#)],
    );
    check(
        &json_parser,
        r#"<tool_call>{"name": "f", "arguments": {"a": 1"#,
        &[Seen::Invalid],
    );
    check(
        &json_parser,
        r#"<tool_call>{"name": "f", "arguments": {"a": 1}} trailing"#,
        &[call("f", r#"{"a":1}"#), text(" trailing")],
    );
}

#[test]
fn json_not_a_call_object() {
    check(
        &json_parser,
        r#"<tool_call>{"tool": "f"}</tool_call>"#,
        &[Seen::Invalid],
    );
}

#[test]
fn arguments_stream_before_the_call_closes() {
    let mut p = JsonTagParser::new();
    let mut out = Vec::new();
    p.push(
        r#"<tool_call>{"name": "f", "arguments": {"text": "hel"#,
        &mut out,
    );
    assert_eq!(out[0], ParseEvent::Start { name: "f".into() });
    assert_eq!(out[1], ParseEvent::Args(r#"{"text":"hel"#.into()));
    out.clear();
    p.push(r#"lo"}}</tool_call>"#, &mut out);
    assert_eq!(out[0], ParseEvent::Args(r#"lo"}"#.into()));
}

struct Schema(HashMap<(&'static str, &'static str), &'static str>);

impl ParamTypes for Schema {
    fn param_type(&self, tool: &str, param: &str) -> Option<String> {
        self.0
            .iter()
            .find(|((t, p), _)| *t == tool && *p == param)
            .map(|(_, ty)| ty.to_string())
    }
}

fn glm_parser() -> Box<dyn ToolCallParser> {
    let types = Schema(HashMap::from([
        (("get_weather", "city"), "string"),
        (("get_weather", "zip"), "string"),
        (("get_weather", "days"), "integer"),
        (("get_weather", "opts"), "object"),
    ]));
    Box::new(GlmParser::new(Arc::new(types)))
}

use std::sync::Arc;

#[test]
fn glm_call_typed_by_schema() {
    check(
        &glm_parser,
        "I'll look.\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n<arg_key>zip</arg_key>\n<arg_value>75001</arg_value>\n<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n<arg_key>opts</arg_key>\n<arg_value>{\"units\": \"C\"}</arg_value>\n</tool_call>",
        &[text("I'll look.\n"), call("get_weather", r#"{"city":"Paris","zip":"75001","days":3,"opts":{"units":"C"}}"#)],
    );
}

#[test]
fn glm_two_calls_parameterless_and_prose() {
    check(
        &glm_parser,
        "<tool_call>now</tool_call><tool_call>get_weather<arg_key>city</arg_key><arg_value>Zürich \"centre\"</arg_value></tool_call>",
        &[call("now", "{}"), call("get_weather", r#"{"city":"Zürich \"centre\""}"#)],
    );
    let s = "The <tool_call> tag starts a call.";
    check(&glm_parser, s, &[text(s)]);
    check(
        &glm_parser,
        "<tool_call>f<arg_key>a</arg_value>",
        &[Seen::Invalid],
    );
}
