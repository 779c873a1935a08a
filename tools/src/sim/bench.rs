//! The benchmark upstream (`sim --bench`): a fixed answer whose encrypted SSE events are built
//! once per (client key, model) and replayed, so the upstream costs next to nothing and a
//! benchmark measures the proxy. Requests are still checked as Venice checks them, except that
//! encrypted messages are checked for form (hex of a packed field) but not decrypted: that
//! would be an ECDH per message on the upstream's side.

use bytes::Bytes;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use venice_e2ee_proxy::e2ee::codec::{self, Recipient};

/// Distinct (client key, model) answers kept; past it the cache starts over. A proxy uses one
/// client key at a time (plus one per agent session).
const CACHE_LIMIT: usize = 4096;

/// One answer's events, encrypted to one client key.
pub struct Events {
    /// The role event, before the time to first token.
    pub head: Bytes,
    /// One event per answer token.
    pub chunks: Vec<Bytes>,
    /// Finish, usage and `[DONE]`.
    pub tail: Bytes,
    /// Finish and `[DONE]`, for a client that did not ask for usage.
    pub tail_without_usage: Bytes,
}

pub struct Bench {
    tokens: Vec<String>,
    cache: Mutex<HashMap<(String, String), Arc<Events>>>,
}

impl Bench {
    /// An answer of `reply_tokens` word tokens.
    pub fn new(reply_tokens: usize) -> Self {
        const WORDS: &[&str] = &[
            "The", "enclave", "answers", "every", "question", "in", "private", "and", "the",
            "proxy", "decrypts", "each", "token", "as", "it", "arrives.",
        ];
        let tokens = (0..reply_tokens)
            .map(|i| format!(" {}", WORDS[i % WORDS.len()]))
            .collect();
        Bench {
            tokens,
            cache: Mutex::default(),
        }
    }

    /// The answer's events for this client key and model, encrypted on first use.
    pub fn events(&self, client_hex: &str, client: &k256::PublicKey, model: &str) -> Arc<Events> {
        let key = (client_hex.to_string(), model.to_string());
        if let Some(hit) = self.cache.lock().expect("poisoned").get(&key) {
            return hit.clone();
        }
        let built = Arc::new(self.build(&Recipient::new(client), model));
        let mut cache = self.cache.lock().expect("poisoned");
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, built.clone());
        built
    }

    fn build(&self, to: &Recipient, model: &str) -> Events {
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let event = |choices: serde_json::Value, usage: Option<serde_json::Value>| {
            let mut v = json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk",
                               "created": created, "model": model, "choices": choices});
            if let Some(u) = usage {
                v["usage"] = u;
            }
            format!("data: {v}\n\n")
        };
        let head = event(
            json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
            None,
        );
        let chunks = self
            .tokens
            .iter()
            .map(|t| {
                let packed = codec::encrypt(to, t.as_bytes());
                Bytes::from(event(
                    json!([{"index": 0, "delta": {"content": packed}, "finish_reason": null}]),
                    None,
                ))
            })
            .collect();
        let finish = event(
            json!([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
            None,
        );
        let n = self.tokens.len();
        let usage = event(
            json!([]),
            Some(json!({"prompt_tokens": 16, "completion_tokens": n, "total_tokens": 16 + n})),
        );
        const DONE: &str = "data: [DONE]\n\n";
        Events {
            head: Bytes::from(head),
            chunks,
            tail: Bytes::from(format!("{finish}{usage}{DONE}")),
            tail_without_usage: Bytes::from(format!("{finish}{DONE}")),
        }
    }
}
