//! Agent sessions: each session id (a header, or `metadata.session_id`) gets its own client
//! key pair, so two agents sharing one egress sidecar never share a response key. Session ids
//! are namespaced per tenant (client token): one tenant naming another's id gets its own key. A session
//! keeps its key for an idle TTL, a max TTL and a request budget; the number of live sessions
//! is bounded (least recently used evicted), so a flood of fresh ids keeps memory bounded.
//! Ids are kept only as salted hashes, never logged in clear, never sent upstream.

use crate::config::{SessionsSection, Tenant};
use crate::e2ee::keys::ClientKey;
use lru::LruCache;
use sha2::{Digest, Sha256};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Instant;

type IdHash = [u8; 32];

struct Session {
    key: Arc<ClientKey>,
    last_used: Instant,
    requests: u64,
}

pub struct Sessions {
    /// `None` when sessions are off (`max_sessions: 0`).
    map: Option<Mutex<LruCache<IdHash, Session>>>,
    config: SessionsSection,
    /// Per-process salt: the map never holds an id, nor a hash of it that outlives us.
    salt: [u8; 32],
}

impl Sessions {
    pub fn new(config: SessionsSection) -> Self {
        Sessions {
            map: NonZeroUsize::new(config.max_sessions).map(|n| Mutex::new(LruCache::new(n))),
            config,
            salt: rand::random(),
        }
    }

    fn hash(&self, tenant: Tenant, id: &str) -> IdHash {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update((tenant as u64).to_le_bytes());
        h.update(id.as_bytes());
        h.finalize().into()
    }

    /// A short, salted tag for logs: the same session reads the same within one process.
    pub(crate) fn tag(&self, tenant: Tenant, id: &str) -> String {
        hex::encode(&self.hash(tenant, id)[..4])
    }

    /// The session's key pair: its current one, or a new one when it has none, or when its
    /// key ran out (idle, age, request budget). `None` when sessions are off.
    pub fn key(&self, tenant: Tenant, id: &str) -> Option<Arc<ClientKey>> {
        let map = self.map.as_ref()?;
        let h = self.hash(tenant, id);
        if let Some(key) = self.use_live(map, &h) {
            return Some(key);
        }
        // Key generation stays outside the lock.
        let fresh = Arc::new(ClientKey::generate());
        let mut sessions = map.lock().expect("poisoned");
        // A concurrent request of the same session may have made one meanwhile.
        if let Some(s) = sessions.get_mut(&h) {
            s.requests += 1;
            return Some(s.key.clone());
        }
        sessions.put(
            h,
            Session {
                key: fresh.clone(),
                last_used: Instant::now(),
                requests: 1,
            },
        );
        Some(fresh)
    }

    fn use_live(
        &self,
        map: &Mutex<LruCache<IdHash, Session>>,
        h: &IdHash,
    ) -> Option<Arc<ClientKey>> {
        let mut sessions = map.lock().expect("poisoned");
        let s = sessions.get_mut(h)?;
        let c = &self.config;
        let live = s.last_used.elapsed() <= c.idle_ttl
            && s.key.created.elapsed() <= c.max_ttl
            && s.requests < c.max_requests;
        if !live {
            sessions.pop(h);
            return None;
        }
        s.last_used = Instant::now();
        s.requests += 1;
        Some(s.key.clone())
    }

    /// Live sessions held.
    pub fn len(&self) -> usize {
        self.map
            .as_ref()
            .map_or(0, |m| m.lock().expect("poisoned").len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sessions(f: impl FnOnce(&mut SessionsSection)) -> Sessions {
        let mut c = SessionsSection::default();
        f(&mut c);
        Sessions::new(c)
    }

    #[test]
    fn same_id_same_key_other_id_other_key() {
        let s = sessions(|_| {});
        let a = s.key(0, "agent-a").unwrap();
        assert_eq!(
            s.key(0, "agent-a").unwrap().pair.public_hex(),
            a.pair.public_hex()
        );
        assert_ne!(
            s.key(0, "agent-b").unwrap().pair.public_hex(),
            a.pair.public_hex()
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s.tag(0, "agent-a"), s.tag(0, "agent-a"));
        assert_ne!(s.tag(0, "agent-a"), s.tag(0, "agent-b"));
    }

    #[test]
    fn keys_end_with_their_budget_idle_time_or_age() {
        let s = sessions(|c| c.max_requests = 2);
        let first = s.key(0, "a").unwrap().pair.public_hex().to_string();
        assert_eq!(s.key(0, "a").unwrap().pair.public_hex(), first);
        assert_ne!(
            s.key(0, "a").unwrap().pair.public_hex(),
            first,
            "budget of 2 spent"
        );
        let s = sessions(|c| c.idle_ttl = Duration::ZERO);
        let first = s.key(0, "a").unwrap().pair.public_hex().to_string();
        std::thread::sleep(Duration::from_millis(2));
        assert_ne!(
            s.key(0, "a").unwrap().pair.public_hex(),
            first,
            "idle too long"
        );
        let s = sessions(|c| c.max_ttl = Duration::ZERO);
        let first = s.key(0, "a").unwrap().pair.public_hex().to_string();
        std::thread::sleep(Duration::from_millis(2));
        assert_ne!(s.key(0, "a").unwrap().pair.public_hex(), first, "too old");
    }

    #[test]
    fn a_flood_of_fresh_ids_stays_bounded() {
        let s = sessions(|c| c.max_sessions = 100);
        let kept = s.key(0, "old").unwrap().pair.public_hex().to_string();
        for i in 0..1000 {
            s.key(0, &format!("fresh-{i}"));
        }
        assert_eq!(s.len(), 100);
        assert_ne!(
            s.key(0, "old").unwrap().pair.public_hex(),
            kept,
            "least recently used went first"
        );
        assert!(sessions(|c| c.max_sessions = 0).key(0, "x").is_none());
    }

    #[test]
    fn each_tenant_has_its_own_session_namespace() {
        let s = sessions(|_| {});
        assert_ne!(
            s.key(0, "shared-id").unwrap().pair.public_hex(),
            s.key(1, "shared-id").unwrap().pair.public_hex()
        );
        assert_ne!(s.tag(0, "shared-id"), s.tag(1, "shared-id"));
        assert_eq!(s.len(), 2);
    }
}
