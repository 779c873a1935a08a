//! Inference receipts: a signed per-request event log, in both forms gateways serve. The
//! spec's (§7): top-level `key_id`, a string `signature` over the JCS form of the document
//! without it, `response.returned.body_hash`. The form private-ai-gateway `aa65d64` deploys
//! (Venice's gateway, its spec §8): `signature: {algo, key_id, value}` over the document
//! without `value`, `seq` on every event, `workload_id`, and `response.returned` carrying
//! `wire_hash` (the bytes it emitted) and `cleartext_hash` (its pre-encryption serialization,
//! which no client can reproduce). The signature is Ed25519, or a recoverable secp256k1 one
//! over the SHA-256 of those bytes, under a receipt key of the attested keyset.

use super::{jcs, AciError, Keyset, API_VERSION};
use crate::attestation::framing;
use serde::Serialize;
use serde_json::Value;

/// What the proxy itself observed of the exchange a receipt describes.
#[derive(Clone)]
pub(crate) struct Observed<'a> {
    /// SHA-256 of the response body bytes as they arrived from Venice.
    pub(crate) response_sha256: [u8; 32],
    /// SHA-256 of the request body the proxy sent.
    pub(crate) request_sha256: [u8; 32],
    /// The answer's id, when it had one.
    pub(crate) chat_id: Option<&'a str>,
    /// When the request was sent and its answer ended (Unix seconds): a receipt served
    /// outside it (with some clock skew) is another exchange's.
    pub(crate) window: (u64, u64),
}

/// The clock difference allowed between the gateway's `served_at` and the proxy's window
/// (the gateway's CVM runs without secure time).
pub(crate) const SERVED_AT_SKEW_SECS: u64 = 60;

/// One `upstream.verified` event (§7.5), as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct UpstreamEvent {
    pub(crate) result: String,
    /// Whether the gateway's policy demanded verification for this request.
    pub(crate) required: Option<bool>,
    pub(crate) model_id: Option<String>,
    pub(crate) session_id: Option<String>,
    pub(crate) reason: Option<String>,
    /// `upstream_name` or, as Venice's gateway writes it, `url_origin`.
    pub(crate) upstream: Option<String>,
    pub(crate) verifier_id: Option<String>,
    /// Claim name → status (`asserted`, `refuted`, `unknown`, with its source when named),
    /// as the gateway recorded them.
    pub(crate) claims: Vec<(String, String)>,
}

impl UpstreamEvent {
    pub(crate) fn verified(&self) -> bool {
        self.result == "verified"
    }

    fn parse(e: &Value) -> UpstreamEvent {
        let text = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
        UpstreamEvent {
            result: text("result").unwrap_or_default(),
            required: e.get("required").and_then(Value::as_bool),
            model_id: text("model_id"),
            session_id: text("session_id"),
            reason: text("reason"),
            upstream: text("upstream_name").or_else(|| text("url_origin")),
            verifier_id: text("verifier_id"),
            claims: super::claims(e.get("claims")),
        }
    }
}

/// A receipt whose signature, keyset digest and response hash verified.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct VerifiedReceipt {
    pub(crate) receipt_id: String,
    pub(crate) key_id: String,
    pub(crate) served_at: Option<u64>,
    /// Whether `served_at` lies inside the request's window (with the skew allowed).
    pub(crate) served_in_window: bool,
    /// Whether `request.received` hashes the bytes the proxy sent (a gateway that restores
    /// or re-serializes the request hashes other bytes; reported, not judged).
    pub(crate) request_hash_matches: Option<bool>,
    /// Whether `response.returned` hashes the bytes the proxy received.
    pub(crate) response_hash_matches: bool,
    /// The receipt's `transparency.*_modified` events: the gateway recorded that a hop
    /// between the client and it (Venice's API) re-wrapped the bodies it hashed.
    pub(crate) modified: Vec<String>,
    /// The answer id the receipt names, when the answer had the same one.
    pub(crate) chat_id: Option<String>,
    /// The route the gateway chose (`route.selected`), as it records it.
    pub(crate) route: Option<String>,
    pub(crate) upstream: Vec<UpstreamEvent>,
}

impl VerifiedReceipt {
    fn response_modified(&self) -> bool {
        self.modified
            .iter()
            .any(|m| m.ends_with("response_modified"))
    }
}

/// What a receipt whose signature verified establishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Standing {
    /// Signed under the attested keyset and hashing exactly the bytes exchanged.
    Verified,
    /// Signed under the attested keyset for this answer, its bodies re-wrapped by Venice
    /// (as its transparency events record), so their hashes are of the gateway's bytes.
    Authentic,
    /// Signed, but under a keyset no quote binds: the gateway's word is not established.
    Unanchored,
    Failed,
}

impl Standing {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Standing::Verified => "verified",
            Standing::Authentic => "authentic",
            Standing::Unanchored => "unanchored",
            Standing::Failed => "failed",
        }
    }

    /// Whether the receipt's events are the attested gateway's own word.
    pub(crate) fn anchored(self) -> bool {
        matches!(self, Standing::Verified | Standing::Authentic)
    }
}

/// Judges a receipt whose signature verified: `anchored` when a quote binds the keyset that
/// holds its key; `countersigner` when the quote-bound key signed its hashes.
pub(crate) fn standing(
    r: &VerifiedReceipt,
    anchored: bool,
    countersigner: Option<&str>,
) -> (Standing, String) {
    let countersigned = countersigner
        .map(|a| format!("; its hashes countersigned by the quote-bound key {a}"))
        .unwrap_or_default();
    if !r.response_hash_matches && !r.response_modified() {
        return (
            Standing::Failed,
            "response.returned does not hash the response bytes received, and the receipt records no modification".into(),
        );
    }
    if !r.response_hash_matches && r.chat_id.is_none() {
        return (
            Standing::Failed,
            "the receipt hashes other bytes than were received and names no answer id the proxy saw".into(),
        );
    }
    // What a hop cannot copy from another answer: the request bytes the proxy sent (fresh
    // ephemeral keys make them unique), else the time the gateway served it.
    let tied = r.served_in_window || r.request_hash_matches == Some(true);
    if !r.response_hash_matches && !tied {
        return (
            Standing::Failed,
            format!(
                "the receipt hashes other bytes than were received and was served at {}, outside this request's window: it is another exchange's",
                r.served_at.map_or("-".to_string(), |t| t.to_string())
            ),
        );
    }
    if !anchored {
        return (
            Standing::Unanchored,
            format!(
                "signed by {}, but the quote binds the signing address, not the keyset that holds it{countersigned}",
                r.key_id
            ),
        );
    }
    if r.response_hash_matches {
        return (
            Standing::Verified,
            format!(
                "signed by {} of the attested keyset; response hash matches{countersigned}",
                r.key_id
            ),
        );
    }
    (
        Standing::Authentic,
        format!(
            "signed by {} of the attested keyset for answer {}, served inside this request's window; its hashes are of the gateway's bytes, which Venice re-wraps on the way ({}), so nothing in it covers the bytes received{countersigned}",
            r.key_id,
            r.chat_id.as_deref().unwrap_or("-"),
            r.modified.join(", ")
        ),
    )
}

/// The hash an event carries: `wire_hash` where the deployed form has it (`response.returned`:
/// the exact bytes the gateway emitted), else the spec's `body_hash`.
pub(crate) fn hash_of<'a>(events: &'a [Value], kind: &str) -> Option<&'a str> {
    let event = events
        .iter()
        .find(|e| e.get("type").and_then(Value::as_str) == Some(kind))?;
    ["wire_hash", "body_hash"]
        .iter()
        .find_map(|k| event.get(*k).and_then(Value::as_str))
}

fn same_hash(field: &str, sha256: &[u8; 32]) -> bool {
    let hex = field.trim();
    let hex = hex
        .strip_prefix("sha256:")
        .or_else(|| hex.strip_prefix("SHA256:"))
        .unwrap_or(hex);
    framing::hex_matches(hex, sha256)
}

/// A receipt's signature, the key id and algorithm it may carry inside, and the bytes it
/// signs.
struct Signed {
    signature: Vec<u8>,
    inner_key_id: Option<String>,
    inner_algo: Option<String>,
    message: Vec<u8>,
}

/// The signature and the document it signs: the spec's string `signature` (the document
/// without it is signed), or an object whose `value` is the signature (the document without
/// that value is signed), as earlier gateway versions served it.
fn signed_parts(doc: &Value) -> Result<Signed, AciError> {
    let mut unsigned = doc.clone();
    let obj = unsigned
        .as_object_mut()
        .ok_or_else(|| AciError::Malformed("the receipt is not a JSON object".into()))?;
    let (sig_text, inner_key, inner_algo) = match obj.remove("signature") {
        Some(Value::String(s)) => (s, None, None),
        Some(Value::Object(mut o)) => {
            let value = match o.remove("value") {
                Some(Value::String(s)) => s,
                _ => {
                    return Err(AciError::Signature(
                        "the receipt signature has no value".into(),
                    ))
                }
            };
            let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
            let (key, algo) = (text("key_id"), text("algo"));
            obj.insert("signature".into(), Value::Object(o));
            (value, key, algo)
        }
        _ => return Err(AciError::Signature("the receipt has no signature".into())),
    };
    let sig = framing::hex_bytes(&sig_text)
        .map_err(|_| AciError::Signature("the receipt signature is not hex".into()))?;
    Ok(Signed {
        signature: sig,
        inner_key_id: inner_key,
        inner_algo,
        message: jcs::canonical(&unsigned),
    })
}

/// Verifies `doc` (a receipt, any JSON encoding) against the established keyset and what the
/// proxy observed of the exchange.
pub(crate) fn verify(
    doc: &Value,
    keyset: &Keyset,
    seen: &Observed<'_>,
) -> Result<VerifiedReceipt, AciError> {
    let text = |k: &str| doc.get(k).and_then(Value::as_str);
    let key_id = signed_by(doc, keyset)?;
    names_this_workload(doc, keyset)?;
    let events = event_log(doc)?;
    let response = hash_of(events, "response.returned")
        .ok_or_else(|| AciError::Malformed("the receipt has no response.returned hash".into()))?;
    if let (Some(id), Some(ours)) = (text("chat_id"), seen.chat_id) {
        if id != ours {
            return Err(AciError::Mismatch(format!(
                "the receipt is for answer {id}, not {ours}"
            )));
        }
    }
    let of_type = |kind: &'static str| {
        events
            .iter()
            .filter(move |e| e.get("type").and_then(Value::as_str) == Some(kind))
    };
    let served_at = doc.get("served_at").and_then(Value::as_u64);
    let (from, to) = seen.window;
    Ok(VerifiedReceipt {
        receipt_id: text("receipt_id").unwrap_or_default().to_string(),
        key_id,
        served_at,
        served_in_window: served_at
            .is_some_and(|t| t + SERVED_AT_SKEW_SECS >= from && t <= to + SERVED_AT_SKEW_SECS),
        request_hash_matches: hash_of(events, "request.received")
            .map(|h| same_hash(h, &seen.request_sha256)),
        response_hash_matches: same_hash(response, &seen.response_sha256),
        modified: events
            .iter()
            .filter_map(|e| e.get("type").and_then(Value::as_str))
            .filter(|t| t.starts_with("transparency.") && t.ends_with("_modified"))
            .map(str::to_string)
            .collect(),
        chat_id: text("chat_id")
            .filter(|_| seen.chat_id.is_some())
            .map(str::to_string),
        route: of_type("route.selected")
            .next()
            .and_then(|e| e.get("target_route_id"))
            .and_then(Value::as_str)
            .map(str::to_string),
        upstream: of_type("upstream.verified")
            .map(UpstreamEvent::parse)
            .collect(),
    })
}

/// The receipt's form and signature: a receipt key of the attested keyset signed it, with the
/// algorithm and signature length that key has. Returns the key's id.
fn signed_by(doc: &Value, keyset: &Keyset) -> Result<String, AciError> {
    let text = |k: &str| doc.get(k).and_then(Value::as_str);
    if text("api_version") != Some(API_VERSION) {
        return Err(AciError::Malformed(format!(
            "receipt api_version is {:?}, not {API_VERSION}",
            text("api_version")
        )));
    }
    let signed = signed_parts(doc)?;
    let key_id = text("key_id")
        .map(str::to_string)
        .or(signed.inner_key_id)
        .ok_or_else(|| AciError::Malformed("the receipt names no key_id".into()))?;
    let key = keyset.receipt_key(&key_id)?;
    if let Some(algo) = signed.inner_algo.as_deref() {
        if !algo.eq_ignore_ascii_case(key.algo()) {
            return Err(AciError::Signature(format!(
                "the receipt says {algo}, but key `{key_id}` is {} in the attested keyset",
                key.algo()
            )));
        }
    }
    let length = match key {
        super::ReceiptKey::Ed25519(_) => 64,
        super::ReceiptKey::Secp256k1(_) => 65,
    };
    if signed.signature.len() != length {
        return Err(AciError::Signature(format!(
            "the receipt signature has {} bytes, not {length}",
            signed.signature.len()
        )));
    }
    if !key.verifies(&signed.message, &signed.signature) {
        return Err(AciError::Signature(format!(
            "the receipt signature does not verify under key `{key_id}`"
        )));
    }
    Ok(key_id)
}

/// The receipt names the attested workload (when it names one) and the attested keyset.
fn names_this_workload(doc: &Value, keyset: &Keyset) -> Result<(), AciError> {
    let text = |k: &str| doc.get(k).and_then(Value::as_str);
    if let (Some(named), Some(ours)) = (text("workload_id"), keyset.workload_id.as_deref()) {
        if !named.trim().eq_ignore_ascii_case(ours) {
            return Err(AciError::Mismatch(format!(
                "the receipt names workload {named}, not the attested {ours}"
            )));
        }
    }
    match text("workload_keyset_digest") {
        Some(d) if d.trim().eq_ignore_ascii_case(&keyset.digest) => Ok(()),
        other => Err(AciError::Mismatch(format!(
            "the receipt names keyset {other:?}, not the attested {}",
            keyset.digest
        ))),
    }
}

/// The event log: it starts with `request.received`, and the deployed form numbers its
/// events strictly from 0, all or none.
fn event_log(doc: &Value) -> Result<&[Value], AciError> {
    let events = doc
        .get("event_log")
        .and_then(Value::as_array)
        .ok_or_else(|| AciError::Malformed("the receipt has no event log".into()))?;
    if events
        .first()
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
        != Some("request.received")
    {
        return Err(AciError::Malformed(
            "the receipt's first event is not request.received".into(),
        ));
    }
    let seqs: Vec<Option<u64>> = events
        .iter()
        .map(|e| e.get("seq").and_then(Value::as_u64))
        .collect();
    if seqs.iter().any(Option::is_some)
        && !seqs.iter().enumerate().all(|(i, s)| *s == Some(i as u64))
    {
        return Err(AciError::Malformed(
            "the receipt's events are not numbered 0, 1, 2, … in order".into(),
        ));
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attestation::aci::tests::{vector_keyset, VECTOR_DIGEST};
    use serde_json::json;
    use sha2::{Digest, Sha256};

    /// spec/test-vectors.md §4, pretty-printed and reordered: any encoding verifies.
    fn vector_receipt() -> Value {
        json!({
            "signature": "d5b005e093bde3b577faf270b7184b09e169cacb0ecb206b103bd2581f997db03da616175454b063323a23ac1dc68f1ce506c2a6eba8aa0561d5e724f0b80c03",
            "workload_keyset_digest": VECTOR_DIGEST,
            "receipt_id": "rcpt-0001", "model": "demo-model", "method": "POST",
            "endpoint": "/v1/chat/completions", "served_at": 1750000000u64, "key_id": "receipt-1",
            "chat_id": "chatcmpl-123", "api_version": "aci/1",
            "event_log": [
                {"type": "request.received", "body_hash": "sha256:94d809bf47380d8a2eab0eb6e126d4dda9364b0b4725cdf7ead52dd70b2aa87b"},
                {"type": "request.forwarded", "body_hash": "sha256:94d809bf47380d8a2eab0eb6e126d4dda9364b0b4725cdf7ead52dd70b2aa87b"},
                {"type": "upstream.verified", "result": "verified", "required": true, "model_id": "demo-model",
                 "session_id": "95ad1cb4dd25445808c2e9d116caf420b05703730b506395e8fc1ca6faeae28f"},
                {"type": "response.returned", "body_hash": "sha256:dedfffe5b14d031b8e2c01996d021a15293cb7c63b56be7e4be9e89b6f0a5f61"}
            ]
        })
    }

    fn seen() -> Observed<'static> {
        Observed {
            response_sha256: Sha256::digest(br#"{"choices":[],"id":"chatcmpl-123"}"#).into(),
            request_sha256: Sha256::digest(
                br#"{"messages":[{"content":"hi","role":"user"}],"model":"demo-model"}"#,
            )
            .into(),
            chat_id: Some("chatcmpl-123"),
            window: (1_750_000_000, 1_750_000_010),
        }
    }

    /// private-ai-gateway `aa65d64` spec/test-vectors.md §2: the keyset in the deployed form
    /// (an identity key, `keyset_epoch`).
    fn deployed_keyset() -> Value {
        json!({
            "workload_identity": {"public_key": {"algo": "ed25519",
                "public_key": "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"}, "subject": null},
            "keyset_epoch": {"version": 1, "not_after": 1800000000u64},
            "receipt_signing_keys": [{"key_id": "receipt-1", "algo": "ed25519",
                "public_key": "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"}],
            "e2ee_public_keys": [{"key_id": "e2ee-1", "algo": "x25519-aes-256-gcm-hkdf-sha256",
                "public_key": "ab".repeat(32)}],
            "tls_public_keys": [{"spki_sha256": "c0".repeat(32), "domain": "api.example.com"}]
        })
    }

    /// The same vectors, §6: the receipt in the deployed form, as its canonical bytes read.
    fn deployed_receipt() -> Value {
        json!({"api_version":"aci/1","chat_id":"chatcmpl-123","endpoint":"/v1/chat/completions",
            "event_log":[
                {"body_hash":"sha256:94d809bf47380d8a2eab0eb6e126d4dda9364b0b4725cdf7ead52dd70b2aa87b","seq":0,"type":"request.received"},
                {"body_hash":"sha256:94d809bf47380d8a2eab0eb6e126d4dda9364b0b4725cdf7ead52dd70b2aa87b","seq":1,"type":"request.forwarded"},
                {"channel_bindings":[{"origin":"https://upstream.example.com","spki_sha256":"d1".repeat(32),"type":"tls_spki_sha256"}],
                 "claims":{"gpu_attested":{"status":"unknown"},"model_weights_provenance":{"status":"unknown"},"os_known_good":{"status":"unknown"},"serving_software_known_good":{"status":"unknown"},"tcb_up_to_date":{"status":"unknown"},"tee_attested":{"reason":"example quote verified","source":"hardware_proven","status":"asserted"}},
                 "model_id":"demo-model","provider_claims":null,"provider_type":null,"reason":null,"required":true,"result":"verified","seq":2,
                 "session_id":"as_2e9011abafe00fc2902aaa5dedf8373f14e2c4f1a456b854ddb475413547188e","type":"upstream.verified",
                 "upstream_name":"demo-upstream","url_origin":"https://upstream.example.com","verifier_id":"example/1"},
                {"cleartext_hash":"sha256:dedfffe5b14d031b8e2c01996d021a15293cb7c63b56be7e4be9e89b6f0a5f61","seq":3,"type":"response.returned",
                 "wire_hash":"sha256:dedfffe5b14d031b8e2c01996d021a15293cb7c63b56be7e4be9e89b6f0a5f61"}],
            "method":"POST","model":"demo-model","receipt_id":"rcpt-0001","served_at":1750000000u64,
            "signature":{"algo":"ed25519","key_id":"receipt-1",
                "value":"0861f62296f57a120620e79fc0e91008a187e3793b65be4a0ed355d4617f305e00a19b32463e1feb464f7220bcd37debd892facddc068eebf5ef02202c31910f"},
            "workload_id":"sha256:57c2c8fa98bcf11441f1eff9ef087db67a5560a026082e96903e15365677b8c0",
            "workload_keyset_digest":"sha256:f2fba7e1b1451e0c0231df624f293407692ef939d3e0e55bca723131bea3f1ff"})
    }

    #[test]
    fn the_deployed_forms_vectors_verify() {
        let keyset = Keyset::parse(&deployed_keyset()).unwrap();
        assert_eq!(
            keyset.digest,
            "sha256:f2fba7e1b1451e0c0231df624f293407692ef939d3e0e55bca723131bea3f1ff"
        );
        assert_eq!(
            keyset.workload_id.as_deref(),
            Some("sha256:57c2c8fa98bcf11441f1eff9ef087db67a5560a026082e96903e15365677b8c0")
        );
        let doc = deployed_receipt();
        let signed = signed_parts(&doc).unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(&signed.message)),
            "1cd5a27c330ac3a5a82ac30176ba67349b42a64b00868d75ffd23600bf7e7b7c"
        );
        let r = verify(&doc, &keyset, &seen()).unwrap();
        assert!(r.response_hash_matches, "wire_hash is compared");
        assert_eq!(standing(&r, true, None).0, Standing::Verified);
        assert!(r.upstream[0].verified());
        // Each deployed field is checked: the events' numbering, the algorithm (re-signed,
        // so that only the field decides), the signed hashes.
        let resigned = |edit: &dyn Fn(&mut Value)| {
            let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[2u8; 32]).unwrap();
            let mut d = deployed_receipt();
            d["signature"].as_object_mut().unwrap().remove("value");
            edit(&mut d);
            let sig = key.sign(&jcs::canonical(&d));
            d["signature"]["value"] = json!(hex::encode(sig.as_ref()));
            d
        };
        let cases = [
            (
                "numbered",
                resigned(&|d| d["event_log"][2]["seq"] = json!(7)),
            ),
            (
                "says ecdsa-secp256k1",
                resigned(&|d| d["signature"]["algo"] = json!("ecdsa-secp256k1")),
            ),
            (
                "names workload",
                resigned(&|d| d["workload_id"] = json!(format!("sha256:{}", "00".repeat(32)))),
            ),
            ("does not verify", {
                let mut d = deployed_receipt();
                d["event_log"][3]["wire_hash"] = json!(format!("sha256:{}", "00".repeat(32)));
                d
            }),
        ];
        assert!(verify(&resigned(&|_| {}), &keyset, &seen()).is_ok());
        for (why, d) in cases {
            let e = verify(&d, &keyset, &seen()).unwrap_err();
            assert!(e.to_string().contains(why), "{why}: {e}");
        }
        let mut other = deployed_keyset();
        other["workload_identity"]["public_key"]["public_key"] = json!("00".repeat(32));
        let other = Keyset::parse(&other).unwrap();
        assert!(verify(&doc, &other, &seen()).is_err());
    }

    #[test]
    fn a_recoverable_secp256k1_receipt_signature_verifies_under_its_key() {
        let key = k256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let mut ks = deployed_keyset();
        ks["receipt_signing_keys"] = json!([{"key_id": "k", "algo": "ecdsa-secp256k1",
            "public_key": hex::encode(key.verifying_key().to_encoded_point(false).as_bytes())}]);
        let keyset = Keyset::parse(&ks).unwrap();
        let mut doc = deployed_receipt();
        doc["workload_keyset_digest"] = json!(keyset.digest);
        doc["signature"] = json!({"algo": "ecdsa-secp256k1", "key_id": "k"});
        let (sig, recovery) = key
            .sign_prehash_recoverable(&Sha256::digest(jcs::canonical(&doc)))
            .unwrap();
        let mut value = sig.to_bytes().to_vec();
        value.push(recovery.to_byte());
        doc["signature"]["value"] = json!(hex::encode(&value));
        assert!(verify(&doc, &keyset, &seen()).is_ok());
        // 64 bytes (the JOSE shape) are refused; another key's signature fails.
        doc["signature"]["value"] = json!(hex::encode(&value[..64]));
        assert!(verify(&doc, &keyset, &seen()).is_err());
        let other = k256::ecdsa::SigningKey::from_slice(&[8u8; 32]).unwrap();
        doc["signature"] = json!({"algo": "ecdsa-secp256k1", "key_id": "k"});
        let (sig, recovery) = other
            .sign_prehash_recoverable(&Sha256::digest(jcs::canonical(&doc)))
            .unwrap();
        let mut value = sig.to_bytes().to_vec();
        value.push(recovery.to_byte());
        doc["signature"]["value"] = json!(hex::encode(&value));
        assert!(verify(&doc, &keyset, &seen()).is_err());
    }

    #[test]
    fn the_spec_vector_verifies() {
        let keyset = Keyset::parse(&vector_keyset()).unwrap();
        let doc = vector_receipt();
        let signed = signed_parts(&doc).unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(&signed.message)),
            "1bd328e6880a5a12b3915af95ea32111310e04ab9e21ac3d71ce268e33b965c9"
        );
        let r = verify(&doc, &keyset, &seen()).unwrap();
        assert_eq!(r.receipt_id, "rcpt-0001");
        assert_eq!(r.request_hash_matches, Some(true));
        assert_eq!(r.upstream.len(), 1);
        assert!(r.upstream[0].verified());
        assert_eq!(r.upstream[0].required, Some(true));
    }

    #[test]
    fn every_alteration_fails() {
        let keyset = Keyset::parse(&vector_keyset()).unwrap();
        type Edit = Box<dyn Fn(&mut Value)>;
        let edits: Vec<(&str, Edit)> = vec![
            (
                "does not verify",
                Box::new(|d| d["served_at"] = json!(1750000001)),
            ),
            (
                "does not verify",
                Box::new(|d| d["event_log"][2]["result"] = json!("failed")),
            ),
            (
                "not in the attested keyset",
                Box::new(|d| d["key_id"] = json!("receipt-2")),
            ),
            ("not 64", Box::new(|d| d["signature"] = json!("00"))),
            (
                "no signature",
                Box::new(|d| {
                    d.as_object_mut().unwrap().remove("signature");
                }),
            ),
            (
                "api_version",
                Box::new(|d| d["api_version"] = json!("aci/2")),
            ),
        ];
        for (why, edit) in edits {
            let mut d = vector_receipt();
            edit(&mut d);
            let e = verify(&d, &keyset, &seen()).unwrap_err();
            assert!(e.to_string().contains(why), "{why}: {e}");
        }
        // Another answer, another keyset.
        let mut other = seen();
        other.chat_id = Some("chatcmpl-999");
        assert!(verify(&vector_receipt(), &keyset, &other).is_err());
        let mut ks = vector_keyset();
        ks["not_after"] = json!(1800000001);
        let moved = Keyset::parse(&ks).unwrap();
        assert!(verify(&vector_receipt(), &moved, &seen())
            .unwrap_err()
            .to_string()
            .contains("keyset"));
        // A request the gateway restored differently is reported, not failed.
        let mut other = seen();
        other.request_sha256 = [1; 32];
        assert_eq!(
            verify(&vector_receipt(), &keyset, &other)
                .unwrap()
                .request_hash_matches,
            Some(false)
        );
    }

    #[test]
    fn the_signature_as_an_object_signs_the_rest() {
        // The receipt-1 key (seed 32 × 0x02) signs the document without `signature.value`.
        let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[2u8; 32]).unwrap();
        let mut doc = vector_receipt();
        doc.as_object_mut().unwrap().remove("key_id");
        doc["signature"] = json!({"key_id": "receipt-1", "algo": "ed25519"});
        let sig = key.sign(&jcs::canonical(&doc));
        doc["signature"]["value"] = json!(hex::encode(sig.as_ref()));
        let keyset = Keyset::parse(&vector_keyset()).unwrap();
        assert!(verify(&doc, &keyset, &seen()).is_ok());
        doc["signature"]["algo"] = json!("other");
        assert!(verify(&doc, &keyset, &seen()).is_err());
    }

    /// A receipt over the vector's keyset, re-signed after `edit`.
    fn signed(edit: impl Fn(&mut Value)) -> Value {
        let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[2u8; 32]).unwrap();
        let mut doc = vector_receipt();
        doc.as_object_mut().unwrap().remove("signature");
        edit(&mut doc);
        let sig = key.sign(&jcs::canonical(&doc));
        doc["signature"] = json!(hex::encode(sig.as_ref()));
        doc
    }

    #[test]
    fn bodies_rewrapped_on_the_way_are_authentic_only_when_the_receipt_says_so() {
        let keyset = Keyset::parse(&vector_keyset()).unwrap();
        let mut rewrapped = seen();
        rewrapped.response_sha256 = [9; 32];
        // Exact bytes, anchored: verified; unanchored: only the signature is known.
        let exact = verify(&vector_receipt(), &keyset, &seen()).unwrap();
        assert_eq!(standing(&exact, true, None).0, Standing::Verified);
        assert_eq!(standing(&exact, false, None).0, Standing::Unanchored);
        // Other bytes, and the receipt records no modification: failed.
        let r = verify(&vector_receipt(), &keyset, &rewrapped).unwrap();
        let (s, why) = standing(&r, true, None);
        assert_eq!(s, Standing::Failed);
        assert!(why.contains("records no modification"), "{why}");
        // Other bytes, with the gateway's transparency event: authentic, for this answer.
        let doc = signed(|d| {
            let log = d["event_log"].as_array_mut().unwrap();
            log.insert(3, json!({"type": "transparency.response_modified"}));
        });
        let r = verify(&doc, &keyset, &rewrapped).unwrap();
        let (s, why) = standing(&r, true, Some("0xabc"));
        assert_eq!(s, Standing::Authentic, "{why}");
        assert!(
            why.contains("chatcmpl-123") && why.contains("0xabc"),
            "{why}"
        );
        assert_eq!(standing(&r, false, None).0, Standing::Unanchored);
        // Without an answer id the re-wrapped hashes bind nothing the proxy saw.
        let doc = signed(|d| {
            d["chat_id"] = Value::Null;
            let log = d["event_log"].as_array_mut().unwrap();
            log.insert(3, json!({"type": "transparency.response_modified"}));
        });
        let r = verify(&doc, &keyset, &rewrapped).unwrap();
        assert_eq!(standing(&r, true, None).0, Standing::Failed);
        // Re-wrapped, but served before this request was sent: another exchange's.
        let doc = signed(|d| {
            let log = d["event_log"].as_array_mut().unwrap();
            log.insert(3, json!({"type": "transparency.response_modified"}));
        });
        let mut later = rewrapped.clone();
        later.window = (1_750_000_500, 1_750_000_510);
        later.request_sha256 = [1; 32];
        let r = verify(&doc, &keyset, &later).unwrap();
        let (s, why) = standing(&r, true, None);
        assert_eq!(s, Standing::Failed);
        assert!(why.contains("outside this request's window"), "{why}");
        // The request bytes the proxy sent tie it, whatever the gateway's clock says.
        later.request_sha256 = seen().request_sha256;
        let r = verify(&doc, &keyset, &later).unwrap();
        assert_eq!(standing(&r, true, None).0, Standing::Authentic);
    }
}
