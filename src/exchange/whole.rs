//! Answers the proxy sees whole before replying: every non-streaming answer (so a failure
//! at any point is still a JSON error with the right status, never a cut connection), and
//! streams whose tool calls or structured output are validated first
//! (`tools.stream_validation: buffer`). The exchange with Venice runs here, so an invalid
//! answer can be retried with a correction prompt before the client sees anything;
//! Pingora's proxying, the one upstream path for streams, cannot re-send once its response
//! has begun.

use super::prepared::{AnswerPath, Prepared};
use super::{attempt_body, next_piece, open, reattested, Opened};
use crate::attestation::cache::Entry;
use crate::chat::answer::{Answer, Mode, StreamError, Transformer};
use crate::chat::tool_calls::emulate::{parse_answer_as_written, Call, Parsed};
use crate::chat::whole::{judge, TOOL_CALL_INVALID};
use crate::chat::writer::Whole;
use crate::config::InvalidCalls;
use crate::error::ApiError;
use crate::metrics::METRICS;
use crate::state::AppState;
use crate::venice::status::E2EE_REJECTED;
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
                    request_id = prepared.request_id.as_str();
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
    let mut t = Transformer::whole(prepared.client_key.clone())
        .with_stops(prepared.stops.clone())
        .with_budget(prepared.hold());
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
