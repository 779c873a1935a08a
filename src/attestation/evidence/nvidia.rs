//! NVIDIA GPU evidence from `nvidia_payload`: per GPU, the device certificate chain to the
//! pinned NVIDIA Device Identity root, the SPDM 1.1 GET_MEASUREMENTS signature (ECDSA P-384
//! over request ‖ response) by the device key, and the request nonce equal to ours.

use base64::Engine;
use der::Encode;
use ring::signature::{UnparsedPublicKey, ECDSA_P384_SHA384_ASN1, ECDSA_P384_SHA384_FIXED};
use serde::Deserialize;
use x509_cert::Certificate;

/// GET_MEASUREMENTS request with a signature requested: header 4, nonce 32, slot 1.
const REQUEST_LEN: usize = 37;
const SIGNATURE_LEN: usize = 96;
const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";

#[derive(Debug, Clone, Deserialize)]
pub struct Payload {
    #[serde(default)]
    pub arch: Option<String>,
    #[serde(default)]
    pub nonce: Option<String>,
    pub evidence_list: Vec<GpuEvidence>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GpuEvidence {
    #[serde(default)]
    pub arch: Option<String>,
    /// Base64 of a PEM chain, device certificate first.
    pub certificate: String,
    /// Base64 of the SPDM GET_MEASUREMENTS request ‖ response.
    pub evidence: String,
}

/// `nvidia_payload` is a JSON string (or, liberally, an object).
pub fn parse_payload(v: &serde_json::Value) -> Result<Payload, String> {
    let parsed = match v {
        serde_json::Value::String(s) => serde_json::from_str(s),
        other => serde_json::from_value(other.clone()),
    };
    parsed.map_err(|e| format!("nvidia_payload: {e}"))
}

/// Which GPU check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuCheck {
    CertChain,
    Signature,
    Nonce,
}

pub type GpuResult = Result<(), (GpuCheck, String)>;

fn b64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|_| "not base64".to_string())
}

fn public_key(cert: &Certificate) -> &[u8] {
    cert.tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes()
}

/// Checks `cert` was signed (ECDSA P-384 / SHA-384) by `issuer` and names it as issuer.
fn signed_by(cert: &Certificate, issuer: &Certificate) -> Result<(), String> {
    if cert.tbs_certificate().issuer() != issuer.tbs_certificate().subject() {
        return Err("issuer name does not match the next certificate".into());
    }
    if cert.signature_algorithm().oid.to_string() != OID_ECDSA_SHA384 {
        return Err(format!(
            "unexpected signature algorithm {}",
            cert.signature_algorithm().oid
        ));
    }
    let tbs = cert.tbs_certificate().to_der().map_err(|e| e.to_string())?;
    let signature = cert.signature().raw_bytes();
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, public_key(issuer))
        .verify(&tbs, signature)
        .map_err(|_| "certificate signature does not verify".to_string())
}

fn valid_at(cert: &Certificate, now: u64) -> Result<(), String> {
    let v = cert.tbs_certificate().validity();
    let (from, to) = (
        v.not_before.to_unix_duration().as_secs(),
        v.not_after.to_unix_duration().as_secs(),
    );
    if now < from || now > to {
        return Err(format!(
            "certificate not valid at {now} (valid {from}..{to})"
        ));
    }
    Ok(())
}

/// The device chain, leaf first, must end at (or be signed by) the pinned root.
fn verify_chain(chain_pem: &[u8], root: &Certificate, now: u64) -> Result<Certificate, String> {
    let chain =
        Certificate::load_pem_chain(chain_pem).map_err(|e| format!("certificate chain: {e}"))?;
    let leaf = chain.first().ok_or("empty certificate chain")?.clone();
    for (i, pair) in chain.windows(2).enumerate() {
        signed_by(&pair[0], &pair[1]).map_err(|e| format!("certificate {i}: {e}"))?;
    }
    for c in &chain {
        valid_at(c, now)?;
    }
    let top = chain.last().expect("non-empty");
    let root_der = root.to_der().map_err(|e| e.to_string())?;
    if top.to_der().map_err(|e| e.to_string())? != root_der {
        signed_by(top, root)
            .map_err(|e| format!("chain does not lead to the pinned NVIDIA root: {e}"))?;
    }
    Ok(leaf)
}

pub fn parse_root(pem: &str) -> Result<Certificate, String> {
    Certificate::load_pem_chain(pem.as_bytes())
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| "no certificate in the NVIDIA root file".to_string())
}

/// Verifies one GPU's evidence at `now` (Unix seconds) against our `nonce`.
pub fn verify_gpu(gpu: &GpuEvidence, root: &Certificate, nonce: &[u8; 32], now: u64) -> GpuResult {
    let chain =
        b64(&gpu.certificate).map_err(|e| (GpuCheck::CertChain, format!("certificate {e}")))?;
    let leaf = verify_chain(&chain, root, now).map_err(|e| (GpuCheck::CertChain, e))?;
    let evidence =
        b64(&gpu.evidence).map_err(|e| (GpuCheck::Signature, format!("evidence {e}")))?;
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
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, public_key(&leaf))
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
