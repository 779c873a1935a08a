//! Attestation: parse and verify (pure), fetch from Venice, cache per model, refresh.

pub mod aci;
pub mod framing;
pub mod pin;
pub mod provenance;
pub mod quote;
pub mod receipts;
pub mod store;
pub mod verifier;
pub mod verify;
pub mod x509;

pub use verify::{AttestationError, Check, Policy, VerifiedKey};
pub mod evidence;
