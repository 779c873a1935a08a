//! The proxy's own client key pairs, one per tenant (client token), rotated on an interval.
//! Requests take an `Arc` of their tenant's current key when they start, so a stream in flight
//! keeps the key it was encrypted for. Tenants never share a key: a gateway cannot answer one
//! with another's encrypted answer and have the proxy decrypt it.

use crate::config::Tenant;
use crate::e2ee::codec::KeyPair;
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct ClientKey {
    pub pair: KeyPair,
    pub created: Instant,
}

impl ClientKey {
    pub(crate) fn generate() -> Self {
        ClientKey {
            pair: KeyPair::generate(),
            created: Instant::now(),
        }
    }
}

pub(crate) struct ClientKeys {
    /// By tenant.
    current: Vec<ArcSwap<ClientKey>>,
    rotation: Duration,
}

impl ClientKeys {
    /// Keys for `tenants` tenants (at least one).
    pub(crate) fn new(tenants: usize, rotation: Duration) -> Self {
        ClientKeys {
            current: (0..tenants.max(1))
                .map(|_| ArcSwap::from_pointee(ClientKey::generate()))
                .collect(),
            rotation,
        }
    }

    pub(crate) fn current(&self, tenant: Tenant) -> Arc<ClientKey> {
        self.current[tenant.min(self.current.len() - 1)].load_full()
    }

    /// Replaces each key older than the rotation interval. Returns whether any was.
    pub(crate) fn rotate_if_due(&self) -> bool {
        let mut rotated = false;
        for key in &self.current {
            if key.load().created.elapsed() >= self.rotation {
                key.store(Arc::new(ClientKey::generate()));
                rotated = true;
            }
        }
        rotated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_old_holders_working() {
        let keys = ClientKeys::new(1, Duration::from_millis(1));
        let before = keys.current(0);
        std::thread::sleep(Duration::from_millis(5));
        assert!(keys.rotate_if_due());
        let after = keys.current(0);
        assert_ne!(before.pair.public_hex(), after.pair.public_hex());
        // The old key still decrypts what was encrypted to it.
        let packed = crate::e2ee::codec::encrypt(&before.pair.recipient(), b"late chunk");
        assert_eq!(before.pair.decrypt(&packed).unwrap(), b"late chunk");
        assert!(!ClientKeys::new(1, Duration::from_secs(60)).rotate_if_due());
    }

    #[test]
    fn tenants_never_share_a_key() {
        let keys = ClientKeys::new(3, Duration::from_secs(60));
        let hex: std::collections::BTreeSet<String> = (0..3)
            .map(|t| keys.current(t).pair.public_hex().to_string())
            .collect();
        assert_eq!(hex.len(), 3);
        assert_eq!(
            keys.current(1).pair.public_hex(),
            keys.current(1).pair.public_hex()
        );
    }
}
