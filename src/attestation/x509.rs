//! X.509 pieces the evidence checks share (NVIDIA device chains, Fulcio certificates): the
//! subject key, an ECDSA signature by an issuer, the validity window.

use der::Encode;
use ring::signature::{
    UnparsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA384_ASN1,
    ECDSA_P384_SHA256_ASN1, ECDSA_P384_SHA384_ASN1,
};
use x509_cert::Certificate;

/// Why a certificate, or a signature by one, is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CertError {
    /// A bit string with unused bits is not a key or signature encoding (and would let two
    /// encodings name the same value).
    #[error("{0} bit string has unused bits")]
    UnusedBits(&'static str),
    #[error("only ECDSA P-256/P-384 keys are supported")]
    UnsupportedKey,
    #[error("issuer name does not match the next certificate")]
    IssuerMismatch,
    #[error("unexpected signature algorithm {0}")]
    Algorithm(String),
    #[error("{0}")]
    Encoding(String),
    #[error("certificate signature does not verify")]
    BadSignature,
    #[error("certificate not valid at {at} (valid {from}..{to})")]
    NotValidAt { at: u64, from: u64, to: u64 },
}

pub(crate) const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
pub(crate) const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";

/// The subject's public key. A bit string with unused bits is not a key encoding (and
/// would let two encodings name the same key), so it is refused.
pub(crate) fn public_key(cert: &Certificate) -> Result<&[u8], CertError> {
    let key = &cert
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key;
    match key.unused_bits() {
        0 => Ok(key.raw_bytes()),
        _ => Err(CertError::UnusedBits("public key")),
    }
}

/// ECDSA by this key (P-256 or P-384, told by the point's length) with SHA-256 or SHA-384.
pub(crate) fn ecdsa(
    key: &[u8],
    sha384: bool,
) -> Result<&'static dyn VerificationAlgorithm, CertError> {
    Ok(match (key.len(), sha384) {
        (65, false) => &ECDSA_P256_SHA256_ASN1,
        (65, true) => &ECDSA_P256_SHA384_ASN1,
        (97, false) => &ECDSA_P384_SHA256_ASN1,
        (97, true) => &ECDSA_P384_SHA384_ASN1,
        _ => return Err(CertError::UnsupportedKey),
    })
}

/// Checks `cert` names `issuer` as its issuer and carries its ECDSA signature.
pub(crate) fn signed_by(cert: &Certificate, issuer: &Certificate) -> Result<(), CertError> {
    if cert.tbs_certificate().issuer() != issuer.tbs_certificate().subject() {
        return Err(CertError::IssuerMismatch);
    }
    let sha384 = match cert.signature_algorithm().oid.to_string().as_str() {
        OID_ECDSA_SHA256 => false,
        OID_ECDSA_SHA384 => true,
        other => return Err(CertError::Algorithm(other.to_string())),
    };
    if cert.signature().unused_bits() != 0 {
        return Err(CertError::UnusedBits("signature"));
    }
    let tbs = cert
        .tbs_certificate()
        .to_der()
        .map_err(|e| CertError::Encoding(e.to_string()))?;
    let key = public_key(issuer)?;
    UnparsedPublicKey::new(ecdsa(key, sha384)?, key)
        .verify(&tbs, cert.signature().raw_bytes())
        .map_err(|_| CertError::BadSignature)
}

/// The certificate is valid at `at` (Unix seconds).
pub(crate) fn valid_at(cert: &Certificate, at: u64) -> Result<(), CertError> {
    let v = cert.tbs_certificate().validity();
    let (from, to) = (
        v.not_before.to_unix_duration().as_secs(),
        v.not_after.to_unix_duration().as_secs(),
    );
    if at < from || at > to {
        return Err(CertError::NotValidAt { at, from, to });
    }
    Ok(())
}
