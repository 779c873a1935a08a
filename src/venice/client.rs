//! Venice's JSON endpoints (model list, attestation) over reqwest. Chat completions do not go
//! through here: Pingora proxies them. This client carries the Venice key and is used for
//! Venice alone; the services a verifier consults get a client without it
//! (`attestation::verifier::third_party_http`).

use super::ModelList;
use crate::config::{Config, SetupError};
use crate::error::ApiError;
use std::fmt;

#[derive(Debug, Clone)]
pub enum UpstreamError {
    /// The upstream answered with an error status.
    Status {
        status: u16,
        message: String,
        retry_after: Option<String>,
    },
    Timeout,
    Transport(String),
    Body(String),
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::Status {
                status, message, ..
            } => write!(f, "upstream answered {status}: {message}"),
            UpstreamError::Timeout => write!(f, "upstream did not answer in time"),
            UpstreamError::Transport(m) => write!(f, "upstream unreachable: {m}"),
            UpstreamError::Body(m) => write!(f, "upstream sent an unreadable body: {m}"),
        }
    }
}

impl std::error::Error for UpstreamError {}

/// Venice failing a call the proxy makes for itself (the model list, attestation): the
/// proxy's upstream failed, said as such.
impl From<&UpstreamError> for ApiError {
    fn from(e: &UpstreamError) -> Self {
        match e {
            UpstreamError::Status {
                status: 401 | 403,
                message,
                ..
            } => ApiError::upstream(
                502,
                "upstream_authentication_failed",
                format!("Venice rejected the proxy's API key: {message}"),
            ),
            UpstreamError::Status {
                status: 429,
                message,
                retry_after,
            } => {
                let mut err = ApiError::new(
                    429,
                    "rate_limit_error",
                    "rate_limit_exceeded",
                    format!("Venice rate limit: {message}"),
                );
                err.retry_after = retry_after.clone();
                err
            }
            UpstreamError::Timeout => ApiError::upstream(504, "upstream_timeout", e.to_string()),
            // No connection at all (DNS, refused, TLS): said as such, so operators look there.
            UpstreamError::Transport(_) => {
                ApiError::upstream(502, "upstream_unreachable", e.to_string())
            }
            _ => ApiError::upstream(502, "upstream_error", e.to_string()),
        }
    }
}

/// The largest JSON document read from Venice or a third party (a real attestation is about
/// 180 KB; a session carrying its upstream's whole report a few hundred): the answer's
/// sender cannot make the proxy hold more.
pub(crate) const DOCUMENT_LIMIT: usize = 8 << 20;
/// Of an error body only this much is read: it only becomes a message.
const ERROR_BODY_LIMIT: usize = 16 << 10;

/// Reads a response body of at most `limit` bytes: `Ok(None)` past it, whatever the sender
/// declared.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// The first `ERROR_BODY_LIMIT` bytes of an error body (what could be read of them).
async fn error_body(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = ERROR_BODY_LIMIT - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == ERROR_BODY_LIMIT {
            break;
        }
    }
    body
}

pub struct VeniceClient {
    http: reqwest::Client,
    base: String,
}

impl VeniceClient {
    pub fn new(config: &Config) -> Result<Self, SetupError> {
        let mut headers = reqwest::header::HeaderMap::new();
        if !config.venice.api_key.is_empty() {
            let mut value = reqwest::header::HeaderValue::from_str(&format!(
                "Bearer {}",
                config.venice.api_key.expose()
            ))
            .map_err(|_| {
                SetupError::setting(
                    "venice.api_key",
                    "contains characters not allowed in a header",
                )
            })?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(config.venice.connect_timeout)
            .timeout(config.venice.request_timeout)
            // A redirect could lead the key's holder anywhere; Venice's API does not redirect.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("venice-e2ee-proxy/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.venice.ca_file {
            let pem = std::fs::read(path).map_err(|e| SetupError::setting("venice.ca_file", e))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| SetupError::setting("venice.ca_file", e))?;
            // A configured CA replaces the public roots: trust exactly what was asked.
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(VeniceClient {
            http: builder.build()?,
            base: config.venice.base_url.trim_end_matches('/').to_string(),
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, UpstreamError> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .send()
            .await
            .map_err(classify)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if !status.is_success() {
            return Err(UpstreamError::Status {
                status: status.as_u16(),
                message: super::error_message(&error_body(response).await),
                retry_after,
            });
        }
        let body = read_limited(response, DOCUMENT_LIMIT)
            .await
            .map_err(classify)?
            .ok_or_else(|| {
                UpstreamError::Body(format!("{path}: more than {DOCUMENT_LIMIT} bytes"))
            })?;
        serde_json::from_slice(&body).map_err(|e| UpstreamError::Body(e.to_string()))
    }

    pub(crate) async fn models(&self) -> Result<ModelList, UpstreamError> {
        self.get_json("/models", &[]).await
    }

    /// Starts an E2EE chat completion and returns the streaming response once its status
    /// is 200 (an error status becomes `UpstreamError::Status`). Used for answers the proxy
    /// must see whole before replying; streamed answers go through Pingora.
    pub(crate) async fn chat(
        &self,
        body: bytes::Bytes,
        client_pub: &str,
        model_pub: &str,
        first_byte: std::time::Duration,
    ) -> Result<reqwest::Response, UpstreamError> {
        let send = self
            .http
            .post(format!("{}/chat/completions", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .header(super::HEADER_CLIENT_PUB_KEY, client_pub)
            .header(super::HEADER_MODEL_PUB_KEY, model_pub)
            .header(super::HEADER_SIGNING_ALGO, "ecdsa")
            // The body is read chunk by chunk under the idle timeout instead.
            .timeout(std::time::Duration::from_secs(24 * 3600))
            .body(body)
            .send();
        let response = tokio::time::timeout(first_byte, send)
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(classify)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Err(UpstreamError::Status {
            status: status.as_u16(),
            message: super::error_message(&error_body(response).await),
            retry_after,
        })
    }

    /// Any JSON document under the base URL (`path` may carry a query), e.g. a receipt.
    pub(crate) async fn document(&self, path: &str) -> Result<serde_json::Value, UpstreamError> {
        self.get_json(path, &[]).await
    }

    /// The attestation response as JSON (the verifier reads fields beyond `Attestation`).
    pub async fn attestation(
        &self,
        model: &str,
        nonce: &[u8; 32],
    ) -> Result<serde_json::Value, UpstreamError> {
        let nonce = hex::encode(nonce);
        self.get_json("/tee/attestation", &[("model", model), ("nonce", &nonce)])
            .await
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters (ids in a path or query
/// are opaque).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn classify(e: reqwest::Error) -> UpstreamError {
    if e.is_timeout() {
        UpstreamError::Timeout
    } else if e.is_decode() || e.is_body() {
        UpstreamError::Body(e.to_string())
    } else {
        // The source chain carries the useful part (e.g. the certificate error).
        let mut msg = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            source = s.source();
        }
        UpstreamError::Transport(msg)
    }
}
