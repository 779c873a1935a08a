//! Arguments written as text (GLM's `<arg_value>`, Qwen's `<parameter=…>`) typed by the tool's
//! JSON Schema: strings stay verbatim; integers, numbers, booleans, null, objects and arrays
//! are read from the text. What does not read as its declared type stays a string, so schema
//! validation names the mismatch instead of the parser guessing.

use super::ParamTypes;
use serde_json::Value;

/// `raw` as the value of `param` of `tool`.
pub(crate) fn typed(types: &dyn ParamTypes, tool: &str, param: &str, raw: &str) -> Value {
    let text = raw.trim();
    let declared = types.param_type(tool, param);
    let read = match declared.as_deref() {
        Some("string") => return Value::String(raw.to_string()),
        Some("boolean") => match text.to_ascii_lowercase().as_str() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        Some("null") => matches!(text, "null" | "None" | "").then_some(Value::Null),
        Some("integer") => serde_json::from_str::<Value>(text)
            .ok()
            .filter(|v| v.is_i64() || v.is_u64())
            .or_else(|| {
                // `3.0` is the integer 3 in JSON Schema.
                let f = text.parse::<f64>().ok().filter(|f| f.fract() == 0.0)?;
                serde_json::to_value(f as i64).ok()
            }),
        Some("number") => serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_number),
        Some("object") => serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_object),
        Some("array") => serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_array),
        // Undeclared: JSON if it reads as JSON, else text.
        _ => serde_json::from_str(text).ok(),
    };
    read.unwrap_or_else(|| Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct One(&'static str);
    impl ParamTypes for One {
        fn param_type(&self, _: &str, _: &str) -> Option<String> {
            (!self.0.is_empty()).then(|| self.0.to_string())
        }
    }

    #[test]
    fn every_declared_type() {
        let t = |ty, raw| typed(&One(ty), "f", "p", raw);
        assert_eq!(t("string", " 007 "), json!(" 007 "));
        assert_eq!(t("integer", " 42\n"), json!(42));
        assert_eq!(t("integer", "3.0"), json!(3));
        assert_eq!(t("integer", "3.5"), json!("3.5"));
        assert_eq!(t("number", "2.5e3"), json!(2500.0));
        assert_eq!(t("number", "many"), json!("many"));
        assert_eq!(t("boolean", "True"), json!(true));
        assert_eq!(t("boolean", "false "), json!(false));
        assert_eq!(t("boolean", "yes"), json!("yes"));
        assert_eq!(t("null", "None"), Value::Null);
        assert_eq!(t("object", "{\"a\": [1]}"), json!({"a": [1]}));
        assert_eq!(t("object", "[1]"), json!("[1]"));
        assert_eq!(t("array", "[1, \"x\"]"), json!([1, "x"]));
        assert_eq!(t("", "17"), json!(17));
        assert_eq!(t("", "Paris"), json!("Paris"));
    }
}
