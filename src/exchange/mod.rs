//! Chat exchanges with Venice that the proxy runs itself, reading the answer as it comes,
//! where Pingora's proxying cannot serve: answers read whole (`read_whole`) and, from `proxy`,
//! streams with tools relayed. `run` is the one exchange: each attempt's body sealed, the
//! request opened, re-attestation once when Venice refuses the key, and correction turns up
//! to the retry budget; a `Reader` reads each answer (whole, or streamed to the client) and
//! says whether it is done or needs correcting.

pub(crate) mod prepared;
pub(crate) mod read_whole;

use crate::attestation::cache::Entry;
use crate::attestation::receipt_checks::Tap;
use crate::chat::request::ChatRequest;
use crate::chat::sealed::encrypt;
use crate::error::ApiError;
use crate::metrics::METRICS;
use crate::state::AppState;
use crate::venice::client::UpstreamError;
use crate::venice::status::{chat_error, E2EE_REJECTED};
use bytes::Bytes;
use prepared::Prepared;
use std::sync::Arc;

/// How one attempt's answer ended, as its reader judged it.
pub(crate) enum Turn<T> {
    /// The exchange is over.
    Done(T),
    /// The answer needs correcting: the model's words, why (an error code), and the
    /// correction turn that asks again.
    Correct {
        said: String,
        why: &'static str,
        correction: String,
    },
}

/// What an exchange's answers are read into: a reply read whole, or a stream to the client.
#[async_trait::async_trait]
pub(crate) trait Reader: Send {
    type Output: Send;
    /// Whether the client has seen anything of the answer: a failure then ends what it sees,
    /// and a refused key is no longer re-attested and re-sent.
    fn began(&self) -> bool;
    /// Reads one opened answer, `attempt` corrections into the exchange.
    async fn read(
        &mut self,
        state: &AppState,
        prepared: &Prepared,
        opened: Opened,
        attested: &Arc<Entry>,
        attempt: u32,
    ) -> Result<Turn<Self::Output>, ApiError>;
    /// The exchange failed with `e`, the answer encrypted to `attested`.
    async fn fail(&mut self, e: ApiError, attested: Arc<Entry>) -> Result<Self::Output, ApiError>;
    /// A correction follows: `attempt` is its number.
    fn retry(&mut self, attempt: u32);
}

/// One exchange with Venice for `req`, read by `reader`.
pub(crate) async fn run<R: Reader>(
    state: &AppState,
    prepared: &Prepared,
    req: &ChatRequest,
    reader: &mut R,
) -> Result<R::Output, ApiError> {
    let max_retries = state.config.tools.max_retries;
    let mut attested = prepared.attested.clone();
    let mut extra: Vec<(&'static str, String)> = Vec::new();
    let mut attempt = 0;
    loop {
        let body = match attempt_body(state, prepared, req, &attested, attempt, &extra).await {
            Ok(body) => body,
            Err(e) => return reader.fail(e, attested).await,
        };
        let opened = match open(state, prepared, &attested, body).await {
            Ok(o) => o,
            Err(e) if !reader.began() && e.code == E2EE_REJECTED => {
                match reattested(state, prepared, &attested).await? {
                    Some(fresh) => {
                        attested = fresh;
                        continue;
                    }
                    None => return Err(e),
                }
            }
            Err(e) => return reader.fail(e, attested).await,
        };
        match reader
            .read(state, prepared, opened, &attested, attempt)
            .await
        {
            Ok(Turn::Done(out)) => return Ok(out),
            Ok(Turn::Correct {
                said,
                why,
                correction,
            }) => {
                log::info!(
                    request_id = prepared.request_id.as_str();
                    "model {}: {why}, correcting ({}/{max_retries})",
                    prepared.model,
                    attempt + 1
                );
                METRICS.tool_retries.inc();
                extra.push(("assistant", said));
                extra.push(("user", correction));
                attempt += 1;
                reader.retry(attempt);
            }
            Err(e) => return reader.fail(e, attested).await,
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
    log::info!(
        request_id = prepared.request_id.as_str();
        "model {}: key rotated, re-attested",
        prepared.model
    );
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
    let tap = Tap::new(
        state.receipts.mode(),
        attested,
        &body,
        receipt_id,
        &prepared.request_id,
    );
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
