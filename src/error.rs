//! The one error a client is answered with: an HTTP status and OpenAI's
//! `{"error":{"message","type","code","param"}}`, or the same object as one SSE event once a
//! stream has started (other dialects reshape it: `api::Dialect::error_body`). Each module's
//! typed error converts into it where it is defined (`From`), so this module imports none.

use bytes::Bytes;
use serde_json::json;
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub(crate) status: u16,
    pub(crate) message: String,
    pub(crate) kind: &'static str,
    pub(crate) code: Cow<'static, str>,
    pub(crate) param: Option<String>,
    pub(crate) retry_after: Option<String>,
}

impl ApiError {
    pub(crate) fn new(
        status: u16,
        kind: &'static str,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            message: message.into(),
            kind,
            code: code.into(),
            param: None,
            retry_after: None,
        }
    }

    /// 400 for a client mistake in `param`.
    pub(crate) fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = Self::new(400, "invalid_request_error", "invalid_request", message);
        e.param = Some(param.into());
        e
    }

    /// 400 for a field that is valid OpenAI but cannot be honoured over E2EE.
    pub(crate) fn unsupported(param: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = Self::invalid(param, message);
        e.code = Cow::Borrowed("unsupported_parameter");
        e
    }

    pub(crate) fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(404, "invalid_request_error", code, message)
    }

    pub(crate) fn upstream(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self::new(status, "upstream_error", code, message)
    }

    /// 404 for a model Venice does not offer over E2EE (or not at all).
    pub(crate) fn model_not_found(id: &str) -> Self {
        let mut e = Self::not_found(
            "model_not_found",
            format!("The model `{id}` does not exist or cannot be used over end-to-end encryption"),
        );
        e.param = Some("model".into());
        e
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "server_error", "internal_error", message)
    }

    fn object(&self) -> serde_json::Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "code": self.code,
            "param": self.param,
        }})
    }

    pub(crate) fn body(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(&self.object()).expect("error JSON serializes"))
    }

    /// The error as one SSE event; the stream is closed after it.
    pub(crate) fn sse_event(&self) -> Bytes {
        let mut out = b"data: ".to_vec();
        serde_json::to_writer(&mut out, &self.object()).expect("error JSON serializes");
        out.extend_from_slice(b"\n\n");
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let e = ApiError::invalid("messages[0].role", "bad role");
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["error"]["param"], "messages[0].role");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], "invalid_request");
        let ev = e.sse_event();
        assert!(ev.starts_with(b"data: {\"error\""));
        assert!(ev.ends_with(b"\n\n"));
    }
}
