//! Hardware evidence behind an attestation, verified by the proxy itself: Intel DCAP for the
//! TDX quote, the dstack workload (event log, compose), and NVIDIA GPU evidence.

pub mod capture;
pub(crate) mod compose;
pub mod dcap;
mod error;
pub(crate) mod nras;
pub mod nvidia;
pub mod pcs;
pub mod report;
pub(crate) mod review;
pub(crate) mod source;
pub mod trust_roots;
pub mod workload;

pub use error::EvidenceError;

#[cfg(test)]
mod aci_tests;
#[cfg(test)]
mod drift_tests;
#[cfg(test)]
mod tests;
