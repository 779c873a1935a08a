//! Qwen's XML syntax (Qwen3-Coder, Qwen3.5): `<tool_call>\n<function=NAME>\n<parameter=K>\nV\n
//! </parameter>\n…</function>\n</tool_call>`, also seen without the `<tool_call>` wrapper.
//! Values are text typed by the tool's JSON Schema, a string minus the one newline the
//! template puts on each side. Each parameter's JSON is emitted as soon as it closes, so the
//! arguments stream parameter by parameter. A value may contain any text but `</parameter>`.

use super::scan::could_become;
use super::values::typed;
use super::{valid_name, ParamTypes, ParseEvent, Reader, Step, CLOSE, MAX_NAME};
use serde_json::Value;

const PARAM: &str = "<parameter=";
const PARAM_CLOSE: &str = "</parameter>";
const FUNCTION_CLOSE: &str = "</function>";

/// One call, from just after `<function=`.
pub(crate) struct XmlReader {
    state: State,
    name: String,
    /// Parameters read so far (in order), for duplicate detection and the final arguments.
    args: serde_json::Map<String, Value>,
    /// Whether `Start` was emitted: only once a parameter or `</function>` shows it is a call.
    started: bool,
    /// The text consumed since the marker, put back if it turns out to be prose.
    consumed: String,
    /// Inside `<tool_call>`: an attempt at a call, so a malformed body is invalid, not prose.
    wrapped: bool,
}

enum State {
    Name,
    /// Between parameters: `<parameter=` or `</function>` comes next.
    Params,
    Value {
        key: String,
    },
    /// `</function>` read; a `</tool_call>` may follow.
    AfterFunction,
    /// The call was invalid: skipped up to its `</function>`.
    Broken,
}

impl XmlReader {
    /// `consumed`: text after the marker already taken from the buffer (`<tool_call>\n<function=`
    /// leaves `\n<function=`), restored if this is prose.
    pub(crate) fn new(consumed: String) -> Self {
        XmlReader {
            state: State::Name,
            name: String::new(),
            args: serde_json::Map::new(),
            started: false,
            wrapped: !consumed.is_empty(),
            consumed,
        }
    }

    fn start(&mut self, out: &mut Vec<ParseEvent>) {
        if !self.started {
            self.started = true;
            self.consumed.clear();
            out.push(ParseEvent::Start {
                name: self.name.clone(),
            });
        }
    }

    /// Not a call after all: what was consumed goes back to be read as text.
    fn prose(&mut self, buf: &mut String) -> Step {
        buf.insert_str(0, &std::mem::take(&mut self.consumed));
        Step::Prose
    }

    /// Emits the JSON fragment for one more parameter: `{"k":v` first, then `,"k":v`.
    fn add(&mut self, key: String, value: Value, out: &mut Vec<ParseEvent>) -> Result<(), String> {
        if self.args.contains_key(&key) {
            return Err(format!("parameter `{key}` is given twice"));
        }
        self.start(out);
        let lead = if self.args.is_empty() { "{" } else { "," };
        let key_json = serde_json::to_string(&key).expect("strings serialize");
        out.push(ParseEvent::Args(format!(
            "{lead}{key_json}:{}",
            super::compact(&value)
        )));
        self.args.insert(key, value);
        Ok(())
    }

    fn broken(&mut self, reason: String, out: &mut Vec<ParseEvent>) -> Step {
        out.push(ParseEvent::Invalid { reason });
        self.state = State::Broken;
        Step::Again
    }

    fn close(&mut self, out: &mut Vec<ParseEvent>) {
        self.start(out);
        out.push(ParseEvent::Args(
            if self.args.is_empty() { "{}" } else { "}" }.into(),
        ));
        let args = std::mem::take(&mut self.args);
        out.push(ParseEvent::End {
            name: self.name.clone(),
            arguments: super::compact(&Value::Object(args)),
        });
    }
}

/// The template writes `<parameter=K>\nV\n</parameter>`: the framing newlines are not the
/// value's.
fn unframe(raw: &str) -> &str {
    let v = raw
        .strip_prefix("\r\n")
        .or_else(|| raw.strip_prefix('\n'))
        .unwrap_or(raw);
    v.strip_suffix("\r\n")
        .or_else(|| v.strip_suffix('\n'))
        .unwrap_or(v)
}

impl XmlReader {
    /// `NAME>` after `<function=`: a name that is not one is prose.
    fn function_name(&mut self, buf: &mut String) -> Step {
        let Some(end) = buf.find('>') else {
            let candidate = buf.trim();
            return if candidate.len() <= MAX_NAME && (candidate.is_empty() || valid_name(candidate))
            {
                Step::Wait
            } else {
                self.prose(buf)
            };
        };
        let name = buf[..end].trim();
        if !valid_name(name) {
            return self.prose(buf);
        }
        self.name = name.to_string();
        self.consumed.extend(buf.drain(..=end));
        self.state = State::Params;
        Step::Again
    }

    /// Inside a function: the next `<parameter=KEY>` or its `</function>`.
    fn parameter_or_close(&mut self, buf: &mut String, out: &mut Vec<ParseEvent>) -> Step {
        let trimmed = buf.trim_start();
        let lead = buf.len() - trimmed.len();
        if let Some(rest) = trimmed.strip_prefix(PARAM) {
            let Some(end) = rest.find('>') else {
                return if rest.len() > MAX_NAME {
                    self.broken("a <parameter= tag is not closed".into(), out)
                } else {
                    Step::Wait
                };
            };
            let key = rest[..end].trim().to_string();
            buf.drain(..lead + PARAM.len() + end + 1);
            self.start(out);
            self.state = State::Value { key };
            Step::Again
        } else if trimmed.starts_with(FUNCTION_CLOSE) {
            buf.drain(..lead + FUNCTION_CLOSE.len());
            self.close(out);
            self.state = State::AfterFunction;
            Step::Again
        } else if trimmed.is_empty()
            || could_become(trimmed, PARAM)
            || could_become(trimmed, FUNCTION_CLOSE)
        {
            Step::Wait
        } else if !self.started && !self.wrapped {
            // A bare `<function=NAME>` followed by prose: a mention, not a call.
            self.prose(buf)
        } else {
            self.broken(
                format!(
                    "unexpected text inside <function={}>; expected <parameter=…> or </function>",
                    self.name
                ),
                out,
            )
        }
    }
}

/// Where a parameter's value ends and how much of `buf` it consumes. Only `</parameter>` ends
/// a value (it may hold any other tag), or, when that is missing, a `</function>` that
/// `</tool_call>` follows.
fn value_end(buf: &str) -> Option<(usize, usize)> {
    match buf.find(PARAM_CLOSE) {
        Some(at) => Some((at, at + PARAM_CLOSE.len())),
        None => buf
            .find(FUNCTION_CLOSE)
            .filter(|at| {
                buf[at + FUNCTION_CLOSE.len()..]
                    .trim_start()
                    .starts_with(CLOSE)
            })
            .map(|at| (at, at)),
    }
}

impl Reader for XmlReader {
    fn step(
        &mut self,
        types: &dyn ParamTypes,
        buf: &mut String,
        out: &mut Vec<ParseEvent>,
    ) -> Step {
        match &self.state {
            State::Name => self.function_name(buf),
            State::Params => self.parameter_or_close(buf, out),
            State::Value { key } => {
                let Some((at, consumed)) = value_end(buf) else {
                    return Step::Wait;
                };
                let key = key.clone();
                let value = typed(types, &self.name, &key, unframe(&buf[..at]));
                buf.drain(..consumed);
                self.state = State::Params;
                match self.add(key, value, out) {
                    Ok(()) => Step::Again,
                    Err(reason) => self.broken(reason, out),
                }
            }
            State::Broken => match buf.find(FUNCTION_CLOSE) {
                Some(at) => {
                    buf.drain(..at + FUNCTION_CLOSE.len());
                    self.state = State::AfterFunction;
                    Step::Again
                }
                None => Step::Wait,
            },
            State::AfterFunction => {
                let trimmed = buf.trim_start();
                if trimmed.is_empty() || could_become(trimmed, CLOSE) {
                    return Step::Wait;
                }
                if let Some(after) = trimmed.strip_prefix(CLOSE) {
                    *buf = after.to_string();
                }
                Step::Done
            }
        }
    }

    fn finish(
        &mut self,
        types: &dyn ParamTypes,
        buf: &mut String,
        out: &mut Vec<ParseEvent>,
    ) -> bool {
        if let State::Value { key } = &self.state {
            // `…V</function>` at the very end: the value was whole, `</parameter>` missing.
            if let Some(at) = buf.rfind(FUNCTION_CLOSE).filter(|at| {
                let rest = buf[at + FUNCTION_CLOSE.len()..].trim();
                rest.is_empty() || rest == CLOSE || could_become(rest, CLOSE)
            }) {
                let key = key.clone();
                let value = typed(types, &self.name, &key, unframe(&buf[..at]));
                buf.clear();
                match self.add(key, value, out) {
                    Ok(()) => self.close(out),
                    Err(reason) => out.push(ParseEvent::Invalid { reason }),
                }
                return true;
            }
        }
        match self.state {
            State::Name => return false,
            State::Params if !self.started && !self.wrapped && !buf.trim().is_empty() => {
                self.prose(buf);
                return false;
            }
            // Every parameter closed, only `</function>` missing: the call is whole.
            State::Params if buf.trim().is_empty() => self.close(out),
            // A value cut off mid-way is never taken for a whole one.
            State::Broken => buf.clear(),
            State::Params | State::Value { .. } => {
                buf.clear();
                out.push(ParseEvent::Invalid {
                    reason: format!("the output ended inside the call to {}", self.name),
                });
            }
            State::AfterFunction => {}
        }
        if super::scan::is_closer_remnant(buf) {
            buf.clear();
        }
        true
    }
}
