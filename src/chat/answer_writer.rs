//! How an answer reaches the client: the answer pipeline (`chat::answer`) hands the client's
//! dialect writer what each decrypted chunk shows, or the whole answer when it was read
//! whole, and the writer renders its dialect's events and objects. Every dialect, chat
//! completions included, renders only here.

use super::answer::Answer;
use super::tool_calls::emulate::{Call, CallDelta};
use crate::error::ApiError;
use bytes::{Bytes, BytesMut};
use serde_json::Value;

/// What one upstream chunk shows the client once stop sequences, tool calls and the
/// structured output had their say. `None` is absent; an empty string stays one.
#[derive(Debug, Default, Clone, Copy)]
pub struct Shown<'a> {
    /// The answer's id and creation time (Venice's, or made up when it sent none).
    pub(crate) id: &'a str,
    pub(crate) created: i64,
    pub(crate) role: Option<&'a str>,
    pub(crate) content: Option<&'a str>,
    pub(crate) reasoning: Option<&'a str>,
    pub(crate) calls: &'a [CallDelta],
    /// The chat finish reason, and the stop sequence that ended the answer when named.
    pub(crate) finish: Option<&'a str>,
    pub(crate) stop_sequence: Option<&'a str>,
    /// Chat usage (`prompt_tokens`, `completion_tokens`, …).
    pub(crate) usage: Option<&'a Value>,
}

/// A validated answer read whole: its content (`None`: null, as when it only called tools),
/// reasoning and calls, with the rest of `answer` (id, finish, usage).
pub struct Judged<'a> {
    pub(crate) answer: &'a Answer,
    pub(crate) content: Option<&'a str>,
    pub(crate) calls: &'a [Call],
}

pub trait AnswerWriter: Send + Sync {
    /// One chunk of a stream.
    fn show(&mut self, out: &mut BytesMut, shown: &Shown<'_>);
    /// Ends a stream that completed.
    fn end(&mut self, out: &mut BytesMut);
    /// A whole answer: the one object a non-streaming client receives, or (`stream`) the
    /// whole stream of events.
    fn judged(&mut self, whole: &Judged<'_>, stream: bool) -> Bytes;
    /// Ends a stream that failed after it began.
    fn failed(&mut self, out: &mut BytesMut, e: &ApiError);
}

/// Dialects whose streams are items built up event by event (the Responses API, Messages):
/// the same calls render a stream and, at its end, the whole object.
pub trait EventWriter: Send + Sync {
    /// The stream's opening events, once.
    fn start(&mut self, out: &mut BytesMut);
    fn reasoning(&mut self, out: &mut BytesMut, delta: &str);
    fn text(&mut self, out: &mut BytesMut, delta: &str);
    /// A tool-call delta: the first of a call carries its `id` and `name`.
    fn call(&mut self, out: &mut BytesMut, d: &CallDelta);
    fn set_usage(&mut self, usage: &Value);
    fn set_finish(&mut self, reason: &str, stop_sequence: Option<&str>);
    /// Ends the answer: its closing events, and the whole answer object.
    fn complete(&mut self, out: &mut BytesMut) -> Value;
    fn failed(&mut self, out: &mut BytesMut, e: &ApiError);
}

impl<W: EventWriter> AnswerWriter for W {
    fn show(&mut self, out: &mut BytesMut, s: &Shown<'_>) {
        self.start(out);
        self.reasoning(out, s.reasoning.unwrap_or_default());
        self.text(out, s.content.unwrap_or_default());
        for c in s.calls {
            self.call(out, c);
        }
        if let Some(f) = s.finish {
            self.set_finish(f, s.stop_sequence);
        }
        if let Some(u) = s.usage {
            self.set_usage(u);
        }
    }

    fn end(&mut self, out: &mut BytesMut) {
        self.complete(out);
    }

    fn judged(&mut self, w: &Judged<'_>, stream: bool) -> Bytes {
        let mut events = BytesMut::new();
        self.reasoning(&mut events, &w.answer.reasoning);
        self.text(&mut events, w.content.unwrap_or_default());
        for (i, c) in w.calls.iter().enumerate() {
            let delta = CallDelta {
                index: i as u32,
                id: Some(c.id.clone()),
                name: Some(c.name.clone()),
                arguments: c.arguments.clone(),
            };
            self.call(&mut events, &delta);
        }
        self.set_finish(
            w.answer.finish_with(w.calls),
            w.answer.stop_sequence.as_deref(),
        );
        if let Some(u) = &w.answer.usage {
            self.set_usage(u);
        }
        let object = self.complete(&mut events);
        if stream {
            events.freeze()
        } else {
            Bytes::from(object.to_string())
        }
    }

    fn failed(&mut self, out: &mut BytesMut, e: &ApiError) {
        EventWriter::failed(self, out, e);
    }
}
