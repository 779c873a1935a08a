//! Reading tool calls out of decrypted model text: incrementally for streams (text held back
//! only while it could still be a call marker, a call held until it is whole and valid), or
//! over a whole answer. A call at the very end
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

/// What a stream does with a call that is not valid (another tool than offered, arguments
/// off its schema, unreadable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInvalid {
    /// Stop with the error: the caller corrects it, or ends the stream with it.
    Reject,
    /// Show the call as the model wrote it, as a server without validation would: the
    /// agent's own tool layer then reports the mistake to the model.
    Pass,
}

/// A call whose name is known and whose arguments are still arriving.
#[derive(Debug, Default)]
struct Pending {
    name: String,
    arguments: String,
}

pub struct ToolStream {
    parser: AnyParser,
    set: Arc<ToolSet>,
    events: Vec<ParseEvent>,
    calls: u32,
    on_invalid: OnInvalid,
    pending: Option<Pending>,
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
            on_invalid: OnInvalid::Reject,
            pending: None,
            reasoning: String::new(),
            reasoning_held: false,
        }
    }

    pub fn with_on_invalid(mut self, on_invalid: OnInvalid) -> Self {
        self.on_invalid = on_invalid;
        self
    }

    /// The same tools for another attempt at the answer: calls already shown keep their
    /// indices.
    pub(crate) fn restart(&self, on_invalid: OnInvalid) -> Self {
        ToolStream {
            calls: self.calls,
            ..ToolStream::new(self.set.clone()).with_on_invalid(on_invalid)
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
        if self.on_invalid == OnInvalid::Reject {
            self.set.validate_count(self.calls as usize)?;
        }
        Ok(piece)
    }

    /// Text as it comes; a call only once it is whole and valid (or passed as written).
    fn absorb(&mut self) -> Result<Piece, ToolCallError> {
        let mut piece = Piece::default();
        // Taken out and put back, keeping its capacity: `shown` needs `self`.
        let mut events = std::mem::take(&mut self.events);
        for event in events.drain(..) {
            match event {
                ParseEvent::Text(t) => piece.text.push_str(&t),
                ParseEvent::Start { name } => {
                    self.pending = Some(Pending {
                        name,
                        arguments: String::new(),
                    })
                }
                ParseEvent::Args(a) => {
                    if let Some(p) = self.pending.as_mut() {
                        p.arguments.push_str(&a);
                    }
                }
                ParseEvent::End { name, arguments } => {
                    self.pending = None;
                    // One call more than `parallel_tool_calls` allows is invalid too.
                    let valid = self
                        .set
                        .validate_call(&name, &arguments)
                        .and_then(|()| self.set.validate_count(self.calls as usize + 1));
                    if let Err(e) = valid {
                        if self.on_invalid == OnInvalid::Reject {
                            return Err(e);
                        }
                    }
                    piece.calls.push(self.shown(name, as_written(arguments)));
                }
                ParseEvent::Invalid { reason } => match (self.on_invalid, self.pending.take()) {
                    (OnInvalid::Reject, _) => return Err(ToolCallError::Unreadable(reason)),
                    (OnInvalid::Pass, Some(p)) => piece
                        .calls
                        .push(self.shown(p.name, as_written(p.arguments))),
                    // Nothing names a tool: there is no call to show, only the model's words.
                    (OnInvalid::Pass, None) => piece
                        .text
                        .push_str(&format!("(an unreadable tool call: {reason})")),
                },
            }
        }
        self.events = events;
        Ok(piece)
    }

    /// The next call, whole: one delta with its id, name and arguments.
    fn shown(&mut self, name: String, arguments: String) -> CallDelta {
        let delta = CallDelta {
            index: self.calls,
            id: Some(new_call_id()),
            name: Some(name),
            arguments,
        };
        self.calls += 1;
        delta
    }
}

/// Arguments as the model wrote them: its JSON when it is JSON, else the raw text as a JSON
/// string (OpenAI's `arguments` is always JSON text).
fn as_written(arguments: String) -> String {
    if serde_json::from_str::<serde_json::Value>(&arguments).is_ok() {
        arguments
    } else {
        serde_json::Value::String(arguments).to_string()
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

/// A whole answer with its calls as the model wrote them, valid or not (what a server
/// without validation answers, once corrections are spent).
pub(crate) fn parse_answer_as_written(set: &Arc<ToolSet>, text: &str, reasoning: &str) -> Parsed {
    let mut t = ToolStream::new(set.clone()).with_on_invalid(OnInvalid::Pass);
    let mut content = String::new();
    let mut calls = Vec::new();
    let pieces = [t.push(text), t.finish()];
    for piece in pieces.into_iter().flatten() {
        content.push_str(&piece.text);
        calls.extend(piece.calls.into_iter().map(|d| Call {
            id: d.id.unwrap_or_else(new_call_id),
            name: d.name.unwrap_or_default(),
            arguments: d.arguments,
        }));
    }
    Parsed {
        content: Some(content.trim().to_string()).filter(|c| !c.is_empty()),
        reasoning: reasoning.to_string(),
        calls,
    }
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
    fn a_streamed_call_is_shown_once_whole_and_valid() {
        let mut t = ToolStream::new(set(Value::Null));
        let p = t.push("Sum: <tool_c").unwrap();
        assert_eq!(p.text, "Sum: ");
        let p = t
            .push("all>{\"name\": \"add\", \"arguments\": {\"a\": 1,")
            .unwrap();
        assert!(p.calls.is_empty(), "held until whole: {p:?}");
        let p = t.push(" \"b\": 2}}</tool_call> done").unwrap();
        assert_eq!(p.calls.len(), 1);
        let c = &p.calls[0];
        assert_eq!((c.index, c.name.as_deref()), (0, Some("add")));
        assert!(c.id.as_deref().unwrap().starts_with("call_"));
        assert_eq!(c.arguments, r#"{"a":1,"b":2}"#);
        assert_eq!(p.text, " done");
        assert!(t.finish().unwrap().text.is_empty());
        assert!(t.called());
        // An invalid call is rejected before anything of it is shown.
        let mut bad = ToolStream::new(set(Value::Null));
        assert!(bad
            .push(r#"<tool_call>{"name": "sub", "arguments": {}}</tool_call>"#)
            .is_err());
        // The next attempt keeps the indices of calls already shown.
        assert_eq!(t.restart(OnInvalid::Reject).calls, 1);
    }

    /// Once corrections are spent, calls are shown as the model wrote them.
    #[test]
    fn invalid_calls_pass_as_written() {
        let mut t = ToolStream::new(set(json!("required"))).with_on_invalid(OnInvalid::Pass);
        let p = t
            .push(r#"<tool_call>{"name": "sub", "arguments": {"a": 1}}</tool_call>"#)
            .unwrap();
        assert_eq!(p.calls[0].name.as_deref(), Some("sub"));
        assert_eq!(p.calls[0].arguments, r#"{"a":1}"#);
        // Arguments off the schema pass as written; a call left open passes its raw text.
        let p = t
            .push("<tool_call>\n<function=add>\n<parameter=a>\nnot a number\n</parameter>\n</function>\n</tool_call>")
            .unwrap();
        assert_eq!(p.calls[0].index, 1);
        assert!(p.calls[0].arguments.contains("not a number"));
        assert!(t.finish().is_ok(), "no count check once passing");
        let parsed = parse_answer_as_written(
            &set(Value::Null),
            "Adding. <tool_call>{\"name\": \"add\", \"arguments\": {\"a\": \"x\"}}</tool_call>",
            "",
        );
        assert_eq!(parsed.content.as_deref(), Some("Adding."));
        assert_eq!(parsed.calls[0].arguments, r#"{"a":"x"}"#);
        // Nothing names a tool: the model's words, said to be an unreadable call.
        let mut t = ToolStream::new(set(Value::Null)).with_on_invalid(OnInvalid::Pass);
        let mut shown = t
            .push("<tool_call>{not json at all</tool_call>")
            .unwrap()
            .text;
        shown.push_str(&t.finish().unwrap().text);
        assert!(shown.contains("unreadable tool call"), "{shown}");
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
