//! Admission: browsers kept out (the `Host` a request names, the content type of a request
//! a web page sent), the client token (when configured) and the cap on chat completions in
//! flight.

use super::routes::Route;
use crate::config::Tenant;
use crate::error::ApiError;
use crate::state::{AppState, ChatPermit};
use std::sync::Arc;

/// The host a request names (`Host`, or HTTP/2's `:authority`).
#[derive(Debug, PartialEq, Eq)]
enum Named {
    /// No host at all: no browser sent it.
    Nothing,
    /// A host name or IP literal, lowercase, without its port or a trailing dot.
    Host(String),
    /// Something that is not a host with an optional port (non-ASCII bytes, `[::1]evil`,
    /// `localhost:evil`, two `Host` headers, a `Host` other than the request's authority):
    /// never guessed at, refused.
    Malformed,
}

fn named_host(req: &http::request::Parts) -> Named {
    let mut hosts = req.headers.get_all(http::header::HOST).iter();
    let header = match (hosts.next(), hosts.next()) {
        (_, Some(_)) => return Named::Malformed,
        (Some(v), None) => match v.to_str() {
            Ok(v) => Some(v),
            Err(_) => return Named::Malformed,
        },
        (None, None) => None,
    };
    let authority = req.uri.authority().map(|a| a.as_str());
    let text = match (header, authority) {
        (Some(h), Some(a)) if !h.trim().eq_ignore_ascii_case(a) => return Named::Malformed,
        (Some(h), _) => h,
        (None, Some(a)) => a,
        (None, None) => return Named::Nothing,
    };
    parse_authority(text.trim()).map_or(Named::Malformed, Named::Host)
}

/// `host[:port]` or `[v6]:port`, strictly: the host, or `None` when it is not one.
fn parse_authority(text: &str) -> Option<String> {
    let port_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok()
    };
    let host = match text.strip_prefix('[') {
        Some(rest) => {
            let (v6, after) = rest.split_once(']')?;
            let port_fine = after.is_empty() || after.strip_prefix(':').is_some_and(port_ok);
            (port_fine && v6.parse::<std::net::Ipv6Addr>().is_ok()).then_some(v6)?
        }
        None => {
            let (host, port) = match text.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (text, None),
            };
            if port.is_some_and(|p| !port_ok(p)) {
                return None;
            }
            let name = host.trim_end_matches('.');
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
            valid.then_some(host)?
        }
    };
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

/// Whether a request comes through a name this proxy answers to. A web page can make the
/// user's browser send requests to a loopback port under its own name (DNS rebinding); such
/// requests name the page's host. A request with no host at all is no browser's; one whose
/// host cannot be read is refused.
pub(crate) fn host_allowed(allowed: &[String], req: &http::request::Parts) -> bool {
    match named_host(req) {
        Named::Nothing => true,
        Named::Host(host) => allowed
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(&host)),
        Named::Malformed => false,
    }
}

/// The admin listener's guard: the names the API answers to, and any IP literal (a
/// rebinding page always names a host of its own, never an address; Prometheus scrapes a
/// pod by its address).
pub(crate) fn admin_host_allowed(allowed: &[String], req: &http::request::Parts) -> bool {
    match named_host(req) {
        Named::Host(host) if host.parse::<std::net::IpAddr>().is_ok() => true,
        _ => host_allowed(allowed, req),
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
    use super::{admin_host_allowed, client_token, content_type_allowed, host_allowed};

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

    /// Issue 39: a Host that cannot be read is refused, never read as a name it begins with.
    #[test]
    fn malformed_hosts_fail_closed() {
        let allowed = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        let host = |h: &str| host_allowed(&allowed, &request("GET", "/v1/models", &[("host", h)]));
        for bad in [
            "[::1]evil",
            "[::1]:evil",
            "localhost:evil",
            "localhost:8080:1",
            "localhost:99999",
            "127.0.0.1 .evil",
            "",
            "[::1",
            "[evil]:80",
        ] {
            assert!(!host(bad), "{bad}");
        }
        // Bytes that are not ASCII.
        let mut r = request("GET", "/v1/models", &[]);
        r.headers.insert(
            http::header::HOST,
            http::HeaderValue::from_bytes(b"localhost\xff").unwrap(),
        );
        assert!(!host_allowed(&allowed, &r));
        // Two Host headers, or a Host that is not the request's own authority.
        let mut r = request("GET", "/v1/models", &[("host", "localhost")]);
        r.headers
            .append(http::header::HOST, "evil.example".parse().unwrap());
        assert!(!host_allowed(&allowed, &r));
        let r = request(
            "GET",
            "http://evil.example/v1/models",
            &[("host", "localhost")],
        );
        assert!(!host_allowed(&allowed, &r));
        // The admin listener takes any address (a scraper's), never a foreign name.
        let admin =
            |h: &str| admin_host_allowed(&allowed, &request("GET", "/metrics", &[("host", h)]));
        assert!(admin("10.1.2.3:9090") && admin("[fd00::1]:9090") && admin("localhost"));
        assert!(!admin("rebind.attacker.example:9090") && !admin("[::1]evil"));
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
