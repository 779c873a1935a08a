//! The Venice request body: a normalized chat request's conversation sealed to the attested
//! model key, with the flags that keep E2EE intact.

use crate::chat::request::ChatRequest;
use crate::e2ee::codec::Recipient;
use crate::e2ee::sealing::Sealer;
use serde_json::{json, Value};

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
