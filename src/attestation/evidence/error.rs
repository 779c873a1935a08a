//! Why hardware evidence could not be used: a service it needs (Intel PCS, NVIDIA NRAS)
//! could not be asked, which is an outage and no verdict, or the evidence does not verify.

/// A hardware-evidence failure, its text the reason the report gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// Intel PCS or NVIDIA NRAS could not be reached or answered out of protocol.
    #[error("{0}")]
    Unavailable(String),
    /// A quote, certificate, signature, event log, collateral or GPU report does not parse
    /// or does not verify.
    #[error("{0}")]
    Invalid(String),
}

/// The verifiers' own reasons are verdicts on what they read.
impl From<String> for EvidenceError {
    fn from(why: String) -> Self {
        EvidenceError::Invalid(why)
    }
}

impl From<&str> for EvidenceError {
    fn from(why: &str) -> Self {
        EvidenceError::Invalid(why.to_string())
    }
}
