//! A saved exchange (like `fixtures/venice-capture-2026-04-24/`): the attestation response,
//! the client nonce and capture time, and the Intel collateral fetched alongside it. Used
//! by `verify --offline` and the tests.

use super::dcap::{split_signed, Collateral};
use crate::attestation::framing::unix_time;
use serde_json::Value;
use std::path::Path;

/// Why a saved capture could not be loaded or verified offline.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// A file of the capture could not be read.
    #[error("{0}")]
    Read(String),
    /// A recorded request, header or manifest field is not there.
    #[error("{0}")]
    Missing(String),
    /// A recorded answer or the manifest does not parse.
    #[error("{0}")]
    Malformed(String),
    /// The pinned trust roots themselves do not parse.
    #[error("{0}")]
    Roots(String),
}

pub struct Capture {
    pub model: String,
    pub nonce: [u8; 32],
    /// Capture time, Unix seconds: the time the evidence is verified at.
    pub captured_at: u64,
    pub attestation: Value,
    pub collateral: Collateral,
    /// NRAS's answer and JWKS, when the capture has them.
    pub nras_answer: Option<Value>,
    pub nras_jwks: Option<Value>,
    /// Rekor's answers about the compose's images.
    pub rekor: crate::attestation::provenance::Recorded,
}

pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One saved request: its metadata (`NNNN_*.json`) and body (`NNNN_*.body`), found by a
/// fragment of its URL.
struct Entry {
    meta: Value,
    body: Vec<u8>,
}

fn find(dir: &Path, url_part: &str) -> Result<Entry, CaptureError> {
    find_all(dir, url_part)?.into_iter().next().ok_or_else(|| {
        CaptureError::Missing(format!(
            "no saved request for `{url_part}` in {}",
            dir.display()
        ))
    })
}

/// Every saved request whose URL contains `url_part`, in file order.
fn find_all(dir: &Path, url_part: &str) -> Result<Vec<Entry>, CaptureError> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| CaptureError::Read(format!("{}: {e}", dir.display())))?
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    let mut found = Vec::new();
    for path in paths {
        if path.extension().and_then(|x| x.to_str()) != Some("json")
            || path.file_name().is_some_and(|n| n == "manifest.json")
        {
            continue;
        }
        let meta: Value = serde_json::from_slice(
            &std::fs::read(&path)
                .map_err(|e| CaptureError::Read(format!("{}: {e}", path.display())))?,
        )
        .map_err(|e| CaptureError::Malformed(e.to_string()))?;
        if meta
            .get("url")
            .and_then(Value::as_str)
            .is_some_and(|u| u.contains(url_part))
        {
            let body = std::fs::read(path.with_extension("body"))
                .map_err(|e| CaptureError::Read(format!("{}: {e}", path.display())))?;
            found.push(Entry { meta, body });
        }
    }
    Ok(found)
}

/// Rekor's recorded answers: index lookups by their request's hash, entries by UUID.
fn rekor(dir: &Path) -> Result<crate::attestation::provenance::Recorded, CaptureError> {
    let mut r = crate::attestation::provenance::Recorded::default();
    let request = |e: &Entry| -> Result<Value, CaptureError> {
        let b64 = e
            .meta
            .get("req_body_base64")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let raw =
            crate::attestation::framing::base64_bytes(b64).map_err(CaptureError::Malformed)?;
        serde_json::from_slice(&raw).map_err(|e| CaptureError::Malformed(e.to_string()))
    };
    for e in find_all(dir, "/index/retrieve")? {
        let hash = request(&e)?["hash"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let uuids: Vec<String> = serde_json::from_slice(&e.body)
            .map_err(|e| CaptureError::Malformed(format!("Rekor index answer: {e}")))?;
        r.index
            .insert(hash.trim_start_matches("sha256:").to_string(), uuids);
    }
    for e in find_all(dir, "/log/entries/retrieve")? {
        let answer: Value = serde_json::from_slice(&e.body)
            .map_err(|e| CaptureError::Malformed(format!("Rekor entries answer: {e}")))?;
        for obj in answer.as_array().into_iter().flatten() {
            for (uuid, entry) in obj.as_object().into_iter().flatten() {
                r.entries.insert(uuid.to_ascii_lowercase(), entry.clone());
            }
        }
    }
    Ok(r)
}

impl Entry {
    fn header(&self, name: &str) -> Result<String, CaptureError> {
        let headers = self
            .meta
            .get("headers")
            .and_then(Value::as_object)
            .ok_or_else(|| CaptureError::Missing("no headers".into()))?;
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.get(0).and_then(Value::as_str).or(v.as_str()))
            .map(percent_decode)
            .ok_or_else(|| CaptureError::Missing(format!("missing header {name}")))
    }

    fn text(&self) -> Result<&str, CaptureError> {
        std::str::from_utf8(&self.body)
            .map_err(|_| CaptureError::Malformed("body is not UTF-8".into()))
    }
}

pub fn load(dir: &Path) -> Result<Capture, CaptureError> {
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(dir.join("manifest.json"))
            .map_err(|e| CaptureError::Read(format!("manifest.json: {e}")))?,
    )
    .map_err(|e| CaptureError::Malformed(format!("manifest.json: {e}")))?;
    let field = |k: &str| {
        manifest
            .get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| CaptureError::Missing(format!("manifest.json has no `{k}`")))
    };
    let nonce: [u8; 32] = hex::decode(field("nonce_hex")?)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| CaptureError::Malformed("manifest nonce is not 32 bytes of hex".into()))?;
    let captured_at = unix_time(field("captured_at")?).ok_or_else(|| {
        CaptureError::Malformed("manifest captured_at is not an RFC 3339 time".into())
    })?;
    let attestation = serde_json::from_slice(&find(dir, "/tee/attestation")?.body)
        .map_err(|e| CaptureError::Malformed(format!("attestation: {e}")))?;
    let tcb = find(dir, "/tcb")?;
    let qe = find(dir, "/qe/identity")?;
    let pck_crl = find(dir, "pckcrl")?;
    let root_crl = find(dir, "IntelSGXRootCA")
        .or_else(|_| find(dir, "intelsgxrootca"))
        .or_else(|_| find(dir, "rootcacrl"))?;
    let (tcb_info, tcb_info_signature) =
        split_signed(tcb.text()?, "tcbInfo").map_err(|e| CaptureError::Malformed(e.to_string()))?;
    let (qe_identity, qe_identity_signature) = split_signed(qe.text()?, "enclaveIdentity")
        .map_err(|e| CaptureError::Malformed(e.to_string()))?;
    let json_of = |part: &str| {
        find(dir, part)
            .ok()
            .and_then(|e| serde_json::from_slice(&e.body).ok())
    };
    Ok(Capture {
        nras_answer: json_of("/attest/gpu"),
        nras_jwks: json_of("jwks"),
        rekor: rekor(dir)?,
        model: field("model")?.to_string(),
        nonce,
        captured_at,
        attestation,
        collateral: Collateral {
            tcb_info,
            tcb_info_signature,
            tcb_info_issuer_chain: tcb.header("Tcb-Info-Issuer-Chain")?,
            qe_identity,
            qe_identity_signature,
            qe_identity_issuer_chain: qe.header("Sgx-Enclave-Identity-Issuer-Chain")?,
            pck_crl: pck_crl.body.clone(),
            pck_crl_issuer_chain: pck_crl.header("Sgx-Pck-Crl-Issuer-Chain")?,
            root_ca_crl: root_crl.body,
        },
    })
}

/// Verifies a capture fully at its capture time with the pinned roots and the recorded
/// answers (Intel collateral, NRAS, Rekor): no network.
pub async fn verify(c: &Capture) -> Result<super::report::Report, CaptureError> {
    use super::report::{self, Trust, DEFAULT_TCB_STATUSES};
    use crate::attestation::provenance::{policy, trusted_root::TrustedRoot, Provenance};
    let roots = super::trust_roots::pinned().map_err(|e| CaptureError::Roots(e.to_string()))?;
    let statuses: Vec<String> = DEFAULT_TCB_STATUSES.iter().map(|s| s.to_string()).collect();
    let trust = Trust {
        intel_root_der: &roots.intel_der,
        nvidia_root: &roots.nvidia,
        collateral: Some(&c.collateral),
        tcb_statuses: &statuses,
        policy: Default::default(),
        now: c.captured_at,
        report_only: &[],
        collateral_error: None,
        dcap_at: None,
        trust_overrides: Vec::new(),
        allow: &Default::default(),
        nras: c.nras_answer.clone().zip(c.nras_jwks.clone()).map(Ok),
        workloads: &crate::config::attestation::default_workloads(),
        workload_mode: Default::default(),
        os_images: &Default::default(),
        model_names: &Default::default(),
    };
    let (mut r, _) = report::verify_all(&c.attestation, &c.model, &c.nonce, &trust);
    let provenance = Provenance::new(
        TrustedRoot::public_good().map_err(|e| CaptureError::Roots(e.to_string()))?,
        policy::default_policy(),
    );
    report::add_provenance(&mut r, &provenance, &c.rekor, &[]).await;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%0Ac%2B"), "a b\nc+");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
