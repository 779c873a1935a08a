//! Why Sigstore evidence could not be used: the log could not be asked (an outage, no verdict
//! on the image), or what it answered does not verify.

/// A provenance failure, its text the reason the report gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvenanceError {
    /// Rekor could not be reached or answered out of protocol, or a capture did not record
    /// the lookup.
    #[error("{0}")]
    Unavailable(String),
    /// An entry, its proof, checkpoint, certificate or signature does not verify, or the
    /// trusted root does not parse.
    #[error("{0}")]
    Invalid(String),
}

/// The verifiers' own reasons are verdicts on what they read.
impl From<String> for ProvenanceError {
    fn from(why: String) -> Self {
        ProvenanceError::Invalid(why)
    }
}

/// A certificate or key that does not verify is a verdict too.
impl From<crate::attestation::x509::CertError> for ProvenanceError {
    fn from(e: crate::attestation::x509::CertError) -> Self {
        ProvenanceError::Invalid(e.to_string())
    }
}

impl From<&str> for ProvenanceError {
    fn from(why: &str) -> Self {
        ProvenanceError::Invalid(why.to_string())
    }
}
