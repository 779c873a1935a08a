//! The Venice request body: a normalized chat request's conversation sealed to the attested
//! model key, with the flags that keep E2EE intact.

use crate::chat::generation::{Generation, VeniceFlags};
use crate::chat::request::ChatRequest;
use crate::config::Tenant;
use crate::e2ee::codec::Recipient;
use crate::e2ee::sealing::Sealer;
use crate::error::ApiError;
use bytes::Bytes;
use serde::Serialize;
use std::sync::Arc;

/// Venice's request body: the conversation sealed, the client's controls, and the flags that
/// keep E2EE intact.
#[derive(Serialize)]
struct VeniceBody<'a> {
    model: &'a str,
    messages: Vec<SealedMessage<'a>>,
    /// Always a stream: answers read whole are read from one.
    stream: bool,
    /// Always with usage: non-streaming answers need it; streams drop it unless asked.
    stream_options: StreamOptions,
    venice_parameters: VeniceParameters<'a>,
    #[serde(flatten)]
    generation: &'a Generation,
}

#[derive(Serialize)]
struct SealedMessage<'a> {
    role: &'a str,
    content: &'a str,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct VeniceParameters<'a> {
    #[serde(flatten)]
    client: &'a VeniceFlags,
    enable_e2ee: bool,
    include_venice_system_prompt: bool,
    enable_web_search: &'static str,
}

impl ChatRequest {
    /// The Venice request body: every message's content encrypted to the attested model key,
    /// streaming forced on, and the Venice flags that keep E2EE intact.
    pub fn encrypted_body(&self, model_key: &Recipient) -> Vec<u8> {
        self.encrypted_body_with(&Sealer::new(0), model_key, b"", &[])
    }

    /// The same with `extra` turns (a retry's correction), sealed by `sealer` (whose cache
    /// `scope` separates clients).
    pub fn encrypted_body_with(
        &self,
        sealer: &Sealer,
        model_key: &Recipient,
        scope: &[u8],
        extra: &[(&'static str, String)],
    ) -> Vec<u8> {
        let plain = self.upstream_messages(extra);
        let refs: Vec<(&str, &str)> = plain.iter().map(|(r, t)| (*r, t.as_ref())).collect();
        let sealed = sealer.seal(model_key, scope, &refs);
        let messages: Vec<SealedMessage> = plain
            .iter()
            .zip(sealed.iter())
            .map(|((role, _), content)| SealedMessage { role, content })
            .collect();
        let body = VeniceBody {
            model: &self.model,
            messages,
            stream: true,
            stream_options: StreamOptions {
                include_usage: true,
            },
            venice_parameters: VeniceParameters {
                client: &self.venice,
                enable_e2ee: true,
                include_venice_system_prompt: false,
                enable_web_search: "off",
            },
            generation: &self.generation,
        };
        serde_json::to_vec(&body).expect("request JSON serializes")
    }
}

/// Encrypts the request (plus any `extra` turns). One ECDH per message not sealed before:
/// long histories are sealed off the proxy's worker threads (and across cores), the request
/// moving there and back uncopied.
pub(crate) async fn encrypt(
    sealer: &Arc<Sealer>,
    req: ChatRequest,
    key: &Recipient,
    scope: Scope,
    extra: Vec<(&'static str, String)>,
) -> Result<(ChatRequest, Bytes), ApiError> {
    if !Sealer::is_heavy(req.messages.len() + extra.len()) {
        let body = Bytes::from(req.encrypted_body_with(sealer, key, &scope, &extra));
        return Ok((req, body));
    }
    let (sealer, key) = (sealer.clone(), key.clone());
    tokio::task::spawn_blocking(move || {
        let body = Bytes::from(req.encrypted_body_with(&sealer, &key, &scope, &extra));
        (req, body)
    })
    .await
    .map_err(|_| ApiError::internal("encryption task failed"))
}

/// Whose ciphertexts a request may reuse: a digest of its tenant and session id, else of its
/// tenant (the client token's index; the one client a sidecar serves when there are none).
pub(crate) type Scope = [u8; 32];

pub(crate) fn scope(tenant: Tenant, session_id: Option<&str>) -> Scope {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update((tenant as u64).to_le_bytes());
    if let Some(id) = session_id {
        h.update(b"session:");
        h.update(id.as_bytes());
    }
    h.finalize().into()
}
