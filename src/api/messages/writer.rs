//! An answer as the Messages API shows it: content blocks (`thinking`, `text`, `tool_use`)
//! built from the pieces of a chat answer as they arrive, the stream events for them
//! (`message_start`, `content_block_*`, `message_delta`, `message_stop`), and the final
//! `message`. Non-streaming answers use the same writer and keep only the message.

use super::{error_object, new_id, Meta};
use crate::api::write_named_event as event;
use crate::chat::answer_writer::EventWriter;
use crate::chat::tool_calls::emulate::CallDelta;
use crate::error::ApiError;
use bytes::BytesMut;
use serde_json::{json, Value};
use std::sync::Arc;

enum Open {
    Thinking(String),
    Text(String),
    ToolUse { arguments: String },
}

pub struct MessagesWriter {
    meta: Arc<Meta>,
    id: String,
    started: bool,
    /// Finished blocks; the open one is `open`, at index `blocks.len()`.
    blocks: Vec<Value>,
    open: Option<(Value, Open)>,
    usage: Option<Value>,
    finish: Option<String>,
    stop_sequence: Option<String>,
}

/// Chat usage → Messages usage (cached prompt tokens reported as cache reads).
fn usage(u: Option<&Value>) -> Value {
    let n = |p: &str| {
        u.and_then(|u| u.pointer(p))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let cached = n("/prompt_tokens_details/cached_tokens");
    json!({
        "input_tokens": n("/prompt_tokens").saturating_sub(cached),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": n("/completion_tokens"),
    })
}

impl MessagesWriter {
    pub fn new(meta: Arc<Meta>) -> Self {
        MessagesWriter {
            meta,
            id: new_id("msg"),
            started: false,
            blocks: Vec::new(),
            open: None,
            usage: None,
            finish: None,
            stop_sequence: None,
        }
    }

    fn stop_reason(&self) -> Option<&'static str> {
        Some(match self.finish.as_deref()? {
            "tool_calls" => "tool_use",
            "length" => "max_tokens",
            "content_filter" => "refusal",
            _ if self.stop_sequence.is_some() => "stop_sequence",
            _ => "end_turn",
        })
    }

    /// The `message` as it stands.
    fn message(&self, content: Value) -> Value {
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.meta.model,
            "content": content,
            "stop_reason": self.stop_reason(),
            "stop_sequence": self.stop_sequence,
            "usage": usage(self.usage.as_ref()),
        })
    }

    /// Opens a content block (closing the open one).
    fn open(&mut self, out: &mut BytesMut, block: Value, open: Open) {
        self.close(out);
        let index = self.blocks.len();
        event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        self.open = Some((block, open));
    }

    fn delta(&self, out: &mut BytesMut, delta: Value) {
        let index = self.blocks.len();
        event(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }

    fn close(&mut self, out: &mut BytesMut) {
        let Some((mut block, open)) = self.open.take() else {
            return;
        };
        match open {
            Open::Thinking(text) => block["thinking"] = json!(text),
            Open::Text(text) => block["text"] = json!(text),
            // The arguments were validated as a JSON object by the tool-call reader.
            Open::ToolUse { arguments } => {
                block["input"] = serde_json::from_str(&arguments).unwrap_or_else(|_| json!({}))
            }
        }
        let index = self.blocks.len();
        event(
            out,
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        );
        self.blocks.push(block);
    }
}

impl EventWriter for MessagesWriter {
    fn start(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        let m = self.message(json!([]));
        event(
            out,
            "message_start",
            &json!({"type": "message_start", "message": m}),
        );
        event(out, "ping", &json!({"type": "ping"}));
    }

    fn reasoning(&mut self, out: &mut BytesMut, delta: &str) {
        self.start(out);
        if delta.is_empty() || self.meta.hide_thinking {
            return;
        }
        if !matches!(self.open, Some((_, Open::Thinking(_)))) {
            let block = json!({"type": "thinking", "thinking": "", "signature": ""});
            self.open(out, block, Open::Thinking(String::new()));
        }
        if let Some((_, Open::Thinking(text))) = &mut self.open {
            text.push_str(delta);
        }
        self.delta(out, json!({"type": "thinking_delta", "thinking": delta}));
    }

    fn text(&mut self, out: &mut BytesMut, delta: &str) {
        self.start(out);
        if delta.is_empty() {
            return;
        }
        if !matches!(self.open, Some((_, Open::Text(_)))) {
            self.open(
                out,
                json!({"type": "text", "text": ""}),
                Open::Text(String::new()),
            );
        }
        if let Some((_, Open::Text(text))) = &mut self.open {
            text.push_str(delta);
        }
        self.delta(out, json!({"type": "text_delta", "text": delta}));
    }

    fn call(&mut self, out: &mut BytesMut, d: &CallDelta) {
        self.start(out);
        if let Some(name) = &d.name {
            // Anthropic's tool-use ids; the client sends them back with the result.
            let block =
                json!({"type": "tool_use", "id": new_id("toolu"), "name": name, "input": {}});
            self.open(
                out,
                block,
                Open::ToolUse {
                    arguments: String::new(),
                },
            );
        }
        if d.arguments.is_empty() {
            return;
        }
        if let Some((_, Open::ToolUse { arguments })) = &mut self.open {
            arguments.push_str(&d.arguments);
            self.delta(
                out,
                json!({"type": "input_json_delta", "partial_json": d.arguments}),
            );
        }
    }

    fn set_usage(&mut self, u: &Value) {
        self.usage = Some(u.clone());
    }

    fn set_finish(&mut self, reason: &str, stop_sequence: Option<&str>) {
        self.finish = Some(reason.to_string());
        self.stop_sequence = stop_sequence
            .filter(|_| reason == "stop")
            .map(str::to_string);
    }

    fn complete(&mut self, out: &mut BytesMut) -> Value {
        self.start(out);
        self.close(out);
        if self.finish.is_none() {
            self.finish = Some("stop".into());
        }
        event(
            out,
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": self.stop_reason(), "stop_sequence": self.stop_sequence},
                "usage": usage(self.usage.as_ref())}),
        );
        event(out, "message_stop", &json!({"type": "message_stop"}));
        let blocks = std::mem::take(&mut self.blocks);
        self.message(Value::Array(blocks))
    }

    fn failed(&mut self, out: &mut BytesMut, e: &ApiError) {
        event(out, "error", &error_object(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: Option<&str>, name: Option<&str>, args: &str) -> CallDelta {
        CallDelta {
            index: 0,
            id: id.map(Into::into),
            name: name.map(Into::into),
            arguments: args.into(),
        }
    }

    #[test]
    fn events_and_message_in_the_documented_shape() {
        let meta = Meta {
            model: "claude-x".into(),
            ..Meta::default()
        };
        let mut w = MessagesWriter::new(Arc::new(meta));
        let mut out = BytesMut::new();
        w.reasoning(&mut out, "think");
        w.text(&mut out, "Hel");
        w.text(&mut out, "lo");
        w.call(&mut out, &call(Some("call_1"), Some("Write"), "{\"a\":"));
        w.call(&mut out, &call(None, None, "1}"));
        w.set_usage(
            &json!({"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
            "prompt_tokens_details": {"cached_tokens": 6}}),
        );
        w.set_finish("tool_calls", None);
        let m = w.complete(&mut out);
        let evs = crate::api::named_events(&out);
        let kinds: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        assert_eq!(evs[0]["message"]["model"], "claude-x");
        assert_eq!(evs[3]["delta"]["type"], "thinking_delta");
        assert_eq!(evs[6]["index"], 1);
        assert_eq!(evs[10]["delta"]["partial_json"], "{\"a\":");
        assert_eq!(evs[13]["delta"]["stop_reason"], "tool_use");
        assert_eq!(evs[13]["usage"]["output_tokens"], 4);
        assert_eq!(m["content"][0]["thinking"], "think");
        assert_eq!(m["content"][1], json!({"type": "text", "text": "Hello"}));
        let tool = &m["content"][2];
        assert_eq!(
            (tool["name"].as_str(), &tool["input"]),
            (Some("Write"), &json!({"a": 1}))
        );
        assert!(tool["id"].as_str().unwrap().starts_with("toolu_"));
        assert_eq!(evs[9]["content_block"]["id"], tool["id"]);
        assert_eq!(m["usage"]["input_tokens"], 4);
        assert_eq!(m["usage"]["cache_read_input_tokens"], 6);
        assert_eq!(m["stop_reason"], "tool_use");
    }

    #[test]
    fn stop_reasons_hidden_thinking_and_failure() {
        let finish = |reason: &str, stop: Option<&str>| {
            let mut w = MessagesWriter::new(Arc::new(Meta::default()));
            w.text(&mut BytesMut::new(), "x");
            w.set_finish(reason, stop);
            w.complete(&mut BytesMut::new())
        };
        assert_eq!(finish("stop", None)["stop_reason"], "end_turn");
        assert_eq!(finish("length", None)["stop_reason"], "max_tokens");
        let m = finish("stop", Some("END"));
        assert_eq!(
            (m["stop_reason"].as_str(), m["stop_sequence"].as_str()),
            (Some("stop_sequence"), Some("END"))
        );
        let meta = Meta {
            hide_thinking: true,
            ..Meta::default()
        };
        let mut w = MessagesWriter::new(Arc::new(meta));
        let mut out = BytesMut::new();
        w.reasoning(&mut out, "secret plan");
        w.text(&mut out, "answer");
        let m = w.complete(&mut out);
        assert_eq!(m["content"], json!([{"type": "text", "text": "answer"}]));
        assert!(!std::str::from_utf8(&out).unwrap().contains("secret plan"));
        let mut out = BytesMut::new();
        w.failed(
            &mut out,
            &ApiError::upstream(502, "e2ee_decryption_failed", "bad"),
        );
        let evs = crate::api::named_events(&out);
        assert_eq!(evs[0]["type"], "error");
        assert_eq!(evs[0]["error"]["type"], "api_error");
    }
}
