//! `<tool_call>{"name": …, "arguments": {…}}</tool_call>`: Hermes and Qwen2.5/3. Arguments
//! are streamed as they arrive (whitespace outside strings dropped, so the fragments
//! concatenate to compact JSON). Tolerates code fences, `parameters` for `arguments`,
//! arguments given as a JSON string, a missing closing tag, and `<tool_call>` quoted in prose.

use super::scan::partial_suffix;
use super::{compact, ParamTypes, ParseEvent, Reader, Step, CLOSE};
use serde_json::Value;

/// One call, from just after `<tool_call>`.
#[derive(Default)]
pub(crate) struct JsonReader {
    state: State,
}

#[derive(Default)]
enum State {
    /// Before knowing whether a call follows (whitespace, a code fence).
    #[default]
    Opening,
    Body(Box<Body>),
    /// The JSON object closed; expecting `</tool_call>`.
    Closing,
}

#[derive(Default)]
struct Body {
    raw: String,
    depth: u32,
    in_str: bool,
    escaped: bool,
    /// Top level: the key being read and the key whose value is being read.
    key_start: Option<usize>,
    expect_key: bool,
    current_key: Option<String>,
    value_start: Option<usize>,
    name: Option<String>,
    /// Compact text of an object/array `arguments` value, as far as it has arrived.
    args: String,
    args_streaming: bool,
    emitted: usize,
    started: bool,
    /// Byte offset just past the object's closing brace, once seen.
    end: Option<usize>,
}

const ARG_KEYS: [&str; 2] = ["arguments", "parameters"];

impl Body {
    /// Scans newly appended raw text from `from` (a char boundary).
    fn scan(&mut self, from: usize) {
        let raw = std::mem::take(&mut self.raw);
        for (offset, c) in raw[from..].char_indices() {
            let i = from + offset;
            let in_args = self.args_streaming && self.depth >= 2;
            if self.in_str {
                if in_args {
                    self.args.push(c);
                }
                if self.escaped {
                    self.escaped = false;
                } else if c == '\\' {
                    self.escaped = true;
                } else if c == '"' {
                    self.in_str = false;
                    if self.depth == 1 {
                        self.end_top_string(&raw, i);
                    }
                }
                continue;
            }
            if in_args && !c.is_whitespace() {
                self.args.push(c);
            }
            match c {
                '"' => {
                    self.in_str = true;
                    if self.depth == 1 {
                        if self.expect_key {
                            self.key_start = Some(i);
                        } else if self.value_start.is_none() {
                            self.value_start = Some(i);
                        }
                    }
                }
                '{' | '[' => {
                    self.depth += 1;
                    if self.depth == 1 {
                        self.expect_key = true;
                    } else if self.depth == 2 && self.value_start.is_none() {
                        self.value_start = Some(i);
                        if self
                            .current_key
                            .as_deref()
                            .is_some_and(|k| ARG_KEYS.contains(&k))
                        {
                            self.args_streaming = true;
                            self.args.clear();
                            self.args.push(c);
                        }
                    }
                }
                '}' | ']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 1 {
                        self.args_streaming = false;
                    }
                    if self.depth == 0 {
                        // What follows the object is not part of it.
                        self.end = Some(i + 1);
                        break;
                    }
                }
                ',' if self.depth == 1 => {
                    self.expect_key = true;
                    self.current_key = None;
                    self.value_start = None;
                }
                ':' if self.depth == 1 => self.expect_key = false,
                _ => {}
            }
        }
        self.raw = raw;
    }

    fn end_top_string(&mut self, raw: &str, end: usize) {
        if let Some(start) = self.key_start.take() {
            self.current_key = serde_json::from_str(&raw[start..=end]).ok();
            return;
        }
        if self.current_key.as_deref() == Some("name") && self.name.is_none() {
            if let Some(start) = self.value_start {
                self.name = serde_json::from_str(&raw[start..=end]).ok();
            }
        }
    }

    /// Reads the finished object. Returns the name and compact arguments text.
    fn finish_call(&self) -> Result<(String, String), String> {
        let v: Value = serde_json::from_str(&self.raw)
            .map_err(|e| format!("tool call is not valid JSON: {e}"))?;
        let obj = v.as_object().ok_or("tool call is not a JSON object")?;
        // Also accept the OpenAI-like `{"function": {"name", "arguments"}}` nesting.
        let obj = match obj.get("function").and_then(Value::as_object) {
            Some(inner) if !obj.contains_key("name") => inner,
            _ => obj,
        };
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .ok_or("tool call has no \"name\"")?
            .to_string();
        let args = ARG_KEYS
            .iter()
            .find_map(|k| obj.get(*k))
            .unwrap_or(&Value::Null);
        let arguments = match args {
            Value::Null => "{}".to_string(),
            Value::String(s) => {
                let parsed: Value = serde_json::from_str(s)
                    .map_err(|e| format!("\"arguments\" is a string that is not JSON: {e}"))?;
                compact(&parsed)
            }
            Value::Object(_) if self.args.starts_with('{') => self.args.clone(),
            other => compact(other),
        };
        Ok((name, arguments))
    }
}

impl Reader for JsonReader {
    fn step(&mut self, _: &dyn ParamTypes, buf: &mut String, out: &mut Vec<ParseEvent>) -> Step {
        match &mut self.state {
            State::Opening => {
                let trimmed = buf.trim_start();
                let lead = buf.len() - trimmed.len();
                if trimmed.is_empty() {
                    return Step::Wait;
                }
                let mut start = lead;
                if trimmed.starts_with('`') {
                    if "```".starts_with(trimmed) && trimmed.len() < 3 {
                        return Step::Wait;
                    }
                    match trimmed.find('\n') {
                        Some(nl) if trimmed.starts_with("```") => {
                            let after_trim = trimmed[nl + 1..].trim_start();
                            if after_trim.is_empty() {
                                return Step::Wait;
                            }
                            start = buf.len() - after_trim.len();
                        }
                        None if trimmed.len() < 16 && trimmed.starts_with("```") => {
                            return Step::Wait
                        }
                        _ => {}
                    }
                }
                if !buf[start..].starts_with('{') {
                    return Step::Prose;
                }
                let raw = buf.split_off(start);
                buf.clear();
                let mut body = Box::<Body>::default();
                body.raw = raw;
                body.scan(0);
                self.state = State::Body(body);
                Step::Again
            }
            State::Body(body) => {
                if !buf.is_empty() && body.end.is_none() {
                    let from = body.raw.len();
                    body.raw.push_str(buf);
                    buf.clear();
                    body.scan(from);
                }
                if !body.started {
                    if let Some(name) = &body.name {
                        out.push(ParseEvent::Start { name: name.clone() });
                        body.started = true;
                    }
                }
                if body.started && body.args.len() > body.emitted {
                    out.push(ParseEvent::Args(body.args[body.emitted..].to_string()));
                    body.emitted = body.args.len();
                }
                let Some(end) = body.end else {
                    return Step::Wait;
                };
                let rest = body.raw.split_off(end);
                buf.insert_str(0, &rest);
                emit_end(body, out);
                self.state = State::Closing;
                Step::Again
            }
            State::Closing => {
                let trimmed = buf.trim_start();
                let trimmed = trimmed.strip_prefix("```").unwrap_or(trimmed).trim_start();
                if trimmed.is_empty()
                    || (partial_suffix(trimmed, CLOSE) == trimmed.len())
                    || "```".starts_with(trimmed)
                {
                    return Step::Wait;
                }
                if let Some(after) = trimmed.strip_prefix(CLOSE) {
                    *buf = after.to_string();
                }
                // No closing tag: be liberal, the rest is ordinary text.
                Step::Done
            }
        }
    }

    fn finish(&mut self, _: &dyn ParamTypes, buf: &mut String, out: &mut Vec<ParseEvent>) -> bool {
        match std::mem::take(&mut self.state) {
            State::Opening => return false,
            State::Body(_) => out.push(ParseEvent::Invalid {
                reason: "the output ended inside a tool call".into(),
            }),
            State::Closing => {
                if super::scan::is_closer_remnant(buf) {
                    buf.clear();
                }
            }
        }
        true
    }
}

fn emit_end(body: &Body, out: &mut Vec<ParseEvent>) {
    match body.finish_call() {
        Ok((name, arguments)) => {
            if !body.started {
                out.push(ParseEvent::Start { name: name.clone() });
            }
            let emitted = if body.started {
                &body.args[..body.emitted]
            } else {
                ""
            };
            match arguments.strip_prefix(emitted) {
                Some(rest) if !rest.is_empty() => out.push(ParseEvent::Args(rest.to_string())),
                Some(_) => {}
                None => out.push(ParseEvent::Invalid {
                    reason: "tool call arguments changed after they were streamed".into(),
                }),
            }
            out.push(ParseEvent::End { name, arguments });
        }
        Err(reason) => out.push(ParseEvent::Invalid { reason }),
    }
}
