//! Answers in an API other than chat completions (the Responses API, Anthropic's Messages):
//! the chat path hands the dialect's writer the answer's pieces as they are decrypted, or all
//! at once when the answer was read whole, and the writer renders its own events and object.

use crate::openai::error::ApiError;
use crate::tools::emulate::CallDelta;
use bytes::BytesMut;
use serde_json::Value;

/// Which API a client speaks; all take the one chat path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Chat,
    Responses,
    /// Anthropic's Messages API: its errors have their own shape too.
    Messages,
}

pub trait AnswerWriter: Send + Sync {
    /// The stream's opening events, once.
    fn start(&mut self, out: &mut BytesMut);
    fn reasoning(&mut self, out: &mut BytesMut, delta: &str);
    fn text(&mut self, out: &mut BytesMut, delta: &str);
    /// A tool-call delta: the first of a call carries its `id` and `name`.
    fn call(&mut self, out: &mut BytesMut, d: &CallDelta);
    /// Chat usage (`prompt_tokens`, `completion_tokens`, …).
    fn set_usage(&mut self, usage: &Value);
    /// The chat finish reason, and the stop sequence that ended the answer when upstream
    /// named one.
    fn set_finish(&mut self, reason: &str, stop_sequence: Option<&str>);
    /// Ends the answer: its closing events, and the whole answer object (a non-streaming
    /// client's body).
    fn complete(&mut self, out: &mut BytesMut) -> Value;
    /// Ends a stream that failed after it began.
    fn failed(&mut self, out: &mut BytesMut, e: &ApiError);
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
