//! Syntaxes read a whole block at a time, once its closing marker has arrived: Gemma 4's
//! `<|tool_call>call:NAME{key:<|"|>text<|"|>,n:42}<tool_call|>` (keys bare, strings between
//! `<|"|>`, several calls back to back) and DeepSeek's DSML (V3.2's `<｜DSML｜function_calls>`,
//! V4's `<｜DSML｜tool_calls>`, each holding `<｜DSML｜invoke name="F">` with
//! `<｜DSML｜parameter name="K" string="true|false">V</｜DSML｜parameter>`). Their calls are
//! short; the arguments are emitted per call, as each block completes.

use super::values::typed;
use super::{compact, valid_name, ParamTypes, ParseEvent, Reader, Step};
use serde_json::{Map, Value};

pub(crate) const GEMMA_OPEN: &str = "<|tool_call>";
const GEMMA_CLOSE: &str = "<tool_call|>";
const GEMMA_QUOTE: &str = "<|\"|>";
/// Gemma 4's call once decoding dropped its special tokens: `call:NAME{key:text,…}`.
pub(crate) const GEMMA_BARE: &str = "call:";
pub(crate) const DSML_OPEN: &str = "<｜DSML｜tool_calls>";
pub(crate) const DSML_OPEN_V32: &str = "<｜DSML｜function_calls>";

/// One call: its name and arguments.
type Call = (String, Value);

/// Reads the calls of one block's body.
type Parse = fn(&str, &dyn ParamTypes) -> Result<Vec<Call>, String>;

/// A call read whole: its start, all its arguments, its end.
fn push_call(out: &mut Vec<ParseEvent>, name: String, args: &Value) {
    let arguments = compact(args);
    out.push(ParseEvent::Start { name: name.clone() });
    out.push(ParseEvent::Args(arguments.clone()));
    out.push(ParseEvent::End { name, arguments });
}

/// The reader for a block opened by `marker`.
pub(crate) fn reader_for(marker: &'static str) -> WholeReader {
    let (close, parse): (&'static str, Parse) = match marker {
        GEMMA_OPEN => (GEMMA_CLOSE, gemma_calls),
        DSML_OPEN => ("</｜DSML｜tool_calls>", dsml_calls),
        _ => ("</｜DSML｜function_calls>", dsml_calls),
    };
    WholeReader { close, parse }
}

pub(crate) struct WholeReader {
    close: &'static str,
    parse: Parse,
}

impl WholeReader {
    fn emit(&self, body: &str, types: &dyn ParamTypes, out: &mut Vec<ParseEvent>) -> bool {
        match (self.parse)(body, types) {
            Ok(calls) if !calls.is_empty() => {
                for (name, args) in calls {
                    push_call(out, name, &args);
                }
                true
            }
            Ok(_) => false,
            Err(reason) => {
                out.push(ParseEvent::Invalid { reason });
                true
            }
        }
    }
}

impl Reader for WholeReader {
    fn step(
        &mut self,
        types: &dyn ParamTypes,
        buf: &mut String,
        out: &mut Vec<ParseEvent>,
    ) -> Step {
        let Some(at) = buf.find(self.close) else {
            return Step::Wait;
        };
        let body: String = buf.drain(..at + self.close.len()).collect();
        if self.emit(&body[..at], types, out) {
            Step::Done
        } else {
            buf.insert_str(0, &body);
            Step::Prose
        }
    }

    /// The output ended before the closing marker (a model stopping at its end token): the
    /// block is read as it is.
    fn finish(
        &mut self,
        types: &dyn ParamTypes,
        buf: &mut String,
        out: &mut Vec<ParseEvent>,
    ) -> bool {
        let body = std::mem::take(buf);
        if self.emit(&body, types, out) {
            true
        } else {
            *buf = body;
            false
        }
    }
}

/// Longest unfinished bare call waited for before it is given up as invalid.
const BARE_LIMIT: usize = 64 * 1024;

/// Gemma 4's call with its markers dropped, from just after `call:`: a call only when an
/// offered tool's name and a `{` follow (prose says "call:" too).
pub(crate) struct BareGemma;

impl BareGemma {
    /// Where the arguments open, once the name is known to be an offered tool's; `Err` when
    /// this is prose, `Ok(None)` while the name may still be coming.
    fn open(types: &dyn ParamTypes, buf: &str) -> Result<Option<usize>, ()> {
        match buf.find('{') {
            Some(at) if valid_name(&buf[..at]) && types.offers(&buf[..at]) => Ok(Some(at)),
            Some(_) => Err(()),
            None if buf.len() <= super::MAX_NAME && (buf.is_empty() || valid_name(buf)) => Ok(None),
            None => Err(()),
        }
    }

    fn emit(buf: &mut String, open: usize, args: Value, used: usize, out: &mut Vec<ParseEvent>) {
        let name = buf[..open].to_string();
        buf.drain(..open + used);
        push_call(out, name, &args);
    }
}

impl Reader for BareGemma {
    fn step(
        &mut self,
        types: &dyn ParamTypes,
        buf: &mut String,
        out: &mut Vec<ParseEvent>,
    ) -> Step {
        let open = match Self::open(types, buf) {
            Err(()) => return Step::Prose,
            Ok(None) => return Step::Wait,
            Ok(Some(at)) => at,
        };
        match gemma_value(&buf[open..]) {
            Ok((args, used)) if args.is_object() => {
                Self::emit(buf, open, args, used, out);
                Step::Done
            }
            // Unfinished (or malformed, which only the end can tell).
            _ if buf.len() <= BARE_LIMIT => Step::Wait,
            Ok(_) | Err(_) => {
                buf.clear();
                out.push(ParseEvent::Invalid {
                    reason: "an unfinished Gemma tool call".into(),
                });
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
        let Ok(Some(open)) = Self::open(types, buf) else {
            return false;
        };
        match gemma_value(&buf[open..]) {
            Ok((args, used)) if args.is_object() => Self::emit(buf, open, args, used, out),
            _ => {
                buf.clear();
                out.push(ParseEvent::Invalid {
                    reason: "a Gemma tool call that does not read as one".into(),
                });
            }
        }
        true
    }
}

/// Gemma 4: `call:NAME{ARGS}` repeated.
fn gemma_calls(body: &str, _types: &dyn ParamTypes) -> Result<Vec<Call>, String> {
    let mut calls = Vec::new();
    let mut rest = body.trim();
    while !rest.is_empty() {
        let after = rest
            .strip_prefix("call:")
            .ok_or_else(|| "a Gemma tool call does not begin with `call:`".to_string())?;
        let open = after
            .find('{')
            .ok_or("a Gemma tool call has no arguments")?;
        let name = after[..open].trim();
        if !valid_name(name) {
            return Err(format!("`{name}` is not a function name"));
        }
        let (args, used) = gemma_value(&after[open..])?;
        calls.push((name.to_string(), args));
        rest = after[open + used..].trim_start();
    }
    Ok(calls)
}

/// One Gemma value at the start of `s`, and the bytes it took.
fn gemma_value(s: &str) -> Result<(Value, usize), String> {
    if let Some(inner) = s.strip_prefix(GEMMA_QUOTE) {
        let end = inner
            .find(GEMMA_QUOTE)
            .ok_or("an unterminated Gemma string")?;
        return Ok((
            Value::String(inner[..end].to_string()),
            GEMMA_QUOTE.len() * 2 + end,
        ));
    }
    match s.as_bytes().first() {
        Some(b'{') => gemma_container(s, b'}', true),
        Some(b'[') => gemma_container(s, b']', false),
        _ => {
            let end = s.find([',', '}', ']']).unwrap_or(s.len());
            let raw = s[..end].trim();
            let v = match raw {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" | "None" => Value::Null,
                _ => serde_json::from_str::<Value>(raw)
                    .ok()
                    .filter(Value::is_number)
                    .unwrap_or_else(|| Value::String(raw.to_string())),
            };
            Ok((v, end))
        }
    }
}

/// `{key:value,…}` or `[value,…]` at the start of `s`.
fn gemma_container(s: &str, close: u8, object: bool) -> Result<(Value, usize), String> {
    let mut i = 1;
    let mut map = Map::new();
    let mut list = Vec::new();
    loop {
        while s.as_bytes().get(i).is_some_and(|b| b" ,\n\t\r".contains(b)) {
            i += 1;
        }
        match s.as_bytes().get(i) {
            None => return Err("an unterminated Gemma object or list".into()),
            Some(b) if *b == close => {
                return Ok((
                    if object {
                        Value::Object(map)
                    } else {
                        Value::Array(list)
                    },
                    i + 1,
                ))
            }
            _ => {}
        }
        if object {
            let colon = s[i..].find(':').ok_or("a Gemma key without a value")? + i;
            let key = s[i..colon]
                .trim()
                .trim_start_matches(GEMMA_QUOTE)
                .trim_end_matches(GEMMA_QUOTE);
            let (v, used) = gemma_value(s[colon + 1..].trim_start())?;
            let skipped = s[colon + 1..].len() - s[colon + 1..].trim_start().len();
            map.insert(key.to_string(), v);
            i = colon + 1 + skipped + used;
        } else {
            let (v, used) = gemma_value(&s[i..])?;
            list.push(v);
            i += used;
        }
    }
}

/// The value of attribute `name` in a DSML tag's attribute text.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = tag[at..].find('"')? + at;
    Some(&tag[at..end])
}

/// DeepSeek DSML: the invokes of one block.
fn dsml_calls(body: &str, types: &dyn ParamTypes) -> Result<Vec<Call>, String> {
    const INVOKE: &str = "<｜DSML｜invoke";
    const INVOKE_CLOSE: &str = "</｜DSML｜invoke>";
    const PARAM: &str = "<｜DSML｜parameter";
    const PARAM_CLOSE: &str = "</｜DSML｜parameter>";
    let mut calls = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find(INVOKE) {
        let tag_end = rest[start..]
            .find('>')
            .ok_or("an unterminated DSML invoke")?
            + start;
        let name = attr(&rest[start..tag_end], "name").ok_or("a DSML invoke without a name")?;
        if !valid_name(name) {
            return Err(format!("`{name}` is not a function name"));
        }
        let close = rest[tag_end..]
            .find(INVOKE_CLOSE)
            .map_or(rest.len(), |c| c + tag_end);
        let mut inner = &rest[tag_end + 1..close];
        let mut args = Map::new();
        while let Some(p) = inner.find(PARAM) {
            let p_end = inner[p..]
                .find('>')
                .ok_or("an unterminated DSML parameter")?
                + p;
            let tag = &inner[p..p_end];
            let key = attr(tag, "name").ok_or("a DSML parameter without a name")?;
            let v_end = inner[p_end..]
                .find(PARAM_CLOSE)
                .ok_or("an unterminated DSML parameter")?
                + p_end;
            let raw = &inner[p_end + 1..v_end];
            let value = if attr(tag, "string") == Some("true") {
                Value::String(raw.to_string())
            } else {
                typed(types, name, key, raw)
            };
            args.insert(key.to_string(), value);
            inner = &inner[v_end + PARAM_CLOSE.len()..];
        }
        calls.push((name.to_string(), Value::Object(args)));
        rest = &rest[(close + INVOKE_CLOSE.len()).min(rest.len())..];
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Untyped;
    impl ParamTypes for Untyped {
        fn param_type(&self, _: &str, param: &str) -> Option<String> {
            (param == "days").then(|| "integer".into())
        }
    }

    #[test]
    fn gemma_values_in_every_form() {
        let calls = gemma_calls(
            r#"call:get_weather{city:<|"|>São Paulo, BR<|"|>,days:2,metric:true,tags:[<|"|>a<|"|>,<|"|>b<|"|>],opts:{deep:{x:1.5}}}call:get_time{}"#,
            &Untyped,
        )
        .unwrap();
        assert_eq!(calls[0].0, "get_weather");
        assert_eq!(
            calls[0].1,
            json!({"city": "São Paulo, BR", "days": 2, "metric": true, "tags": ["a", "b"], "opts": {"deep": {"x": 1.5}}})
        );
        assert_eq!(calls[1], ("get_time".to_string(), json!({})));
        assert!(gemma_calls("call:f{city:<|\"|>open", &Untyped).is_err());
        assert!(gemma_calls("weather please", &Untyped).is_err());
    }

    #[test]
    fn dsml_invokes_typed_by_their_string_attribute_and_the_schema() {
        let body = "\n<｜DSML｜invoke name=\"get_weather\">\n<｜DSML｜parameter name=\"city\" string=\"true\">Paris</｜DSML｜parameter>\n<｜DSML｜parameter name=\"days\" string=\"false\">2</｜DSML｜parameter>\n</｜DSML｜invoke>\n<｜DSML｜invoke name=\"get_time\">\n</｜DSML｜invoke>\n";
        let calls = dsml_calls(body, &Untyped).unwrap();
        assert_eq!(
            calls[0],
            ("get_weather".into(), json!({"city": "Paris", "days": 2}))
        );
        assert_eq!(calls[1], ("get_time".into(), json!({})));
        assert!(dsml_calls("<｜DSML｜invoke name=\"bad name\">", &Untyped).is_err());
    }
}
