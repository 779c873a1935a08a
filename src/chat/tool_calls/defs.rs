//! The request's `tools`, `tool_choice` and `parallel_tool_calls`, checked and with each
//! tool's JSON Schema compiled once per request.

use super::error::ToolCallError;
use super::parser::ParamTypes;
use crate::error::ApiError;
use serde_json::{json, Value};

pub(crate) struct ToolDef {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) parameters: Value,
    validator: jsonschema::Validator,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToolChoice {
    None,
    Auto,
    Required,
    Named(String),
}

pub struct ToolSet {
    pub(crate) tools: Vec<ToolDef>,
    pub(crate) choice: ToolChoice,
    pub(crate) parallel: bool,
}

impl std::fmt::Debug for ToolSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolSet")
            .field(
                "tools",
                &self.tools.iter().map(|t| &t.name).collect::<Vec<_>>(),
            )
            .field("choice", &self.choice)
            .field("parallel", &self.parallel)
            .finish()
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A tool as a front door read it: what the model is offered under `name`.
#[derive(Debug, Clone)]
pub(crate) struct ToolSpec {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    /// Its JSON Schema; none means it takes no arguments.
    pub(crate) parameters: Option<Value>,
}

impl ToolChoice {
    /// `auto`, `none` or `required`.
    pub(crate) fn by_word(word: &str) -> Option<ToolChoice> {
        match word {
            "auto" => Some(ToolChoice::Auto),
            "none" => Some(ToolChoice::None),
            "required" => Some(ToolChoice::Required),
            _ => None,
        }
    }
}

impl ToolSet {
    /// A chat request's `tools`, `tool_choice` and `parallel_tool_calls`; `None` when the
    /// request offers no tools.
    pub fn parse(
        tools: Value,
        choice: Value,
        parallel: Value,
    ) -> Result<Option<ToolSet>, ApiError> {
        let items = match tools {
            Value::Null => return Ok(None),
            Value::Array(a) if a.is_empty() => return Ok(None),
            Value::Array(a) => a,
            _ => return Err(ApiError::invalid("tools", "`tools` must be an array")),
        };
        let mut specs = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let at = |p: &str| format!("tools[{i}].{p}");
            if item.get("type").and_then(Value::as_str) != Some("function") {
                return Err(ApiError::unsupported(
                    at("type"),
                    "only tools of type `function` are supported",
                ));
            }
            let f = item
                .get("function")
                .filter(|f| f.is_object())
                .ok_or_else(|| ApiError::invalid(at("function"), "`function` must be an object"))?;
            specs.push(ToolSpec {
                name: f
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                description: f
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                parameters: f.get("parameters").filter(|p| !p.is_null()).cloned(),
            });
        }
        let choice = match &choice {
            Value::Null => Some(ToolChoice::Auto),
            Value::String(word) => ToolChoice::by_word(word),
            Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
                let name = o
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "tool_choice.function.name",
                            "a forced tool needs `function.name`",
                        )
                    })?;
                Some(ToolChoice::Named(name.to_string()))
            }
            _ => None,
        }
        .ok_or_else(|| {
            ApiError::invalid(
                "tool_choice",
                "`tool_choice` must be none, auto, required or a function",
            )
        })?;
        let parallel = match parallel {
            Value::Null => true,
            Value::Bool(b) => b,
            _ => {
                return Err(ApiError::invalid(
                    "parallel_tool_calls",
                    "`parallel_tool_calls` must be a boolean",
                ))
            }
        };
        ToolSet::new(specs, choice, parallel)
    }

    /// The tools a front door read, checked (names, schemas, the forced tool among them),
    /// each schema compiled once; `None` when there are none.
    pub(crate) fn new(
        specs: Vec<ToolSpec>,
        choice: ToolChoice,
        parallel: bool,
    ) -> Result<Option<ToolSet>, ApiError> {
        if specs.is_empty() {
            return Ok(None);
        }
        let mut defs: Vec<ToolDef> = Vec::with_capacity(specs.len());
        for (i, spec) in specs.into_iter().enumerate() {
            let at = |p: &str| format!("tools[{i}].function.{p}");
            if !valid_name(&spec.name) {
                return Err(ApiError::invalid(
                    at("name"),
                    "function names are 1-64 characters of a-z, A-Z, 0-9, _ and -",
                ));
            }
            if defs.iter().any(|d| d.name == spec.name) {
                return Err(ApiError::invalid(
                    at("name"),
                    format!("duplicate function name `{}`", spec.name),
                ));
            }
            let parameters = match spec.parameters {
                None => json!({"type": "object", "properties": {}}),
                Some(p @ Value::Object(_)) => p,
                Some(_) => {
                    return Err(ApiError::invalid(
                        at("parameters"),
                        "`parameters` must be a JSON Schema object",
                    ))
                }
            };
            if parameters.get("type").is_some_and(|t| t != "object") {
                return Err(ApiError::invalid(
                    at("parameters"),
                    "`parameters` must describe an object",
                ));
            }
            let validator = jsonschema::validator_for(&parameters).map_err(|e| {
                ApiError::invalid(at("parameters"), format!("invalid JSON Schema: {e}"))
            })?;
            defs.push(ToolDef {
                name: spec.name,
                description: spec.description,
                parameters,
                validator,
            });
        }
        if let ToolChoice::Named(name) = &choice {
            if !defs.iter().any(|d| &d.name == name) {
                return Err(ApiError::invalid(
                    "tool_choice.function.name",
                    format!("`{name}` is not among the tools"),
                ));
            }
        }
        Ok(Some(ToolSet {
            tools: defs,
            choice,
            parallel,
        }))
    }

    /// Tools the model is told about (none under `tool_choice: none`; only the forced one when
    /// a function is named).
    pub(crate) fn offered(&self) -> impl Iterator<Item = &ToolDef> {
        self.tools.iter().filter(move |t| match &self.choice {
            ToolChoice::None => false,
            ToolChoice::Named(n) => &t.name == n,
            _ => true,
        })
    }

    pub(crate) fn must_call(&self) -> bool {
        matches!(self.choice, ToolChoice::Required | ToolChoice::Named(_))
    }

    /// Checks one call the model made: a tool it was offered, JSON object arguments valid
    /// against that tool's schema.
    pub(crate) fn validate_call(&self, name: &str, arguments: &str) -> Result<(), ToolCallError> {
        let Some(tool) = self.offered().find(|t| t.name == name) else {
            let offered: Vec<&str> = self.offered().map(|t| t.name.as_str()).collect();
            return Err(ToolCallError::NotOffered {
                name: name.into(),
                offered: offered.join(", "),
            });
        };
        let args: Value = serde_json::from_str(arguments).map_err(|e| ToolCallError::NotJson {
            name: name.into(),
            reason: e.to_string(),
        })?;
        if !args.is_object() {
            return Err(ToolCallError::NotObject { name: name.into() });
        }
        let problems = crate::chat::structured::schema_problems(&tool.validator, &args, 3);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ToolCallError::Schema {
                name: name.into(),
                problems: problems.join("; "),
            })
        }
    }

    /// Checks the set of calls in one answer against `tool_choice` and `parallel_tool_calls`.
    pub(crate) fn validate_count(&self, calls: usize) -> Result<(), ToolCallError> {
        if calls == 0 && self.must_call() {
            return Err(match &self.choice {
                ToolChoice::Named(n) => ToolCallError::NamedNotCalled(n.clone()),
                _ => ToolCallError::NoneCalled,
            });
        }
        if calls > 1 && !self.parallel {
            return Err(ToolCallError::NotParallel(calls));
        }
        Ok(())
    }
}

impl ParamTypes for ToolSet {
    fn param_type(&self, tool: &str, param: &str) -> Option<String> {
        let t = self.tools.iter().find(|t| t.name == tool)?;
        let ty = t.parameters.get("properties")?.get(param)?.get("type")?;
        match ty {
            Value::String(s) => Some(s.clone()),
            // ["string", "null"]: a string if it may be one.
            Value::Array(a) if a.iter().any(|v| v == "string") => Some("string".into()),
            Value::Array(a) => a.iter().find_map(|v| v.as_str().map(str::to_string)),
            _ => None,
        }
    }

    fn offers(&self, tool: &str) -> bool {
        self.offered().any(|t| t.name == tool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weather() -> Value {
        json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
                           "required": ["city"], "additionalProperties": false}}},
               {"type": "function", "function": {"name": "now"}}])
    }

    fn set(choice: Value) -> ToolSet {
        ToolSet::parse(weather(), choice, Value::Null)
            .unwrap()
            .unwrap()
    }

    fn param_of(tools: Value, choice: Value) -> String {
        ToolSet::parse(tools, choice, Value::Null)
            .unwrap_err()
            .param
            .unwrap()
    }

    #[test]
    fn schema_validation_passes_and_fails() {
        let s = set(Value::Null);
        assert!(s
            .validate_call("get_weather", r#"{"city":"Paris","days":2}"#)
            .is_ok());
        assert!(s.validate_call("now", "{}").is_ok());
        let e = s.validate_call("get_weather", r#"{"days":0}"#).unwrap_err();
        let ToolCallError::Schema { problems, .. } = &e else {
            panic!("{e}")
        };
        assert!(
            problems.contains("city") && problems.contains("/days"),
            "{e}"
        );
        assert!(matches!(
            s.validate_call("get_weather", r#"{"city":"P","extra":1}"#),
            Err(ToolCallError::Schema { .. })
        ));
        assert!(s.validate_call("get_weather", r#"{"city":3}"#).is_err());
        assert_eq!(
            s.validate_call("get_weather", "[1]"),
            Err(ToolCallError::NotObject {
                name: "get_weather".into()
            })
        );
        assert!(matches!(
            s.validate_call("get_weather", "{nope"),
            Err(ToolCallError::NotJson { .. })
        ));
        let e = s.validate_call("launch", "{}").unwrap_err();
        assert!(matches!(e, ToolCallError::NotOffered { .. }));
        assert!(e.to_string().contains("not one of"), "{e}");
    }

    #[test]
    fn tool_choice_shapes_what_is_offered_and_required() {
        assert_eq!(set(json!("none")).offered().count(), 0);
        assert!(set(json!("none")).validate_call("now", "{}").is_err());
        let named = set(json!({"type": "function", "function": {"name": "now"}}));
        assert_eq!(
            named.offered().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["now"]
        );
        assert_eq!(
            named.validate_count(0),
            Err(ToolCallError::NamedNotCalled("now".into()))
        );
        assert!(set(json!("required")).validate_count(0).is_err());
        assert!(set(json!("auto")).validate_count(0).is_ok());
        let single = ToolSet::parse(weather(), Value::Null, json!(false))
            .unwrap()
            .unwrap();
        assert_eq!(single.validate_count(2), Err(ToolCallError::NotParallel(2)));
        assert!(single.validate_count(1).is_ok());
    }

    #[test]
    fn malformed_definitions_name_the_path() {
        let dup = json!([{"type": "function", "function": {"name": "a"}}, {"type": "function", "function": {"name": "a"}}]);
        assert_eq!(param_of(dup, Value::Null), "tools[1].function.name");
        let bad_schema =
            json!([{"type": "function", "function": {"name": "a", "parameters": "x"}}]);
        assert_eq!(
            param_of(bad_schema, Value::Null),
            "tools[0].function.parameters"
        );
        let not_object = json!([{"type": "function", "function": {"name": "a", "parameters": {"type": "array"}}}]);
        assert_eq!(
            param_of(not_object, Value::Null),
            "tools[0].function.parameters"
        );
        let invalid_schema = json!([{"type": "function", "function": {"name": "a", "parameters": {"type": "object", "properties": {"x": {"type": 5}}}}}]);
        assert_eq!(
            param_of(invalid_schema, Value::Null),
            "tools[0].function.parameters"
        );
        let bad_type = json!([{"type": "retrieval"}]);
        assert_eq!(param_of(bad_type, Value::Null), "tools[0].type");
        assert_eq!(
            param_of(
                weather(),
                json!({"type": "function", "function": {"name": "launch"}})
            ),
            "tool_choice.function.name"
        );
        assert_eq!(param_of(weather(), json!("sometimes")), "tool_choice");
        assert!(ToolSet::parse(json!([]), Value::Null, Value::Null)
            .unwrap()
            .is_none());
    }

    #[test]
    fn parameter_types_for_glm() {
        let s = set(Value::Null);
        assert_eq!(
            s.param_type("get_weather", "city").as_deref(),
            Some("string")
        );
        assert_eq!(
            s.param_type("get_weather", "days").as_deref(),
            Some("integer")
        );
        assert_eq!(s.param_type("get_weather", "nope"), None);
    }
}
