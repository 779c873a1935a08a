//! Encrypting a request's messages to the attested model key. Agents resend their whole
//! history every turn, so two things keep that cheap:
//! - a bounded cache of ciphertexts keyed by (model key, scope, role, SHA-256 of the text): an
//!   unchanged history message is sent as the same ciphertext as last turn instead of being
//!   encrypted again (`encryption.reuse_ciphertexts`; what that reveals is in SECURITY.md);
//! - the messages still to encrypt, when there are many, are encrypted in parallel across
//!   cores.
//!
//! The scope (a session id or client token, hashed into the key) keeps one client's
//! ciphertexts from ever appearing in another client's requests.

use crate::e2ee::codec::{self, Recipient};
use lru::LruCache;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};

/// Messages to encrypt at which the work is spread across cores (below it, thread hand-offs
/// cost more than they save).
const PARALLEL_FROM: usize = 8;

type Key = [u8; 32];

/// What an entry costs besides its ciphertext: the key, the LRU node and its links, the
/// table slot, the `Arc` header and the allocator's headers. Counted, so `cache_size` bounds
/// the memory the cache really takes (short messages would otherwise nearly double it).
const ENTRY_OVERHEAD: usize = 128;

fn cost(sealed: &str) -> usize {
    sealed.len() + ENTRY_OVERHEAD
}

struct Cache {
    entries: LruCache<Key, Arc<str>>,
    bytes: usize,
    limit: usize,
}

pub struct Sealer {
    cache: Option<Mutex<Cache>>,
}

impl Sealer {
    /// Ciphertexts kept for reuse within `cache_bytes` (entries' overhead counted); 0: none.
    pub fn new(cache_bytes: usize) -> Self {
        Sealer {
            cache: (cache_bytes > 0).then(|| {
                Mutex::new(Cache {
                    entries: LruCache::unbounded(),
                    bytes: 0,
                    limit: cache_bytes,
                })
            }),
        }
    }

    /// Every message's text encrypted to `to`, in order. Worth calling off the async workers
    /// when `messages` is long ([`Sealer::is_heavy`]).
    pub(crate) fn seal(
        &self,
        to: &Recipient,
        scope: &[u8],
        messages: &[(&str, &str)],
    ) -> Vec<Arc<str>> {
        let Some(cache) = &self.cache else {
            return encrypt_all(to, messages.iter().map(|(_, text)| *text).collect());
        };
        let keys: Vec<Key> = messages
            .iter()
            .map(|(role, text)| key(to, scope, role, text))
            .collect();
        let mut out: Vec<Option<Arc<str>>> = {
            let mut c = cache.lock().expect("poisoned");
            keys.iter().map(|k| c.entries.get(k).cloned()).collect()
        };
        let missing: Vec<usize> = (0..out.len()).filter(|&i| out[i].is_none()).collect();
        let fresh = encrypt_all(to, missing.iter().map(|&i| messages[i].1).collect());
        let mut c = cache.lock().expect("poisoned");
        for (&i, sealed) in missing.iter().zip(fresh) {
            c.insert(keys[i], sealed.clone());
            out[i] = Some(sealed);
        }
        drop(c);
        out.into_iter()
            .map(|s| s.expect("every message sealed"))
            .collect()
    }

    /// Whether sealing `n` messages may take long enough to move off an async worker.
    pub(crate) fn is_heavy(n: usize) -> bool {
        n >= PARALLEL_FROM
    }
}

impl Cache {
    fn insert(&mut self, key: Key, sealed: Arc<str>) {
        let added = cost(&sealed);
        if added > self.limit {
            return;
        }
        self.bytes += added;
        if let Some(old) = self.entries.put(key, sealed) {
            self.bytes -= cost(&old);
        }
        while self.bytes > self.limit {
            match self.entries.pop_lru() {
                Some((_, old)) => self.bytes -= cost(&old),
                None => break,
            }
        }
    }
}

fn key(to: &Recipient, scope: &[u8], role: &str, text: &str) -> Key {
    let mut h = Sha256::new();
    h.update(to.sec1());
    // Lengths first, so no two (scope, role, text) triples hash the same bytes.
    for part in [scope, role.as_bytes()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.update(text.as_bytes());
    h.finalize().into()
}

fn encrypt_all(to: &Recipient, texts: Vec<&str>) -> Vec<Arc<str>> {
    let one = |t: &&str| Arc::<str>::from(codec::encrypt(to, t.as_bytes()));
    if texts.len() >= PARALLEL_FROM {
        texts.par_iter().map(one).collect()
    } else {
        texts.iter().map(one).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::e2ee::codec::KeyPair;

    fn history(n: usize) -> Vec<(String, String)> {
        (0..n)
            .map(|i| {
                let role = if i % 2 == 0 { "user" } else { "assistant" };
                (role.to_string(), format!("message {i}"))
            })
            .collect()
    }

    fn refs(h: &[(String, String)]) -> Vec<(&str, &str)> {
        h.iter().map(|(r, t)| (r.as_str(), t.as_str())).collect()
    }

    #[test]
    fn every_message_decrypts_in_order_with_or_without_the_cache() {
        let model = KeyPair::generate();
        let h = history(20);
        for sealer in [Sealer::new(0), Sealer::new(1 << 20)] {
            let sealed = sealer.seal(&model.recipient(), b"", &refs(&h));
            for ((_, text), c) in h.iter().zip(&sealed) {
                assert_eq!(&model.decrypt_str(c).unwrap(), text);
            }
        }
    }

    #[test]
    fn an_unchanged_message_is_reused_only_for_the_same_key_scope_and_role() {
        let (model, other) = (KeyPair::generate(), KeyPair::generate());
        let sealer = Sealer::new(1 << 20);
        let h = history(10);
        let first = sealer.seal(&model.recipient(), b"a", &refs(&h));
        let mut next = h.clone();
        next.push(("user".into(), "a new turn".into()));
        let second = sealer.seal(&model.recipient(), b"a", &refs(&next));
        assert_eq!(&second[..10], &first[..], "history reused");
        assert_eq!(model.decrypt_str(&second[10]).unwrap(), "a new turn");
        // Another scope, another model key, another role: encrypted anew.
        let scoped = sealer.seal(&model.recipient(), b"b", &refs(&h));
        assert!(scoped.iter().zip(&first).all(|(x, y)| x != y));
        let keyed = sealer.seal(&other.recipient(), b"a", &refs(&h));
        assert!(keyed.iter().zip(&first).all(|(x, y)| x != y));
        assert_eq!(other.decrypt_str(&keyed[0]).unwrap(), "message 0");
        let roles = sealer.seal(&model.recipient(), b"a", &[("system", "message 0")]);
        assert_ne!(roles[0], first[0]);
        // Without a cache nothing is ever reused.
        let plain = Sealer::new(0);
        let x = plain.seal(&model.recipient(), b"a", &refs(&h));
        let y = plain.seal(&model.recipient(), b"a", &refs(&h));
        assert!(x.iter().zip(&y).all(|(a, b)| a != b));
    }

    #[test]
    fn the_cache_stays_within_its_bytes() {
        let model = KeyPair::generate();
        let one = cost(&codec::encrypt(&model.recipient(), b"message 00"));
        let sealer = Sealer::new(one * 5);
        let h: Vec<(String, String)> = (0..20)
            .map(|i| ("user".to_string(), format!("message {i:02}")))
            .collect();
        sealer.seal(&model.recipient(), b"", &refs(&h));
        let c = sealer.cache.as_ref().unwrap().lock().unwrap();
        assert!(c.bytes <= one * 5, "{}", c.bytes);
        assert_eq!(c.entries.len(), 5, "the most recent five");
    }
}
