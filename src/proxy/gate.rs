//! Admission: client token (when configured) and the cap on chat completions in flight.

use super::routes::Route;
use crate::openai::error::ApiError;
use crate::state::{AppState, ChatPermit};
use std::sync::Arc;

/// The client's token: `Authorization: Bearer …` (OpenAI's clients, Claude Code's
/// `ANTHROPIC_AUTH_TOKEN`) or `x-api-key` (Anthropic's SDKs).
pub fn client_token(headers: &http::HeaderMap) -> Option<&[u8]> {
    headers
        .get("authorization")
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .or_else(|| headers.get("x-api-key").map(|v| v.as_bytes()))
}

/// Admits a request, or says why not. A chat completion gets the permit it holds while in
/// flight.
pub fn admit(
    state: &Arc<AppState>,
    route: &Route,
    token: Option<&[u8]>,
) -> Result<Option<ChatPermit>, ApiError> {
    let public = matches!(route, Route::Health | Route::Ready);
    if !public && !state.client_authorized(token) {
        crate::metrics::METRICS.client_auth_failures.inc();
        return Err(ApiError::new(
            401,
            "invalid_request_error",
            "invalid_api_key",
            "missing or wrong client token",
        ));
    }
    if !route.is_chat() {
        return Ok(None);
    }
    match state.chat_permit() {
        Some(permit) => Ok(Some(permit)),
        None => {
            let mut e = ApiError::new(
                429,
                "rate_limit_error",
                "too_many_concurrent_requests",
                format!(
                    "more than {} chat completions in flight",
                    state.config.server.max_concurrent_chats
                ),
            );
            e.retry_after = Some("1".into());
            Err(e)
        }
    }
}
