//! GLM's syntax: `<tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value>…</tool_call>`,
//! with newlines between the parts (GLM-4.5/4.6) or without (GLM-4.7, GLM-5). Values are
//! text typed by the tool's JSON Schema. The arguments are emitted once the call closes.

use super::values::typed;
use super::{compact, valid_name, ParamTypes, ParseEvent, Reader, Step, CLOSE, MAX_NAME};
use serde_json::{Map, Value};

/// One call, from just after `<tool_call>`.
pub(crate) struct GlmReader {
    name: Option<String>,
}

impl GlmReader {
    pub(crate) fn new() -> Self {
        GlmReader { name: None }
    }

    fn end_call(types: &dyn ParamTypes, name: String, body: &str, out: &mut Vec<ParseEvent>) {
        match parse_pairs(body) {
            Ok(pairs) => {
                let mut args = Map::new();
                for (k, v) in pairs {
                    let value = typed(types, &name, &k, &v);
                    args.insert(k, value);
                }
                let arguments = compact(&Value::Object(args));
                out.push(ParseEvent::Args(arguments.clone()));
                out.push(ParseEvent::End { name, arguments });
            }
            Err(reason) => out.push(ParseEvent::Invalid { reason }),
        }
    }
}

impl Reader for GlmReader {
    fn step(
        &mut self,
        types: &dyn ParamTypes,
        buf: &mut String,
        out: &mut Vec<ParseEvent>,
    ) -> Step {
        match &self.name {
            None => {
                let lead = buf.len() - buf.trim_start().len();
                let end = buf[lead..].find(['\n', '<']).map(|i| i + lead);
                let candidate = &buf[lead..end.unwrap_or(buf.len())];
                match end {
                    Some(end) if valid_name(candidate.trim_end()) => {
                        let name = candidate.trim_end().to_string();
                        buf.drain(..end);
                        out.push(ParseEvent::Start { name: name.clone() });
                        self.name = Some(name);
                        Step::Again
                    }
                    None if candidate.len() <= MAX_NAME
                        && (candidate.is_empty() || valid_name(candidate)) =>
                    {
                        Step::Wait
                    }
                    // `<tool_call>` in prose: not a call.
                    _ => Step::Prose,
                }
            }
            Some(name) => {
                let Some(at) = buf.find(CLOSE) else {
                    return Step::Wait;
                };
                let body: String = buf.drain(..at + CLOSE.len()).collect();
                Self::end_call(types, name.clone(), &body[..at], out);
                Step::Done
            }
        }
    }

    /// End of input inside the call: accepted if what is there reads cleanly.
    fn finish(
        &mut self,
        types: &dyn ParamTypes,
        buf: &mut String,
        out: &mut Vec<ParseEvent>,
    ) -> bool {
        match self.name.take() {
            None => false,
            Some(name) => {
                Self::end_call(types, name, &std::mem::take(buf), out);
                true
            }
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
