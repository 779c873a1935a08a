//! Response side of a streamed chat answer proxied by Pingora: the client-facing header for
//! Venice's answer, and the body transformation (decrypting SSE relay, or upstream error
//! rewrite). Non-streaming answers never come here: `exchange::read_whole` reads them whole first.

use crate::api::DialectKind;
use crate::attestation::cache::Entry;
use crate::chat::answer::{StreamError, Transformer};
use crate::error::ApiError;
use crate::exchange::prepared::{AnswerPath, Prepared};
use crate::venice::status::{chat_error, E2EE_REJECTED};
use bytes::Bytes;
use pingora::http::ResponseHeader;
use std::sync::Arc;

/// Upstream error bodies are short JSON; anything past this is not kept.
const ERROR_BODY_LIMIT: usize = 16 * 1024;

pub(crate) enum Phase {
    /// Venice answered 200: Pingora proxies it, each piece decrypted as it passes.
    Decrypting(Box<Transformer>),
    /// Venice answered an error: collect its body, answer it in the client's dialect at the
    /// end.
    UpstreamError {
        status: u16,
        retry_after: Option<String>,
        body: Vec<u8>,
        /// The key encrypted to: dropped from the cache if Venice refused the encryption.
        attested: Arc<Entry>,
        dialect: DialectKind,
    },
    /// A stream was stopped after an SSE error event: drop whatever still arrives.
    Closed,
    /// A stop sequence ended the answer, which the client has whole: the upstream is
    /// cancelled when it next sends.
    Stopped,
}

/// Builds the client's response header from Venice's, and the phase for the body. Venice's
/// own headers (cookies, CDN headers) are not passed on.
pub(crate) fn begin(
    prepared: &mut Prepared,
    upstream: &ResponseHeader,
    downstream_h2: bool,
) -> pingora::Result<(ResponseHeader, Phase)> {
    let status = upstream.status.as_u16();
    let (client_status, content_type, phase) = if status == 200 {
        let t = Transformer::streaming(prepared.client_key.clone(), prepared.writer(), None)
            .with_format(match &mut prepared.path {
                AnswerPath::Proxied { format } => format.take(),
                _ => None,
            })
            .with_stops(prepared.stops.clone())
            .with_budget(prepared.hold());
        (200, "text/event-stream", Phase::Decrypting(Box::new(t)))
    } else {
        let retry_after = upstream
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mapped = chat_error(status, "", None).status;
        (
            mapped,
            "application/json",
            Phase::UpstreamError {
                status,
                retry_after,
                body: Vec::new(),
                attested: prepared.attested.clone(),
                dialect: prepared.dialect.kind(),
            },
        )
    };
    let mut header = ResponseHeader::build(client_status, Some(6))?;
    header.insert_header("content-type", content_type)?;
    header.insert_header("cache-control", "no-cache")?;
    if !downstream_h2 {
        // The body length changes: Pingora must re-frame it (chunked; an HTTP/2 client frames
        // it itself).
        header.insert_header("transfer-encoding", "chunked")?;
    }
    if let Phase::UpstreamError {
        retry_after: Some(ra),
        ..
    } = &phase
    {
        header.insert_header("retry-after", ra.as_str())?;
    }
    if status == 200 {
        for (name, value) in prepared.answer_headers(&prepared.attested) {
            header.insert_header(name, value)?;
        }
    }
    Ok((header, phase))
}

/// Transforms one upstream body piece in place. Returns whether the upstream should be
/// cancelled (a stop sequence ended the answer before it did).
pub(crate) fn body(
    phase: &mut Phase,
    body: &mut Option<Bytes>,
    end: bool,
    request_id: &str,
) -> bool {
    if matches!(phase, Phase::Stopped) {
        *body = Some(Bytes::new());
        return !end;
    }
    let mut out = crate::chat::answer::output_for(body.as_deref().unwrap_or_default());
    match phase {
        Phase::Decrypting(t) => {
            let mut result = match body.as_deref() {
                Some(input) => t.push(input, &mut out),
                None => Ok(()),
            };
            if result.is_ok() && end {
                result = t.finish(&mut out);
            }
            if let Err(e) = result {
                // The code only: the message may hold the model's words (a tool call's
                // arguments) or Venice's (an upstream error echoing the request).
                let err = ApiError::from(&e);
                log::warn!(request_id; "stream stopped: {}", err.code);
                if matches!(e, StreamError::ToolCall(_)) {
                    crate::metrics::METRICS
                        .tool_calls
                        .with_label_values(&["invalid"])
                        .inc();
                }
                out.extend_from_slice(&t.error_event(&err));
                *phase = Phase::Closed;
            } else if t.stopped() {
                *phase = Phase::Stopped;
            }
        }
        Phase::UpstreamError {
            status,
            retry_after,
            body: collected,
            attested,
            dialect,
        } => {
            if let Some(b) = body.as_deref() {
                let room = ERROR_BODY_LIMIT.saturating_sub(collected.len());
                collected.extend_from_slice(&b[..b.len().min(room)]);
            }
            if end {
                let message = crate::venice::error_message(collected);
                let err = chat_error(*status, &message, retry_after.clone());
                if err.code == E2EE_REJECTED {
                    // The enclave may have a new key: the next request attests again.
                    attested.invalidate();
                }
                out.extend_from_slice(&dialect.error_body(&err));
            }
        }
        Phase::Closed | Phase::Stopped => {}
    }
    // An empty piece, not None: None would end the response early.
    *body = Some(out.freeze());
    false
}

/// The error that cancels the upstream after a stop sequence (Pingora drops the upstream
/// connection; `fail_to_proxy` then ends the client's response cleanly).
pub(crate) const STOPPED: pingora::ErrorType = pingora::ErrorType::Custom("stop_sequence");

pub(crate) fn is_stopped(phase: Option<&Phase>) -> bool {
    matches!(phase, Some(Phase::Stopped))
}

/// The SSE error event for a failure Pingora reports after the stream began (drop, timeout).
pub(crate) fn late_failure_event(phase: &mut Phase, message: &str, timeout: bool) -> Option<Bytes> {
    match phase {
        Phase::Decrypting(t) => {
            let err = if timeout {
                ApiError::upstream(
                    504,
                    "upstream_timeout",
                    format!("Venice stopped sending: {message}"),
                )
            } else {
                ApiError::upstream(
                    502,
                    "upstream_stream_interrupted",
                    format!("the upstream stream broke off: {message}"),
                )
            };
            Some(t.error_event(&err))
        }
        _ => None,
    }
}

/// The OpenAI error for a Pingora failure before the response began.
pub(crate) fn proxy_failure(e: &pingora::Error, timeout: bool) -> ApiError {
    if timeout {
        ApiError::upstream(504, "upstream_timeout", "Venice did not answer in time")
    } else if let pingora::ErrorType::HTTPStatus(code) = e.etype() {
        ApiError::new(
            *code,
            "invalid_request_error",
            "http_error",
            "the request could not be processed",
        )
    } else if e.esource() == &pingora::ErrorSource::Upstream {
        ApiError::upstream(
            502,
            "upstream_unreachable",
            format!("could not reach Venice: {}", e.etype().as_str()),
        )
    } else {
        ApiError::internal("the proxy failed to handle the request")
    }
}

/// The id of a relayed answer, once its first chunk was read.
pub(crate) fn answer_id(phase: &Phase) -> Option<&str> {
    match phase {
        Phase::Decrypting(t) => Some(t.answer_id()).filter(|id| !id.is_empty()),
        _ => None,
    }
}

/// How many upstream chunks a relay decrypted.
pub(crate) fn decrypted_chunks(phase: &Phase) -> Option<u64> {
    match phase {
        Phase::Decrypting(t) => Some(t.chunks),
        _ => None,
    }
}
