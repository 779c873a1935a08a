//! Attestation: parse and verify (pure), fetch from Venice, cache per model, refresh.

pub mod aci;
pub(crate) mod anchor_checks;
pub(crate) mod cache;
pub(crate) mod claims;
pub(crate) mod drift;
pub mod envelope;
pub mod framing;
pub(crate) mod model_identity;
pub(crate) mod pin;
pub mod provenance;
pub mod quote;
pub mod receipt_checks;
pub(crate) mod second_hop;
#[cfg(any(test, feature = "testkit"))]
pub mod variants;
pub mod verifier;
pub(crate) mod x509;

pub(crate) use envelope::{AttestationError, Check};

/// The time, Unix seconds, that verification runs at.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
pub mod evidence;
