//! The gateway's own attestation (`GET /v1/aci/attestation?nonce=` on a host its measured
//! ingress serves), read to anchor the keyset Venice serves in hardware: Venice's endpoint
//! binds only the E2EE key's address, while this report's quote binds a statement over the
//! keyset digest and our nonce (§3.2, or the drafts' form with `workload_id` the deployed
//! gateways serve). Pure: the quote's signature and TCB are checked by the caller.

use super::{draft_statement, jcs, statement, AciError, Keyset, API_VERSION};
use crate::attestation::quote::{self, TdReport};
use k256::ecdsa::signature::Verifier as _;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

const ENDORSEMENT_PURPOSE: &str = "aci.keyset.endorsement.v1";

/// What a native report says, read and bound to our nonce (its quote not yet verified).
#[derive(Debug)]
pub(crate) struct Native {
    pub(crate) keyset: Keyset,
    /// The drafts' `workload_id` the statement bound, when it was that form.
    pub(crate) workload_id: Option<String>,
    pub(crate) raw_quote: Vec<u8>,
    pub(crate) td: TdReport,
    pub(crate) endorsement: Endorsement,
    /// `attestation.freshness.stale_after`, as served (unsigned).
    pub(crate) stale_after: Option<u64>,
}

/// The identity key's signature over the keyset digest (the drafts' `keyset_endorsement`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub(crate) enum Endorsement {
    /// Verified under the keyset's `workload_identity` key (algorithm named).
    Verified { algo: String },
    /// The report carries none (the spec since August has no identity key).
    Absent,
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// Reads `raw` and checks everything that needs no network: the layout, the keyset and its
/// restated digest, the statement REPORTDATA binds for `nonce`, and the endorsement.
pub(crate) fn read(raw: &Value, nonce: &[u8; 32]) -> Result<Native, AciError> {
    if text(raw, "/api_version") != Some(API_VERSION) {
        return Err(AciError::Malformed(format!(
            "the gateway's report is not {API_VERSION} ({:?})",
            text(raw, "/api_version")
        )));
    }
    let keyset_value = raw
        .pointer("/attestation/workload_keyset")
        .or_else(|| raw.get("workload_keyset"))
        .ok_or_else(|| AciError::Malformed("the gateway's report has no workload_keyset".into()))?;
    let keyset = Keyset::parse(keyset_value)?;
    if let Some(restated) = text(raw, "/workload_keyset_digest") {
        if !restated.trim().eq_ignore_ascii_case(&keyset.digest) {
            return Err(AciError::Mismatch(format!(
                "the report restates keyset {restated}, but its keyset hashes to {}",
                keyset.digest
            )));
        }
    }
    let quote_text = text(raw, "/attestation/evidence/quote").ok_or_else(|| {
        AciError::Malformed("the gateway's report has no attestation.evidence.quote".into())
    })?;
    let raw_quote =
        quote::decode_quote_text(quote_text).map_err(|e| AciError::Malformed(e.to_string()))?;
    let td = quote::parse(&raw_quote).map_err(|e| AciError::Malformed(e.to_string()))?;
    let workload_id = bound_statement(raw, keyset_value, &keyset.digest, nonce, &td)?;
    let endorsement = endorsement(raw, keyset_value, &keyset.digest)?;
    Ok(Native {
        keyset,
        workload_id,
        raw_quote,
        td,
        endorsement,
        stale_after: raw
            .pointer("/attestation/freshness/stale_after")
            .and_then(Value::as_u64),
    })
}

/// Which statement REPORTDATA binds: the spec's (`None`) or the drafts' with the
/// `workload_id` recomputed from the keyset's identity key. Any other value fails.
fn bound_statement(
    raw: &Value,
    keyset: &Value,
    digest: &str,
    nonce: &[u8; 32],
    td: &TdReport,
) -> Result<Option<String>, AciError> {
    let (head, tail) = td.report_data.split_at(32);
    if tail.iter().any(|b| *b != 0) {
        return Err(AciError::Mismatch(
            "REPORTDATA's second half is not zero".into(),
        ));
    }
    if head == Sha256::digest(statement(digest, nonce).as_bytes()).as_slice() {
        return Ok(None);
    }
    let identity = keyset
        .pointer("/workload_identity/public_key")
        .ok_or_else(|| {
            AciError::Mismatch(
                "REPORTDATA is not the statement for our nonce and this keyset".into(),
            )
        })?;
    let workload_id = jcs::digest(identity);
    if let Some(restated) = text(raw, "/workload_id") {
        if restated.trim() != workload_id {
            return Err(AciError::Mismatch(format!(
                "the report restates workload {restated}, but its identity key hashes to {workload_id}"
            )));
        }
    }
    if head == Sha256::digest(draft_statement(digest, &workload_id, nonce)).as_slice() {
        return Ok(Some(workload_id));
    }
    Err(AciError::Mismatch(
        "REPORTDATA is not the statement for our nonce and this keyset".into(),
    ))
}

/// Verifies `keyset_endorsement` under the identity key: `ecdsa-secp256k1` (64-byte r ‖ s
/// over SHA-256 of the payload) or `ed25519`, over the JCS form of
/// `{purpose: "aci.keyset.endorsement.v1", workload_keyset_digest}`.
fn endorsement(raw: &Value, keyset: &Value, digest: &str) -> Result<Endorsement, AciError> {
    let Some(e) = raw.pointer("/attestation/keyset_endorsement") else {
        return Ok(Endorsement::Absent);
    };
    let identity = keyset
        .pointer("/workload_identity/public_key")
        .ok_or_else(|| {
            AciError::Malformed("a keyset_endorsement without a workload_identity key".into())
        })?;
    let algo = e.get("algo").and_then(Value::as_str).unwrap_or_default();
    if Some(algo) != identity.get("algo").and_then(Value::as_str) {
        return Err(AciError::Unsupported(format!(
            "keyset_endorsement is {algo:?}, the identity key another algorithm"
        )));
    }
    let key = hex::decode(
        identity
            .get("public_key")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    )
    .map_err(|_| AciError::Malformed("the identity key is not hex".into()))?;
    let sig = hex::decode(e.get("value").and_then(Value::as_str).unwrap_or_default())
        .map_err(|_| AciError::Malformed("keyset_endorsement is not hex".into()))?;
    let payload = jcs::canonical(&serde_json::json!({
        "purpose": ENDORSEMENT_PURPOSE,
        "workload_keyset_digest": digest,
    }));
    let ok = match algo {
        "ecdsa-secp256k1" => {
            let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(&key);
            let sig = k256::ecdsa::Signature::from_slice(&sig);
            matches!((key, sig), (Ok(k), Ok(s)) if k.verify(&payload, &s).is_ok())
        }
        "ed25519" => ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &key)
            .verify(&payload, &sig)
            .is_ok(),
        other => {
            return Err(AciError::Unsupported(format!(
                "keyset_endorsement algorithm {other:?} is not known"
            )))
        }
    };
    if !ok {
        return Err(AciError::Signature(
            "keyset_endorsement does not verify under the identity key".into(),
        ));
    }
    Ok(Endorsement::Verified {
        algo: algo.to_string(),
    })
}

/// The receipt key's custody as dstack's KMS publishes it (`evidence.key_custody`), read for
/// what it is: a chain of two recoverable signatures from the receipt key's KMS-derived key to
/// a KMS root. The root is not named by any measurement, so the chain is reported, not relied
/// on (the quote's binding of the keyset is what anchors it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub(crate) enum Custody {
    /// The report publishes none.
    Absent,
    /// The chain recovers to this KMS root (compressed secp256k1, hex).
    Chain { kms_root: String },
    /// Published but not a chain that recovers.
    Broken { why: String },
}

/// Reads the receipt key's custody chain in `raw` for a workload with `app_id` (measured).
pub(crate) fn custody(raw: &Value, keyset: &Keyset, app_id: Option<&[u8]>) -> Custody {
    let Some(c) = raw
        .pointer("/attestation/evidence/key_custody")
        .filter(|c| !c.is_null())
    else {
        return Custody::Absent;
    };
    match custody_root(c, keyset, app_id) {
        Ok(kms_root) => Custody::Chain { kms_root },
        Err(why) => Custody::Broken {
            why: why.to_string(),
        },
    }
}

fn custody_root(c: &Value, keyset: &Keyset, app_id: Option<&[u8]>) -> Result<String, AciError> {
    if c.get("provider").and_then(Value::as_str) != Some("dstack-kms") {
        return Err(AciError::Unsupported(
            "not a dstack-kms custody record".into(),
        ));
    }
    let key = c
        .get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|k| k.get("role").and_then(Value::as_str) == Some("receipt"))
        .ok_or_else(|| AciError::Malformed("no custody record for the receipt key".into()))?;
    let field = |k: &str| {
        key.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| AciError::Malformed(format!("no `{k}`")))
    };
    let public = field("public_key")?;
    if !keyset
        .receipt_signing_keys
        .iter()
        .any(|k| k.public_key.eq_ignore_ascii_case(public))
    {
        return Err(AciError::Mismatch(
            "the custody record is for another key than the keyset's receipt key".into(),
        ));
    }
    // The KMS-derived secp256k1 key the chain starts from: named apart (`kms_public_key`,
    // the spec's form since aa65d64), or the key itself (the deployed form, secp256k1 keys).
    let (name, derived) = match field("kms_public_key") {
        Ok(k) => ("kms_public_key", k),
        Err(_) => ("public_key", public),
    };
    let kms_key = k256::PublicKey::from_sec1_bytes(
        &hex::decode(derived.trim_start_matches("0x"))
            .map_err(|_| AciError::Malformed(format!("{name} is not hex")))?,
    )
    .map_err(|_| AciError::Malformed(format!("{name} is not a secp256k1 key")))?;
    let chain: Vec<Vec<u8>> = key
        .get("signature_chain")
        .and_then(Value::as_array)
        .ok_or_else(|| AciError::Malformed("no signature_chain".into()))?
        .iter()
        .map(|s| hex::decode(s.as_str().unwrap_or_default().trim_start_matches("0x")))
        .collect::<Result<_, _>>()
        .map_err(|_| AciError::Malformed("the signature chain is not hex".into()))?;
    let [by_app, by_root] = chain.as_slice() else {
        return Err(AciError::Malformed(format!(
            "the signature chain has {} signatures, not 2",
            chain.len()
        )));
    };
    use k256::elliptic_curve::sec1::ToEncodedPoint as _;
    let compressed = |k: &k256::PublicKey| k.to_encoded_point(true).as_bytes().to_vec();
    let message = format!(
        "{}:{}",
        field("purpose")?,
        hex::encode(compressed(&kms_key))
    );
    let app_key = recover(message.as_bytes(), by_app)?;
    let app_id = app_id.ok_or_else(|| {
        AciError::Malformed("no measured app id to check the KMS signature against".into())
    })?;
    let issued = [
        b"dstack-kms-issued:".as_slice(),
        app_id,
        &compressed(&app_key),
    ]
    .concat();
    let root = recover(&issued, by_root)?;
    Ok(hex::encode(compressed(&root)))
}

/// The key whose 65-byte recoverable signature over keccak256(`message`) this is.
fn recover(message: &[u8], sig: &[u8]) -> Result<k256::PublicKey, AciError> {
    use sha3::{Digest as _, Keccak256};
    let [rs @ .., v] = sig else {
        return Err(AciError::Signature("an empty signature".into()));
    };
    let v = if (27..=30).contains(v) { v - 27 } else { *v };
    let recovery = k256::ecdsa::RecoveryId::from_byte(v)
        .ok_or_else(|| AciError::Signature("a bad recovery byte".into()))?;
    let sig = k256::ecdsa::Signature::from_slice(rs)
        .map_err(|_| AciError::Signature("not a 65-byte signature".into()))?;
    let key = k256::ecdsa::VerifyingKey::recover_from_digest(
        Keccak256::new_with_prefix(message),
        &sig,
        recovery,
    )
    .map_err(|_| AciError::Signature("no key recovers from the signature".into()))?;
    Ok(key.into())
}

/// A quote's workload measurements, lowercase or uppercase hex (as a report holds them).
pub(crate) struct Measured<'a> {
    pub(crate) mr_td: &'a str,
    pub(crate) mr_config_id: &'a str,
    pub(crate) rtmr: [&'a str; 4],
}

/// The measurements two quotes must share to be the same workload: the TD (MRTD), its
/// firmware, kernel and command line (RTMR0–2) and the app compose (MRCONFIGID). RTMR3 also
/// holds the instance's own events; whether it matches is returned, for the report.
pub(crate) fn same_workload(native: &TdReport, served: &Measured<'_>) -> Result<bool, AciError> {
    let pairs: [(&str, &[u8], &str); 5] = [
        ("MRTD", &native.mr_td, served.mr_td),
        ("MRCONFIGID", &native.mr_config_id, served.mr_config_id),
        ("RTMR0", &native.rtmr[0], served.rtmr[0]),
        ("RTMR1", &native.rtmr[1], served.rtmr[1]),
        ("RTMR2", &native.rtmr[2], served.rtmr[2]),
    ];
    for (name, ours, theirs) in pairs {
        if !hex::encode(ours).eq_ignore_ascii_case(theirs.trim()) {
            return Err(AciError::Mismatch(format!(
                "the gateway's own quote is another workload: its {name} is {}, Venice's quote has {theirs}",
                hex::encode(ours)
            )));
        }
    }
    Ok(hex::encode(native.rtmr[3]).eq_ignore_ascii_case(served.rtmr[3].trim()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::attestation::aci::tests::vector_keyset;
    use serde_json::json;

    /// The real capture's quote with REPORTDATA replaced (the signature is not checked here).
    pub(crate) fn quote_with(report_data: [u8; 64]) -> String {
        let body = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/capture/0001_api.venice.ai_api_v1_tee_attestation.body"
        ))
        .unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        let mut q = hex::decode(v["intel_quote"].as_str().unwrap()).unwrap();
        q[568..632].copy_from_slice(&report_data);
        hex::encode(q)
    }

    fn slot(head: &[u8]) -> [u8; 64] {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(head);
        s
    }

    const NONCE: [u8; 32] = [5; 32];

    /// A draft-era keyset with a secp256k1 identity key, and its report endorsed by that key.
    fn draft_report(identity: &k256::ecdsa::SigningKey) -> Value {
        let public = hex::encode(identity.verifying_key().to_encoded_point(true).as_bytes());
        let mut keyset = vector_keyset();
        keyset["workload_identity"] = json!({"public_key": {"algo": "ecdsa-secp256k1", "public_key": public}, "subject": null});
        let digest = jcs::digest(&keyset);
        let workload_id = jcs::digest(&keyset["workload_identity"]["public_key"]);
        let rd = Sha256::digest(draft_statement(&digest, &workload_id, &NONCE));
        let payload = jcs::canonical(
            &json!({"purpose": ENDORSEMENT_PURPOSE, "workload_keyset_digest": digest}),
        );
        let sig: k256::ecdsa::Signature = k256::ecdsa::signature::Signer::sign(identity, &payload);
        json!({"api_version": "aci/1", "workload_id": workload_id, "workload_keyset_digest": digest,
            "attestation": {"workload_keyset": keyset, "keyset_endorsement": {"algo": "ecdsa-secp256k1", "value": hex::encode(sig.to_bytes())},
                "freshness": {"fetched_at": 1, "stale_after": 99}, "evidence": {"quote": quote_with(slot(&rd))}}})
    }

    #[test]
    fn the_spec_statement_binds_the_keyset_and_our_nonce() {
        let keyset = vector_keyset();
        let digest = jcs::digest(&keyset);
        let rd = Sha256::digest(statement(&digest, &NONCE).as_bytes());
        let raw = json!({"api_version": "aci/1", "workload_keyset_digest": digest,
            "attestation": {"workload_keyset": keyset, "evidence": {"quote": quote_with(slot(&rd))}}});
        let n = read(&raw, &NONCE).unwrap();
        assert_eq!(n.keyset.digest, digest);
        assert_eq!(n.workload_id, None);
        assert_eq!(n.endorsement, Endorsement::Absent);
        // Another nonce (a replayed report), or a restated digest of another keyset, fail.
        assert!(read(&raw, &[6; 32])
            .unwrap_err()
            .to_string()
            .contains("our nonce"));
        let mut other = raw.clone();
        other["workload_keyset_digest"] = json!(format!("sha256:{}", "00".repeat(32)));
        assert!(read(&other, &NONCE)
            .unwrap_err()
            .to_string()
            .contains("restates keyset"));
        let mut tail = slot(&rd);
        tail[40] = 1;
        let mut other = raw.clone();
        other["attestation"]["evidence"]["quote"] = json!(quote_with(tail));
        assert!(read(&other, &NONCE)
            .unwrap_err()
            .to_string()
            .contains("second half"));
    }

    #[test]
    fn the_drafts_statement_and_endorsement_verify_and_any_change_fails() {
        let identity = k256::ecdsa::SigningKey::from_slice(&[3; 32]).unwrap();
        let raw = draft_report(&identity);
        let n = read(&raw, &NONCE).unwrap();
        assert!(n.workload_id.is_some());
        assert_eq!(n.stale_after, Some(99));
        assert_eq!(
            n.endorsement,
            Endorsement::Verified {
                algo: "ecdsa-secp256k1".into()
            }
        );
        // An endorsement by another key; a restated workload id of another key.
        let mut other = raw.clone();
        let stranger = draft_report(&k256::ecdsa::SigningKey::from_slice(&[4; 32]).unwrap());
        other["attestation"]["keyset_endorsement"] =
            stranger["attestation"]["keyset_endorsement"].clone();
        assert!(read(&other, &NONCE)
            .unwrap_err()
            .to_string()
            .contains("does not verify"));
        let mut other = raw.clone();
        other["workload_id"] = stranger["workload_id"].clone();
        assert!(read(&other, &NONCE)
            .unwrap_err()
            .to_string()
            .contains("restates workload"));
        // A keyset changed after the quote bound it.
        let mut other = raw.clone();
        other["attestation"]["workload_keyset"]["subject"] = json!("someone else");
        other
            .as_object_mut()
            .unwrap()
            .remove("workload_keyset_digest");
        assert!(read(&other, &NONCE).is_err());
    }

    #[test]
    fn another_workload_is_named_and_another_instance_only_reported() {
        let td = quote::parse(&hex::decode(quote_with([0; 64])).unwrap()).unwrap();
        let hexes = |td: &TdReport| {
            (
                hex::encode(td.mr_td),
                hex::encode(td.mr_config_id),
                td.rtmr.map(hex::encode),
            )
        };
        let (mr_td, cfg, rtmr) = hexes(&td);
        let served = |rtmr: &[String; 4], cfg: &str| {
            let m = Measured {
                mr_td: &mr_td,
                mr_config_id: cfg,
                rtmr: [&rtmr[0], &rtmr[1], &rtmr[2], &rtmr[3]],
            };
            same_workload(&td, &m)
        };
        assert_eq!(served(&rtmr, &cfg), Ok(true));
        let mut other = rtmr.clone();
        other[3] = "00".repeat(48);
        assert_eq!(served(&other, &cfg), Ok(false));
        let e = served(&rtmr, &"11".repeat(48)).unwrap_err();
        assert!(e.to_string().contains("MRCONFIGID"), "{e}");
        let mut other = rtmr.clone();
        other[1] = "22".repeat(48);
        assert!(served(&other, &cfg)
            .unwrap_err()
            .to_string()
            .contains("RTMR1"));
    }

    /// A dstack KMS chain as the gateway publishes it: root signs (app id ‖ app key), the
    /// app key signs (purpose : KMS-derived key).
    fn custody_record(root: &k256::ecdsa::SigningKey, app_id: &[u8], receipt_key: &str) -> Value {
        use sha3::{Digest as _, Keccak256};
        let app = k256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
        let derived = k256::ecdsa::SigningKey::from_slice(&[8; 32]).unwrap();
        let compressed = |k: &k256::ecdsa::SigningKey| {
            k.verifying_key().to_encoded_point(true).as_bytes().to_vec()
        };
        let sign = |k: &k256::ecdsa::SigningKey, m: &[u8]| {
            let (s, r) = k
                .sign_digest_recoverable(Keccak256::new_with_prefix(m))
                .unwrap();
            let mut b = s.to_bytes().to_vec();
            b.push(r.to_byte() + 27);
            hex::encode(b)
        };
        let purpose = "aci.receipt.ed25519.v1";
        let by_app = sign(
            &app,
            format!("{purpose}:{}", hex::encode(compressed(&derived))).as_bytes(),
        );
        let by_root = sign(
            root,
            &[b"dstack-kms-issued:".as_slice(), app_id, &compressed(&app)].concat(),
        );
        json!({"provider": "dstack-kms", "keys": [{"role": "receipt", "purpose": purpose,
            "public_key": receipt_key, "kms_public_key": hex::encode(compressed(&derived)),
            "signature_chain": [by_app, by_root]}]})
    }

    #[test]
    fn the_custody_chain_is_read_to_its_root_and_only_reported() {
        let keyset_value = vector_keyset();
        let keyset = Keyset::parse(&keyset_value).unwrap();
        let receipt_key = keyset.receipt_signing_keys[0].public_key.clone();
        let root = k256::ecdsa::SigningKey::from_slice(&[9; 32]).unwrap();
        let raw = |c: Value| json!({"attestation": {"evidence": {"key_custody": c}}});
        let app_id = [1u8; 20];
        let c = custody(
            &raw(custody_record(&root, &app_id, &receipt_key)),
            &keyset,
            Some(&app_id),
        );
        let expected = hex::encode(root.verifying_key().to_encoded_point(true).as_bytes());
        assert_eq!(
            c,
            Custody::Chain {
                kms_root: expected.clone()
            }
        );
        // Another app id recovers another "root": the chain is only as good as what names it.
        let c = custody(
            &raw(custody_record(&root, &app_id, &receipt_key)),
            &keyset,
            Some(&[2; 20]),
        );
        assert_ne!(c, Custody::Chain { kms_root: expected });
        // A record for another key, or none.
        let c = custody(
            &raw(custody_record(&root, &app_id, "00")),
            &keyset,
            Some(&app_id),
        );
        assert!(matches!(c, Custody::Broken { .. }), "{c:?}");
        assert_eq!(custody(&json!({}), &keyset, Some(&app_id)), Custody::Absent);
    }

    /// private-ai-gateway `aa65d64` spec/test-vectors.md §1–§4: the identity key's
    /// `workload_id`, the statement REPORTDATA binds (its nonce a string there), and the
    /// keyset endorsement, in the deployed form.
    #[test]
    fn the_deployed_forms_statement_and_endorsement_vectors() {
        let identity = json!({"algo": "ed25519",
            "public_key": "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"});
        let workload_id = jcs::digest(&identity);
        assert_eq!(
            workload_id,
            "sha256:57c2c8fa98bcf11441f1eff9ef087db67a5560a026082e96903e15365677b8c0"
        );
        let digest = "sha256:f2fba7e1b1451e0c0231df624f293407692ef939d3e0e55bca723131bea3f1ff";
        let statement = |nonce: Value| {
            hex::encode(Sha256::digest(jcs::canonical(
                &json!({"purpose": "aci.report_data.v1",
                "workload_id": workload_id, "workload_keyset_digest": digest, "nonce": nonce}),
            )))
        };
        assert_eq!(
            statement(json!("test-nonce")),
            "0b8cc28d7e989a88b1e969af20aa2b224afdc2c99f24c97c31a4af330c964ecf"
        );
        assert_eq!(
            statement(Value::Null),
            "e1818eadad3c28375c625e2fa2d2ffd983d2760c84ce17f8527ddcac884c21b9"
        );
        let keyset = json!({"workload_identity": {"public_key": identity}});
        let endorsed = |value: &str| {
            endorsement(
                &json!({"attestation": {"keyset_endorsement": {"algo": "ed25519", "value": value}}}),
                &keyset,
                digest,
            )
        };
        assert_eq!(
            endorsed("64e0a4f5d7af28dfdacc102d14c13470b4ddbd90708e190fc0e787f07b36f20eda0ef1f42ea96b8a7f290eb64a918574dc914ce06b6ea023d2153275f06fd201"),
            Ok(Endorsement::Verified { algo: "ed25519".into() })
        );
        // The revocation vector is the same key over another purpose: no endorsement.
        assert!(endorsed("5f30e02aa53bb628c7f6410636e9f5e33402d2b0b416a6ed278ea3e6e40b48a9af6ba6e5e55abb89a7ad4627eca444a73cad9d25e22bf239c9c6b362d48ed50f").is_err());
    }

    /// The deployed form (private-ai-gateway `aa65d64`) names no `kms_public_key`: the chain
    /// starts from the secp256k1 key itself, as its verifier reads it.
    #[test]
    fn deployed_custody_records_start_from_the_key_itself() {
        let derived = k256::ecdsa::SigningKey::from_slice(&[8; 32]).unwrap();
        let mut keyset_value = vector_keyset();
        keyset_value["receipt_signing_keys"] = json!([{"key_id": "dstack-kms-receipt-v1",
            "algo": "ecdsa-secp256k1",
            "public_key": hex::encode(derived.verifying_key().to_encoded_point(false).as_bytes())}]);
        let keyset = Keyset::parse(&keyset_value).unwrap();
        let receipt_key = keyset.receipt_signing_keys[0].public_key.clone();
        let root = k256::ecdsa::SigningKey::from_slice(&[9; 32]).unwrap();
        let app_id = [1u8; 20];
        let mut record = custody_record(&root, &app_id, &receipt_key);
        record["keys"][0]
            .as_object_mut()
            .unwrap()
            .remove("kms_public_key");
        let c = custody(
            &json!({"attestation": {"evidence": {"key_custody": record}}}),
            &keyset,
            Some(&app_id),
        );
        let expected = hex::encode(root.verifying_key().to_encoded_point(true).as_bytes());
        assert_eq!(c, Custody::Chain { kms_root: expected });
    }
}
