//! Attested sessions (§8, §9.2): the record of one upstream verification a receipt cites.
//! Content-addressed and unsigned, so the id a verified receipt cites is what makes the
//! fetched record trustworthy as the gateway's own. Two id forms: the spec's
//! `hex(sha256(JCS(document)))`, and the deployed gateways' (private-ai-gateway `aa65d64`
//! §9.2) `as_` + the SHA-256 of the JCS form of its identifying fields and evidence digest,
//! absent ones as `null`.

use super::{jcs, AciError, API_VERSION};
use base64::Engine;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A session record that hashes to its id, as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Session {
    pub(crate) session_id: String,
    pub(crate) upstream_name: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) verifier_id: Option<String>,
    pub(crate) established_at: Option<u64>,
    pub(crate) expires_at: Option<u64>,
    /// Channel binding types the gateway enforced (`tls_spki_sha256`, …).
    pub(crate) channel_bindings: Vec<String>,
    /// Claim name → `status` (`source`), e.g. `tee_attested` → `asserted (hardware_proven)`.
    pub(crate) claims: Vec<(String, String)>,
    /// The `tls_spki_sha256` bindings: (origin the gateway dialled, SPKI digest it pinned).
    #[serde(skip)]
    pub(crate) tls: Vec<(String, String)>,
    /// The evidence's decoded bytes (what the gateway's verifier consumed).
    #[serde(skip)]
    pub(crate) evidence: Vec<u8>,
}

/// The id of `doc` in the form `cited` has.
fn id_in_form(doc: &Value, cited: &str) -> String {
    if cited.trim().starts_with("as_") {
        let mut fields = serde_json::Map::new();
        // Absent optional fields are restored as null (aa65d64 §9.2).
        for k in [
            "upstream_name",
            "endpoint",
            "verifier_id",
            "identity",
            "channel_binding",
            "claims",
        ] {
            fields.insert(k.to_string(), doc.get(k).cloned().unwrap_or(Value::Null));
        }
        fields.insert(
            "evidence_digest".into(),
            doc.pointer("/evidence/digest")
                .cloned()
                .unwrap_or(Value::Null),
        );
        let hash = Sha256::digest(jcs::canonical(&Value::Object(fields)));
        return format!("as_{}", hex::encode(hash));
    }
    hex::encode(Sha256::digest(jcs::canonical(doc)))
}

/// Checks `doc` against the id a receipt cited and, when given, that the receipt's
/// `served_at` lies in the session's validity window.
pub(crate) fn verify(
    doc: &Value,
    cited: &str,
    served_at: Option<u64>,
) -> Result<Session, AciError> {
    let id = id_in_form(doc, cited);
    if !id.eq_ignore_ascii_case(cited.trim()) {
        return Err(AciError::Mismatch(format!(
            "the session record hashes to {id}, not the cited {cited}"
        )));
    }
    let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_string);
    if text("api_version").as_deref() != Some(API_VERSION) {
        return Err(AciError::Malformed(
            "the session's api_version is not aci/1".into(),
        ));
    }
    let evidence = doc
        .get("evidence")
        .ok_or_else(|| AciError::Malformed("the session has no evidence".into()))?;
    let data = evidence
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| AciError::Malformed("the session evidence has no data".into()))?;
    let (_, b64) = data.split_once(";base64,").ok_or_else(|| {
        AciError::Malformed("the session evidence is not a base64 data URI".into())
    })?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| AciError::Malformed("the session evidence is not base64".into()))?;
    let expected = jcs::sha256_tagged(&bytes);
    match evidence.get("digest").and_then(Value::as_str) {
        Some(d) if d.trim().eq_ignore_ascii_case(&expected) => {}
        _ => {
            return Err(AciError::Mismatch(
                "the session evidence does not hash to its digest".into(),
            ))
        }
    }
    let number = |k: &str| doc.get(k).and_then(Value::as_u64);
    let (established_at, expires_at) = (number("established_at"), number("expires_at"));
    if let (Some(t), Some(from), Some(to)) = (served_at, established_at, expires_at) {
        if t < from || t > to {
            return Err(AciError::Expired(format!(
                "the receipt was served at {t}, outside the session's window {from}–{to}"
            )));
        }
    }
    Ok(Session {
        session_id: id,
        upstream_name: text("upstream_name"),
        endpoint: text("endpoint"),
        verifier_id: text("verifier_id"),
        established_at,
        expires_at,
        channel_bindings: doc
            .get("channel_binding")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|b| b.get("type").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        claims: super::claims(doc.get("claims")),
        tls: doc
            .get("channel_binding")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("tls_spki_sha256"))
            .filter_map(|b| {
                Some((
                    b.get("origin")?.as_str()?.to_string(),
                    b.get("spki_sha256")?.as_str()?.to_string(),
                ))
            })
            .collect(),
        evidence: bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "95ad1cb4dd25445808c2e9d116caf420b05703730b506395e8fc1ca6faeae28f";

    /// spec/test-vectors.md §3, served pretty-printed.
    fn vector_session() -> Value {
        serde_json::from_str(r#"{
          "upstream_name": "demo-upstream", "verifier_id": "example/1", "api_version": "aci/1",
          "endpoint": "https://upstream.example.com",
          "established_at": 1750000000, "expires_at": 1750003600,
          "evidence": {"digest": "sha256:80d70e44d0ae1e829fd5f37c3ee4a60dfbea8d3aa18407ea3f34cf7ec91da34d",
                       "data": "data:text/plain;base64,ZXhhbXBsZS1ldmlkZW5jZQ=="},
          "channel_binding": [{"type": "tls_spki_sha256", "origin": "https://upstream.example.com",
                               "spki_sha256": "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"}],
          "claims": {
            "tee_attested": {"status": "asserted", "source": "hardware_proven", "reason": "example quote verified"},
            "gpu_attested": {"status": "unknown"}, "tcb_up_to_date": {"status": "unknown"},
            "os_known_good": {"status": "unknown"}, "serving_software_known_good": {"status": "unknown"},
            "model_weights_provenance": {"status": "unknown"},
            "extra": {"tcb_status": "UpToDate", "gpu_arch": "HOPPER"}
          }
        }"#).unwrap()
    }

    #[test]
    fn the_spec_vector_hashes_to_its_id() {
        let s = verify(&vector_session(), ID, Some(1_750_000_100)).unwrap();
        assert_eq!(s.upstream_name.as_deref(), Some("demo-upstream"));
        assert_eq!(s.channel_bindings, vec!["tls_spki_sha256"]);
        assert!(s
            .claims
            .contains(&("tee_attested".into(), "asserted (hardware_proven)".into())));
    }

    /// private-ai-gateway `aa65d64` spec/test-vectors.md §5: the deployed `as_` form, its
    /// absent `identity` restored as null.
    #[test]
    fn the_deployed_vector_hashes_to_its_id() {
        let record: Value = serde_json::from_str(r#"{
          "api_version": "aci/1", "upstream_name": "demo-upstream", "verifier_id": "example/1",
          "endpoint": "https://upstream.example.com", "established_at": 1750000000, "expires_at": 1750003600,
          "channel_binding": [{"type": "tls_spki_sha256", "origin": "https://upstream.example.com",
                               "spki_sha256": "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"}],
          "claims": {
            "tee_attested": {"status": "asserted", "source": "hardware_proven", "reason": "example quote verified"},
            "gpu_attested": {"status": "unknown"}, "tcb_up_to_date": {"status": "unknown"},
            "os_known_good": {"status": "unknown"}, "serving_software_known_good": {"status": "unknown"},
            "model_weights_provenance": {"status": "unknown"}},
          "evidence": {"digest": "sha256:80d70e44d0ae1e829fd5f37c3ee4a60dfbea8d3aa18407ea3f34cf7ec91da34d",
                       "data": "data:text/plain;base64,ZXhhbXBsZS1ldmlkZW5jZQ=="}
        }"#).unwrap();
        let id = "as_2e9011abafe00fc2902aaa5dedf8373f14e2c4f1a456b854ddb475413547188e";
        assert_eq!(id_in_form(&record, id), id);
        assert!(verify(&record, id, Some(1_750_000_100)).is_ok());
    }

    #[test]
    fn alterations_fail() {
        let mut d = vector_session();
        d["expires_at"] = 1750003601u64.into();
        assert!(verify(&d, ID, None)
            .unwrap_err()
            .to_string()
            .contains("hashes to"));
        assert!(verify(&vector_session(), ID, Some(1_760_000_000))
            .unwrap_err()
            .to_string()
            .contains("outside"));
        // Evidence that does not hash to its digest, under a recomputed id.
        let mut d = vector_session();
        d["evidence"]["data"] = "data:text/plain;base64,b3RoZXI=".into();
        let id = hex::encode(Sha256::digest(jcs::canonical(&d)));
        assert!(verify(&d, &id, None)
            .unwrap_err()
            .to_string()
            .contains("digest"));
    }

    #[test]
    fn the_deployed_id_form_covers_the_identifying_fields_and_the_evidence_digest() {
        let d = vector_session();
        let id = id_in_form(&d, "as_");
        assert!(id.starts_with("as_") && id.len() == 67);
        let s = verify(&d, &id, None).unwrap();
        assert_eq!(s.tls.len(), 1);
        assert_eq!(s.evidence, b"example-evidence");
        // A changed claim or evidence digest is another id; a changed window is not part
        // of this form (only of the spec's).
        let mut other = vector_session();
        other["claims"]["gpu_attested"] = serde_json::json!({"status": "asserted"});
        assert!(verify(&other, &id, None)
            .unwrap_err()
            .to_string()
            .contains("hashes to"));
        let mut other = vector_session();
        other["established_at"] = 1750000001u64.into();
        assert!(verify(&other, &id, None).is_ok());
        assert!(verify(&vector_session(), ID, None).is_ok());
    }
}
