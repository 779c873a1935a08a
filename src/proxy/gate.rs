//! Admission: client token (when configured) and the cap on chat completions in flight.

use super::routes::Route;
use crate::openai::error::ApiError;
use crate::state::{AppState, ChatPermit};
use std::sync::Arc;

/// The client's token: `Authorization: Bearer …` (OpenAI's clients, Claude Code's
/// `ANTHROPIC_AUTH_TOKEN`) or `x-api-key` (Anthropic's SDKs).
/// The scheme's name is matched in any case, as HTTP has it.
pub(crate) fn client_token(headers: &http::HeaderMap) -> Option<&[u8]> {
    let bearer = headers.get("authorization").and_then(|v| {
        let v = v.as_bytes();
        let scheme = v.get(..7)?;
        scheme
            .eq_ignore_ascii_case(b"bearer ")
            .then(|| v[7..].trim_ascii())
    });
    bearer.or_else(|| headers.get("x-api-key").map(|v| v.as_bytes().trim_ascii()))
}

/// Admits a request, or says why not. A chat completion gets the permit it holds while in
/// flight.
pub(crate) fn admit(
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

#[cfg(test)]
mod tests {
    use super::client_token;

    #[test]
    fn tokens_from_either_header() {
        let token = |pairs: &[(&'static str, &'static str)]| {
            let mut h = http::HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            client_token(&h).map(|t| String::from_utf8(t.to_vec()).unwrap())
        };
        assert_eq!(
            token(&[("authorization", "Bearer abc")]).as_deref(),
            Some("abc")
        );
        assert_eq!(
            token(&[("authorization", "bearer  abc ")]).as_deref(),
            Some("abc")
        );
        assert_eq!(token(&[("x-api-key", "k-1")]).as_deref(), Some("k-1"));
        assert_eq!(
            token(&[("authorization", "Bearer a"), ("x-api-key", "b")]).as_deref(),
            Some("a")
        );
        // Another scheme is no token; an API key beside it still is.
        assert_eq!(token(&[("authorization", "Basic eDp5")]), None);
        assert_eq!(
            token(&[("authorization", "Basic eDp5"), ("x-api-key", "k")]).as_deref(),
            Some("k")
        );
        assert_eq!(token(&[]), None);
    }
}
