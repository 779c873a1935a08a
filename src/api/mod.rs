//! The front doors: one module per dialect (chat completions, the Responses API, Anthropic's
//! Messages API). Each parses its requests into the one internal `chat::request::ChatRequest`
//! and renders answers through its `chat::writer::AnswerWriter`; errors take its shape.

pub mod chat;
pub mod messages;
pub mod responses;

use crate::error::ApiError;
use bytes::{Bytes, BytesMut};
use serde_json::Value;

/// Which API a client speaks; all take the one chat path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Chat,
    Responses,
    /// Anthropic's Messages API: its errors have their own shape too.
    Messages,
}

impl Dialect {
    /// An error's body in this dialect.
    pub(crate) fn error_body(self, e: &ApiError) -> Bytes {
        match self {
            Dialect::Messages => Bytes::from(
                serde_json::to_vec(&messages::error_object(e)).expect("error JSON serializes"),
            ),
            Dialect::Chat | Dialect::Responses => e.body(),
        }
    }
}

/// One SSE event named `kind`, as both dialects frame theirs. The JSON is serialized
/// straight into the output.
pub(crate) fn write_named_event(out: &mut BytesMut, kind: &str, body: &Value) {
    use bytes::BufMut;
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    serde_json::to_writer(out.writer(), body).expect("JSON serializes");
    out.extend_from_slice(b"\n\n");
}

/// `event: …` / `data: …` pairs as the data objects, checking each event's name is its
/// data's `type` (both dialects name their events so).
#[cfg(test)]
pub(crate) fn named_events(out: &[u8]) -> Vec<Value> {
    std::str::from_utf8(out)
        .unwrap()
        .split("\n\n")
        .filter_map(|e| e.split_once("\ndata: "))
        .map(|(head, data)| {
            let v: Value = serde_json::from_str(data).unwrap();
            assert_eq!(head, format!("event: {}", v["type"].as_str().unwrap()));
            v
        })
        .collect()
}
