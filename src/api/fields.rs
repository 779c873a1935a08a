//! Reading a client's JSON fields into the internal request's typed values, as every front
//! door does: a wrong type is a 400 naming the field; ranges are checked later, once, on the
//! internal request (`ChatRequest::validate`).

use crate::chat::generation::{Effort, Reasoning};
use crate::error::ApiError;
use serde_json::{Map, Value};

/// A request body as a JSON object, or the 400 saying why it is not one.
pub(crate) fn body_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("body", format!("request body is not valid JSON: {e}")))?;
    match value {
        Value::Object(fields) => Ok(fields),
        _ => Err(ApiError::invalid(
            "body",
            "request body must be a JSON object",
        )),
    }
}

fn invalid_value(name: &str) -> ApiError {
    ApiError::invalid(name, format!("`{name}` has an invalid value"))
}

/// `model`: a non-empty string.
pub(crate) fn model(name: &str, v: Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) if !s.is_empty() => Ok(s),
        _ => Err(ApiError::invalid(
            name,
            format!("`{name}` must be a non-empty string"),
        )),
    }
}

/// A string, or nothing for null.
pub(crate) fn string(name: &str, v: Value) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(ApiError::invalid(
            name,
            format!("`{name}` must be a string"),
        )),
    }
}

/// A number, or nothing for null.
pub(crate) fn number(name: &str, v: &Value) -> Result<Option<f64>, ApiError> {
    match v {
        Value::Null => Ok(None),
        v => v.as_f64().map(Some).ok_or_else(|| invalid_value(name)),
    }
}

/// A whole number of at least 0, or nothing for null.
pub(crate) fn count(name: &str, v: &Value) -> Result<Option<u64>, ApiError> {
    match v {
        Value::Null => Ok(None),
        v => v.as_u64().map(Some).ok_or_else(|| invalid_value(name)),
    }
}

/// A boolean, or nothing for null.
pub(crate) fn flag(name: &str, v: &Value) -> Result<Option<bool>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        _ => Err(ApiError::invalid(
            name,
            format!("`{name}` must be a boolean"),
        )),
    }
}

/// A reasoning effort by OpenAI's names, or nothing for null.
pub(crate) fn effort(name: &str, v: &Value) -> Result<Option<Effort>, ApiError> {
    match v {
        Value::Null => Ok(None),
        v => v
            .as_str()
            .and_then(Effort::parse)
            .map(Some)
            .ok_or_else(|| invalid_value(name)),
    }
}

/// The reasoning controls Venice takes, known fields with known values; others (`summary`,
/// …) are dropped.
pub(crate) fn reasoning(name: &str, v: &Value) -> Result<Option<Reasoning>, ApiError> {
    let given = match v {
        Value::Null => return Ok(None),
        Value::Object(given) => given,
        _ => {
            return Err(ApiError::invalid(
                name,
                format!("`{name}` must be an object"),
            ))
        }
    };
    let mut kept = Reasoning::default();
    for (key, v) in given {
        let at = format!("{name}.{key}");
        match key.as_str() {
            "effort" => kept.effort = effort(&at, v)?,
            "max_tokens" => kept.max_tokens = count(&at, v)?,
            "enabled" => kept.enabled = flag(&at, v).map_err(|_| invalid_value(&at))?,
            "exclude" => kept.exclude = flag(&at, v).map_err(|_| invalid_value(&at))?,
            _ => log::debug!("not forwarding reasoning field {key:?}"),
        }
    }
    Ok(Some(kept))
}

/// `metadata.session_id`, the agent session a client may name in its metadata.
pub(crate) fn session_id(metadata: &Value) -> Result<Option<String>, ApiError> {
    match metadata.get("session_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => Ok(Some(id.clone())),
        Some(_) => Err(ApiError::invalid(
            "metadata.session_id",
            "`metadata.session_id` must be a string",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wrong_types_name_the_field() {
        assert_eq!(number("temperature", &json!(0.5)).unwrap(), Some(0.5));
        assert_eq!(number("temperature", &Value::Null).unwrap(), None);
        for e in [
            number("temperature", &json!("hot")).unwrap_err(),
            count("max_tokens", &json!(-1)).unwrap_err(),
            count("max_tokens", &json!(1.5)).unwrap_err(),
            flag("stream", &json!("yes")).unwrap_err(),
            effort("reasoning_effort", &json!("extreme")).unwrap_err(),
            model("model", json!("")).unwrap_err(),
            reasoning("reasoning", &json!("high")).unwrap_err(),
        ] {
            let param = e.param.clone().unwrap();
            assert!(e.message.contains(&format!("`{param}`")), "{e:?}");
        }
        let r = reasoning(
            "reasoning",
            &json!({"effort": "high", "summary": "words", "enabled": true}),
        )
        .unwrap()
        .unwrap();
        assert_eq!((r.effort, r.enabled), (Some(Effort::High), Some(true)));
        assert_eq!(
            reasoning("reasoning", &json!({"effort": "secret"}))
                .unwrap_err()
                .param
                .as_deref(),
            Some("reasoning.effort")
        );
        assert_eq!(
            session_id(&json!({"session_id": "s"})).unwrap().as_deref(),
            Some("s")
        );
        assert!(session_id(&json!({"session_id": 5})).is_err());
    }
}
