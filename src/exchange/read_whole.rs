//! Answers the proxy sees whole before replying: every non-streaming answer (so a failure
//! at any point is still a JSON error with the right status, never a cut connection), and
//! streams whose tool calls or structured output are validated first
//! (`tools.stream_validation: buffer`). The exchange with Venice runs here, so an invalid
//! answer can be retried with a correction prompt before the client sees anything;
//! Pingora's proxying, the one upstream path for streams, cannot re-send once its response
//! has begun.

use super::prepared::Prepared;
use super::{next_piece, Opened, Reader, Turn};
use crate::attestation::cache::Entry;
use crate::chat::answer::{Answer, Mode, StreamError, Transformer};
use crate::chat::answer_writer::Judged;
use crate::chat::judge::{judge, TOOL_CALL_INVALID};
use crate::chat::request::ChatRequest;
use crate::chat::tool_calls::defs::ToolSet;
use crate::chat::tool_calls::emulate::{parse_answer_as_written, Call, Parsed};
use crate::config::InvalidCalls;
use crate::error::ApiError;
use crate::metrics::METRICS;
use crate::state::AppState;
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

pub(crate) async fn run(
    state: &AppState,
    prepared: &Prepared,
    req: &ChatRequest,
    tools: Option<Arc<ToolSet>>,
) -> Result<Reply, ApiError> {
    let mut reader = WholeReader { req, tools };
    super::run(state, prepared, req, &mut reader).await
}

/// Reads each answer whole, then judges its tool calls and structured output.
struct WholeReader<'a> {
    req: &'a ChatRequest,
    tools: Option<Arc<ToolSet>>,
}

#[async_trait::async_trait]
impl Reader for WholeReader<'_> {
    type Output = Reply;

    fn began(&self) -> bool {
        // Nothing reaches the client before the reply is whole.
        false
    }

    async fn read(
        &mut self,
        state: &AppState,
        prepared: &Prepared,
        opened: Opened,
        attested: &Arc<Entry>,
        attempt: u32,
    ) -> Result<Turn<Reply>, ApiError> {
        let (mut answer, upstream_began) = collect(state, prepared, opened).await?;
        let tools = self.tools.as_ref();
        let judged = judge(self.req, tools, &answer);
        if tools.is_some() {
            let outcome = if judged.is_ok() { "valid" } else { "invalid" };
            METRICS.tool_calls.with_label_values(&[outcome]).inc();
        }
        let policy = state.config.tools.invalid_calls;
        let parsed = match judged {
            Ok(parsed) => {
                answer.reasoning = parsed.reasoning.clone();
                parsed
            }
            Err(fault) if attempt < state.config.tools.max_retries => {
                return Ok(Turn::Correct {
                    said: answer.content,
                    why: fault.code,
                    correction: fault.correction,
                });
            }
            // What a server without validation answers: the calls as written, or the text.
            Err(fault) if fault.code == TOOL_CALL_INVALID && policy != InvalidCalls::Error => {
                match (policy, tools) {
                    (InvalidCalls::Pass, Some(set)) => {
                        parse_answer_as_written(set, &answer.content, &answer.reasoning)
                    }
                    _ => Parsed {
                        content: Some(answer.content.clone()),
                        reasoning: answer.reasoning.clone(),
                        calls: Vec::new(),
                    },
                }
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
        };
        let (body, content_type) =
            reply(prepared, &answer, parsed.content.as_deref(), &parsed.calls);
        Ok(Turn::Done(Reply {
            body,
            content_type,
            attested: attested.clone(),
            upstream_began,
        }))
    }

    async fn fail(&mut self, e: ApiError, _: Arc<Entry>) -> Result<Reply, ApiError> {
        Err(e)
    }

    fn retry(&mut self, _: u32) {}
}

/// One opened answer, read to the end under the idle timeout, decrypted.
async fn collect(
    state: &AppState,
    prepared: &Prepared,
    opened: Opened,
) -> Result<(Answer, std::time::Instant), ApiError> {
    let Opened {
        mut response,
        mut tap,
        began,
    } = opened;
    let mut t = Transformer::collecting(prepared.client_key.clone())
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
    let judged = Judged {
        answer,
        content,
        calls,
    };
    let body = prepared.writer().judged(&judged, stream);
    let content_type = if stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    (body, content_type)
}
