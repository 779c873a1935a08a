//! The legacy dstack signature Venice's signature endpoint serves beside a receipt
//! (private-ai-gateway's `receipt_by_chat_id`): EIP-191 `personal_sign` over
//! `"<request hash>:<response hash>"`, the receipt's own `request.received` and
//! `response.returned` hashes in bare hex, by the secp256k1 key whose address the quote binds.
//! It is the one signature in the answer made directly by a key the hardware vouches for.

use super::AciError;
use crate::e2ee::codec;
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use serde_json::Value;
use sha3::{Digest, Keccak256};

/// What the envelope around a receipt says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Countersignature {
    /// No secp256k1 signature beside the receipt (the gateway's native receipt endpoint, or
    /// another algorithm): nothing is claimed.
    Absent,
    /// The receipt's hashes, signed by the key with this address (`0x…`).
    By(String),
}

/// The text the gateway signs for `receipt`: its `request.received` hash and its
/// `response.returned` hash (the deployed form's `wire_hash`, else `body_hash`), bare hex.
fn signed_text(receipt: &Value) -> Result<String, AciError> {
    let events = receipt
        .get("event_log")
        .and_then(Value::as_array)
        .ok_or_else(|| AciError::Malformed("the receipt has no event log".into()))?;
    let hash = |kind: &str| {
        super::receipt::hash_of(events, kind)
            .map(|h| h.trim().strip_prefix("sha256:").unwrap_or(h.trim()))
            .ok_or_else(|| AciError::Malformed(format!("the receipt has no {kind} hash")))
    };
    Ok(format!(
        "{}:{}",
        hash("request.received")?,
        hash("response.returned")?
    ))
}

/// `keccak256("\x19Ethereum Signed Message:\n" ‖ len ‖ text)`.
fn personal_message_hash(text: &str) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(format!("\x19Ethereum Signed Message:\n{}", text.len()).as_bytes());
    h.update(text.as_bytes());
    h.finalize().into()
}

/// The address whose key made the 65-byte `r ‖ s ‖ v` signature over `text`.
fn signer(text: &str, signature_hex: &str) -> Result<[u8; 20], AciError> {
    let hex_part = signature_hex.trim();
    let hex_part = hex_part.strip_prefix("0x").unwrap_or(hex_part);
    let bytes = hex::decode(hex_part)
        .map_err(|_| AciError::Signature("the countersignature is not hex".into()))?;
    let [rs @ .., v] = bytes.as_slice() else {
        return Err(AciError::Signature("the countersignature is empty".into()));
    };
    if rs.len() != 64 {
        return Err(AciError::Signature(format!(
            "the countersignature has {} bytes, not 65",
            bytes.len()
        )));
    }
    let parity = match v {
        27 | 28 => v - 27,
        0 | 1 => *v,
        _ => {
            return Err(AciError::Signature(format!(
                "the countersignature's recovery byte is {v}"
            )))
        }
    };
    let mut sig = Signature::from_slice(rs)
        .map_err(|_| AciError::Signature("the countersignature is not r ‖ s".into()))?;
    let mut recovery = RecoveryId::from_byte(parity).expect("0 or 1");
    // A high-s signature is the same signature with the other parity.
    if let Some(low) = sig.normalize_s() {
        sig = low;
        recovery = RecoveryId::new(!recovery.is_y_odd(), recovery.is_x_reduced());
    }
    let key = VerifyingKey::recover_from_prehash(&personal_message_hash(text), &sig, recovery)
        .map_err(|_| AciError::Signature("no key recovers from the countersignature".into()))?;
    Ok(codec::address(&key.into()))
}

/// Checks the signature `envelope` carries beside `receipt` against `address`, the one the
/// quote binds: the text must be the receipt's own hashes and recover to that address.
pub(crate) fn verify(
    envelope: &Value,
    receipt: &Value,
    address: &[u8; 20],
) -> Result<Countersignature, AciError> {
    let text = |k: &str| envelope.get(k).and_then(Value::as_str);
    let algo_is_ecdsa = text("signing_algo").is_none_or(|a| a.eq_ignore_ascii_case("ecdsa"));
    let (Some(signed), Some(signature), true) = (text("text"), text("signature"), algo_is_ecdsa)
    else {
        return Ok(Countersignature::Absent);
    };
    let expected = signed_text(receipt)?;
    if !signed.trim().eq_ignore_ascii_case(&expected) {
        return Err(AciError::Mismatch(format!(
            "the countersigned text is not the receipt's hashes ({expected})"
        )));
    }
    let by = signer(signed.trim(), signature)?;
    if &by != address {
        return Err(AciError::Signature(format!(
            "the countersignature recovers to 0x{}, not the quote-bound 0x{}",
            hex::encode(by),
            hex::encode(address)
        )));
    }
    Ok(Countersignature::By(format!("0x{}", hex::encode(by))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;
    use serde_json::json;

    fn receipt() -> Value {
        json!({"event_log": [
            {"type": "request.received", "body_hash": format!("sha256:{}", "aa".repeat(32))},
            {"type": "response.returned", "body_hash": format!("sha256:{}", "bb".repeat(32))}
        ]})
    }

    /// As the gateway signs: low-s, `v` = 27 + parity, `0x`-prefixed hex.
    fn envelope(key: &SigningKey, text: &str) -> Value {
        let (sig, recovery) = key
            .sign_prehash_recoverable(&personal_message_hash(text))
            .unwrap();
        let mut bytes = sig.to_bytes().to_vec();
        bytes.push(recovery.to_byte() + 27);
        json!({"api_version": "aci/1", "text": text, "signature": format!("0x{}", hex::encode(bytes)),
            "signing_algo": "ecdsa", "receipt": receipt()})
    }

    fn address_of(key: &SigningKey) -> [u8; 20] {
        codec::address(&(*key.verifying_key()).into())
    }

    #[test]
    fn the_receipts_hashes_signed_by_the_bound_key_verify() {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let text = format!("{}:{}", "aa".repeat(32), "bb".repeat(32));
        let env = envelope(&key, &text);
        let by = verify(&env, &receipt(), &address_of(&key)).unwrap();
        assert_eq!(
            by,
            Countersignature::By(format!("0x{}", hex::encode(address_of(&key))))
        );
        // The same signature with v as 0/1 and s high (its mirror) also recovers the key.
        let raw = hex::decode(&env["signature"].as_str().unwrap()[2..]).unwrap();
        let sig = Signature::from_slice(&raw[..64]).unwrap();
        let (r, s) = sig.split_scalars();
        let high = Signature::from_scalars(r, -*s).unwrap();
        let mut mirrored = high.to_bytes().to_vec();
        mirrored.push(1 - (raw[64] - 27));
        let mut env2 = env.clone();
        env2["signature"] = json!(hex::encode(mirrored));
        assert!(verify(&env2, &receipt(), &address_of(&key)).is_ok());
    }

    /// The deployed form (private-ai-gateway `aa65d64`, `legacy_signature_text`): the request's
    /// `body_hash` and the response's `wire_hash`, never its `cleartext_hash`.
    #[test]
    fn the_deployed_form_signs_the_wire_hash() {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let deployed = json!({"event_log": [
            {"seq": 0, "type": "request.received", "body_hash": format!("sha256:{}", "aa".repeat(32))},
            {"seq": 1, "type": "response.returned", "cleartext_hash": format!("sha256:{}", "cc".repeat(32)),
             "wire_hash": format!("sha256:{}", "dd".repeat(32))}
        ]});
        let text = format!("{}:{}", "aa".repeat(32), "dd".repeat(32));
        assert!(verify(&envelope(&key, &text), &deployed, &address_of(&key)).is_ok());
        let cleartext = format!("{}:{}", "aa".repeat(32), "cc".repeat(32));
        assert!(verify(&envelope(&key, &cleartext), &deployed, &address_of(&key)).is_err());
    }

    #[test]
    fn another_key_other_text_or_a_broken_signature_fail() {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let other = SigningKey::from_slice(&[8u8; 32]).unwrap();
        let text = format!("{}:{}", "aa".repeat(32), "bb".repeat(32));
        let e = verify(&envelope(&other, &text), &receipt(), &address_of(&key)).unwrap_err();
        assert!(e.to_string().contains("not the quote-bound"), "{e}");
        assert!(matches!(e, AciError::Signature(_)), "{e:?}");
        // A genuine signature over other hashes than this receipt's.
        let elsewhere = format!("{}:{}", "aa".repeat(32), "cc".repeat(32));
        let e = verify(&envelope(&key, &elsewhere), &receipt(), &address_of(&key)).unwrap_err();
        assert!(e.to_string().contains("not the receipt's hashes"), "{e}");
        assert!(matches!(e, AciError::Mismatch(_)), "{e:?}");
        let mut env = envelope(&key, &text);
        env["signature"] = json!("0x00");
        assert!(verify(&env, &receipt(), &address_of(&key)).is_err());
        let mut env = envelope(&key, &text);
        let mut sig = env["signature"].as_str().unwrap().to_string();
        sig.replace_range(10..12, "00");
        env["signature"] = json!(sig);
        assert!(verify(&env, &receipt(), &address_of(&key)).is_err());
    }

    #[test]
    fn no_signature_or_another_algorithm_claims_nothing() {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let a = address_of(&key);
        assert_eq!(
            verify(&json!({"receipt": receipt()}), &receipt(), &a).unwrap(),
            Countersignature::Absent
        );
        let mut env = envelope(&key, "x");
        env["signing_algo"] = json!("ed25519");
        assert_eq!(
            verify(&env, &receipt(), &a).unwrap(),
            Countersignature::Absent
        );
    }
}
