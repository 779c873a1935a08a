//! Attested Confidential Inference (`aci/1`, Dstack-TEE/private-ai-gateway `spec/aci.md`):
//! the workload keyset and its digest (§3.1), the attestation statement the quote binds
//! (§3.2), the restated report fields (§4.1), source provenance (§4.1, §9.1.4), receipts (§7)
//! and attested sessions (§8). Pure: no I/O, no clock beyond what the caller passes.

pub(crate) mod anchor;
pub(crate) mod countersign;
pub mod jcs;
pub(crate) mod receipt;
pub(crate) mod session;

use crate::attestation::framing;
use k256::PublicKey;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Why an ACI document (keyset, receipt, countersignature, session, the gateway's own report)
/// is not accepted. The text is the reason the report gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AciError {
    /// A field missing, or not of the form the spec gives it.
    #[error("{0}")]
    Malformed(String),
    /// A signature that does not verify, or verifies for another key than the attested one.
    #[error("{0}")]
    Signature(String),
    /// A value that must equal another (a digest, a restated field, a nonce, a cited id)
    /// does not.
    #[error("{0}")]
    Mismatch(String),
    /// A key, algorithm or trust domain the attested keyset does not hold, or this verifier
    /// does not accept.
    #[error("{0}")]
    Unsupported(String),
    /// The document could not be fetched, or came back out of protocol: an outage, no
    /// verdict on what it would have said.
    #[error("{0}")]
    Unavailable(String),
    /// A validity window that excludes the time it is checked at.
    #[error("{0}")]
    Expired(String),
}

pub(crate) const API_VERSION: &str = "aci/1";
const PURPOSE: &str = "aci.report_data.v1";
/// A keyset valid for longer than this is implausible (spec §3.1: "SHOULD reject").
pub(crate) const MAX_KEYSET_LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;

/// The exact statement bytes for a keyset digest and our nonce (§3.2). The template is its
/// own JCS form; every input is hex or a fixed tag, so nothing needs escaping.
pub(crate) fn statement(keyset_digest: &str, nonce: &[u8; 32]) -> String {
    format!(
        "{{\"keyset_digest\":\"{keyset_digest}\",\"nonce\":\"{}\",\"purpose\":\"{PURPOSE}\"}}",
        hex::encode(nonce)
    )
}

/// The 64-byte REPORTDATA slot for that statement: its SHA-256, then 32 zero bytes.
pub fn report_data(keyset_digest: &str, nonce: &[u8; 32]) -> [u8; 64] {
    let mut slot = [0u8; 64];
    slot[..32].copy_from_slice(&Sha256::digest(statement(keyset_digest, nonce).as_bytes()));
    slot
}

/// The statement of the spec's drafts before August 2026, which also bound a `workload_id`
/// (the digest of the keyset's identity key): the JCS form of `{nonce, purpose, workload_id,
/// workload_keyset_digest}`. Gateways deployed then may still serve it.
pub(crate) fn draft_statement(keyset_digest: &str, workload_id: &str, nonce: &[u8; 32]) -> Vec<u8> {
    jcs::canonical(&serde_json::json!({
        "purpose": PURPOSE,
        "workload_id": workload_id,
        "workload_keyset_digest": keyset_digest,
        "nonce": hex::encode(nonce),
    }))
}

/// What the quote's REPORTDATA was found to bind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "form", rename_all = "snake_case")]
pub(crate) enum Binding {
    /// dstack's `signing address ‖ 12 zero bytes ‖ nonce`: the key itself, directly.
    Address,
    /// ACI's `sha256(statement)`: the keyset with this digest, which must list the key.
    /// `workload_id` is set when it was the drafts' statement that matched.
    Statement {
        keyset_digest: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        workload_id: Option<String>,
    },
}

/// The workload ids a draft-era attestation offers: recomputed from the keyset's identity
/// key when it has one (`sha256:` of the JCS of `workload_identity.public_key`), else the
/// restated ones.
pub(crate) fn candidate_workload_ids(keyset: Option<&Value>, restated: &[&str]) -> Vec<String> {
    match keyset.and_then(|k| k.pointer("/workload_identity/public_key")) {
        Some(identity) => vec![jcs::digest(identity)],
        None => restated.iter().map(|w| w.trim().to_string()).collect(),
    }
}

/// The keyset digests an attestation offers for the statement: the one recomputed from the
/// served keyset first, then each restated one. The statement decides which is bound.
pub(crate) fn candidate_digests(keyset: Option<&Value>, restated: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = keyset.map(jcs::digest).into_iter().collect();
    for d in restated {
        let d = d.trim().to_ascii_lowercase();
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// The binding whose statement (with our nonce) is in `slot`, if any: the spec's, or the
/// drafts' with one of `workload_ids`. The digest fills 32 bytes, zeros the rest.
pub(crate) fn statement_bound(
    slot: &[u8; 64],
    digests: &[String],
    workload_ids: &[String],
    nonce: &[u8; 32],
) -> Option<Binding> {
    if slot[32..].iter().any(|b| *b != 0) {
        return None;
    }
    let found = |d: &String, w: Option<&String>| Binding::Statement {
        keyset_digest: d.clone(),
        workload_id: w.cloned(),
    };
    for d in digests {
        if report_data(d, nonce) == *slot {
            return Some(found(d, None));
        }
        for w in workload_ids {
            if Sha256::digest(draft_statement(d, w, nonce))[..] == slot[..32] {
                return Some(found(d, Some(w)));
            }
        }
    }
    None
}

/// Typed claims (§8.3) as reported: name → `status`, or `status (source)` when the claim
/// names its source. `extra` holds raw facts, not claims.
pub(crate) fn claims(v: Option<&Value>) -> Vec<(String, String)> {
    let Some(map) = v.and_then(Value::as_object) else {
        return Vec::new();
    };
    map.iter()
        .filter(|(k, _)| k.as_str() != "extra")
        .map(|(k, c)| {
            let status = c.get("status").and_then(Value::as_str).unwrap_or("unknown");
            let shown = match c.get("source").and_then(Value::as_str) {
                Some(s) => format!("{status} ({s})"),
                None => status.to_string(),
            };
            (k.clone(), shown)
        })
        .collect()
}

/// A receipt signing key, by the algorithm its keyset entry names (§8.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReceiptKey {
    /// A 64-byte RFC 8032 signature over the canonical bytes.
    Ed25519([u8; 32]),
    /// A 65-byte recoverable `r ‖ s ‖ v` signature over their SHA-256 (a 64-byte one is
    /// refused, as the spec says).
    Secp256k1(PublicKey),
}

impl ReceiptKey {
    pub(crate) fn algo(&self) -> &'static str {
        match self {
            ReceiptKey::Ed25519(_) => "ed25519",
            ReceiptKey::Secp256k1(_) => "ecdsa-secp256k1",
        }
    }

    /// Whether `signature` is this key's over `message`.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            ReceiptKey::Ed25519(key) => {
                ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
                    .verify(message, signature)
                    .is_ok()
            }
            ReceiptKey::Secp256k1(key) => {
                let [rs @ .., v] = signature else {
                    return false;
                };
                if rs.len() != 64 {
                    return false;
                }
                let v = if (27..=30).contains(v) { v - 27 } else { *v };
                let (Some(recovery), Ok(sig)) = (
                    k256::ecdsa::RecoveryId::from_byte(v),
                    k256::ecdsa::Signature::from_slice(rs),
                ) else {
                    return false;
                };
                k256::ecdsa::VerifyingKey::recover_from_prehash(
                    &Sha256::digest(message),
                    &sig,
                    recovery,
                )
                .is_ok_and(|recovered| PublicKey::from(recovered) == *key)
            }
        }
    }
}

/// One key of a role in the keyset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct KeyEntry {
    pub(crate) key_id: String,
    pub(crate) algo: String,
    pub(crate) public_key: String,
}

/// The workload keyset (§3.1), parsed, with its digest recomputed.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Keyset {
    pub(crate) digest: String,
    /// `sha256:` of the JCS of `workload_identity.public_key`, when the keyset has an
    /// identity key (the form gateways deployed in 2026 serve; receipts name it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) workload_id: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) not_after: u64,
    pub(crate) receipt_signing_keys: Vec<KeyEntry>,
    pub(crate) e2ee_public_keys: Vec<KeyEntry>,
    pub(crate) tls_public_keys: Vec<TlsKey>,
}

/// A TLS key clients pin (§3.1): its SPKI digest, for one host when `domain` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct TlsKey {
    pub(crate) spki_sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) domain: Option<String>,
}

impl Keyset {
    /// Whether the keyset lists `spki_sha256` for `host` (an entry without a domain serves
    /// any host).
    pub(crate) fn lists_tls_key(&self, spki_sha256: &str, host: &str) -> bool {
        self.tls_public_keys.iter().any(|k| {
            k.spki_sha256.eq_ignore_ascii_case(spki_sha256.trim())
                && k.domain
                    .as_deref()
                    .is_none_or(|d| d.eq_ignore_ascii_case(host))
        })
    }
}

fn entries(v: &Value, role: &str) -> Result<Vec<KeyEntry>, AciError> {
    let Some(list) = v.get(role) else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| AciError::Malformed(format!("keyset {role} is not a list")))?;
    list.iter()
        .enumerate()
        .map(|(i, e)| {
            let text = |k: &str| {
                e.get(k)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| AciError::Malformed(format!("keyset {role}[{i}] has no {k}")))
            };
            Ok(KeyEntry {
                key_id: text("key_id").unwrap_or_default(),
                algo: text("algo")?,
                public_key: text("public_key")?,
            })
        })
        .collect()
}

impl Keyset {
    pub(crate) fn parse(v: &Value) -> Result<Keyset, AciError> {
        if !v.is_object() {
            return Err(AciError::Malformed(
                "workload_keyset is not an object".into(),
            ));
        }
        // The drafts kept it in `keyset_epoch`.
        let not_after = v
            .get("not_after")
            .or_else(|| v.pointer("/keyset_epoch/not_after"))
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                AciError::Malformed("workload_keyset has no integer not_after".into())
            })?;
        let tls_public_keys = match v.get("tls_public_keys") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(|e| {
                    Some(TlsKey {
                        spki_sha256: e.get("spki_sha256")?.as_str()?.to_ascii_lowercase(),
                        domain: e.get("domain").and_then(Value::as_str).map(str::to_string),
                    })
                })
                .collect(),
            Some(_) => {
                return Err(AciError::Malformed(
                    "keyset tls_public_keys is not a list".into(),
                ))
            }
        };
        Ok(Keyset {
            digest: jcs::digest(v),
            workload_id: v.pointer("/workload_identity/public_key").map(jcs::digest),
            subject: v
                .get("subject")
                .or_else(|| v.pointer("/workload_identity/subject"))
                .and_then(Value::as_str)
                .map(str::to_string),
            not_after,
            receipt_signing_keys: entries(v, "receipt_signing_keys")?,
            e2ee_public_keys: entries(v, "e2ee_public_keys")?,
            tls_public_keys,
        })
    }

    /// The E2EE entry holding `key` (a secp256k1 point, whatever its hex form). Entries whose
    /// key is not a secp256k1 point (X25519, unknown suites) cannot hold it.
    pub(crate) fn e2ee_entry_for(&self, key: &PublicKey) -> Option<&KeyEntry> {
        self.e2ee_public_keys.iter().find(|e| {
            crate::e2ee::codec::parse_public_key(&e.public_key)
                .ok()
                .as_ref()
                == Some(key)
        })
    }

    /// A receipt key by id (§7.2, §8.5: the attested entry decides the algorithm; an
    /// unknown algorithm is rejected, never guessed).
    pub(crate) fn receipt_key(&self, key_id: &str) -> Result<ReceiptKey, AciError> {
        let entry = self
            .receipt_signing_keys
            .iter()
            .find(|k| k.key_id == key_id)
            .ok_or_else(|| {
                AciError::Unsupported(format!(
                    "receipt key `{key_id}` is not in the attested keyset"
                ))
            })?;
        let bytes = framing::hex_bytes(&entry.public_key)
            .map_err(|_| AciError::Malformed(format!("receipt key `{key_id}` is not hex")))?;
        match entry.algo.to_ascii_lowercase().as_str() {
            "ed25519" => bytes.try_into().map(ReceiptKey::Ed25519).map_err(|_| {
                AciError::Malformed(format!(
                    "receipt key `{key_id}` is not a 32-byte Ed25519 key"
                ))
            }),
            "ecdsa-secp256k1" => PublicKey::from_sec1_bytes(&bytes)
                .map(ReceiptKey::Secp256k1)
                .map_err(|_| {
                    AciError::Malformed(format!(
                        "receipt key `{key_id}` is not a secp256k1 key"
                    ))
                }),
            other => Err(AciError::Unsupported(format!(
                "receipt key `{key_id}` has algorithm `{other}`, which this verifier does not implement"
            ))),
        }
    }

    /// §3.1 rules a verifier applies: unexpired, not implausibly long-lived, one key per role.
    pub(crate) fn check(&self, now: u64) -> Result<String, AciError> {
        if self.not_after <= now {
            return Err(AciError::Expired(format!(
                "keyset expired at {} (now {now})",
                self.not_after
            )));
        }
        if self.not_after > now + MAX_KEYSET_LIFETIME_SECS {
            return Err(AciError::Expired(format!(
                "keyset not_after {} is implausibly far in the future",
                self.not_after
            )));
        }
        let normalized = |k: &KeyEntry| {
            framing::hex_bytes(&k.public_key).unwrap_or_else(|_| k.public_key.clone().into())
        };
        let receipt: Vec<Vec<u8>> = self.receipt_signing_keys.iter().map(normalized).collect();
        if self
            .e2ee_public_keys
            .iter()
            .any(|e| receipt.contains(&normalized(e)))
        {
            return Err(AciError::Malformed(
                "a receipt signing key doubles as an E2EE key".into(),
            ));
        }
        Ok(format!(
            "{} valid until {}, {} receipt and {} E2EE keys",
            self.digest,
            self.not_after,
            self.receipt_signing_keys.len(),
            self.e2ee_public_keys.len()
        ))
    }
}

/// Restated `report_data` fields (§4.1) must equal the quote's REPORTDATA: all 64 bytes, or
/// the first 32 with the rest zero when 32 are restated.
pub(crate) fn check_restated(
    slot: &[u8; 64],
    restated: &[(&str, &str)],
) -> Result<String, AciError> {
    for (name, text) in restated {
        let bytes = framing::hex_bytes(text)
            .map_err(|_| AciError::Malformed(format!("{name} is not hex")))?;
        let same = match bytes.len() {
            64 => bytes == slot[..],
            32 => bytes == slot[..32] && slot[32..].iter().all(|b| *b == 0),
            n => {
                return Err(AciError::Malformed(format!(
                    "{name} has {n} bytes, not 32 or 64"
                )))
            }
        };
        if !same {
            return Err(AciError::Mismatch(format!(
                "{name} differs from the quote's REPORTDATA"
            )));
        }
    }
    Ok(format!(
        "{} restated field(s) equal the quote's REPORTDATA",
        restated.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// spec/test-vectors.md §1: the keyset as served (another member order, whitespace).
    pub(crate) fn vector_keyset() -> Value {
        serde_json::from_str(
            r#"{
              "subject": "dstack-app://example-app",
              "not_after": 1800000000,
              "receipt_signing_keys": [{"key_id": "receipt-1", "algo": "ed25519",
                "public_key": "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"}],
              "tls_public_keys": [{"spki_sha256": "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0", "domain": "api.example.com"}],
              "e2ee_public_keys": [{"public_key": "5dfedd3b6bd47f6fa28ee15d969d5bb0ea53774d488bdaf9df1c6e0124b3ef22",
                "key_id": "e2ee-1", "algo": "x25519-aes-256-gcm-hkdf-sha256"}]
            }"#,
        )
        .unwrap()
    }

    pub(crate) const VECTOR_DIGEST: &str =
        "sha256:53a5cd44b30dcc51999754c719f2628a041f174ecbf9662a6f8e898a10cd9371";

    #[test]
    fn keyset_digest_vector() {
        let v = vector_keyset();
        assert_eq!(
            String::from_utf8(jcs::canonical(&v)).unwrap(),
            r#"{"e2ee_public_keys":[{"algo":"x25519-aes-256-gcm-hkdf-sha256","key_id":"e2ee-1","public_key":"5dfedd3b6bd47f6fa28ee15d969d5bb0ea53774d488bdaf9df1c6e0124b3ef22"}],"not_after":1800000000,"receipt_signing_keys":[{"algo":"ed25519","key_id":"receipt-1","public_key":"8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"}],"subject":"dstack-app://example-app","tls_public_keys":[{"domain":"api.example.com","spki_sha256":"c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0"}]}"#
        );
        let k = Keyset::parse(&v).unwrap();
        assert_eq!(k.digest, VECTOR_DIGEST);
        assert_eq!(k.subject.as_deref(), Some("dstack-app://example-app"));
    }

    #[test]
    fn statement_vector() {
        let nonce: [u8; 32] = std::array::from_fn(|i| i as u8);
        assert_eq!(
            statement(VECTOR_DIGEST, &nonce),
            r#"{"keyset_digest":"sha256:53a5cd44b30dcc51999754c719f2628a041f174ecbf9662a6f8e898a10cd9371","nonce":"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f","purpose":"aci.report_data.v1"}"#
        );
        assert_eq!(
            hex::encode(report_data(VECTOR_DIGEST, &nonce)),
            "df2174d28130852b413646a3786927b93e94c11d770268b65def8bdba45cb49e0000000000000000000000000000000000000000000000000000000000000000"
        );
    }

    #[test]
    fn the_statement_decides_which_digest_is_bound() {
        let nonce = [9u8; 32];
        let ks = vector_keyset();
        let slot = report_data(VECTOR_DIGEST, &nonce);
        let restated = ["SHA256:FFFF"];
        let c = candidate_digests(Some(&ks), &restated);
        assert_eq!(c[0], VECTOR_DIGEST);
        let bound = |slot: &[u8; 64], nonce: &[u8; 32]| statement_bound(slot, &c, &[], nonce);
        assert_eq!(
            bound(&slot, &nonce),
            Some(Binding::Statement {
                keyset_digest: VECTOR_DIGEST.into(),
                workload_id: None
            })
        );
        // Another nonce, or the unchallenged form, binds nothing we accept.
        assert_eq!(bound(&slot, &[8u8; 32]), None);
        let mut null_form = [0u8; 64];
        null_form[..32].copy_from_slice(
            &hex::decode("0633919ca3f00e97bafaa3304278eb22420cc3ff0d19f87dfca2d3f7508150bc")
                .unwrap(),
        );
        assert_eq!(bound(&null_form, &nonce), None);
        // A slot with a non-zero second half is not the statement form.
        let mut tail = slot;
        tail[63] = 1;
        assert_eq!(bound(&tail, &nonce), None);
    }

    #[test]
    fn the_drafts_statement_with_a_workload_id_binds_too() {
        let nonce = [5u8; 32];
        let mut ks = vector_keyset();
        let identity = serde_json::json!({"algo": "ed25519", "public_key": "ab".repeat(32)});
        ks["workload_identity"] = serde_json::json!({"public_key": identity, "subject": null});
        let w = candidate_workload_ids(Some(&ks), &["sha256:restated-ignored"]);
        assert_eq!(w, vec![jcs::digest(&identity)]);
        let d = candidate_digests(Some(&ks), &[]);
        // Its exact bytes: the four members in JCS order.
        let text = format!(
            r#"{{"nonce":"{}","purpose":"aci.report_data.v1","workload_id":"{}","workload_keyset_digest":"{}"}}"#,
            hex::encode(nonce),
            w[0],
            d[0]
        );
        assert_eq!(draft_statement(&d[0], &w[0], &nonce), text.as_bytes());
        let mut slot = [0u8; 64];
        slot[..32].copy_from_slice(&Sha256::digest(text.as_bytes()));
        match statement_bound(&slot, &d, &w, &nonce) {
            Some(Binding::Statement { workload_id, .. }) => {
                assert_eq!(workload_id, Some(w[0].clone()))
            }
            other => panic!("{other:?}"),
        }
        // Another workload id than the keyset's identity key hashes to binds nothing.
        assert_eq!(
            statement_bound(&slot, &d, &["sha256:00".into()], &nonce),
            None
        );
        // The drafts' keyset keeps not_after in keyset_epoch.
        ks.as_object_mut().unwrap().remove("not_after");
        ks["keyset_epoch"] = serde_json::json!({"version": 1, "not_after": 1_800_000_000u64});
        assert_eq!(Keyset::parse(&ks).unwrap().not_after, 1_800_000_000);
    }

    #[test]
    fn keyset_rules() {
        let k = Keyset::parse(&vector_keyset()).unwrap();
        assert!(k.check(1_750_000_000).is_ok());
        assert!(k
            .check(1_800_000_000)
            .unwrap_err()
            .to_string()
            .contains("expired"));
        assert!(k
            .check(1_000_000_000)
            .unwrap_err()
            .to_string()
            .contains("implausibly"));
        assert!(k.receipt_key("receipt-1").is_ok());
        assert!(k.receipt_key("other").is_err());
        // The X25519 key is no secp256k1 point, so it cannot be the key we encrypt to.
        let ours = crate::e2ee::codec::KeyPair::generate().public_key();
        assert!(k.e2ee_entry_for(&ours).is_none());

        let mut v = vector_keyset();
        v["e2ee_public_keys"][0]["public_key"] = v["receipt_signing_keys"][0]["public_key"].clone();
        let doubled = Keyset::parse(&v).unwrap();
        assert!(doubled
            .check(1_750_000_000)
            .unwrap_err()
            .to_string()
            .contains("doubles"));
        v["receipt_signing_keys"][0]["algo"] = "p256".into();
        assert!(Keyset::parse(&v)
            .unwrap()
            .receipt_key("receipt-1")
            .unwrap_err()
            .to_string()
            .contains("does not implement"));
        v["not_after"] = "1800000000".into();
        assert!(Keyset::parse(&v).is_err());
    }

    #[test]
    fn a_secp256k1_key_is_found_in_any_hex_form() {
        let ours = crate::e2ee::codec::KeyPair::generate();
        let hex_key = ours.public_hex().to_string();
        let mut v = vector_keyset();
        v["e2ee_public_keys"].as_array_mut().unwrap().push(
            serde_json::json!({"key_id": "k1", "algo": "secp256k1-aes-256-gcm-hkdf-sha256",
                "public_key": format!("0x{}", hex_key[2..].to_uppercase())}),
        );
        let k = Keyset::parse(&v).unwrap();
        assert_eq!(k.e2ee_entry_for(&ours.public_key()).unwrap().key_id, "k1");
    }

    #[test]
    fn restated_report_data() {
        let slot = report_data(VECTOR_DIGEST, &[1; 32]);
        let full = hex::encode(slot);
        let half = hex::encode(&slot[..32]);
        assert!(check_restated(&slot, &[("a", &full), ("b", &half.to_uppercase())]).is_ok());
        assert!(check_restated(&slot, &[("a", &"00".repeat(32))]).is_err());
        assert!(check_restated(&slot, &[("a", "zz")]).is_err());
        // The address form's first 32 bytes are not followed by zeros.
        let mut addr_form = [0u8; 64];
        addr_form[40] = 1;
        assert!(check_restated(&addr_form, &[("a", &hex::encode(&addr_form[..32]))]).is_err());
    }
}
