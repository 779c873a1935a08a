//! One streaming parser for every tool-call syntax the proxy knows: JSON in `<tool_call>`
//! tags (Hermes, Qwen2.5/3), GLM's `<arg_key>/<arg_value>`, Qwen's XML
//! (`<function=…><parameter=…>`, Qwen3-Coder and Qwen3.5), Gemma 4's `<|tool_call>call:…`
//! and DeepSeek's DSML (V3.2, V4). Models do not always answer in the
//! syntax they were prompted with, so whichever family was prompted, every syntax is read; a
//! call still counts only if it names an offered tool and validates against its schema.
//!
//! One small trait: `push` decoded text as it arrives, `finish` at the end; both append
//! events in order. The crates.io `tool-parser` crate was evaluated: its trait is async
//! (Pingora's `response_body_filter` is synchronous) and it pulls a Python parser and a global
//! `serde_json/preserve_order`; so the parsers are written here.

mod glm;
mod json_tags;
pub(crate) mod scan;
mod values;
mod whole;
mod xml;

use serde_json::Value;
use std::sync::Arc;

pub(crate) const OPEN: &str = "<tool_call>";
pub(crate) const CLOSE: &str = "</tool_call>";
/// Qwen's XML call, sometimes emitted without the `<tool_call>` wrapper.
pub(crate) const FUNCTION: &str = "<function=";

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ParseEvent {
    /// Ordinary text (content).
    Text(String),
    /// A call begins; its name is known.
    Start { name: String },
    /// A fragment of the current call's arguments (compact JSON text). Fragments of one call
    /// concatenate to its final `arguments` string.
    Args(String),
    /// The current call is complete: `arguments` is the compact JSON text of the arguments.
    End { name: String, arguments: String },
    /// Something that opened as a call could not be read as one.
    Invalid { reason: String },
}

pub(crate) trait ToolCallParser: Send + Sync {
    fn push(&mut self, text: &str, out: &mut Vec<ParseEvent>);
    fn finish(&mut self, out: &mut Vec<ParseEvent>);
}

/// How to type arguments written as text: the JSON Schema `type` of each parameter.
pub(crate) trait ParamTypes: Send + Sync {
    /// `Some("string")`, `Some("integer")`, … or `None` when the schema does not say.
    fn param_type(&self, tool: &str, param: &str) -> Option<String>;
    /// Whether `tool` is offered: a syntax without markers of its own counts only for one.
    fn offers(&self, _tool: &str) -> bool {
        false
    }
}

/// What a syntax reader did with the text after its opening marker.
enum Step {
    /// Needs more text.
    Wait,
    /// Made progress; call again.
    Again,
    /// The call and its closing tags are read; what follows is left in the buffer.
    Done,
    /// What follows the marker is not a call: the marker was prose.
    Prose,
}

/// Reads one call of one syntax from the text after its opening marker.
trait Reader: Send + Sync {
    fn step(&mut self, types: &dyn ParamTypes, buf: &mut String, out: &mut Vec<ParseEvent>)
        -> Step;
    /// End of input inside the call. `false`: nothing said it was a call (the marker and
    /// the rest are text). Text left in `buf` is emitted as text.
    fn finish(
        &mut self,
        types: &dyn ParamTypes,
        buf: &mut String,
        out: &mut Vec<ParseEvent>,
    ) -> bool;
}

/// Longest function name waited for before deciding a marker was prose.
const MAX_NAME: usize = 128;

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "_-.:".contains(c))
}

enum State {
    Text,
    /// After `<tool_call>`: which syntax follows is not known yet.
    Opening,
    Call {
        reader: Box<dyn Reader>,
        marker: &'static str,
    },
}

/// The parser: text until a marker, then the reader for the syntax that follows it.
pub(crate) struct AnyParser {
    state: State,
    buf: String,
    types: Arc<dyn ParamTypes>,
}

impl AnyParser {
    pub(crate) fn new(types: Arc<dyn ParamTypes>) -> Self {
        AnyParser {
            state: State::Text,
            buf: String::new(),
            types,
        }
    }

    fn step(&mut self, out: &mut Vec<ParseEvent>) -> bool {
        match &mut self.state {
            State::Text => match scan::text_step(&mut self.buf, out) {
                Some(OPEN) => self.state = State::Opening,
                Some(marker) => {
                    let reader: Box<dyn Reader> = match marker {
                        FUNCTION => Box::new(xml::XmlReader::new(String::new())),
                        whole::GEMMA_BARE => Box::new(whole::BareGemma),
                        _ => Box::new(whole::reader_for(marker)),
                    };
                    self.state = State::Call { reader, marker }
                }
                None => return false,
            },
            State::Opening => {
                let trimmed = self.buf.trim_start();
                let reader: Box<dyn Reader> =
                    if trimmed.is_empty() || scan::could_become(trimmed, FUNCTION) {
                        return false;
                    } else if trimmed.starts_with(['{', '`']) {
                        Box::new(json_tags::JsonReader::default())
                    } else if trimmed.starts_with(FUNCTION) {
                        let skip = self.buf.len() - trimmed.len() + FUNCTION.len();
                        Box::new(xml::XmlReader::new(self.buf.drain(..skip).collect()))
                    } else if trimmed.starts_with('<') {
                        out.push(ParseEvent::Text(OPEN.into()));
                        self.state = State::Text;
                        return true;
                    } else {
                        Box::new(glm::GlmReader::new())
                    };
                self.state = State::Call {
                    reader,
                    marker: OPEN,
                };
            }
            State::Call { reader, marker } => {
                match reader.step(self.types.as_ref(), &mut self.buf, out) {
                    Step::Wait => return false,
                    Step::Again => {}
                    Step::Done => self.state = State::Text,
                    Step::Prose => {
                        out.push(ParseEvent::Text((*marker).into()));
                        self.state = State::Text;
                    }
                }
            }
        }
        true
    }
}

impl ToolCallParser for AnyParser {
    fn push(&mut self, text: &str, out: &mut Vec<ParseEvent>) {
        self.buf.push_str(text);
        while self.step(out) {}
    }

    fn finish(&mut self, out: &mut Vec<ParseEvent>) {
        while self.step(out) {}
        match std::mem::replace(&mut self.state, State::Text) {
            State::Text => {}
            State::Opening => out.push(ParseEvent::Text(OPEN.into())),
            State::Call { mut reader, marker } => {
                if !reader.finish(self.types.as_ref(), &mut self.buf, out) {
                    out.push(ParseEvent::Text(marker.into()));
                }
            }
        }
        if !self.buf.is_empty() {
            out.push(ParseEvent::Text(std::mem::take(&mut self.buf)));
        }
    }
}

/// Runs a parser over a whole text (non-streaming answers).
pub(crate) fn parse_all(parser: &mut dyn ToolCallParser, text: &str) -> Vec<ParseEvent> {
    let mut out = Vec::new();
    parser.push(text, &mut out);
    parser.finish(&mut out);
    merge_text(out)
}

/// Adjacent text events joined, empty ones dropped.
pub(crate) fn merge_text(events: Vec<ParseEvent>) -> Vec<ParseEvent> {
    let mut merged: Vec<ParseEvent> = Vec::with_capacity(events.len());
    for e in events {
        match (merged.last_mut(), e) {
            (_, ParseEvent::Text(t)) if t.is_empty() => {}
            (Some(ParseEvent::Text(prev)), ParseEvent::Text(t)) => prev.push_str(&t),
            (_, e) => merged.push(e),
        }
    }
    merged
}

/// Compact JSON text for a value.
pub(crate) fn compact(v: &Value) -> String {
    serde_json::to_string(v).expect("JSON values serialize")
}

#[cfg(test)]
mod tests;
