//! Streams with tools, relayed here rather than proxied by Pingora: text streams as it comes,
//! each tool call once it is whole and valid. An invalid call (a tool not offered, arguments
//! off the schema, an unreadable block) is corrected inside the stream, the client having
//! seen nothing of it: the exchange with Venice starts again with the model's words and a
//! correction, and the new answer continues the same stream (Pingora's proxying cannot send
//! a request again once its response has begun). Once the retries are spent, the call is
//! shown as the model wrote it (`tools.invalid_calls: pass`, what a server without
//! validation does, so the agent's own tool layer reports it) or the stream ends with an
//! error event (`error`).

use crate::attestation::cache::Entry;
use crate::chat::answer::{StreamError, Transformer};
use crate::chat::request::ChatRequest;
use crate::chat::structured::OutputFormat;
use crate::chat::tool_calls::defs::ToolSet;
use crate::chat::tool_calls::emulate::{OnInvalid, ToolStream};
use crate::chat::tool_calls::prompt::correction;
use crate::config::InvalidCalls;
use crate::error::ApiError;
use crate::exchange::prepared::Prepared;
use crate::exchange::{next_piece, Opened, Reader, Turn};
use crate::metrics::METRICS;
use crate::state::AppState;
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
    req: &ChatRequest,
    set: Arc<ToolSet>,
    format: Option<Arc<OutputFormat>>,
) -> Result<Relayed, ApiError> {
    let policy = (
        state.config.tools.max_retries,
        state.config.tools.invalid_calls,
    );
    let t = Transformer::streaming(
        prepared.client_key.clone(),
        prepared.writer(),
        Some(ToolStream::new(set).with_on_invalid(on_invalid(policy, 0))),
    )
    .with_format(format)
    .with_stops(prepared.stops.clone())
    .with_budget(prepared.hold());
    let mut relay = Relay {
        session,
        t,
        began: None,
        out: BytesMut::new(),
        policy,
    };
    crate::exchange::run(state, prepared, req, &mut relay).await
}

/// An invalid call is rejected (and corrected) while retries remain or the policy is
/// `error`; after that it passes as the model wrote it.
fn on_invalid((max_retries, invalid_calls): (u32, InvalidCalls), attempt: u32) -> OnInvalid {
    if attempt < max_retries || invalid_calls == InvalidCalls::Error {
        OnInvalid::Reject
    } else {
        OnInvalid::Pass
    }
}

/// Streams each answer to the client as it is decrypted, holding each call until it is
/// whole and valid.
struct Relay<'s> {
    session: &'s mut Session,
    t: Transformer,
    /// When Venice's first answer began; `Some` once the client has the header.
    began: Option<Instant>,
    out: BytesMut,
    /// `tools.max_retries`, `tools.invalid_calls`.
    policy: (u32, InvalidCalls),
}

impl Relay<'_> {
    fn relayed(&self, attested: Arc<Entry>) -> Relayed {
        Relayed {
            upstream_began: self.began.unwrap_or_else(Instant::now),
            chunks: self.t.chunks,
            attested,
        }
    }
}

#[async_trait::async_trait]
impl Reader for Relay<'_> {
    type Output = Relayed;

    fn began(&self) -> bool {
        self.began.is_some()
    }

    async fn read(
        &mut self,
        state: &AppState,
        prepared: &Prepared,
        opened: Opened,
        attested: &Arc<Entry>,
        attempt: u32,
    ) -> Result<Turn<Relayed>, ApiError> {
        let Opened {
            mut response,
            mut tap,
            began: opened_at,
        } = opened;
        if self.began.is_none() {
            write_header(self.session, prepared, attested)
                .await
                .map_err(|_| ApiError::invalid("body", "client went away"))?;
            self.began = Some(opened_at);
        }
        // Read until the answer ends, a call must be corrected, or it fails.
        loop {
            let piece = next_piece(state, &mut response).await?;
            self.out.clear();
            let result = match &piece {
                Some(bytes) => {
                    if let Some(tap) = tap.as_mut() {
                        tap.update(bytes);
                    }
                    self.t.push(bytes, &mut self.out)
                }
                None => self.t.finish(&mut self.out),
            };
            let fault = match result {
                Ok(()) => None,
                Err(StreamError::ToolCall(e))
                    if on_invalid(self.policy, attempt) == OnInvalid::Reject =>
                {
                    METRICS.tool_calls.with_label_values(&["invalid"]).inc();
                    Some(e)
                }
                Err(e) => {
                    write(self.session, std::mem::take(&mut self.out).freeze()).await;
                    return Err(ApiError::from(&e));
                }
            };
            // What came before a call to correct is the client's (text the model wrote).
            if !self.out.is_empty()
                && !write(self.session, std::mem::take(&mut self.out).freeze()).await
            {
                return Ok(Turn::Done(self.relayed(attested.clone())));
            }
            match fault {
                // Correct it inside the stream: the model's words so far, then what was wrong.
                Some(e) if attempt < self.policy.0 => {
                    return Ok(Turn::Correct {
                        said: self.t.said().to_string(),
                        why: "tool_call_invalid",
                        correction: correction(&e.to_string()),
                    });
                }
                Some(e) => return Err(ApiError::from(&StreamError::ToolCall(e))),
                None if self.t.stopped() => {
                    // A stop sequence ended the answer: dropping the response cancels the rest.
                    finish(self.session).await;
                    return Ok(Turn::Done(self.relayed(attested.clone())));
                }
                None if piece.is_none() => {
                    finish(self.session).await;
                    if let Some(mut tap) = tap {
                        tap.complete();
                        state.receipts.check_later(
                            tap,
                            prepared.model.clone(),
                            Some(self.t.answer_id().to_string()),
                        );
                    }
                    return Ok(Turn::Done(self.relayed(attested.clone())));
                }
                None => {}
            }
        }
    }

    async fn fail(&mut self, e: ApiError, attested: Arc<Entry>) -> Result<Relayed, ApiError> {
        if self.began.is_none() {
            return Err(e);
        }
        end_with_error(self.session, &mut self.t, &e).await;
        Ok(self.relayed(attested))
    }

    fn retry(&mut self, attempt: u32) {
        self.t.restart(on_invalid(self.policy, attempt));
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
    for (name, value) in prepared.answer_headers(attested) {
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
