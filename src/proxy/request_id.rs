//! The request id: the client's `x-request-id` when it is a plain token (a correlation id a
//! gateway or an agent set), else one made here. It is on every log line of the request and
//! echoed on its response; never sent to Venice. An id that is not a short token is
//! replaced, so no text a client sends reaches the log through it.

use pingora::proxy::Session;

pub(crate) const HEADER: &str = "x-request-id";

/// The id `request_filter` set on the request's header (`-` before it did).
pub(crate) fn get(session: &Session) -> &str {
    session
        .req_header()
        .headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
}

/// The longest id accepted from a client.
const MAX_LEN: usize = 64;

/// `given` (the client's header) when it is 1–64 characters of `A-Z a-z 0-9 . _ : -`, else a
/// fresh random id (16 hex digits).
pub(crate) fn of(given: Option<&[u8]>) -> String {
    match given {
        Some(id)
            if (1..=MAX_LEN).contains(&id.len())
                && id.iter().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
                }) =>
        {
            String::from_utf8_lossy(id).into_owned()
        }
        _ => format!("{:016x}", rand::random::<u64>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_token_is_kept_and_anything_else_replaced() {
        let uuid = b"3f2b8c1e-6d0a-4c55-9b7e-0d2f1a4c9e10";
        assert_eq!(of(Some(uuid)), String::from_utf8_lossy(uuid));
        assert_eq!(of(Some(b"trace:abc.1_2")), "trace:abc.1_2");
        for bad in [
            &b""[..],
            b"tell me about my diagnosis",
            b"a\nb",
            b"id\x00",
            "é".as_bytes(),
            &[b'a'; 65],
        ] {
            let made = of(Some(bad));
            assert_eq!(made.len(), 16, "{bad:?}");
            assert!(made.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(of(None), of(None));
    }
}
