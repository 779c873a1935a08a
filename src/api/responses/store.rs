//! Stored responses for `previous_response_id`: each response's conversation, per tenant, bounded in number (least recently used evicted) and in age. Off by default:
//! it keeps conversation text in the proxy's memory.

use crate::chat::conversation::Message;
use crate::config::Tenant;
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A stored conversation and when it was stored.
type Stored = (Instant, Arc<Vec<Message>>);

pub struct ResponseStore {
    map: Mutex<LruCache<(Tenant, String), Stored>>,
    ttl: Duration,
}

impl ResponseStore {
    /// `None` when `size` is 0 (the store is off).
    pub(crate) fn new(size: usize, ttl: Duration) -> Option<Self> {
        Some(ResponseStore {
            map: Mutex::new(LruCache::new(NonZeroUsize::new(size)?)),
            ttl,
        })
    }

    pub(crate) fn get(&self, tenant: Tenant, id: &str) -> Option<Arc<Vec<Message>>> {
        let key = (tenant, id.to_string());
        let mut map = self.map.lock().expect("poisoned");
        let (at, conversation) = map.get(&key)?;
        if at.elapsed() > self.ttl {
            map.pop(&key);
            return None;
        }
        Some(conversation.clone())
    }

    pub(crate) fn put(&self, tenant: Tenant, id: String, conversation: Vec<Message>) {
        self.map
            .lock()
            .expect("poisoned")
            .put((tenant, id), (Instant::now(), Arc::new(conversation)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_expiring() {
        assert!(ResponseStore::new(0, Duration::from_secs(1)).is_none());
        let s = ResponseStore::new(2, Duration::from_secs(60)).unwrap();
        for i in 0..3 {
            s.put(0, format!("resp_{i}"), vec![Message::User(i.to_string())]);
        }
        assert!(s.get(0, "resp_0").is_none(), "least recently used evicted");
        assert_eq!(s.get(0, "resp_2").unwrap()[0], Message::User("2".into()));
        assert!(s.get(1, "resp_2").is_none(), "another tenant's");
        let s = ResponseStore::new(2, Duration::ZERO).unwrap();
        s.put(0, "r".into(), vec![]);
        std::thread::sleep(Duration::from_millis(2));
        assert!(s.get(0, "r").is_none(), "expired");
    }
}
