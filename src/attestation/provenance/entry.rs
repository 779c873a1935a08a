//! What a Rekor entry's body says (DSSE, in-toto or hashedrekord): whether it names the image
//! digest, and who signed it: a public key, or a Fulcio certificate whose chain leads to a
//! Fulcio CA valid at the entry's integrated time, with its OIDC identity.

use super::trusted_root::{spki_key, TrustedRoot};
use super::ProvenanceError;
use crate::attestation::{framing, x509};
use der::Decode;
use ring::signature::UnparsedPublicKey;
use serde::Serialize;
use serde_json::Value;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

/// The OIDC identity a Fulcio certificate carries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Identity {
    /// The OIDC issuer (e.g. GitHub Actions' token issuer).
    pub(crate) issuer: Option<String>,
    /// The subject (SAN): for a CI workflow its URI, repository, workflow and ref.
    pub(crate) subject: Option<String>,
    pub(crate) source_repository: Option<String>,
    pub(crate) source_ref: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Signer {
    /// A bare public key (no identity), named by its fingerprint: `sha256:` and the hex of
    /// the SHA-256 of its SubjectPublicKeyInfo DER.
    Key(String),
    /// A Fulcio certificate, verified to the trusted root at the integrated time.
    Certificate(Identity),
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Material {
    /// `dsse`, `intoto` or `hashedrekord`.
    pub(crate) kind: String,
    /// Whether the body names the image digest as what was signed; `None` when the body
    /// cannot say (DSSE keeps only hashes: the link to the digest is Rekor's index).
    pub(crate) names_digest: Option<bool>,
    /// Whether the signature itself was verified (`false` where the body lacks what was
    /// signed: DSSE's payload).
    pub(crate) signature_verified: bool,
    pub(crate) signers: Vec<Signer>,
}

const OID_SAN: &str = "2.5.29.17";
const OID_ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";
const OID_ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
const OID_SOURCE_REPOSITORY: &str = "1.3.6.1.4.1.57264.1.12";
const OID_SOURCE_REF: &str = "1.3.6.1.4.1.57264.1.14";
/// The leaf's chain to a Fulcio CA of `root` valid at `at` (every certificate valid then).
pub(crate) fn verify_fulcio(
    leaf: &Certificate,
    root: &TrustedRoot,
    at: u64,
) -> Result<(), ProvenanceError> {
    x509::valid_at(leaf, at).map_err(|e| format!("{e}: not at the integrated time"))?;
    let mut why = Vec::new();
    for ca in &root.cas {
        if at < ca.valid_from || ca.valid_to.is_some_and(|end| at > end) {
            continue;
        }
        let mut current = leaf;
        let mut ok = Ok(());
        for next in &ca.chain {
            if let Err(e) = x509::signed_by(current, next) {
                ok = Err(e.to_string());
                break;
            }
            if let Err(e) = x509::valid_at(next, at) {
                ok = Err(format!("CA {e}"));
                break;
            }
            current = next;
        }
        match ok {
            Ok(()) => return Ok(()),
            Err(e) => why.push(format!("{}: {e}", ca.uri)),
        }
    }
    Err(if why.is_empty() {
        format!("no trusted Fulcio CA was valid at {at}")
    } else {
        format!(
            "certificate chain does not lead to a trusted Fulcio CA ({})",
            why.join("; ")
        )
    }
    .into())
}

/// An extension's value as text: a DER UTF8String/IA5String, or (Fulcio's v1 extensions)
/// the raw bytes.
fn extension_text(value: &[u8]) -> Option<String> {
    if let Ok(s) = der::asn1::Utf8StringRef::from_der(value) {
        return Some(s.as_str().to_string());
    }
    if let Ok(s) = der::asn1::Ia5StringRef::from_der(value) {
        return Some(s.as_str().to_string());
    }
    std::str::from_utf8(value).ok().map(str::to_string)
}

pub(crate) fn identity(cert: &Certificate) -> Identity {
    let mut id = Identity::default();
    let mut issuer_v1 = None;
    for ext in cert.tbs_certificate().extensions().into_iter().flatten() {
        let value = ext.extn_value.as_bytes();
        match ext.extn_id.to_string().as_str() {
            OID_SAN => {
                if let Ok(san) = SubjectAltName::from_der(value) {
                    id.subject = san.0.iter().find_map(|n| match n {
                        GeneralName::UniformResourceIdentifier(u) => Some(u.as_str().to_string()),
                        GeneralName::Rfc822Name(e) => Some(e.as_str().to_string()),
                        _ => None,
                    });
                }
            }
            OID_ISSUER_V2 => id.issuer = extension_text(value),
            OID_ISSUER_V1 => issuer_v1 = extension_text(value),
            OID_SOURCE_REPOSITORY => id.source_repository = extension_text(value),
            OID_SOURCE_REF => id.source_ref = extension_text(value),
            _ => {}
        }
    }
    id.issuer = id.issuer.or(issuer_v1);
    id
}

/// Signature material: base64 of a PEM certificate or public key (both as Rekor stores them).
/// Returns the signer and its raw public key.
fn signer(
    material: &str,
    root: &TrustedRoot,
    at: u64,
) -> Result<(Signer, Vec<u8>), ProvenanceError> {
    let pem = framing::base64_bytes(material).map_err(|e| format!("signature material: {e}"))?;
    let text = String::from_utf8_lossy(&pem);
    if text.contains("CERTIFICATE") {
        let leaf = framing::pem_certificates(&pem)?
            .into_iter()
            .next()
            .ok_or("no certificate")?;
        verify_fulcio(&leaf, root, at)?;
        let key = x509::public_key(&leaf)?.to_vec();
        Ok((Signer::Certificate(identity(&leaf)), key))
    } else if text.contains("PUBLIC KEY") {
        let der = framing::pem_to_der(&text).map_err(|_| "public key is not PEM".to_string())?;
        let (_, key) = spki_key(&der)?;
        x509::ecdsa(&key, false)?;
        Ok((Signer::Key(key_fingerprint(&der)), key))
    } else {
        Err("signature material is neither a certificate nor a public key".into())
    }
}

/// How a signing key is named in a `signed` rule: `sha256:` + hex(SHA-256(SPKI DER)).
pub fn key_fingerprint(spki_der: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(spki_der)))
}

/// DSSE's pre-authentication encoding: what a DSSE signature signs.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

fn verify_ecdsa(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    x509::ecdsa(key, false).is_ok_and(|alg| {
        UnparsedPublicKey::new(alg, key)
            .verify(message, signature)
            .is_ok()
    })
}

/// Reads an entry body for the image `digest` (64 hex).
pub(crate) fn read(
    body: &[u8],
    digest: &str,
    root: &TrustedRoot,
    at: u64,
) -> Result<Material, ProvenanceError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let kind = v["kind"]
        .as_str()
        .ok_or("body has no kind")?
        .to_ascii_lowercase();
    let spec = &v["spec"];
    let (names_digest, signature_verified, signers) = match kind.as_str() {
        "dsse" => dsse(spec, root, at)?,
        "hashedrekord" => hashedrekord(spec, digest, root, at)?,
        "intoto" => intoto(spec, digest, root, at)?,
        other => return Err(format!("entry kind {other} is not supported").into()),
    };
    Ok(Material {
        kind,
        names_digest,
        signature_verified,
        signers,
    })
}

/// What one kind of entry says: whether it names the digest, whether its signature was
/// verified, and who signed.
type Read = (Option<bool>, bool, Vec<Signer>);

/// DSSE keeps only hashes: its signers are read, its signature cannot be checked.
fn dsse(spec: &Value, root: &TrustedRoot, at: u64) -> Result<Read, ProvenanceError> {
    let sigs = spec["signatures"]
        .as_array()
        .ok_or("DSSE body without signatures")?;
    let signers = sigs
        .iter()
        .map(|s| signer(s["verifier"].as_str().unwrap_or_default(), root, at).map(|(s, _)| s))
        .collect::<Result<Vec<_>, _>>()?;
    if signers.is_empty() {
        return Err("DSSE body without signatures".into());
    }
    Ok((None, false, signers))
}

/// A signature over the artifact's SHA-256, which the entry keeps.
fn hashedrekord(
    spec: &Value,
    digest: &str,
    root: &TrustedRoot,
    at: u64,
) -> Result<Read, ProvenanceError> {
    let text = |pointer: &str| spec.pointer(pointer).and_then(Value::as_str);
    let hash = text("/data/hash/value").ok_or("hashedrekord without data.hash")?;
    let alg = text("/data/hash/algorithm").unwrap_or("sha256");
    let (s, key) = signer(
        text("/signature/publicKey/content").unwrap_or_default(),
        root,
        at,
    )?;
    let sig = framing::base64_bytes(text("/signature/content").unwrap_or_default())
        .map_err(|e| format!("hashedrekord signature: {e}"))?;
    let prehash = framing::hex_bytes(hash).map_err(|e| format!("data hash: {e}"))?;
    if alg != "sha256" || prehash.len() != 32 {
        return Err(format!("hashedrekord data hash {alg} is not supported").into());
    }
    verify_prehashed_p256(&key, &prehash, &sig)?;
    Ok((Some(hash.eq_ignore_ascii_case(digest)), true, vec![s]))
}

/// An in-toto envelope: every signature must verify over the payload when the entry keeps
/// it, and the statement's subjects say whether it is about this digest.
fn intoto(
    spec: &Value,
    digest: &str,
    root: &TrustedRoot,
    at: u64,
) -> Result<Read, ProvenanceError> {
    let env = spec
        .pointer("/content/envelope")
        .ok_or("in-toto body without an envelope")?;
    let payload_type = env["payloadType"].as_str().unwrap_or_default();
    let payload = env["payload"]
        .as_str()
        .map(framing::base64_bytes)
        .transpose()?;
    let mut signers = Vec::new();
    let mut verified = payload.is_some();
    for s in env["signatures"]
        .as_array()
        .ok_or("in-toto envelope without signatures")?
    {
        let (who, key) = signer(s["publicKey"].as_str().unwrap_or_default(), root, at)?;
        if let Some(p) = &payload {
            let sig = framing::base64_bytes(s["sig"].as_str().unwrap_or_default())?;
            // Some clients base64 the signature twice.
            let sig = std::str::from_utf8(&sig)
                .ok()
                .filter(|t| !t.is_empty())
                .and_then(|t| framing::base64_bytes(t).ok())
                .unwrap_or(sig);
            verified &= verify_ecdsa(&key, &pae(payload_type, p), &sig);
        }
        signers.push(who);
    }
    let Some(p) = &payload else {
        return Ok((None, false, signers));
    };
    if !verified {
        return Err("in-toto envelope signature does not verify".into());
    }
    let statement: Value =
        serde_json::from_slice(p).map_err(|e| format!("in-toto statement: {e}"))?;
    let names_digest = statement["subject"].as_array().is_some_and(|subjects| {
        subjects.iter().any(|s| {
            s.pointer("/digest/sha256")
                .and_then(Value::as_str)
                .is_some_and(|d| d.eq_ignore_ascii_case(digest))
        })
    });
    Ok((Some(names_digest), true, signers))
}

/// ECDSA P-256 over a given SHA-256 digest (a hashedrekord signs the artifact, and the log
/// keeps only its digest).
fn verify_prehashed_p256(key: &[u8], digest: &[u8], sig: &[u8]) -> Result<(), ProvenanceError> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(key)
        .map_err(|_| "hashedrekord key is not a P-256 key".to_string())?;
    let sig = p256::ecdsa::Signature::from_der(sig)
        .map_err(|_| "hashedrekord signature is not DER ECDSA".to_string())?;
    vk.verify_prehash(digest, &sig)
        .map_err(|_| "hashedrekord signature does not verify".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
    use serde_json::json;
    use sha2::{Digest, Sha256};

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    /// A P-256 key and its PEM public key, base64'd the way Rekor stores it.
    fn key() -> (EcdsaKeyPair, String) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let k = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let mut spki = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
        spki.extend_from_slice(k.public_key().as_ref());
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            b64(&spki)
        );
        (k, b64(pem.as_bytes()))
    }

    fn sign(k: &EcdsaKeyPair, msg: &[u8]) -> Vec<u8> {
        k.sign(&ring::rand::SystemRandom::new(), msg)
            .unwrap()
            .as_ref()
            .to_vec()
    }

    fn root() -> TrustedRoot {
        TrustedRoot::public_good().unwrap()
    }

    #[test]
    fn a_hashedrekord_names_its_digest_and_its_signature_is_verified() {
        let (k, pem) = key();
        let artifact = b"an image manifest";
        let digest = hex::encode(Sha256::digest(artifact));
        let body = |sig: &[u8], hash: &str| {
            serde_json::to_vec(
                &json!({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hash}},
                "signature": {"content": b64(sig), "publicKey": {"content": pem}}}}),
            )
            .unwrap()
        };
        let sig = sign(&k, artifact);
        let m = read(&body(&sig, &digest), &digest, &root(), 0).unwrap();
        assert_eq!((m.names_digest, m.signature_verified), (Some(true), true));
        assert!(matches!(&m.signers[..], [Signer::Key(fp)] if fp.starts_with("sha256:")));
        let other = "ab".repeat(32);
        assert_eq!(
            read(&body(&sig, &digest), &other, &root(), 0)
                .unwrap()
                .names_digest,
            Some(false)
        );
        let mut bad = sig.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert!(read(&body(&bad, &digest), &digest, &root(), 0)
            .unwrap_err()
            .to_string()
            .contains("does not verify"));
    }

    #[test]
    fn an_in_toto_statement_names_its_subjects_and_its_envelope_is_verified() {
        let (k, pem) = key();
        let digest = "cd".repeat(32);
        let statement = json!({"_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "img", "digest": {"sha256": digest}}], "predicateType": "x", "predicate": {}})
        .to_string();
        let payload_type = "application/vnd.in-toto+json";
        let body = |sig: &[u8]| {
            serde_json::to_vec(
                &json!({"apiVersion": "0.0.2", "kind": "intoto", "spec": {"content": {"envelope": {
                "payloadType": payload_type, "payload": b64(statement.as_bytes()),
                "signatures": [{"sig": b64(sig), "publicKey": pem}]}}}}),
            )
            .unwrap()
        };
        let sig = sign(&k, &pae(payload_type, statement.as_bytes()));
        let m = read(&body(&sig), &digest, &root(), 0).unwrap();
        assert_eq!((m.names_digest, m.signature_verified), (Some(true), true));
        assert_eq!(
            read(&body(&sig), &"00".repeat(32), &root(), 0)
                .unwrap()
                .names_digest,
            Some(false)
        );
        let wrong = sign(&k, b"something else");
        assert!(read(&body(&wrong), &digest, &root(), 0)
            .unwrap_err()
            .to_string()
            .contains("does not verify"));
    }

    #[test]
    fn unknown_kinds_and_material_fail_closed() {
        assert!(read(br#"{"kind":"rekord","spec":{}}"#, "00", &root(), 0)
            .unwrap_err()
            .to_string()
            .contains("not supported"));
        let body = json!({"kind": "dsse", "spec": {"signatures": [{"signature": "AA==", "verifier": b64(b"hello")}]}});
        assert!(read(&serde_json::to_vec(&body).unwrap(), "00", &root(), 0)
            .unwrap_err()
            .to_string()
            .contains("neither a certificate nor a public key"));
    }
}
