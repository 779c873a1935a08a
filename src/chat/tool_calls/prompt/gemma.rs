//! Gemma 4's format: no instructions, only tool declarations in its own notation;
//! `<|tool_call>call:F{K:<|"|>V<|"|>,N:42}<tool_call|>`; results kept in the model's turn.

use crate::chat::tool_calls::defs::ToolDef;
use serde_json::Value;

/// Gemma 4's quote token: strings in its declarations and calls sit between two of them.
pub(super) const GEMMA_QUOTE: &str = "<|\"|>";

/// One tool as Gemma 4's chat template declares it in the system turn:
/// `<|tool>declaration:NAME{description:…,parameters:{properties:{…},required:[…],type:…}}<tool|>`,
/// keys in sorted order, type names upper-case, only the schema keywords the template keeps.
pub(super) fn declaration(t: &ToolDef) -> String {
    let q = GEMMA_QUOTE;
    let mut s = format!(
        "<|tool>declaration:{}{{description:{q}{}{q}",
        t.name,
        t.description.as_deref().unwrap_or("")
    );
    if let Some(params) = t.parameters.as_object().filter(|p| !p.is_empty()) {
        s.push_str(",parameters:{");
        s.push_str(&schema_fields(params, false));
        s.push('}');
    }
    s.push_str("}<tool|>");
    s
}

/// The fields of one schema object in Gemma 4's declaration notation. `with_description`:
/// a property's own description comes first (a tool's sits outside its parameters).
fn schema_fields(schema: &serde_json::Map<String, Value>, with_description: bool) -> String {
    let q = GEMMA_QUOTE;
    let mut parts = Vec::new();
    let nonempty = |key: &str| schema.get(key).filter(|v| !is_empty_value(v));
    if with_description {
        if let Some(d) = nonempty("description").and_then(Value::as_str) {
            parts.push(format!("description:{q}{d}{q}"));
        }
    }
    if let Some(e) = nonempty("enum") {
        parts.push(format!("enum:{}", value(e, true)));
    }
    if let Some(items) = nonempty("items").and_then(Value::as_object) {
        parts.push(format!("items:{{{}}}", schema_fields(items, true)));
    }
    if schema.get("nullable").and_then(Value::as_bool) == Some(true) {
        parts.push("nullable:true".into());
    }
    if let Some(props) = nonempty("properties").and_then(Value::as_object) {
        let mut keys: Vec<&String> = props.keys().collect();
        keys.sort();
        let inner: Vec<String> = keys
            .into_iter()
            .map(|k| {
                let body = props[k].as_object().map(|p| schema_fields(p, true));
                format!("{k}:{{{}}}", body.unwrap_or_default())
            })
            .collect();
        parts.push(format!("properties:{{{}}}", inner.join(",")));
    }
    if let Some(r) = nonempty("required") {
        parts.push(format!("required:{}", value(r, true)));
    }
    if let Some(ty) = type_name(schema.get("type")) {
        parts.push(format!("type:{ty}"));
    }
    parts.join(",")
}

/// A schema's `type` as the template prints it: upper-case, quoted; a list of types as a list.
fn type_name(ty: Option<&Value>) -> Option<String> {
    let upper = |v: &Value| v.as_str().map(|t| Value::String(t.to_ascii_uppercase()));
    let ty = match ty? {
        Value::Array(list) => Value::Array(list.iter().filter_map(upper).collect()),
        one => upper(one)?,
    };
    Some(value(&ty, true))
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

pub(super) fn tools(offered: &[&ToolDef]) -> String {
    offered.iter().map(|t| declaration(t)).collect()
}

pub(super) fn call(name: &str, args: &Value) -> String {
    format!("<|tool_call>call:{name}{}<tool_call|>", value(args, false))
}

pub(super) fn result(name: &str, content: &str) -> String {
    let q = GEMMA_QUOTE;
    format!("<|tool_response>response:{name}{{value:{q}{content}{q}}}<tool_response|>")
}

/// A value in Gemma 4's notation: text between quote tokens, keys sorted and bare (quoted
/// in a declaration's lists and values), the rest as JSON.
fn value(v: &Value, quote_keys: bool) -> String {
    let q = GEMMA_QUOTE;
    match v {
        Value::String(s) => format!("{q}{s}{q}"),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    let v = value(&map[k], quote_keys);
                    if quote_keys {
                        format!("{q}{k}{q}:{v}")
                    } else {
                        format!("{k}:{v}")
                    }
                })
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(|i| value(i, quote_keys)).collect();
            format!("[{}]", inner.join(","))
        }
        other => other.to_string(),
    }
}
