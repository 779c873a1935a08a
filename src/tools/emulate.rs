//! Reading tool calls out of decrypted model text: incrementally for streams (text held back
//! only while it could still be a call marker), or over a whole answer.

use super::defs::ToolSet;
use super::parser::{self, ParseEvent, ToolCallParser};
use super::prompt::Family;
use std::sync::Arc;

/// A tool-call delta in OpenAI's streaming shape: the first for a call carries `id` and
/// `name`, later ones only argument text.
#[derive(Debug, Clone, PartialEq)]
pub struct CallDelta {
    pub index: u32,
    pub id: Option<String>,
    pub name: Option<String>,
    pub arguments: String,
}

/// What one piece of model text becomes for the client.
#[derive(Debug, Default, PartialEq)]
pub struct Piece {
    pub text: String,
    pub calls: Vec<CallDelta>,
}

/// A complete, validated call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

pub fn new_call_id() -> String {
    format!("call_{:024x}", rand::random::<u128>() >> 32)
}

pub struct ToolStream {
    parser: Box<dyn ToolCallParser>,
    set: Arc<ToolSet>,
    events: Vec<ParseEvent>,
    calls: u32,
}

impl ToolStream {
    pub fn new(family: Family, set: Arc<ToolSet>) -> Self {
        ToolStream {
            parser: family.parser(set.clone()),
            set,
            events: Vec::new(),
            calls: 0,
        }
    }

    pub fn called(&self) -> bool {
        self.calls > 0
    }

    pub fn push(&mut self, text: &str) -> Result<Piece, String> {
        self.parser.push(text, &mut self.events);
        self.absorb()
    }

    /// End of the model's text: flushes held-back text and checks `tool_choice`.
    pub fn finish(&mut self) -> Result<Piece, String> {
        self.parser.finish(&mut self.events);
        let piece = self.absorb()?;
        self.set.validate_count(self.calls as usize)?;
        Ok(piece)
    }

    fn absorb(&mut self) -> Result<Piece, String> {
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
                ParseEvent::Invalid { reason } => return Err(reason),
            }
        }
        Ok(piece)
    }
}

/// Parses and validates a whole answer: the text around the calls (`None` when only
/// whitespace) and the calls.
pub fn parse_answer(
    family: Family,
    set: &Arc<ToolSet>,
    text: &str,
) -> Result<(Option<String>, Vec<Call>), String> {
    let mut p = family.parser(set.clone());
    let mut content = String::new();
    let mut calls = Vec::new();
    for event in parser::parse_all(p.as_mut(), text) {
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
            ParseEvent::Invalid { reason } => return Err(reason),
            ParseEvent::Start { .. } | ParseEvent::Args(_) => {}
        }
    }
    set.validate_count(calls.len())?;
    let content = if content.trim().is_empty() {
        None
    } else {
        Some(content.trim().to_string())
    };
    Ok((content, calls))
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

    #[test]
    fn whole_answers() {
        let s = set(Value::Null);
        let (content, calls) = parse_answer(
            Family::Qwen,
            &s,
            "Adding.\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n</tool_call>",
        )
        .unwrap();
        assert_eq!(content.as_deref(), Some("Adding."));
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].arguments, r#"{"a":1,"b":2}"#);
        assert!(calls[0].id.starts_with("call_"));
        let (content, calls) = parse_answer(Family::Glm, &s, "<tool_call>add<arg_key>a</arg_key><arg_value>1</arg_value><arg_key>b</arg_key><arg_value>2</arg_value></tool_call>").unwrap();
        assert_eq!(
            (content, calls[0].arguments.as_str()),
            (None, r#"{"a":1,"b":2}"#)
        );
        assert!(parse_answer(
            Family::Qwen,
            &s,
            r#"<tool_call>{"name": "add", "arguments": {"a": "x"}}</tool_call>"#
        )
        .is_err());
        assert!(parse_answer(Family::Qwen, &set(json!("required")), "no call").is_err());
        assert_eq!(
            parse_answer(Family::Qwen, &s, "just text").unwrap(),
            (Some("just text".into()), vec![])
        );
    }

    #[test]
    fn streaming_deltas() {
        let mut t = ToolStream::new(Family::Hermes, set(Value::Null));
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
        let mut bad = ToolStream::new(Family::Hermes, set(Value::Null));
        assert!(bad
            .push(r#"<tool_call>{"name": "sub", "arguments": {}}</tool_call>"#)
            .is_err());
    }
}
