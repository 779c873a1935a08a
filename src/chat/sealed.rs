//! The Venice request body: a normalized chat request's conversation sealed to the attested
//! model key, with the flags that keep E2EE intact.

use crate::chat::request::ChatRequest;
use crate::config::Tenant;
use crate::e2ee::codec::Recipient;
use crate::e2ee::sealing::Sealer;
use crate::error::ApiError;
use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::Arc;

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
        let messages: Vec<Value> = plain
            .iter()
            .zip(sealed)
            .map(|((role, _), content)| json!({"role": role, "content": &*content}))
            .collect();
        let mut venice = self.venice_flags.clone();
        venice.insert("enable_e2ee".into(), json!(true));
        venice.insert("include_venice_system_prompt".into(), json!(false));
        venice.insert("enable_web_search".into(), json!("off"));
        let mut body = self.forwarded.clone();
        body.insert("model".into(), json!(self.model));
        body.insert("messages".into(), Value::Array(messages));
        body.insert("stream".into(), json!(true));
        // Always ask for usage: non-streaming answers need it; streams drop it unless asked.
        body.insert("stream_options".into(), json!({"include_usage": true}));
        body.insert("venice_parameters".into(), Value::Object(venice));
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
