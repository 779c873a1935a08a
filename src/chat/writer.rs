//! How an answer reaches the client: the answer pipeline (`chat::answer`) hands the client's
//! dialect writer the answer's pieces as they are decrypted, or all at once when the answer
//! was read whole, and the writer renders its own events and object.

use super::tool_calls::emulate::CallDelta;
use crate::error::ApiError;
use bytes::BytesMut;
use serde_json::Value;

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
