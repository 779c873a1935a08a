//! Answers the proxy sees whole before replying: every non-streaming answer (so a failure
//! at any point is still a JSON error with the right status, never a cut connection), and
//! streams whose tool calls or structured output are validated first
//! (`tools.stream_validation: buffer`). The exchange with Venice runs here, so an invalid
//! answer can be retried with a correction prompt before the client sees anything;
//! Pingora's proxying, the one upstream path for streams, cannot re-send once its response
//! has begun.

use super::chat_request::{AnswerPath, Prepared};
use crate::attestation::cache::Entry;
use crate::attestation::receipt_checks::Tap;
use crate::chat::answer::{Answer, Mode, StreamError, Transformer};
use crate::chat::request::ChatRequest;
use crate::chat::sealed::encrypt;
use crate::chat::tool_calls::emulate::{parse_answer_as_written, Call, Parsed};
use crate::chat::whole::{judge, TOOL_CALL_INVALID};
use crate::chat::writer::Whole;
use crate::config::InvalidCalls;
use crate::error::ApiError;
use crate::metrics::METRICS;
use crate::state::AppState;
use crate::venice::client::UpstreamError;
use crate::venice::status::{chat_error, E2EE_REJECTED};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;

/// The reply: body and content type.
pub(crate) struct Reply {
    pub(crate) body: Bytes,
    pub(crate) content_type: &'static str,
    /// The attested key the answer was encrypted for (a fresh one if the enclave's rotated).
    pub(crate) attested: Arc<Entry>,
    /// When Venice's answer began (its response headers), for time-to-first-byte.
    pub(crate) upstream_began: std::time::Instant,
}

pub(crate) async fn run(state: &AppState, prepared: &Prepared) -> Result<Reply, ApiError> {
    let AnswerPath::Whole { request: req } = &prepared.path else {
        return Err(ApiError::internal(
            "an answer read whole without its request",
        ));
    };
    let tools = req.tools.clone().filter(|t| t.offered().next().is_some());
    let mut extra: Vec<(&'static str, String)> = Vec::new();
    let max_retries = state.config.tools.max_retries;
    let mut attempt = 0;
    let mut attested = prepared.attested.clone();
    loop {
        let body = attempt_body(state, prepared, req, &attested, attempt, &extra).await?;
        let (mut answer, upstream_began) = match exchange(state, prepared, &attested, body).await {
            Ok(exchanged) => exchanged,
            Err(e) if e.code == E2EE_REJECTED => {
                match reattested(state, prepared, &attested).await? {
                    Some(fresh) => {
                        attested = fresh;
                        continue;
                    }
                    None => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        let judged = judge(req, tools.as_ref(), &answer);
        if tools.is_some() {
            let outcome = if judged.is_ok() { "valid" } else { "invalid" };
            METRICS.tool_calls.with_label_values(&[outcome]).inc();
        }
        match judged {
            Ok(parsed) => {
                answer.reasoning = parsed.reasoning;
                let (body, content_type) =
                    reply(prepared, &answer, parsed.content.as_deref(), &parsed.calls);
                return Ok(Reply {
                    body,
                    content_type,
                    attested,
                    upstream_began,
                });
            }
            Err(fault) if attempt < max_retries => {
                log::info!(
                    "model {}: {}, retrying ({}/{max_retries})",
                    prepared.model,
                    fault.code,
                    attempt + 1
                );
                METRICS.tool_retries.inc();
                extra.push(("assistant", answer.content));
                extra.push(("user", fault.correction));
                attempt += 1;
            }
            Err(fault)
                if fault.code == TOOL_CALL_INVALID
                    && state.config.tools.invalid_calls != InvalidCalls::Error =>
            {
                let parsed = match (state.config.tools.invalid_calls, &tools) {
                    // What a server without validation answers: the calls as written.
                    (InvalidCalls::Pass, Some(set)) => {
                        parse_answer_as_written(set, &answer.content, &answer.reasoning)
                    }
                    _ => Parsed {
                        content: Some(answer.content.clone()),
                        reasoning: answer.reasoning.clone(),
                        calls: Vec::new(),
                    },
                };
                let (body, content_type) =
                    reply(prepared, &answer, parsed.content.as_deref(), &parsed.calls);
                return Ok(Reply {
                    body,
                    content_type,
                    attested,
                    upstream_began,
                });
            }
            Err(fault) => {
                let what = if fault.code == TOOL_CALL_INVALID {
                    "no valid tool call"
                } else {
                    "no valid structured output"
                };
                return Err(ApiError::upstream(
                    502,
                    fault.code,
                    format!(
                        "the model produced {what} after {} attempts: {}",
                        attempt + 1,
                        fault.reason
                    ),
                ));
            }
        }
    }
}

/// The encrypted body of one attempt: the prepared one, unless this is a retry (with the
/// correction turns in `extra`) or the key changed. Retries are rare: the request is copied
/// for the encryption task.
pub(crate) async fn attempt_body(
    state: &AppState,
    prepared: &Prepared,
    req: &ChatRequest,
    attested: &Arc<Entry>,
    attempt: u32,
    extra: &[(&'static str, String)],
) -> Result<Bytes, ApiError> {
    if attempt == 0 && Arc::ptr_eq(attested, &prepared.attested) {
        return Ok(prepared.body.clone());
    }
    let key = &attested.key.recipient;
    let (_, body) = encrypt(
        &state.sealer,
        req.clone(),
        key,
        prepared.scope,
        extra.to_vec(),
    )
    .await?;
    Ok(body)
}

/// After Venice refused our encryption: the enclave may have a new key. Attests again and
/// gives the fresh entry only if the key really changed and this request has not moved to a
/// fresh key already (so a request is re-sent once at most).
pub(crate) async fn reattested(
    state: &AppState,
    prepared: &Prepared,
    attested: &Arc<Entry>,
) -> Result<Option<Arc<Entry>>, ApiError> {
    attested.invalidate();
    let fresh = state
        .attestations
        .get(&prepared.model)
        .await
        .map_err(|e| ApiError::from(&e))?;
    if fresh.key.key_hex == attested.key.key_hex || !Arc::ptr_eq(attested, &prepared.attested) {
        return Ok(None);
    }
    log::info!("model {}: key rotated, re-attested", prepared.model);
    Ok(Some(fresh))
}

/// Venice's answer to one request, once its status is 200: the response to read, the
/// receipt tap for it, and when it began.
pub(crate) struct Opened {
    pub(crate) response: reqwest::Response,
    pub(crate) tap: Option<Tap>,
    pub(crate) began: std::time::Instant,
}

/// Sends one request to Venice. An error status is the client's error, mapped.
pub(crate) async fn open(
    state: &AppState,
    prepared: &Prepared,
    attested: &Arc<Entry>,
    body: Bytes,
) -> Result<Opened, ApiError> {
    let response = state
        .client
        .chat(
            body.clone(),
            prepared.client_key.pair.public_hex(),
            &attested.key.key_hex,
            state.config.venice.first_byte_timeout,
        )
        .await
        .map_err(|e| match e {
            UpstreamError::Status {
                status,
                message,
                retry_after,
            } => chat_error(status, &message, retry_after),
            other => ApiError::from(&other),
        })?;
    let receipt_id = response
        .headers()
        .get("x-receipt-id")
        .and_then(|v| v.to_str().ok());
    let tap = Tap::new(state.receipts.mode(), attested, &body, receipt_id);
    Ok(Opened {
        response,
        tap,
        began: std::time::Instant::now(),
    })
}

/// The next piece of an upstream answer, under the idle timeout.
pub(crate) async fn next_piece(
    state: &AppState,
    response: &mut reqwest::Response,
) -> Result<Option<Bytes>, ApiError> {
    tokio::time::timeout(state.config.venice.idle_timeout, response.chunk())
        .await
        .map_err(|_| ApiError::upstream(504, "upstream_timeout", "Venice stopped sending"))?
        .map_err(|e| {
            ApiError::upstream(
                502,
                "upstream_stream_interrupted",
                format!("the upstream stream broke off: {e}"),
            )
        })
}

/// One request to Venice, read to the end under the idle timeout, decrypted.
async fn exchange(
    state: &AppState,
    prepared: &Prepared,
    attested: &Arc<Entry>,
    body: Bytes,
) -> Result<(Answer, std::time::Instant), ApiError> {
    let Opened {
        mut response,
        mut tap,
        began,
    } = open(state, prepared, attested, body).await?;
    let mut t = Transformer::whole(prepared.client_key.clone()).with_stops(prepared.stops.clone());
    let mut sink = BytesMut::new();
    let stream_error = |e: StreamError| ApiError::from(&e);
    loop {
        match next_piece(state, &mut response).await? {
            Some(bytes) => {
                if let Some(tap) = tap.as_mut() {
                    tap.update(&bytes);
                }
                t.push(&bytes, &mut sink).map_err(stream_error)?;
                if t.stopped() {
                    // A stop sequence ended the answer: dropping the response cancels the
                    // rest upstream. A cut answer has no receipt to check.
                    METRICS.decrypted_chunks.inc_by(t.chunks);
                    let answer = t.finish_answer().map_err(stream_error)?;
                    return Ok((answer, began));
                }
            }
            None => {
                METRICS.decrypted_chunks.inc_by(t.chunks);
                let answer = t.finish_answer().map_err(stream_error)?;
                if let Some(mut tap) = tap {
                    tap.complete();
                    state.receipts.check_later(
                        tap,
                        prepared.model.clone(),
                        Some(answer.id.clone()),
                    );
                }
                return Ok((answer, began));
            }
        }
    }
}

/// The answer's body and content type, in the client's dialect and mode.
fn reply(
    prepared: &Prepared,
    answer: &Answer,
    content: Option<&str>,
    calls: &[Call],
) -> (Bytes, &'static str) {
    let stream = matches!(prepared.mode, Mode::Stream { .. });
    let whole = Whole {
        answer,
        content,
        calls,
    };
    let body = prepared.writer().whole(&whole, stream);
    let content_type = if stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    (body, content_type)
}
