//! Model output through the tool-call parser (every syntax), pushed in two pieces, and the
//! whole-answer path with validation.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use venice_e2ee_proxy::chat::tool_calls::defs::ToolSet;
use venice_e2ee_proxy::chat::tool_calls::emulate::{parse_answer, ToolStream};

static TOOLS: OnceLock<Arc<ToolSet>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let tools = TOOLS.get_or_init(|| {
        let defs = serde_json::json!([{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}}]);
        Arc::new(ToolSet::parse(defs, serde_json::Value::Null, serde_json::Value::Null).unwrap().unwrap())
    });
    let mid = (0..=text.len() / 2)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    let mut s = ToolStream::new(tools.clone());
    let _ = s.push(&text[..mid]);
    let _ = s.push_reasoning(&text[mid..]);
    let _ = s.push(&text[mid..]);
    let _ = s.finish();
    let _ = parse_answer(tools, text, &text[mid..]);
});
