//! GLM's format: `<tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value>…</tool_call>`
//! (newlines between parts are common). Values are text; they are typed by the tool's JSON
//! Schema (strings stay strings; numbers, booleans, objects and arrays are parsed). The
//! arguments are emitted once the call closes.

use super::scan::text_step;
use super::{compact, ParamTypes, ParseEvent, ToolCallParser, CLOSE, OPEN};
use serde_json::{Map, Value};
use std::sync::Arc;

pub struct GlmParser {
    state: State,
    buf: String,
    types: Arc<dyn ParamTypes>,
}

enum State {
    Text,
    Name,
    Args { name: String },
}

/// Longest name we wait for before deciding the marker was prose.
const MAX_NAME: usize = 128;

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "_-.:".contains(c))
}

impl GlmParser {
    pub fn new(types: Arc<dyn ParamTypes>) -> Self {
        GlmParser {
            state: State::Text,
            buf: String::new(),
            types,
        }
    }

    fn step(&mut self, out: &mut Vec<ParseEvent>) -> bool {
        match &self.state {
            State::Text => {
                let found = text_step(&mut self.buf, out);
                if found {
                    self.state = State::Name;
                }
                found
            }
            State::Name => {
                let lead = self.buf.len() - self.buf.trim_start().len();
                let end = self.buf[lead..].find(['\n', '<']).map(|i| i + lead);
                let candidate = &self.buf[lead..end.unwrap_or(self.buf.len())];
                match end {
                    Some(end) if valid_name(candidate.trim_end()) => {
                        let name = candidate.trim_end().to_string();
                        self.buf.drain(..end);
                        out.push(ParseEvent::Start { name: name.clone() });
                        self.state = State::Args { name };
                        true
                    }
                    None if candidate.len() <= MAX_NAME
                        && (candidate.is_empty() || valid_name(candidate)) =>
                    {
                        false
                    }
                    _ => {
                        // `<tool_call>` in prose: not a call.
                        out.push(ParseEvent::Text(OPEN.to_string()));
                        self.state = State::Text;
                        true
                    }
                }
            }
            State::Args { name } => {
                let Some(at) = self.buf.find(CLOSE) else {
                    return false;
                };
                let name = name.clone();
                let body: String = self.buf.drain(..at + CLOSE.len()).collect();
                self.end_call(name, &body[..at], out);
                self.state = State::Text;
                true
            }
        }
    }

    fn end_call(&self, name: String, body: &str, out: &mut Vec<ParseEvent>) {
        match parse_pairs(body) {
            Ok(pairs) => {
                let mut args = Map::new();
                for (k, v) in pairs {
                    let value = self.typed(&name, &k, v);
                    args.insert(k, value);
                }
                let arguments = compact(&Value::Object(args));
                out.push(ParseEvent::Args(arguments.clone()));
                out.push(ParseEvent::End { name, arguments });
            }
            Err(reason) => out.push(ParseEvent::Invalid { reason }),
        }
    }

    fn typed(&self, tool: &str, key: &str, raw: String) -> Value {
        match self.types.param_type(tool, key).as_deref() {
            Some("string") => Value::String(raw),
            // Typed by the schema, or untyped: JSON if it reads as JSON, else text.
            _ => serde_json::from_str(raw.trim()).unwrap_or(Value::String(raw)),
        }
    }
}

fn parse_pairs(body: &str) -> Result<Vec<(String, String)>, String> {
    let mut rest = body;
    let mut pairs = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(pairs);
        }
        let (key, after) = between(rest, "<arg_key>", "</arg_key>")?;
        let (value, after) = between(after.trim_start(), "<arg_value>", "</arg_value>")?;
        pairs.push((key.trim().to_string(), value.to_string()));
        rest = after;
    }
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Result<(&'a str, &'a str), String> {
    let inner = s
        .strip_prefix(open)
        .ok_or_else(|| format!("expected {open} in the tool call"))?;
    let end = inner
        .find(close)
        .ok_or_else(|| format!("{open} is not closed"))?;
    Ok((&inner[..end], &inner[end + close.len()..]))
}

impl ToolCallParser for GlmParser {
    fn push(&mut self, text: &str, out: &mut Vec<ParseEvent>) {
        self.buf.push_str(text);
        while self.step(out) {}
    }

    fn finish(&mut self, out: &mut Vec<ParseEvent>) {
        while self.step(out) {}
        let rest = std::mem::take(&mut self.buf);
        match std::mem::replace(&mut self.state, State::Text) {
            State::Text if !rest.is_empty() => out.push(ParseEvent::Text(rest)),
            State::Text => {}
            State::Name => out.push(ParseEvent::Text(format!("{OPEN}{rest}"))),
            // No closing tag: accept the call if what is there reads cleanly.
            State::Args { name } => self.end_call(name, &rest, out),
        }
    }
}
