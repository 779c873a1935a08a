//! Streams with tools, relayed here rather than proxied by Pingora: text streams as it comes,
//! each tool call once it is whole and valid. An invalid call (a tool not offered, arguments
//! off the schema, an unreadable block) is corrected inside the stream, the client having
//! seen nothing of it: the exchange with Venice starts again with the model's words and a
//! correction, and the new answer continues the same stream (Pingora's proxying cannot send
//! a request again once its response has begun). Once the retries are spent, the call is
//! shown as the model wrote it (`tools.invalid_calls: pass`, what a server without
//! validation does, so the agent's own tool layer reports it) or the stream ends with an
//! error event (`error`).

use super::chat_response::attestation_headers;
use crate::attestation::cache::Entry;
use crate::chat::answer::{StreamError, Transformer};
use crate::chat::tool_calls::emulate::{OnInvalid, ToolStream};
use crate::chat::tool_calls::prompt::correction;
use crate::config::InvalidCalls;
use crate::error::ApiError;
use crate::exchange::prepared::{AnswerPath, Prepared};
use crate::exchange::{attempt_body, next_piece, open, reattested, Opened};
use crate::metrics::METRICS;
use crate::state::AppState;
use crate::venice::status::E2EE_REJECTED;
use bytes::{Bytes, BytesMut};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use std::sync::Arc;
use std::time::Instant;

/// What a relayed answer leaves for the access log.
pub(crate) struct Relayed {
    /// When Venice's first answer began.
    pub(crate) upstream_began: Instant,
    pub(crate) chunks: u64,
    /// The key encrypted to (a fresh one if the enclave's rotated before the answer began).
    pub(crate) attested: Arc<Entry>,
}

/// Relays the answer to `prepared`. `Err` only while nothing was written: the caller answers
/// with the error. After the header, failures end the stream with one error event.
pub(crate) async fn run(
    state: &AppState,
    session: &mut Session,
    prepared: &Prepared,
) -> Result<Relayed, ApiError> {
    let AnswerPath::Relayed {
        request: req,
        format,
    } = &prepared.path
    else {
        return Err(ApiError::internal("a relayed answer without its request"));
    };
    let set = req
        .tools
        .clone()
        .expect("relayed answers have tools to hold");
    let tools = &state.config.tools;
    let on_invalid = |attempt: u32| {
        if attempt < tools.max_retries || tools.invalid_calls == InvalidCalls::Error {
            OnInvalid::Reject
        } else {
            OnInvalid::Pass
        }
    };
    let mut t = Transformer::streaming(
        prepared.client_key.clone(),
        prepared.writer(),
        Some(ToolStream::new(set).with_on_invalid(on_invalid(0))),
    )
    .with_format(format.clone())
    .with_stops(prepared.stops.clone())
    .with_budget(prepared.hold());
    let mut attested = prepared.attested.clone();
    let mut extra: Vec<(&'static str, String)> = Vec::new();
    let mut attempt = 0;
    let mut began: Option<Instant> = None;
    let mut out = BytesMut::new();
    loop {
        let body = attempt_body(state, prepared, req, &attested, attempt, &extra).await?;
        let opened = match open(state, prepared, &attested, body).await {
            Ok(o) => o,
            Err(e) if began.is_none() && e.code == E2EE_REJECTED => {
                match reattested(state, prepared, &attested).await? {
                    Some(fresh) => {
                        attested = fresh;
                        continue;
                    }
                    None => return Err(e),
                }
            }
            Err(e) if began.is_none() => return Err(e),
            Err(e) => {
                end_with_error(session, &mut t, &e).await;
                return Ok(relayed(began, &t, attested));
            }
        };
        let Opened {
            mut response,
            mut tap,
            began: opened_at,
        } = opened;
        if began.is_none() {
            began = Some(opened_at);
            write_header(session, prepared, &attested)
                .await
                .map_err(|_| ApiError::invalid("body", "client went away"))?;
        }
        // One attempt: read until the answer ends, a call must be corrected, or it fails.
        let corrected = loop {
            let piece = match next_piece(state, &mut response).await {
                Ok(p) => p,
                Err(e) => {
                    end_with_error(session, &mut t, &e).await;
                    return Ok(relayed(began, &t, attested));
                }
            };
            out.clear();
            let result = match &piece {
                Some(bytes) => {
                    if let Some(tap) = tap.as_mut() {
                        tap.update(bytes);
                    }
                    t.push(bytes, &mut out)
                }
                None => t.finish(&mut out),
            };
            let fault = match result {
                Ok(()) => None,
                Err(StreamError::ToolCall(e)) if on_invalid(attempt) == OnInvalid::Reject => {
                    METRICS.tool_calls.with_label_values(&["invalid"]).inc();
                    Some(e)
                }
                Err(e) => {
                    write(session, std::mem::take(&mut out).freeze()).await;
                    end_with_error(session, &mut t, &ApiError::from(&e)).await;
                    return Ok(relayed(began, &t, attested));
                }
            };
            // What came before a call to correct is the client's (text the model wrote).
            if !out.is_empty() && !write(session, std::mem::take(&mut out).freeze()).await {
                return Ok(relayed(began, &t, attested));
            }
            match fault {
                Some(e) if attempt < tools.max_retries => break e,
                Some(e) => {
                    let err = ApiError::from(&StreamError::ToolCall(e));
                    end_with_error(session, &mut t, &err).await;
                    return Ok(relayed(began, &t, attested));
                }
                None if t.stopped() => {
                    // A stop sequence ended the answer: dropping the response cancels the rest.
                    finish(session).await;
                    return Ok(relayed(began, &t, attested));
                }
                None if piece.is_none() => {
                    finish(session).await;
                    if let Some(mut tap) = tap {
                        tap.complete();
                        state.receipts.check_later(
                            tap,
                            prepared.model.clone(),
                            Some(t.answer_id().to_string()),
                        );
                    }
                    return Ok(relayed(began, &t, attested));
                }
                None => {}
            }
        };
        // Correct it inside the stream: the model's words so far, then what was wrong.
        let reason = corrected.to_string();
        log::info!(
            request_id = prepared.request_id.as_str();
            "model {}: tool_call_invalid in a stream, correcting ({}/{})",
            prepared.model,
            attempt + 1,
            tools.max_retries
        );
        METRICS.tool_retries.inc();
        extra.push(("assistant", t.said().to_string()));
        extra.push(("user", correction(&reason)));
        attempt += 1;
        t.restart(on_invalid(attempt));
    }
}

fn relayed(began: Option<Instant>, t: &Transformer, attested: Arc<Entry>) -> Relayed {
    Relayed {
        upstream_began: began.unwrap_or_else(Instant::now),
        chunks: t.chunks,
        attested,
    }
}

/// The stream's header: SSE, and which attested key serves it.
async fn write_header(
    session: &mut Session,
    prepared: &Prepared,
    attested: &Arc<Entry>,
) -> pingora::Result<()> {
    let mut header = ResponseHeader::build(200, Some(9))?;
    super::respond::echo_request_id(session, &mut header)?;
    header.insert_header("content-type", "text/event-stream")?;
    header.insert_header("cache-control", "no-cache")?;
    if !session.as_downstream().is_http2() {
        header.insert_header("transfer-encoding", "chunked")?;
    }
    for (name, value) in attestation_headers(prepared, attested) {
        header.insert_header(name, value)?;
    }
    session.write_response_header(Box::new(header), false).await
}

/// Writes a piece of the stream; `false` when the client is gone.
async fn write(session: &mut Session, bytes: Bytes) -> bool {
    session
        .write_response_body(Some(bytes), false)
        .await
        .is_ok()
}

async fn finish(session: &mut Session) {
    let _ = session.write_response_body(Some(Bytes::new()), true).await;
}

/// Ends the stream with one error event (the dialect's), then the body.
async fn end_with_error(session: &mut Session, t: &mut Transformer, err: &ApiError) {
    let request_id = super::request_id::get(session);
    log::warn!(request_id; "relayed stream stopped: {}", err.code);
    let event = t.error_event(err);
    if write(session, event).await {
        finish(session).await;
    }
}
