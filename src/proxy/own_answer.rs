//! The answers the proxy runs itself rather than Pingora (read whole, or streamed with tools
//! held: `exchange`), written to the client from `request_filter`, since Pingora has no
//! upstream for them. A stream without tools is left to Pingora.

use super::{relay, respond};
use crate::exchange::prepared::{AnswerPath, Prepared};
use crate::exchange::read_whole;
use crate::metrics::METRICS;
use crate::state::AppState;
use pingora::proxy::Session;
use std::time::Instant;

/// Who answers a prepared chat.
pub(crate) enum Answered {
    /// Pingora proxies it (`AnswerPath::Proxied`).
    ByPingora,
    /// Answered here; when Venice's answer began, if it did.
    Here(Option<Instant>),
}

/// Answers `prepared` here unless Pingora is to proxy it. The key that served the answer is
/// left in `prepared.attested` (a fresh one if the enclave's rotated).
pub(crate) async fn answer(
    state: &AppState,
    session: &mut Session,
    prepared: &mut Prepared,
) -> pingora::Result<Answered> {
    let dialect = prepared.dialect.kind();
    let result = match &prepared.path {
        AnswerPath::Proxied { .. } => return Ok(Answered::ByPingora),
        AnswerPath::Relayed {
            request,
            tools,
            format,
        } => relay::run(
            state,
            session,
            prepared,
            request,
            tools.clone(),
            format.clone(),
        )
        .await
        .map(|r| {
            METRICS.decrypted_chunks.inc_by(r.chunks);
            prepared.attested = r.attested;
            r.upstream_began
        }),
        AnswerPath::ReadWhole { request, tools } => {
            match read_whole::run(state, prepared, request, tools.clone()).await {
                Ok(r) => {
                    prepared.attested = r.attested;
                    let headers = prepared.answer_headers(&prepared.attested);
                    respond::body(session, 200, r.body, r.content_type, &headers).await?;
                    Ok(r.upstream_began)
                }
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(began) => Ok(Answered::Here(Some(began))),
        Err(e) => {
            respond::error(session, dialect, &e).await?;
            Ok(Answered::Here(None))
        }
    }
}
