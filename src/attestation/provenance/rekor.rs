//! A Rekor log entry and the log's proofs about it: the signed entry timestamp (the log's
//! signature over the canonical JSON of body, integrated time, log id and index), the RFC
//! 6962/9162 inclusion proof from the body's leaf hash to a root, and the signed checkpoint
//! (a note) over that root. Pure functions; fetching is elsewhere.

use super::trusted_root::{KeyKind, LogKey, TrustedRoot};
use super::ProvenanceError;
use crate::attestation::framing;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, ED25519};
use serde_json::Value;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct Proof {
    pub(crate) log_index: u64,
    pub(crate) tree_size: u64,
    pub(crate) root_hash: [u8; 32],
    pub(crate) hashes: Vec<[u8; 32]>,
    pub(crate) checkpoint: String,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub uuid: String,
    /// The body as Rekor sent it (base64 text: what the SET signs) and decoded.
    pub body_text: String,
    pub body: Vec<u8>,
    pub integrated_time: u64,
    pub log_id: String,
    pub log_index: u64,
    pub set: Vec<u8>,
    pub proof: Option<Proof>,
}

fn hash32(text: &str, what: &str) -> Result<[u8; 32], ProvenanceError> {
    framing::hex_bytes(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ProvenanceError::Invalid(format!("{what} is not a 32-byte hex hash")))
}

/// One entry of an answer by its UUID, parsed or why not.
pub(crate) type Listed = (String, Result<Entry, ProvenanceError>);

/// The entries of a `log/entries/retrieve` answer (a list of `{uuid: entry}` objects, or
/// one such object), each parsed on its own: anyone can log an entry, so one that does not
/// parse spoils only itself.
pub(crate) fn parse_entries(v: &Value) -> Result<Vec<Listed>, ProvenanceError> {
    let objects: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![v],
        _ => return Err("entries answer is not a list".into()),
    };
    let mut out = Vec::new();
    for obj in objects {
        let map = obj.as_object().ok_or("entry is not an object")?;
        for (uuid, e) in map {
            out.push((uuid.clone(), parse_entry(uuid, e)));
        }
    }
    Ok(out)
}

fn parse_entry(uuid: &str, e: &Value) -> Result<Entry, ProvenanceError> {
    let num = |k: &str| framing::number(&e[k]).ok_or(format!("no {k}"));
    let body_text = e["body"].as_str().ok_or("no body")?.to_string();
    let body = framing::base64_bytes(&body_text).map_err(|m| format!("body: {m}"))?;
    let v = &e["verification"];
    let set = framing::base64_bytes(
        v["signedEntryTimestamp"]
            .as_str()
            .ok_or("no signedEntryTimestamp")?,
    )
    .map_err(|m| format!("signedEntryTimestamp: {m}"))?;
    let proof = match v.get("inclusionProof") {
        Some(p) if !p.is_null() => {
            let hashes = p["hashes"]
                .as_array()
                .ok_or("inclusion proof without hashes")?
                .iter()
                .map(|h| hash32(h.as_str().unwrap_or_default(), "inclusion proof hash"))
                .collect::<Result<_, _>>()?;
            Some(Proof {
                log_index: framing::number(&p["logIndex"])
                    .ok_or("inclusion proof without logIndex")?,
                tree_size: framing::number(&p["treeSize"])
                    .ok_or("inclusion proof without treeSize")?,
                root_hash: hash32(p["rootHash"].as_str().unwrap_or_default(), "rootHash")?,
                hashes,
                checkpoint: p["checkpoint"].as_str().unwrap_or_default().to_string(),
            })
        }
        _ => None,
    };
    Ok(Entry {
        uuid: uuid.to_string(),
        body_text,
        body,
        integrated_time: num("integratedTime")?,
        log_id: e["logID"].as_str().ok_or("no logID")?.to_ascii_lowercase(),
        log_index: num("logIndex")?,
        set,
        proof,
    })
}

pub fn leaf_hash(body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(body);
    h.finalize().into()
}

pub(crate) fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or None if it is malformed.
pub(crate) fn root_from_proof(
    index: u64,
    size: u64,
    leaf: [u8; 32],
    path: &[[u8; 32]],
) -> Option<[u8; 32]> {
    if index >= size {
        return None;
    }
    let (mut fnode, mut snode, mut r) = (index, size - 1, leaf);
    for p in path {
        if snode == 0 {
            return None;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    (snode == 0).then_some(r)
}

fn verify_signature(key: &LogKey, message: &[u8], signature: &[u8]) -> bool {
    match key.kind {
        KeyKind::EcdsaP256 => UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &key.key)
            .verify(message, signature)
            .is_ok(),
        KeyKind::Ed25519 => UnparsedPublicKey::new(&ED25519, &key.key)
            .verify(message, signature)
            .is_ok(),
    }
}

/// What the signed entry timestamp signs: canonical JSON (sorted keys, no spaces).
pub fn set_payload(e: &Entry) -> String {
    format!(
        "{{\"body\":{},\"integratedTime\":{},\"logID\":{},\"logIndex\":{}}}",
        serde_json::to_string(&e.body_text).expect("a string serializes"),
        e.integrated_time,
        serde_json::to_string(&e.log_id).expect("a string serializes"),
        e.log_index
    )
}

/// A checkpoint (signed note): origin, tree size, base64 root hash, then a blank line and
/// signature lines `— <name> <base64(key hint ‖ signature)>`. Returns (size, root).
fn verify_checkpoint(note: &str, key: &LogKey) -> Result<(u64, [u8; 32]), ProvenanceError> {
    let (body, sigs) = note
        .split_once("\n\n")
        .ok_or("checkpoint has no signature block")?;
    let signed = format!("{body}\n");
    let mut lines = body.lines();
    let _origin = lines.next().ok_or("checkpoint has no origin")?;
    let size: u64 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("checkpoint has no tree size")?;
    let root: [u8; 32] = lines
        .next()
        .and_then(|l| framing::base64_bytes(l.trim()).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or("checkpoint has no root hash")?;
    let hint = &key.log_id[..4];
    let verified = sigs.lines().any(|line| {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            return false;
        };
        let Some(sig) = rest
            .rsplit_once(' ')
            .and_then(|(_, s)| framing::base64_bytes(s).ok())
        else {
            return false;
        };
        sig.len() > 4 && &sig[..4] == hint && verify_signature(key, signed.as_bytes(), &sig[4..])
    });
    if !verified {
        return Err("checkpoint signature does not verify with the log key".into());
    }
    Ok((size, root))
}

/// Everything the log proves about `e`: returns the log it is in.
pub(crate) fn verify_entry<'a>(
    e: &Entry,
    root: &'a TrustedRoot,
) -> Result<&'a LogKey, ProvenanceError> {
    let log_id = hex::decode(&e.log_id).map_err(|_| "logID is not hex".to_string())?;
    let key = root.log(&log_id, e.integrated_time).ok_or_else(|| {
        format!(
            "logID {} is not a trusted log at its integrated time",
            e.log_id
        )
    })?;
    if !verify_signature(key, set_payload(e).as_bytes(), &e.set) {
        return Err("signed entry timestamp does not verify (body, integrated time, log id or index altered)".into());
    }
    let leaf = leaf_hash(&e.body);
    let uuid = e.uuid.to_ascii_lowercase();
    if uuid.len() < 64 || uuid[uuid.len() - 64..] != hex::encode(leaf) {
        return Err("entry UUID does not end in the body's leaf hash".into());
    }
    let proof = e.proof.as_ref().ok_or("no inclusion proof")?;
    let computed = root_from_proof(proof.log_index, proof.tree_size, leaf, &proof.hashes)
        .ok_or("inclusion proof is malformed for its index and tree size")?;
    if computed != proof.root_hash {
        return Err("inclusion proof does not lead to its root hash".into());
    }
    let (size, checkpoint_root) = verify_checkpoint(&proof.checkpoint, key)?;
    if size != proof.tree_size || checkpoint_root != proof.root_hash {
        return Err("checkpoint names another tree than the inclusion proof".into());
    }
    Ok(key)
}

/// The log's side (the simulated Rekor, tests): the RFC 6962 root of `leaves`…
pub fn tree_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = n.next_power_of_two() / 2;
            node_hash(&tree_root(&leaves[..k]), &tree_root(&leaves[k..]))
        }
    }
}

/// …and the audit path of leaf `m` (RFC 6962 §2.1.1).
pub fn audit_path(m: usize, leaves: &[[u8; 32]]) -> Vec<[u8; 32]> {
    let n = leaves.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = n.next_power_of_two() / 2;
    let (mut p, sibling) = if m < k {
        (audit_path(m, &leaves[..k]), tree_root(&leaves[k..]))
    } else {
        (audit_path(m - k, &leaves[k..]), tree_root(&leaves[..k]))
    };
    p.push(sibling);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inclusion_proofs_verify_for_every_leaf_of_every_tree_size() {
        for n in 1..40usize {
            let leaves: Vec<[u8; 32]> = (0..n).map(|i| leaf_hash(&[i as u8])).collect();
            let root = tree_root(&leaves);
            for m in 0..n {
                let p = audit_path(m, &leaves);
                assert_eq!(
                    root_from_proof(m as u64, n as u64, leaves[m], &p),
                    Some(root),
                    "{m}/{n}"
                );
                if !p.is_empty() {
                    let mut bad = p.clone();
                    bad[0][0] ^= 1;
                    assert_ne!(
                        root_from_proof(m as u64, n as u64, leaves[m], &bad),
                        Some(root)
                    );
                    // (The tree size itself is bound by the signed checkpoint, not the path.)
                    if m + 1 < n {
                        assert_ne!(
                            root_from_proof(m as u64 + 1, n as u64, leaves[m], &p),
                            Some(root)
                        );
                    }
                }
            }
            assert_eq!(root_from_proof(n as u64, n as u64, leaves[0], &[]), None);
        }
    }
}
