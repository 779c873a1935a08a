//! Request side of a chat completion, run in `request_filter` before any upstream connection
//! exists: read the whole body, validate and normalize it, look the model up, get its
//! attested key, and encrypt. A bad request is answered here and never reaches Venice.

use crate::api::{Context, DialectKind, LocalEndpoint};
use crate::attestation::cache::Entry;
use crate::attestation::{AttestationError, Check};
use crate::budget::Held;
use crate::chat::answer::Mode;
use crate::chat::request::{ChatRequest, ModelNames};
use crate::chat::sealed::{encrypt, scope};
use crate::chat::stop::Stops;
use crate::config::Tenant;
use crate::error::ApiError;
use crate::exchange::prepared::{AnswerPath, Prepared};
use crate::state::AppState;
use pingora::proxy::Session;
use std::sync::Arc;

/// Pingora replays at most this much of a request body it has already read (its retry
/// buffer). See `read_body`.
const PINGORA_REPLAY_LIMIT: u64 = 64 * 1024;

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        413,
        "invalid_request_error",
        "request_too_large",
        format!("request body exceeds the {limit}-byte limit"),
    )
}

/// Reads the whole request body.
///
/// Pingora sends upstream only what it can replay from its retry buffer once
/// `request_filter` has consumed the body, and that buffer keeps at most 64 KiB: it records
/// from the moment it is enabled and gives up when it overflows. So it is enabled only for
/// the last ≤64 KiB of a body of known length; that tail is what Pingora replays into
/// `request_body_filter`, where the encrypted body replaces it. Bodies of any size work.
async fn read_body(
    session: &mut Session,
    limit: u64,
    piece_timeout: std::time::Duration,
    held: &mut crate::budget::Held,
) -> Result<Vec<u8>, ApiError> {
    let declared = match session.req_header().headers.get("content-length") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::invalid("content-length", "invalid Content-Length header")
                })?,
        ),
        None => None,
    };
    if declared.is_some_and(|d| d > limit) {
        // The unread body makes the connection unusable for another request.
        session.set_keepalive(None);
        return Err(too_large(limit));
    }
    let expects_continue = session
        .req_header()
        .headers
        .get("expect")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects_continue {
        session
            .as_downstream_mut()
            .write_continue_response()
            .await
            .map_err(|_| ApiError::invalid("body", "client went away"))?;
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0) as usize);
    loop {
        let remaining = declared.map(|d| d.saturating_sub(body.len() as u64));
        if remaining.is_none_or(|r| r <= PINGORA_REPLAY_LIMIT) {
            session.as_downstream_mut().enable_retry_buffering();
        }
        let piece = tokio::time::timeout(piece_timeout, session.read_request_body()).await;
        let Ok(piece) = piece else {
            // The rest of the body will not be read: the connection cannot be reused.
            session.set_keepalive(None);
            return Err(ApiError::new(
                408,
                "invalid_request_error",
                "request_timeout",
                format!("the request body stalled for {piece_timeout:?}"),
            ));
        };
        match piece {
            Ok(Some(chunk)) => {
                if let Err(e) = held.cover(body.len() + chunk.len()) {
                    session.set_keepalive(None);
                    return Err(e.into());
                }
                body.extend_from_slice(&chunk);
                if body.len() as u64 > limit {
                    session.set_keepalive(None);
                    return Err(too_large(limit));
                }
            }
            Ok(None) => break,
            Err(_) => return Err(ApiError::invalid("body", "could not read the request body")),
        }
    }
    if declared.is_none() && session.as_downstream().retry_buffer_truncated() {
        // A chunked body past 64 KiB cannot be replayed by Pingora (see above).
        return Err(ApiError::new(
            411,
            "invalid_request_error",
            "length_required",
            "send Content-Length for request bodies over 64 KiB",
        ));
    }
    Ok(body)
}

/// The headers agents name their session in (docs/DIALECTS.md "Agent sessions" has who sends which),
/// read after the configured one, in this order.
const AGENT_SESSION_HEADERS: [&str; 8] = [
    // Codex CLI.
    "session-id",
    "session_id",
    // Claude Code.
    "x-claude-code-session-id",
    // opencode, Kilo, pi.
    "x-session-affinity",
    "x-session-id",
    // Older opencode.
    "x-opencode-session",
    // Hermes Agent.
    "x-hermes-session-id",
    "conversation-id",
];

/// The agent session: the configured header, or `metadata.session_id`.
fn session_id(
    state: &AppState,
    session: &Session,
    req: &ChatRequest,
) -> Result<Option<String>, ApiError> {
    let header = &state.config.sessions.header;
    let from_header = match session.req_header().headers.get(header.as_str()) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::invalid(header.as_str(), "the session id must be text"))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let mut agent = None;
    for name in AGENT_SESSION_HEADERS {
        if let Some(v) = session.req_header().headers.get(name) {
            let id = v
                .to_str()
                .map_err(|_| ApiError::invalid(name, "the session id must be text"))?;
            agent = Some(id.trim().to_string());
            break;
        }
    }
    let id = from_header
        .or(agent)
        .or_else(|| req.session.clone())
        .filter(|id| !id.is_empty());
    // Where no session is named, the prompt cache key (one per agent thread) is one, when it
    // can be echoed; never a reason to refuse the request.
    let id = id.or_else(|| {
        req.prompt_cache_key
            .clone()
            .filter(|k| !k.is_empty() && k.len() <= 256 && k.bytes().all(|b| b.is_ascii_graphic()))
    });
    // Echoed in a response header: visible ASCII only.
    if id
        .as_ref()
        .is_some_and(|id| id.len() > 256 || !id.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(ApiError::invalid(
            header.as_str(),
            "session ids are 1-256 visible ASCII characters",
        ));
    }
    Ok(id)
}

/// What the dialects need to parse a request.
fn context(state: &AppState, tenant: Tenant) -> Context<'_> {
    Context {
        names: ModelNames {
            aliases: &state.config.models,
            families: &state.config.tools.families,
        },
        hosted_tools: state.config.responses.hosted_tools,
        states: &state.dialects,
        tenant,
    }
}

/// An unknown model is a 404, before anything is attested or sent.
async fn check_model(state: &AppState, model: &str) -> Result<(), ApiError> {
    let catalog = state.catalog.get().await.map_err(|e| ApiError::from(&e))?;
    match catalog.get(model) {
        Some(_) => Ok(()),
        None => Err(ApiError::model_not_found(model)),
    }
}

/// A dialect's local endpoint (`api::LocalEndpoint`): its body read and answered, the model
/// it names looked up.
pub(crate) async fn answer_local(
    state: &AppState,
    session: &mut Session,
    endpoint: LocalEndpoint,
) -> Result<serde_json::Value, ApiError> {
    let mut held = state.budget.hold();
    let raw = body(state, session, &mut held).await?;
    let (model, answer) = endpoint.answer(&raw, &context(state, 0))?;
    check_model(state, &model).await?;
    Ok(answer)
}

pub(crate) async fn prepare(
    state: &AppState,
    session: &mut Session,
    dialect: DialectKind,
    tenant: Tenant,
    named: &mut Option<String>,
) -> Result<Prepared, ApiError> {
    let request_id = super::request_id::get(session).to_string();
    let mut held = state.budget.hold();
    let raw = body(state, session, &mut held).await?;
    let (mut req, dialect) = dialect.parse(&raw, &context(state, tenant))?;
    drop(raw);
    *named = Some(req.model.clone());
    check_model(state, &req.model).await?;
    let attested = attested_key(state, &req.model).await?;
    let session = session_id(state, session, &req)?;
    let client_key = session
        .as_deref()
        .and_then(|id| state.sessions.key(tenant, id))
        .unwrap_or_else(|| state.keys.current(tenant));
    let mode = if req.stream {
        Mode::Stream {
            include_usage: req.include_usage,
        }
    } else {
        Mode::Aggregate
    };
    let stops = where_stops_apply(state, &mut req);
    let scope = scope(tenant, session.as_deref());
    let (req, body) = encrypt(
        &state.sealer,
        req,
        &attested.key.recipient,
        scope,
        Vec::new(),
    )
    .await?;
    held.cover(body.len())?;
    let claims = crate::attestation::claims::summary(
        &attested.report,
        state.receipts.last(&req.model).as_deref(),
    );
    Ok(Prepared {
        claims,
        request_id,
        budget: state.budget.clone(),
        _held: held,
        body,
        client_key,
        attested,
        model: req.model.clone(),
        stops,
        session,
        scope,
        dialect,
        path: AnswerPath::choose(req, mode, state.config.tools.stream_validation),
        mode,
    })
}

/// The request body, read whole within the server's limits.
async fn body(
    state: &AppState,
    session: &mut Session,
    held: &mut Held,
) -> Result<Vec<u8>, ApiError> {
    let server = &state.config.server;
    read_body(session, server.body_limit, server.body_read_timeout, held).await
}

/// The model's verified key, unless its attestation or its receipts refuse it (counted by
/// the check that refused).
async fn attested_key(state: &AppState, model: &str) -> Result<Arc<Entry>, ApiError> {
    let refused = |e: AttestationError| {
        crate::metrics::METRICS
            .attestation_refusals
            .with_label_values(&[model, e.check.code()])
            .inc();
        ApiError::from(&e)
    };
    let attested = state.attestations.get(model).await.map_err(refused)?;
    match state.receipts.refusal(model, &attested) {
        Some(why) => Err(refused(AttestationError::new(Check::Receipt, why))),
        None => Ok(attested),
    }
}

/// Stop sequences are either sent to Venice (`encryption.send_stop_sequences`) or cut here
/// from the decrypted answer; the stops to cut here.
fn where_stops_apply(state: &AppState, req: &mut ChatRequest) -> Option<Arc<Stops>> {
    if !state.config.encryption.send_stop_sequences {
        return Stops::new(req.stop.clone());
    }
    if !req.stop.is_empty() {
        req.generation.stop = Some(req.stop.clone());
    }
    None
}
