//! Streaming parsers for the tool-call syntaxes models are trained on. One small trait:
//! `push` decoded text as it arrives, `finish` at the end; both append events in order.
//!
//! The crates.io `tool-parser` crate was evaluated: its trait is async (Pingora's
//! `response_body_filter` is synchronous) and it pulls a Python parser and a global
//! `serde_json/preserve_order`; so the three formats needed here are written here.

mod glm;
mod json_tags;
mod scan;

pub use glm::GlmParser;
pub use json_tags::JsonTagParser;

use serde_json::Value;

pub const OPEN: &str = "<tool_call>";
pub const CLOSE: &str = "</tool_call>";

#[derive(Debug, Clone, PartialEq)]
pub enum ParseEvent {
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

pub trait ToolCallParser: Send + Sync {
    fn push(&mut self, text: &str, out: &mut Vec<ParseEvent>);
    fn finish(&mut self, out: &mut Vec<ParseEvent>);
}

/// How to type GLM's string-valued arguments: the JSON Schema `type` of each parameter.
pub trait ParamTypes: Send + Sync {
    /// `Some("string")`, `Some("integer")`, … or `None` when the schema does not say.
    fn param_type(&self, tool: &str, param: &str) -> Option<String>;
}

/// Runs a parser over a whole text (non-streaming answers).
pub fn parse_all(parser: &mut dyn ToolCallParser, text: &str) -> Vec<ParseEvent> {
    let mut out = Vec::new();
    parser.push(text, &mut out);
    parser.finish(&mut out);
    merge_text(out)
}

/// Adjacent text events joined, empty ones dropped.
pub fn merge_text(events: Vec<ParseEvent>) -> Vec<ParseEvent> {
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
pub fn compact(v: &Value) -> String {
    serde_json::to_string(v).expect("JSON values serialize")
}

#[cfg(test)]
mod tests;
