//! NVIDIA GPU evidence from `nvidia_payload`: per GPU, the device certificate chain to the
//! pinned NVIDIA Device Identity root, the SPDM 1.1 GET_MEASUREMENTS signature (ECDSA P-384
//! over request ‖ response) by the device key, and the request nonce equal to ours.

use super::EvidenceError;
use crate::attestation::framing;
use crate::attestation::x509::{self, CertError};
use der::Encode;
use ring::signature::{UnparsedPublicKey, ECDSA_P384_SHA384_FIXED};
use serde::Deserialize;
use x509_cert::Certificate;

/// GET_MEASUREMENTS request with a signature requested: header 4, nonce 32, slot 1.
const REQUEST_LEN: usize = 37;
const SIGNATURE_LEN: usize = 96;

#[derive(Debug, Clone, Deserialize)]
pub struct Payload {
    #[serde(default)]
    pub(crate) arch: Option<String>,
    #[serde(default)]
    pub(crate) nonce: Option<String>,
    pub evidence_list: Vec<GpuEvidence>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GpuEvidence {
    #[serde(default)]
    pub(crate) arch: Option<String>,
    /// Base64 of a PEM chain, device certificate first.
    pub certificate: String,
    /// Base64 of the SPDM GET_MEASUREMENTS request ‖ response.
    pub evidence: String,
}

/// `nvidia_payload` is a JSON string (or, liberally, an object).
pub fn parse_payload(v: &serde_json::Value) -> Result<Payload, EvidenceError> {
    let v = framing::nested(v, "nvidia_payload")?;
    Payload::deserialize(v.as_ref()).map_err(|e| format!("nvidia_payload: {e}").into())
}

/// Which GPU check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GpuCheck {
    CertChain,
    Signature,
    Nonce,
}

pub(crate) type GpuResult = Result<(), (GpuCheck, String)>;

/// NVIDIA's device chains are signed with ECDSA P-384 / SHA-384 only.
fn signed_by(cert: &Certificate, issuer: &Certificate) -> Result<(), CertError> {
    let algorithm = cert.signature_algorithm().oid.to_string();
    if algorithm != x509::OID_ECDSA_SHA384 {
        return Err(CertError::Algorithm(algorithm));
    }
    x509::signed_by(cert, issuer)
}

/// The device chain, leaf first, must end at (or be signed by) the pinned root.
fn verify_chain(
    chain: Vec<Certificate>,
    root: &Certificate,
    now: u64,
) -> Result<Certificate, String> {
    let leaf = chain.first().ok_or("empty certificate chain")?.clone();
    for (i, pair) in chain.windows(2).enumerate() {
        signed_by(&pair[0], &pair[1]).map_err(|e| format!("certificate {i}: {e}"))?;
    }
    for c in &chain {
        x509::valid_at(c, now).map_err(|e| e.to_string())?;
    }
    let top = chain.last().expect("non-empty");
    let root_der = root.to_der().map_err(|e| e.to_string())?;
    if top.to_der().map_err(|e| e.to_string())? != root_der {
        signed_by(top, root)
            .map_err(|e| format!("chain does not lead to the pinned NVIDIA root: {e}"))?;
    }
    Ok(leaf)
}

pub(crate) fn parse_root(pem: &str) -> Result<Certificate, EvidenceError> {
    framing::pem_certificates(pem.as_bytes())
        .map_err(|e| format!("NVIDIA root file: {e}"))?
        .into_iter()
        .next()
        .ok_or_else(|| "no certificate in the NVIDIA root file".into())
}

/// Verifies one GPU's evidence at `now` (Unix seconds) against our `nonce`.
pub(crate) fn verify_gpu(
    gpu: &GpuEvidence,
    root: &Certificate,
    nonce: &[u8; 32],
    now: u64,
) -> GpuResult {
    let chain = framing::pem_field(&gpu.certificate)
        .map_err(|e| (GpuCheck::CertChain, format!("certificate chain: {e}")))?;
    let leaf = verify_chain(chain, root, now).map_err(|e| (GpuCheck::CertChain, e))?;
    let evidence = framing::base64_bytes(&gpu.evidence)
        .map_err(|e| (GpuCheck::Signature, format!("evidence is {e}")))?;
    if evidence.len() < REQUEST_LEN + 8 + SIGNATURE_LEN
        || evidence[1] != 0xE0
        || evidence[REQUEST_LEN + 1] != 0x60
    {
        return Err((
            GpuCheck::Signature,
            "evidence is not an SPDM GET_MEASUREMENTS exchange".into(),
        ));
    }
    let (signed, signature) = evidence.split_at(evidence.len() - SIGNATURE_LEN);
    let device_key = x509::public_key(&leaf).map_err(|e| (GpuCheck::CertChain, e.to_string()))?;
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, device_key)
        .verify(signed, signature)
        .map_err(|_| {
            (
                GpuCheck::Signature,
                "SPDM measurement signature does not verify with the device key".into(),
            )
        })?;
    if evidence[4..36] != nonce[..] {
        return Err((
            GpuCheck::Nonce,
            "the GPU evidence carries a different nonce".into(),
        ));
    }
    Ok(())
}
