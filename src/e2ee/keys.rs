//! The proxy's own client key pair, rotated on an interval. Requests take an `Arc` of the
//! current key when they start, so a stream in flight keeps the key it was encrypted for.

use crate::e2ee::codec::KeyPair;
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct ClientKey {
    pub pair: KeyPair,
    pub created: Instant,
}

pub(crate) struct ClientKeys {
    current: ArcSwap<ClientKey>,
    rotation: Duration,
}

impl ClientKeys {
    pub(crate) fn new(rotation: Duration) -> Self {
        ClientKeys {
            current: ArcSwap::from_pointee(ClientKey {
                pair: KeyPair::generate(),
                created: Instant::now(),
            }),
            rotation,
        }
    }

    pub(crate) fn current(&self) -> Arc<ClientKey> {
        self.current.load_full()
    }

    /// Replaces the key when it is older than the rotation interval. Returns whether it did.
    pub(crate) fn rotate_if_due(&self) -> bool {
        if self.current.load().created.elapsed() < self.rotation {
            return false;
        }
        self.current.store(Arc::new(ClientKey {
            pair: KeyPair::generate(),
            created: Instant::now(),
        }));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_old_holders_working() {
        let keys = ClientKeys::new(Duration::from_millis(1));
        let before = keys.current();
        std::thread::sleep(Duration::from_millis(5));
        assert!(keys.rotate_if_due());
        let after = keys.current();
        assert_ne!(before.pair.public_hex(), after.pair.public_hex());
        // The old key still decrypts what was encrypted to it.
        let packed = crate::e2ee::codec::encrypt(&before.pair.recipient(), b"late chunk");
        assert_eq!(before.pair.decrypt(&packed).unwrap(), b"late chunk");
        assert!(!ClientKeys::new(Duration::from_secs(60)).rotate_if_due());
    }
}
