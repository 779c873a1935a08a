//! Admission: client token (when configured) and the cap on chat completions in flight.

use super::routes::Route;
use crate::openai::error::ApiError;
use crate::state::{AppState, ChatPermit};
use std::sync::Arc;

/// Admits a request, or says why not. A chat completion gets the permit it holds while in
/// flight.
pub fn admit(
    state: &Arc<AppState>,
    route: &Route,
    authorization: Option<&[u8]>,
) -> Result<Option<ChatPermit>, ApiError> {
    let public = matches!(route, Route::Health | Route::Ready);
    if !public && !state.client_authorized(authorization) {
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
