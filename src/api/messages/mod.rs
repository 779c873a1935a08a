//! Anthropic's Messages API (`POST /v1/messages`), spoken at the edge like the Responses
//! API: a request is built into the internal request and takes the one chat path; the answer
//! is rendered back as a `message` or as Messages stream events, errors in Anthropic's shape.
//! Its own extra endpoint, `count_tokens`, lives here too.

pub(crate) mod count_tokens;
pub mod translate;
pub mod writer;

use super::{Context, Dialect, DialectKind};
use crate::chat::answer::Mode;
use crate::chat::answer_writer::AnswerWriter;
use crate::chat::request::ChatRequest;
use crate::error::ApiError;
use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::Arc;

/// Anthropic's Messages API: what a message echoes of its request.
pub(crate) struct Messages(Arc<Meta>);

impl Dialect for Messages {
    fn parse(raw: &[u8], _ctx: &Context<'_>) -> Result<(ChatRequest, Self), ApiError> {
        let (req, meta) = translate::translate(raw)?;
        Ok((req, Messages(Arc::new(meta))))
    }

    fn writer(&self, _model: &str, _mode: Mode) -> Box<dyn AnswerWriter> {
        Box::new(writer::MessagesWriter::new(self.0.clone()))
    }

    fn omitted_tools(&self) -> &[String] {
        &self.0.omitted_tools
    }

    fn kind(&self) -> DialectKind {
        DialectKind::Messages
    }

    fn error_body(e: &ApiError) -> Bytes {
        Bytes::from(serde_json::to_vec(&error_object(e)).expect("error JSON serializes"))
    }
}

/// What the answer echoes of its request.
#[derive(Debug, Default)]
pub struct Meta {
    /// The model as the client named it (before any alias).
    pub(crate) model: String,
    /// Server tools the request named that were not offered (they cannot run over E2EE).
    pub(crate) omitted_tools: Vec<String>,
    /// `thinking.display: "omitted"`: the client wants no thinking text.
    pub(crate) hide_thinking: bool,
}

pub(crate) fn new_id(prefix: &str) -> String {
    // Anthropic's ids are base62; hex is a subset clients accept.
    format!("{prefix}_01{:024x}", rand::random::<u128>() >> 32)
}

/// The Anthropic error type for a status, as Anthropic documents them.
fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        408 | 504 => "timeout_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

/// `{"type":"error","error":{"type","message"}}`. The message names the field at fault, as
/// Anthropic's do, and keeps the proxy's own code for operators.
pub(crate) fn error_object(e: &ApiError) -> Value {
    let mut message = match &e.param {
        Some(p) if !e.message.starts_with(p.as_str()) => format!("{p}: {}", e.message),
        _ => e.message.clone(),
    };
    if e.code != "invalid_request" {
        message.push_str(&format!(" ({})", e.code));
    }
    json!({"type": "error", "error": {"type": error_type(e.status), "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_in_anthropic_shape() {
        let e = ApiError::invalid(
            "messages.0.content.1.type",
            "image blocks are not supported",
        );
        let v = error_object(&e);
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(
            v["error"]["message"],
            "messages.0.content.1.type: image blocks are not supported"
        );
        let v = error_object(&ApiError::not_found("model_not_found", "no model"));
        assert_eq!(v["error"]["type"], "not_found_error");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("(model_not_found)"));
        assert_eq!(
            error_object(&ApiError::upstream(503, "x", "y"))["error"]["type"],
            "api_error"
        );
        assert!(new_id("msg").starts_with("msg_01"));
        assert_eq!(new_id("toolu").len(), "toolu_01".len() + 24);
    }
}
