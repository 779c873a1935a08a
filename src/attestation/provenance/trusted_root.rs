//! Sigstore's trusted root (the `application/vnd.dev.sigstore.trustedroot+json` document):
//! the Rekor log keys by log id and the Fulcio CA chains, each with its validity window.
//! The public-good one is pinned into the binary; a file may replace it (test PKIs).

use super::ProvenanceError;
use crate::attestation::framing;
use crate::attestation::framing::unix_time;
use serde_json::Value;
use sha2::{Digest, Sha256};
use x509_cert::der::Decode;
use x509_cert::Certificate;

pub(crate) const PUBLIC_GOOD: &str =
    include_str!("../../../conf/trust-roots/sigstore-trusted-root.json");

/// A signature scheme a log key uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    EcdsaP256,
    Ed25519,
}

#[derive(Debug, Clone)]
pub(crate) struct LogKey {
    /// SHA-256 of the key's SubjectPublicKeyInfo DER: Rekor's `logID`.
    pub(crate) log_id: [u8; 32],
    pub(crate) kind: KeyKind,
    /// The raw public key (SEC1 point or Ed25519 bytes).
    pub(crate) key: Vec<u8>,
    pub(crate) valid_from: u64,
    pub(crate) valid_to: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct CertificateAuthority {
    pub(crate) uri: String,
    /// Intermediate(s) first, the root last.
    pub(crate) chain: Vec<Certificate>,
    pub(crate) valid_from: u64,
    pub(crate) valid_to: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct TrustedRoot {
    pub(crate) logs: Vec<LogKey>,
    pub(crate) cas: Vec<CertificateAuthority>,
}

fn window(v: &Value, what: &str) -> Result<(u64, Option<u64>), String> {
    let start = v
        .pointer("/validFor/start")
        .and_then(Value::as_str)
        .and_then(unix_time)
        .ok_or(format!("{what}: no validFor.start"))?;
    let end = match v.pointer("/validFor/end").and_then(Value::as_str) {
        Some(t) => Some(unix_time(t).ok_or(format!("{what}: bad validFor.end"))?),
        None => None,
    };
    Ok((start, end))
}

/// The subject public key of a DER SubjectPublicKeyInfo, and the algorithm OID.
pub(crate) fn spki_key(der: &[u8]) -> Result<(String, Vec<u8>), String> {
    let spki = x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(der)
        .map_err(|e| format!("public key: {e}"))?;
    if spki.subject_public_key.unused_bits() != 0 {
        return Err("public key bit string has unused bits".into());
    }
    Ok((
        spki.algorithm.oid.to_string(),
        spki.subject_public_key.raw_bytes().to_vec(),
    ))
}

impl TrustedRoot {
    pub(crate) fn parse(text: &str) -> Result<Self, ProvenanceError> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("trusted root: {e}"))?;
        let mut logs = Vec::new();
        for (i, t) in v["tlogs"]
            .as_array()
            .ok_or("trusted root: no tlogs")?
            .iter()
            .enumerate()
        {
            let what = format!("tlogs[{i}]");
            let raw = t
                .pointer("/publicKey/rawBytes")
                .and_then(Value::as_str)
                .ok_or(format!("{what}: no publicKey.rawBytes"))?;
            let der = framing::base64_bytes(raw).map_err(|e| format!("{what}: {e}"))?;
            let kind = match t.pointer("/publicKey/keyDetails").and_then(Value::as_str) {
                Some("PKIX_ECDSA_P256_SHA_256") => KeyKind::EcdsaP256,
                Some("PKIX_ED25519") => KeyKind::Ed25519,
                // Kinds this verifier cannot check are left out: their entries fail closed.
                _ => continue,
            };
            let (_, key) = spki_key(&der).map_err(|e| format!("{what}: {e}"))?;
            let (valid_from, valid_to) = window(&t["publicKey"], &what)?;
            logs.push(LogKey {
                log_id: Sha256::digest(&der).into(),
                kind,
                key,
                valid_from,
                valid_to,
            });
        }
        let mut cas = Vec::new();
        for (i, c) in v["certificateAuthorities"]
            .as_array()
            .ok_or("trusted root: no certificateAuthorities")?
            .iter()
            .enumerate()
        {
            let what = format!("certificateAuthorities[{i}]");
            let chain = c
                .pointer("/certChain/certificates")
                .and_then(Value::as_array)
                .ok_or(format!("{what}: no certChain"))?
                .iter()
                .map(|cert| {
                    let der = framing::base64_bytes(cert["rawBytes"].as_str().unwrap_or_default())?;
                    Certificate::from_der(&der).map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, String>>()
                .map_err(|e| format!("{what}: {e}"))?;
            if chain.is_empty() {
                return Err(format!("{what}: empty chain").into());
            }
            let (valid_from, valid_to) = window(c, &what)?;
            cas.push(CertificateAuthority {
                uri: c["uri"].as_str().unwrap_or_default().to_string(),
                chain,
                valid_from,
                valid_to,
            });
        }
        Ok(TrustedRoot { logs, cas })
    }

    pub fn public_good() -> Result<Self, ProvenanceError> {
        Self::parse(PUBLIC_GOOD)
    }

    /// The log key with this id, valid at `at`.
    pub(crate) fn log(&self, log_id: &[u8], at: u64) -> Option<&LogKey> {
        self.logs.iter().find(|l| {
            l.log_id.as_slice() == log_id
                && l.valid_from <= at
                && l.valid_to.is_none_or(|end| at <= end)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_good_root_has_the_rekor_key_and_fulcio_chains() {
        let r = TrustedRoot::public_good().unwrap();
        let rekor = hex::decode("c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d")
            .unwrap();
        let log = r.log(&rekor, 1_772_604_967).expect("rekor.sigstore.dev");
        assert_eq!(log.kind, KeyKind::EcdsaP256);
        assert!(
            r.log(&rekor, 1_600_000_000).is_none(),
            "before the key's window"
        );
        assert_eq!(r.cas.len(), 2);
        assert_eq!(r.cas[1].chain.len(), 2);
    }
}
