//! Venice's error answers to a chat request, as the client reads them: the status (decided
//! from Venice's status alone, since a proxied stream's header goes out before the error
//! body arrives) and the code and message from Venice's body.

use crate::error::ApiError;

/// Venice refused the proxy's encryption (the enclave's key may have rotated).
pub(crate) const E2EE_REJECTED: &str = "upstream_e2ee_rejected";

/// The client status for an upstream error status. It depends on the status alone: the
/// header goes out before the upstream's error body has arrived.
pub(crate) fn client_status(upstream: u16) -> u16 {
    match upstream {
        429 => 429,
        404 => 404,
        // Client errors (context too long, bad parameter) are the client's to fix; a 5xx
        // would make SDKs retry a request that cannot succeed.
        400 | 413 | 422 => 400,
        504 => 504,
        _ => 502,
    }
}

/// How an upstream error reaches the client: `client_status`, and a code and message from
/// the upstream's body.
pub(crate) fn chat_error(status: u16, message: &str, retry_after: Option<String>) -> ApiError {
    let client = client_status(status);
    let mut err = match status {
        401 | 403 => ApiError::upstream(
            client,
            "upstream_authentication_failed",
            format!("Venice rejected the proxy's API key: {message}"),
        ),
        429 => ApiError::new(
            client,
            "rate_limit_error",
            "rate_limit_exceeded",
            format!("Venice rate limit: {message}"),
        ),
        404 => ApiError::not_found("model_not_found", format!("Venice: {message}")),
        // Venice refusing our E2EE framing: the proxy's problem, named as such.
        _ if client == 400 && is_e2ee_protocol_error(message) => ApiError::new(
            client,
            "upstream_error",
            E2EE_REJECTED,
            format!("Venice rejected the encrypted request: {message}"),
        ),
        _ if client == 400 => ApiError::new(
            client,
            "invalid_request_error",
            "upstream_rejected_request",
            format!("Venice: {message}"),
        ),
        504 => ApiError::upstream(client, "upstream_timeout", format!("Venice: {message}")),
        _ => ApiError::upstream(
            client,
            "upstream_error",
            format!("Venice answered {status}: {message}"),
        ),
    };
    err.retry_after = retry_after;
    err
}

fn is_e2ee_protocol_error(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["encrypted field", "decrypt", "public key", "e2ee", "tee"]
        .iter()
        .any(|k| m.contains(k))
}
