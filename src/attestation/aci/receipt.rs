//! Inference receipts (§7, §9.3): a signed per-request event log. The signature is Ed25519
//! over the JCS form of the document without its signature, under a receipt key of the
//! attested keyset; the response hash is over the raw SSE bytes exactly as received.

use super::{jcs, AciError, Keyset, API_VERSION};
use crate::attestation::framing;
use serde::Serialize;
use serde_json::Value;

/// What the proxy itself observed of the exchange a receipt describes.
pub(crate) struct Observed<'a> {
    /// SHA-256 of the response body bytes as they arrived from Venice.
    pub(crate) response_sha256: [u8; 32],
    /// SHA-256 of the request body the proxy sent.
    pub(crate) request_sha256: [u8; 32],
    /// The answer's id, when it had one.
    pub(crate) chat_id: Option<&'a str>,
}

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
            "signed by {} of the attested keyset for answer {}; Venice re-wrapped the bodies on the way ({}), so their hashes are the gateway's bytes{countersigned}",
            r.key_id,
            r.chat_id.as_deref().unwrap_or("-"),
            r.modified.join(", ")
        ),
    )
}

fn hash_of<'a>(events: &'a [Value], kind: &str) -> Option<&'a str> {
    events
        .iter()
        .find(|e| e.get("type").and_then(Value::as_str) == Some(kind))
        .and_then(|e| e.get("body_hash"))
        .and_then(Value::as_str)
}

fn same_hash(field: &str, sha256: &[u8; 32]) -> bool {
    let hex = field.trim();
    let hex = hex
        .strip_prefix("sha256:")
        .or_else(|| hex.strip_prefix("SHA256:"))
        .unwrap_or(hex);
    framing::hex_matches(hex, sha256)
}

/// A receipt's signature, the key id it may carry inside, and the bytes it signs.
struct Signed {
    signature: Vec<u8>,
    inner_key_id: Option<String>,
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
    let (sig_text, inner_key) = match obj.remove("signature") {
        Some(Value::String(s)) => (s, None),
        Some(Value::Object(mut o)) => {
            let value = match o.remove("value") {
                Some(Value::String(s)) => s,
                _ => {
                    return Err(AciError::Signature(
                        "the receipt signature has no value".into(),
                    ))
                }
            };
            let key = o.get("key_id").and_then(Value::as_str).map(str::to_string);
            obj.insert("signature".into(), Value::Object(o));
            (value, key)
        }
        _ => return Err(AciError::Signature("the receipt has no signature".into())),
    };
    let sig = framing::hex_bytes(&sig_text)
        .map_err(|_| AciError::Signature("the receipt signature is not hex".into()))?;
    if sig.len() != 64 {
        return Err(AciError::Signature(format!(
            "the receipt signature has {} bytes, not 64",
            sig.len()
        )));
    }
    Ok(Signed {
        signature: sig,
        inner_key_id: inner_key,
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
    let public = keyset.receipt_key(&key_id)?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public)
        .verify(&signed.message, &signed.signature)
        .map_err(|_| {
            AciError::Signature(format!(
                "the receipt signature does not verify under key `{key_id}`"
            ))
        })?;
    match text("workload_keyset_digest") {
        Some(d) if d.trim().eq_ignore_ascii_case(&keyset.digest) => {}
        other => {
            return Err(AciError::Mismatch(format!(
                "the receipt names keyset {other:?}, not the attested {}",
                keyset.digest
            )))
        }
    }
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
    let response = hash_of(events, "response.returned")
        .ok_or_else(|| AciError::Malformed("the receipt has no response.returned hash".into()))?;
    if let (Some(id), Some(ours)) = (text("chat_id"), seen.chat_id) {
        if id != ours {
            return Err(AciError::Mismatch(format!(
                "the receipt is for answer {id}, not {ours}"
            )));
        }
    }
    let modified = events
        .iter()
        .filter_map(|e| e.get("type").and_then(Value::as_str))
        .filter(|t| t.starts_with("transparency.") && t.ends_with("_modified"))
        .map(str::to_string)
        .collect();
    let upstream = events
        .iter()
        .filter(|e| e.get("type").and_then(Value::as_str) == Some("upstream.verified"))
        .map(UpstreamEvent::parse)
        .collect();
    Ok(VerifiedReceipt {
        receipt_id: text("receipt_id").unwrap_or_default().to_string(),
        key_id,
        served_at: doc.get("served_at").and_then(Value::as_u64),
        request_hash_matches: hash_of(events, "request.received")
            .map(|h| same_hash(h, &seen.request_sha256)),
        response_hash_matches: same_hash(response, &seen.response_sha256),
        modified,
        chat_id: text("chat_id")
            .filter(|_| seen.chat_id.is_some())
            .map(str::to_string),
        route: events
            .iter()
            .find(|e| e.get("type").and_then(Value::as_str) == Some("route.selected"))
            .and_then(|e| e.get("target_route_id"))
            .and_then(Value::as_str)
            .map(str::to_string),
        upstream,
    })
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
        }
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
    }
}
