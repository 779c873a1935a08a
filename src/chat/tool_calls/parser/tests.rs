//! Cases from vLLM's and llama.cpp's known tool-parser failures, run whole and split at
//! every character boundary.

use super::*;
use std::collections::HashMap;
use std::sync::Arc;

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

struct Untyped;

impl ParamTypes for Untyped {
    fn param_type(&self, _: &str, _: &str) -> Option<String> {
        None
    }
}

fn json_parser() -> Box<dyn ToolCallParser> {
    Box::new(AnyParser::new(Arc::new(Untyped)))
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
    let mut p = AnyParser::new(Arc::new(Untyped));
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

    fn offers(&self, tool: &str) -> bool {
        self.0.keys().any(|(t, _)| *t == tool)
    }
}

fn glm_parser() -> Box<dyn ToolCallParser> {
    let types = Schema(HashMap::from([
        (("get_weather", "city"), "string"),
        (("get_weather", "zip"), "string"),
        (("get_weather", "days"), "integer"),
        (("get_weather", "opts"), "object"),
    ]));
    Box::new(AnyParser::new(Arc::new(types)))
}

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

fn xml_parser() -> Box<dyn ToolCallParser> {
    let types = Schema(HashMap::from([
        (("write", "path"), "string"),
        (("write", "count"), "integer"),
        (("write", "ratio"), "number"),
        (("write", "enabled"), "boolean"),
        (("write", "data"), "object"),
        (("write", "items"), "array"),
        (("write", "nothing"), "null"),
        (("get_weather", "city"), "string"),
        (("get_weather", "days"), "integer"),
    ]));
    Box::new(AnyParser::new(Arc::new(types)))
}

#[test]
fn xml_call_in_the_template_layout_with_typed_values() {
    check(
        &xml_parser,
        "Writing it.\n<tool_call>\n<function=write>\n<parameter=path>\n 001 true & <tag> \n</parameter>\n<parameter=count>\n2\n</parameter>\n<parameter=ratio>\n0.5\n</parameter>\n<parameter=enabled>\ntrue\n</parameter>\n<parameter=data>\n{\"a\": 3}\n</parameter>\n<parameter=items>\n[1, \"é\"]\n</parameter>\n<parameter=nothing>\nnull\n</parameter>\n</function>\n</tool_call>",
        &[
            text("Writing it.\n"),
            call(
                "write",
                r#"{"path":" 001 true & <tag> ","count":2,"ratio":0.5,"enabled":true,"data":{"a":3},"items":[1,"é"],"nothing":null}"#,
            ),
        ],
    );
}

#[test]
fn xml_strings_keep_inner_newlines_and_lose_only_the_framing_ones() {
    check(
        &xml_parser,
        "<tool_call>\n<function=write>\n<parameter=path>\nline one\n\nline three\n\n</parameter>\n</function>\n</tool_call>",
        &[call("write", r#"{"path":"line one\n\nline three\n"}"#)],
    );
}

#[test]
fn xml_compact_spaced_and_crlf_layouts() {
    for s in [
        "<tool_call><function=get_weather><parameter=city>Paris</parameter><parameter=days>3</parameter></function></tool_call>",
        "<tool_call>\n  <function=get_weather>\n    <parameter=city>\nParis\n</parameter>\n    <parameter=days> 3 </parameter>\n  </function>\n</tool_call>",
        "<tool_call>\r\n<function=get_weather>\r\n<parameter=city>\r\nParis\r\n</parameter>\r\n<parameter=days>\r\n3\r\n</parameter>\r\n</function>\r\n</tool_call>",
    ] {
        check(&xml_parser, s, &[call("get_weather", r#"{"city":"Paris","days":3}"#)]);
    }
}

#[test]
fn xml_several_calls_no_arguments_and_text_after() {
    check(
        &xml_parser,
        "<tool_call>\n<function=now>\n</function>\n</tool_call>\n<tool_call>\n<function=get_weather>\n<parameter=city>\nRome\n</parameter>\n</function>\n</tool_call>\nThat is all.",
        &[
            call("now", "{}"),
            text("\n"),
            call("get_weather", r#"{"city":"Rome"}"#),
            text("\nThat is all."),
        ],
    );
}

#[test]
fn xml_without_the_tool_call_wrapper() {
    check(
        &xml_parser,
        "Sure: <function=get_weather>\n<parameter=city>\nOslo\n</parameter>\n</function> done",
        &[
            text("Sure: "),
            call("get_weather", r#"{"city":"Oslo"}"#),
            text(" done"),
        ],
    );
    let prose = "Qwen writes <function=NAME> blocks.";
    check(&xml_parser, prose, &[text(prose)]);
}

#[test]
fn xml_values_may_hold_tags_and_missing_closers_are_tolerated_where_unambiguous() {
    check(
        &xml_parser,
        "<tool_call>\n<function=write>\n<parameter=path>\na <parameter=x> b </function> c\n</parameter>\n</function>\n</tool_call>",
        &[call("write", r#"{"path":"a <parameter=x> b </function> c"}"#)],
    );
    check(
        &xml_parser,
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nLima\n</function>\n</tool_call>",
        &[call("get_weather", r#"{"city":"Lima"}"#)],
    );
    check(
        &xml_parser,
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nLima\n</parameter>\n",
        &[call("get_weather", r#"{"city":"Lima"}"#)],
    );
}

#[test]
fn xml_truncated_values_and_duplicates_are_invalid() {
    check(
        &xml_parser,
        "<tool_call>\n<function=write>\n<parameter=path>\nhalf a fi",
        &[Seen::Invalid],
    );
    check(
        &xml_parser,
        "<tool_call><function=get_weather><parameter=city>A</parameter><parameter=city>B</parameter></function></tool_call>",
        &[Seen::Invalid],
    );
    check(
        &xml_parser,
        "<tool_call><function=get_weather>some prose</function></tool_call>",
        &[Seen::Invalid],
    );
}

#[test]
fn xml_arguments_stream_per_parameter() {
    let mut p = xml_parser();
    let mut out = Vec::new();
    p.push(
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=da",
        &mut out,
    );
    assert_eq!(
        out,
        [
            ParseEvent::Start {
                name: "get_weather".into()
            },
            ParseEvent::Args(r#"{"city":"Paris""#.into())
        ]
    );
}

#[test]
fn every_syntax_is_read_whichever_was_prompted() {
    let answer = "A <tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}</tool_call> B <tool_call>get_weather<arg_key>city</arg_key><arg_value>Rome</arg_value></tool_call> C <tool_call>\n<function=get_weather>\n<parameter=days>\n2\n</parameter>\n</function>\n</tool_call> D";
    for make in [
        json_parser as fn() -> Box<dyn ToolCallParser>,
        glm_parser,
        xml_parser,
    ] {
        let seen = whole(&make, answer);
        let calls: Vec<&Seen> = seen
            .iter()
            .filter(|s| matches!(s, Seen::Call(..)))
            .collect();
        assert_eq!(calls.len(), 3, "{seen:?}");
    }
    check(
        &xml_parser,
        answer,
        &[
            text("A "),
            call("get_weather", r#"{"city":"Paris"}"#),
            text(" B "),
            call("get_weather", r#"{"city":"Rome"}"#),
            text(" C "),
            call("get_weather", r#"{"days":2}"#),
            text(" D"),
        ],
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A call in one of the syntaxes, with its expected compact arguments.
    fn call_text() -> impl Strategy<Value = (String, Seen)> {
        let city = "[A-Za-zé ]{1,12}";
        (0..4usize, city, 0..100i64, any::<bool>()).prop_map(|(syntax, city, days, newlines)| {
            let nl = if newlines { "\n" } else { "" };
            let args = serde_json::json!({"city": city, "days": days});
            let text = match syntax {
                0 => format!("<tool_call>{nl}{{\"name\": \"get_weather\", \"arguments\": {args}}}{nl}</tool_call>"),
                1 => format!("<tool_call>get_weather{nl}<arg_key>city</arg_key>{nl}<arg_value>{city}</arg_value>{nl}<arg_key>days</arg_key>{nl}<arg_value>{days}</arg_value>{nl}</tool_call>"),
                2 => format!("<tool_call>{nl}<function=get_weather>{nl}<parameter=city>\n{city}\n</parameter>{nl}<parameter=days>{nl}{days}{nl}</parameter>{nl}</function>{nl}</tool_call>"),
                _ => format!("<function=get_weather><parameter=city>\n{city}\n</parameter><parameter=days>{days}</parameter></function>"),
            };
            (text, Seen::Call("get_weather".into(), compact(&args)))
        })
    }

    /// Text that holds no marker (but may hold `<` and partial-looking tags). Not starting
    /// with `</`: at the very end after a call, `</tool_c…` is a cut-off closer, dropped.
    fn prose() -> impl Strategy<Value = String> {
        "[a-z <>=_/.\n]{0,16}".prop_filter("no marker", |s| {
            !s.contains("<tool_call>")
                && !s.contains("<function=")
                && !s.trim_start().starts_with("</")
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any mix of text and calls in any syntax, split anywhere, reads the same as whole.
        #[test]
        fn any_split_of_any_answer_reads_the_same(
            parts in proptest::collection::vec((prose(), call_text()), 1..4),
            tail in prose(),
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
        ) {
            let mut answer = String::new();
            let mut expected = Vec::new();
            for (p, (c, seen)) in &parts {
                answer.push_str(p);
                if !p.is_empty() { expected.push(Seen::Text(p.clone())); }
                answer.push_str(c);
                expected.push(seen.clone());
            }
            answer.push_str(&tail);
            if !tail.is_empty() { expected.push(Seen::Text(tail.clone())); }
            let mut at: Vec<usize> = cuts.iter().map(|c| c % (answer.len() + 1)).filter(|c| answer.is_char_boundary(*c)).collect();
            at.sort_unstable();
            let mut p = xml_parser();
            let mut out = Vec::new();
            let mut from = 0;
            for cut in at.into_iter().chain([answer.len()]) {
                p.push(&answer[from..cut], &mut out);
                from = cut;
            }
            p.finish(&mut out);
            let got = fold(out);
            // Whitespace next to calls may fold into the neighbouring text; compare calls and
            // text with whitespace-only runs dropped.
            let norm = |v: Vec<Seen>| -> Vec<Seen> { v.into_iter().filter(|s| !matches!(s, Seen::Text(t) if t.trim().is_empty())).collect() };
            prop_assert_eq!(norm(got), norm(expected.clone()));
            prop_assert_eq!(whole(&xml_parser, &answer), fold(parse_all(xml_parser().as_mut(), &answer)));
        }

        /// No input makes the parser panic, and arguments always concatenate (checked by fold).
        #[test]
        fn arbitrary_text_never_panics(chunks in proptest::collection::vec("(<tool_call>|</tool_call>|<function=|<parameter=|</parameter>|</function>|<arg_key>|</arg_key>|<arg_value>|</arg_value>|[{}\":,a-z0-9 \n])*", 0..6)) {
            let mut p = xml_parser();
            let mut out = Vec::new();
            for c in &chunks {
                p.push(c, &mut out);
            }
            p.finish(&mut out);
            fold(out);
        }
    }
}

#[test]
fn gemma4_calls_split_anywhere() {
    check(
        &xml_parser,
        "Let me check.<|tool_call>call:get_weather{city:<|\"|>Paris, FR<|\"|>,days:2}call:write{path:<|\"|>a.txt<|\"|>,items:[1,<|\"|>é<|\"|>]}<tool_call|>",
        &[
            text("Let me check."),
            call("get_weather", r#"{"city":"Paris, FR","days":2}"#),
            call("write", r#"{"path":"a.txt","items":[1,"é"]}"#),
        ],
    );
    // The end-of-turn token stripped: the block as far as it came is the call.
    check(
        &xml_parser,
        "<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>}",
        &[call("get_weather", r#"{"city":"Paris"}"#)],
    );
    check(
        &xml_parser,
        "<|tool_call>weather?<tool_call|>",
        &[Seen::Invalid],
    );
}

#[test]
fn deepseek_dsml_blocks_of_v4_and_v32_split_anywhere() {
    let invoke = "\n<｜DSML｜invoke name=\"get_weather\">\n<｜DSML｜parameter name=\"city\" string=\"true\">Paris</｜DSML｜parameter>\n<｜DSML｜parameter name=\"days\" string=\"false\">3</｜DSML｜parameter>\n</｜DSML｜invoke>\n";
    for (open, close) in [
        ("<｜DSML｜tool_calls>", "</｜DSML｜tool_calls>"),
        ("<｜DSML｜function_calls>", "</｜DSML｜function_calls>"),
    ] {
        check(
            &xml_parser,
            &format!("Looking.\n\n{open}{invoke}{close}"),
            &[
                text("Looking.\n\n"),
                call("get_weather", r#"{"city":"Paris","days":3}"#),
            ],
        );
    }
}

#[test]
fn gemma4_calls_whose_special_tokens_were_dropped_count_for_offered_tools_only() {
    check(
        &xml_parser,
        "Checking.call:get_weather{city:Paris,days:2}",
        &[
            text("Checking."),
            call("get_weather", r#"{"city":"Paris","days":2}"#),
        ],
    );
    check(
        &xml_parser,
        "call:get_weather{city:<|\"|>Paris, FR<|\"|>} Done.",
        &[
            call("get_weather", r#"{"city":"Paris, FR"}"#),
            text(" Done."),
        ],
    );
    // Prose: a name no tool has, no name, no braces.
    for prose in [
        "You can call: someone{else} tomorrow.",
        "The call: it rang twice.",
        "call:get_weather with Paris",
    ] {
        check(&xml_parser, prose, &[text(prose)]);
    }
    // An offered tool's call that never closes is an invalid call, not text.
    check(&xml_parser, "call:get_weather{city:Pa", &[Seen::Invalid]);
}
