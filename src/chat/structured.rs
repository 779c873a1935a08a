//! Structured outputs (`response_format` `json_object` / `json_schema`, and the Responses
//! API's `text.format`): Venice cannot constrain decoding of an encrypted conversation, so
//! the model is told the schema inside it, the JSON is extracted from its answer (code
//! fences and text around it tolerated) and validated with the schema. The client gets the
//! bare JSON, so the SDKs' `parse()` helpers work.

use crate::error::ApiError;
use serde_json::Value;

pub struct OutputFormat {
    /// `json_schema`'s name (`None` for `json_object`).
    pub(crate) name: Option<String>,
    /// The schema and its compiled validator (`None` for `json_object`).
    pub(crate) schema: Option<(Value, jsonschema::Validator)>,
}

impl std::fmt::Debug for OutputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputFormat")
            .field("name", &self.name)
            .finish()
    }
}

impl OutputFormat {
    /// `response_format` of a chat request: `None` for text (or absent).
    pub fn parse(v: &Value, param: &str) -> Result<Option<OutputFormat>, ApiError> {
        let at = |f: &str| format!("{param}.{f}");
        match v.get("type").and_then(Value::as_str) {
            _ if v.is_null() => Ok(None),
            Some("text") => Ok(None),
            Some("json_object") => Ok(Some(OutputFormat::json_object())),
            Some("json_schema") => {
                let spec = v
                    .get("json_schema")
                    .filter(|s| s.is_object())
                    .ok_or_else(|| {
                        ApiError::invalid(at("json_schema"), "`json_schema` must be an object")
                    })?;
                let name = spec.get("name").and_then(Value::as_str).map(str::to_string);
                let schema = spec
                    .get("schema")
                    .cloned()
                    .unwrap_or_else(|| serde_json::json!({}));
                OutputFormat::json_schema(name, schema, &at("json_schema.schema")).map(Some)
            }
            Some(other) => Err(ApiError::unsupported(
                at("type"),
                format!("response format `{other}` is not supported"),
            )),
            None => Err(ApiError::invalid(at("type"), "`type` is required")),
        }
    }

    /// Any JSON object.
    pub(crate) fn json_object() -> OutputFormat {
        OutputFormat {
            name: None,
            schema: None,
        }
    }

    /// JSON valid against `schema` (compiled once); `param` names it in an error.
    pub(crate) fn json_schema(
        name: Option<String>,
        schema: Value,
        param: &str,
    ) -> Result<OutputFormat, ApiError> {
        let validator = jsonschema::options()
            .build(&schema)
            .map_err(|e| ApiError::invalid(param, format!("invalid JSON Schema: {e}")))?;
        Ok(OutputFormat {
            name,
            schema: Some((schema, validator)),
        })
    }

    /// The instruction added to the system message.
    pub(crate) fn prompt(&self) -> String {
        match &self.schema {
            None => "Respond with only a valid JSON object. Do not write anything before or after it, and do not wrap it in code fences.".into(),
            Some((schema, _)) => format!(
                "Respond with only a JSON value that is valid against the following JSON Schema{}. Do not write anything before or after it, and do not wrap it in code fences.\n\n{}",
                self.name.as_deref().map(|n| format!(" (named `{n}`)")).unwrap_or_default(),
                schema
            ),
        }
    }

    /// The bare JSON of an answer, valid for this format, or why not.
    pub(crate) fn extract(&self, text: &str) -> Result<String, String> {
        let value = find_json(text).ok_or("the reply contains no JSON value")?;
        match &self.schema {
            None if !value.is_object() => Err("the reply is JSON but not an object".into()),
            None => Ok(value.to_string()),
            Some((_, validator)) => {
                let errors = schema_problems(validator, &value, 5);
                if errors.is_empty() {
                    Ok(value.to_string())
                } else {
                    Err(format!(
                        "the JSON does not match the schema: {}",
                        errors.join("; ")
                    ))
                }
            }
        }
    }

    /// The turn that asks the model to try again.
    pub(crate) fn correction(&self, reason: &str) -> String {
        format!("Your previous reply was not acceptable: {reason}. Reply again with only the JSON, exactly as required.")
    }
}

/// What makes `value` invalid for `validator`, at most `limit` problems, each with its path:
/// the words a correction prompt and an error message use.
pub(crate) fn schema_problems(
    validator: &jsonschema::Validator,
    value: &Value,
    limit: usize,
) -> Vec<String> {
    validator
        .iter_errors(value)
        .take(limit)
        .map(|e| {
            let path = e.instance_path().to_string();
            if path.is_empty() {
                e.to_string()
            } else {
                format!("{path}: {e}")
            }
        })
        .collect()
}

/// The first JSON object or array in `text`: the whole text, or inside code fences, or
/// after leading prose.
fn find_json(text: &str) -> Option<Value> {
    let t = text.trim();
    if let Ok(v) = serde_json::from_str::<Value>(t) {
        return Some(v);
    }
    t.char_indices()
        .filter(|(_, c)| *c == '{' || *c == '[')
        .find_map(|(i, _)| {
            serde_json::Deserializer::from_str(&t[i..])
                .into_iter::<Value>()
                .next()?
                .ok()
        })
}

/// Streams only the JSON value out of generated text: drops what comes before its first `{`
/// or `[` (prose, an opening fence) and after it closes (a closing fence, remarks), so a
/// client parsing the streamed content gets bare JSON.
#[derive(Default)]
pub(crate) struct JsonStream {
    state: JsonState,
    depth: u32,
    in_str: bool,
    escaped: bool,
    /// What was passed through, to validate at the end.
    pub(crate) collected: String,
}

#[derive(Default, PartialEq)]
enum JsonState {
    #[default]
    Before,
    Inside,
    After,
}

impl JsonStream {
    /// The part of `text` that belongs to the JSON value.
    pub(crate) fn push(&mut self, text: &str) -> String {
        let mut out = String::new();
        for c in text.chars() {
            match self.state {
                JsonState::Before if c == '{' || c == '[' => {
                    self.state = JsonState::Inside;
                    self.depth = 1;
                    out.push(c);
                }
                JsonState::Before | JsonState::After => {}
                JsonState::Inside => {
                    out.push(c);
                    if self.in_str {
                        match c {
                            _ if self.escaped => self.escaped = false,
                            '\\' => self.escaped = true,
                            '"' => self.in_str = false,
                            _ => {}
                        }
                    } else {
                        match c {
                            '"' => self.in_str = true,
                            '{' | '[' => self.depth += 1,
                            '}' | ']' => {
                                self.depth -= 1;
                                if self.depth == 0 {
                                    self.state = JsonState::After;
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        self.collected.push_str(&out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> OutputFormat {
        let rf = json!({"type": "json_schema", "json_schema": {"name": "person", "strict": true, "schema": {
            "type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"], "additionalProperties": false}}});
        OutputFormat::parse(&rf, "response_format")
            .unwrap()
            .unwrap()
    }

    #[test]
    fn formats_parse_and_refuse() {
        assert!(OutputFormat::parse(&json!({"type": "text"}), "r")
            .unwrap()
            .is_none());
        assert!(OutputFormat::parse(&Value::Null, "r").unwrap().is_none());
        assert!(OutputFormat::parse(&json!({"type": "json_object"}), "r")
            .unwrap()
            .is_some());
        let bad = OutputFormat::parse(
            &json!({"type": "json_schema", "json_schema": {"schema": {"type": 7}}}),
            "r",
        );
        assert_eq!(
            bad.unwrap_err().param.as_deref(),
            Some("r.json_schema.schema")
        );
        assert_eq!(
            OutputFormat::parse(&json!({"type": "grammar"}), "r")
                .unwrap_err()
                .code,
            "unsupported_parameter"
        );
        assert!(schema().prompt().contains("\"additionalProperties\":false"));
    }

    #[test]
    fn extraction_tolerates_fences_and_prose() {
        let f = schema();
        for text in [
            r#"{"name": "Ada", "age": 36}"#,
            "```json\n{\"name\": \"Ada\", \"age\": 36}\n```",
            "Here you go: {\"name\": \"Ada\", \"age\": 36} Hope that helps {.",
        ] {
            assert_eq!(
                f.extract(text).unwrap(),
                r#"{"name":"Ada","age":36}"#,
                "{text}"
            );
        }
        assert!(f.extract(r#"{"name": "Ada"}"#).unwrap_err().contains("age"));
        assert!(f.extract("no json here").is_err());
        let obj = OutputFormat::parse(&json!({"type": "json_object"}), "r")
            .unwrap()
            .unwrap();
        assert!(obj.extract("[1, 2]").is_err());
        assert_eq!(obj.extract("{\"a\": [1]}").unwrap(), r#"{"a":[1]}"#);
    }

    #[test]
    fn streaming_passes_only_the_json() {
        let text = "Sure!\n```json\n{\"a\": \"}{\\\"\", \"b\": [1, {\"c\": 2}]}\n```\nDone.";
        for split in 1..8 {
            let mut s = JsonStream::default();
            let out: String = text
                .as_bytes()
                .chunks(split)
                .map(|c| s.push(std::str::from_utf8(c).unwrap()))
                .collect();
            assert_eq!(
                out, "{\"a\": \"}{\\\"\", \"b\": [1, {\"c\": 2}]}",
                "split {split}"
            );
            assert_eq!(s.collected, out);
        }
    }
}
