//! Reading tool calls out of decrypted model text: incrementally for streams (text held back
//! only while it could still be a call marker), or over a whole answer. A call at the very end
//! of the reasoning counts when the answer itself has none: thinking models (Qwen3.5) may
//! open their call inside the thinking block, so Venice delivers it as reasoning.

use super::defs::ToolSet;
use super::error::ToolCallError;
use super::parser::{self, scan, AnyParser, ParseEvent, ToolCallParser};
use std::sync::Arc;

/// A tool-call delta in OpenAI's streaming shape: the first for a call carries `id` and
/// `name`, later ones only argument text.
#[derive(Debug, Clone, PartialEq)]
pub struct CallDelta {
    pub(crate) index: u32,
    pub(crate) id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) arguments: String,
}

/// What one piece of model text becomes for the client.
#[derive(Debug, Default, PartialEq)]
pub struct Piece {
    pub(crate) text: String,
    pub(crate) calls: Vec<CallDelta>,
    /// Reasoning released at the end (held back while it could have ended in a call).
    pub(crate) reasoning: String,
}

/// A complete, validated call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) arguments: String,
}

pub(crate) fn new_call_id() -> String {
    format!("call_{:024x}", rand::random::<u128>() >> 32)
}

pub struct ToolStream {
    parser: AnyParser,
    set: Arc<ToolSet>,
    events: Vec<ParseEvent>,
    calls: u32,
    /// Reasoning not shown yet: a possible marker's start, or everything from a marker on.
    reasoning: String,
    reasoning_held: bool,
}

impl ToolStream {
    pub fn new(set: Arc<ToolSet>) -> Self {
        ToolStream {
            parser: AnyParser::new(set.clone()),
            set,
            events: Vec::new(),
            calls: 0,
            reasoning: String::new(),
            reasoning_held: false,
        }
    }

    pub(crate) fn called(&self) -> bool {
        self.calls > 0
    }

    pub fn push(&mut self, text: &str) -> Result<Piece, ToolCallError> {
        self.parser.push(text, &mut self.events);
        self.absorb()
    }

    /// Reasoning text: returns what may be shown now. From a call marker on, reasoning is
    /// held until the end, when it is either the answer's call or released as reasoning.
    pub fn push_reasoning(&mut self, text: &str) -> String {
        self.reasoning.push_str(text);
        if self.reasoning_held {
            return String::new();
        }
        let (show, found) = scan::hold_from_marker(&mut self.reasoning);
        self.reasoning_held = found;
        show
    }

    /// End of the model's text: flushes held-back text, takes a call the reasoning ended
    /// with if the answer made none, and checks `tool_choice`.
    pub fn finish(&mut self) -> Result<Piece, ToolCallError> {
        self.parser.finish(&mut self.events);
        let mut piece = self.absorb()?;
        let held = std::mem::take(&mut self.reasoning);
        match (self.called(), calls_ending(&self.set, &held)) {
            (false, Some((before, calls))) => {
                piece.reasoning = before;
                for c in calls {
                    piece.calls.push(CallDelta {
                        index: self.calls,
                        id: Some(c.id),
                        name: Some(c.name),
                        arguments: c.arguments,
                    });
                    self.calls += 1;
                }
            }
            _ => piece.reasoning = held,
        }
        self.set.validate_count(self.calls as usize)?;
        Ok(piece)
    }

    fn absorb(&mut self) -> Result<Piece, ToolCallError> {
        let mut piece = Piece::default();
        for event in self.events.drain(..) {
            match event {
                ParseEvent::Text(t) => piece.text.push_str(&t),
                ParseEvent::Start { name } => {
                    piece.calls.push(CallDelta {
                        index: self.calls,
                        id: Some(new_call_id()),
                        name: Some(name),
                        arguments: String::new(),
                    });
                    self.calls += 1;
                }
                ParseEvent::Args(a) => {
                    let index = self.calls.saturating_sub(1);
                    match piece.calls.last_mut() {
                        Some(d) if d.index == index => d.arguments.push_str(&a),
                        _ => piece.calls.push(CallDelta {
                            index,
                            id: None,
                            name: None,
                            arguments: a,
                        }),
                    }
                }
                ParseEvent::End { name, arguments } => self.set.validate_call(&name, &arguments)?,
                ParseEvent::Invalid { reason } => return Err(ToolCallError::Unreadable(reason)),
            }
        }
        Ok(piece)
    }
}

/// Calls that `text` ends with, and the text before them: at some marker, one or more
/// complete calls to offered tools, valid against their schemas, with only whitespace
/// between and after them. `None` when the text does not end that way.
fn calls_ending(set: &Arc<ToolSet>, text: &str) -> Option<(String, Vec<Call>)> {
    scan::marker_positions(text).into_iter().find_map(|at| {
        let mut p = AnyParser::new(set.clone());
        let mut calls = Vec::new();
        for event in parser::parse_all(&mut p, &text[at..]) {
            match event {
                ParseEvent::Text(t) if t.trim().is_empty() => {}
                ParseEvent::End { name, arguments } => {
                    set.validate_call(&name, &arguments).ok()?;
                    calls.push(Call {
                        id: new_call_id(),
                        name,
                        arguments,
                    });
                }
                ParseEvent::Start { .. } | ParseEvent::Args(_) => {}
                ParseEvent::Text(_) | ParseEvent::Invalid { .. } => return None,
            }
        }
        (!calls.is_empty()).then(|| (text[..at].trim_end().to_string(), calls))
    })
}

/// A whole answer, parsed and validated.
#[derive(Debug, PartialEq)]
pub struct Parsed {
    /// The text around the calls; `None` when only whitespace.
    pub(crate) content: Option<String>,
    /// The reasoning, without a call it ended with when that call became the answer's.
    pub(crate) reasoning: String,
    pub(crate) calls: Vec<Call>,
}

/// Parses and validates a whole answer and its reasoning.
pub fn parse_answer(
    set: &Arc<ToolSet>,
    text: &str,
    reasoning: &str,
) -> Result<Parsed, ToolCallError> {
    let mut p = AnyParser::new(set.clone());
    let mut content = String::new();
    let mut calls = Vec::new();
    for event in parser::parse_all(&mut p, text) {
        match event {
            ParseEvent::Text(t) => content.push_str(&t),
            ParseEvent::End { name, arguments } => {
                set.validate_call(&name, &arguments)?;
                calls.push(Call {
                    id: new_call_id(),
                    name,
                    arguments,
                });
            }
            ParseEvent::Invalid { reason } => return Err(ToolCallError::Unreadable(reason)),
            ParseEvent::Start { .. } | ParseEvent::Args(_) => {}
        }
    }
    let mut reasoning = reasoning.to_string();
    if calls.is_empty() {
        if let Some((before, found)) = calls_ending(set, &reasoning) {
            reasoning = before;
            calls = found;
        }
    }
    set.validate_count(calls.len())?;
    let content = Some(content.trim().to_string()).filter(|c| !c.is_empty());
    Ok(Parsed {
        content,
        reasoning,
        calls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn set(choice: Value) -> Arc<ToolSet> {
        let tools = json!([{"type": "function", "function": {"name": "add", "parameters": {"type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}}}]);
        Arc::new(ToolSet::parse(tools, choice, Value::Null).unwrap().unwrap())
    }

    fn answer(text: &str, reasoning: &str) -> Result<Parsed, ToolCallError> {
        parse_answer(&set(Value::Null), text, reasoning)
    }

    #[test]
    fn whole_answers_in_every_syntax() {
        let p = answer(
            "Adding.\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n</tool_call>",
            "",
        )
        .unwrap();
        assert_eq!(p.content.as_deref(), Some("Adding."));
        assert_eq!(p.calls.len(), 1);
        assert_eq!(p.calls[0].arguments, r#"{"a":1,"b":2}"#);
        assert!(p.calls[0].id.starts_with("call_"));
        for text in [
            "<tool_call>add<arg_key>a</arg_key><arg_value>1</arg_value><arg_key>b</arg_key><arg_value>2</arg_value></tool_call>",
            "<tool_call>\n<function=add>\n<parameter=a>\n1\n</parameter>\n<parameter=b>\n2\n</parameter>\n</function>\n</tool_call>",
        ] {
            let p = answer(text, "").unwrap();
            assert_eq!((p.content, p.calls[0].arguments.as_str()), (None, r#"{"a":1,"b":2}"#));
        }
        assert!(answer(
            r#"<tool_call>{"name": "add", "arguments": {"a": "x"}}</tool_call>"#,
            ""
        )
        .is_err());
        assert!(parse_answer(&set(json!("required")), "no call", "").is_err());
        let p = answer("just text", "").unwrap();
        assert_eq!(
            (p.content.as_deref(), p.calls.len()),
            (Some("just text"), 0)
        );
    }

    #[test]
    fn a_call_the_reasoning_ends_with_is_the_answers_call() {
        let call = "<tool_call>\n<function=add>\n<parameter=a>\n1\n</parameter>\n<parameter=b>\n2\n</parameter>\n</function>\n</tool_call>";
        let p = answer("", &format!("I need the sum.\n{call}\n")).unwrap();
        assert_eq!(p.calls.len(), 1);
        assert_eq!(p.reasoning, "I need the sum.");
        // Unclosed, as Qwen3.5 leaves it when the call opens inside its thinking.
        let p = answer("", "Sum it. <tool_call>\n<function=add>\n<parameter=a>\n1\n</parameter>\n<parameter=b>\n2\n</parameter>\n").unwrap();
        assert_eq!(p.calls.len(), 1);
        // A call the answer makes wins; the reasoning stays whole.
        let p = answer(
            "<tool_call>add<arg_key>a</arg_key><arg_value>5</arg_value><arg_key>b</arg_key><arg_value>6</arg_value></tool_call>",
            &format!("think {call}"),
        )
        .unwrap();
        assert_eq!(p.calls[0].arguments, r#"{"a":5,"b":6}"#);
        assert!(p.reasoning.ends_with("</tool_call>"));
        // Not at the end, not offered, or not valid: reasoning, not a call.
        for reasoning in [
            format!("{call} and then I decided against it."),
            call.replace("add", "sub"),
            call.replace(">\n2\n<", ">\nx\n<"),
            "I could write <tool_call> here".to_string(),
        ] {
            let p = answer("The answer.", &reasoning).unwrap();
            assert!(p.calls.is_empty(), "{reasoning}");
            assert_eq!(p.reasoning, reasoning);
        }
        // A mention first and a real call at the end.
        let p = answer("", &format!("Use the <tool_call> syntax. {call}")).unwrap();
        assert_eq!(
            (p.calls.len(), p.reasoning.as_str()),
            (1, "Use the <tool_call> syntax.")
        );
    }

    #[test]
    fn streaming_deltas() {
        let mut t = ToolStream::new(set(Value::Null));
        let p = t.push("Sum: <tool_c").unwrap();
        assert_eq!(p.text, "Sum: ");
        let p = t
            .push("all>{\"name\": \"add\", \"arguments\": {\"a\": 1,")
            .unwrap();
        assert_eq!(p.calls[0].name.as_deref(), Some("add"));
        assert_eq!(p.calls[0].arguments, r#"{"a":1,"#);
        let p = t.push(" \"b\": 2}}</tool_call>").unwrap();
        assert_eq!(
            p.calls,
            vec![CallDelta {
                index: 0,
                id: None,
                name: None,
                arguments: r#""b":2}"#.into()
            }]
        );
        assert!(t.finish().unwrap().text.is_empty());
        assert!(t.called());
        let mut bad = ToolStream::new(set(Value::Null));
        assert!(bad
            .push(r#"<tool_call>{"name": "sub", "arguments": {}}</tool_call>"#)
            .is_err());
    }

    #[test]
    fn streamed_reasoning_holds_back_a_possible_call() {
        let mut t = ToolStream::new(set(Value::Null));
        assert_eq!(t.push_reasoning("Let me add. <tool"), "Let me add. ");
        assert_eq!(
            t.push_reasoning("_call>\n<function=add>\n<parameter=a>\n1\n</parameter>\n"),
            ""
        );
        assert_eq!(
            t.push_reasoning("<parameter=b>\n2\n</parameter>\n</function>\n</tool_call>"),
            ""
        );
        let end = t.finish().unwrap();
        assert_eq!(end.calls.len(), 1);
        assert_eq!(end.calls[0].arguments, r#"{"a":1,"b":2}"#);
        assert_eq!(end.reasoning, "");
        assert!(t.called());
        // Held reasoning that was not a call comes out at the end, whole.
        let mut t = ToolStream::new(set(Value::Null));
        assert_eq!(t.push_reasoning("a <tool_call> b"), "a ");
        assert_eq!(t.push("done").unwrap().text, "done");
        assert_eq!(t.finish().unwrap().reasoning, "<tool_call> b");
    }
}
