//! Admission: browsers kept out (the `Host` a request names, the content type of a request
//! a web page sent), the client token (when configured) and the cap on chat completions in
//! flight.

use super::routes::Route;
use crate::config::Tenant;
use crate::error::ApiError;
use crate::state::{AppState, ChatPermit};
use std::sync::Arc;

/// The host a request names (`Host`, or HTTP/2's `:authority`), without its port, lowercase.
fn named_host(req: &http::request::Parts) -> Option<String> {
    let authority = req
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri.authority().map(|a| a.as_str()))?;
    let authority = authority.trim();
    let host = match authority.strip_prefix('[') {
        // An IPv6 literal: `[::1]:8080`.
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

/// Whether a request comes through a name this proxy answers to. A web page can make the
/// user's browser send requests to a loopback port under its own name (DNS rebinding); such
/// requests name the page's host. A request with no host at all is no browser's.
pub(crate) fn host_allowed(allowed: &[String], req: &http::request::Parts) -> bool {
    match named_host(req) {
        None => true,
        Some(host) => allowed
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(&host)),
    }
}

/// Whether a request a web page may have sent is one it could only send with the server's
/// consent: a page can POST `text/plain` (or a form) anywhere without asking, but JSON only
/// after a CORS preflight, which this proxy never grants. Requests without `Origin` come from
/// no browser page.
pub(crate) fn content_type_allowed(req: &http::request::Parts) -> bool {
    if req.method != http::Method::POST || !req.headers.contains_key(http::header::ORIGIN) {
        return true;
    }
    req.headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

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

/// Admits a request, or says why not: whose it is, and for a chat completion the permit it
/// holds while in flight.
pub(crate) fn admit(
    state: &Arc<AppState>,
    route: &Route,
    req: &http::request::Parts,
) -> Result<(Tenant, Option<ChatPermit>), ApiError> {
    // Probes (kubelet's name the pod's address) answer under any name; they say only "up".
    let public = matches!(route, Route::Health | Route::Ready);
    if !public && !host_allowed(&state.allowed_hosts, req) {
        return Err(ApiError::new(
            403,
            "invalid_request_error",
            "host_not_allowed",
            "this proxy does not answer under that Host (server.allowed_hosts)",
        ));
    }
    if !content_type_allowed(req) {
        return Err(ApiError::new(
            415,
            "invalid_request_error",
            "unsupported_media_type",
            "a request from a web page must be Content-Type: application/json",
        ));
    }
    let tenant = match state.tenant(client_token(&req.headers)) {
        Some(t) => t,
        None if public => 0,
        None => {
            crate::metrics::METRICS.client_auth_failures.inc();
            return Err(ApiError::new(
                401,
                "invalid_request_error",
                "invalid_api_key",
                "missing or wrong client token",
            ));
        }
    };
    if !route.is_chat() {
        return Ok((tenant, None));
    }
    match state.chat_permit() {
        Some(permit) => Ok((tenant, Some(permit))),
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
    use super::{client_token, content_type_allowed, host_allowed};

    fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn only_allowed_host_names() {
        let allowed = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        let host = |h: &str| host_allowed(&allowed, &request("GET", "/v1/models", &[("host", h)]));
        assert!(host("127.0.0.1:8080"));
        assert!(host("LOCALHOST:8080"));
        assert!(host("localhost."));
        assert!(host("[::1]:8080"));
        assert!(!host("attacker.example:8080"));
        assert!(!host("127.0.0.1.attacker.example"));
        assert!(!host("localhost.attacker.example"));
        // HTTP/2's :authority, and no host at all (not a browser).
        assert!(!host_allowed(
            &allowed,
            &request("GET", "http://rebind.example:8080/v1/models", &[])
        ));
        assert!(host_allowed(&allowed, &request("GET", "/v1/models", &[])));
        assert!(host_allowed(
            &["*".into()],
            &request("GET", "/", &[("host", "anything")])
        ));
    }

    #[test]
    fn pages_must_send_json() {
        let post =
            |h: &[(&str, &str)]| content_type_allowed(&request("POST", "/v1/chat/completions", h));
        assert!(!post(&[
            ("origin", "https://evil.example"),
            ("content-type", "text/plain")
        ]));
        assert!(!post(&[("origin", "null")]));
        assert!(!post(&[
            ("origin", "https://evil.example"),
            ("content-type", "application/x-www-form-urlencoded")
        ]));
        assert!(post(&[
            ("origin", "http://localhost:3000"),
            ("content-type", "Application/JSON; charset=utf-8")
        ]));
        // No Origin: no web page sent it.
        assert!(post(&[("content-type", "text/plain")]));
        assert!(post(&[]));
    }

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
