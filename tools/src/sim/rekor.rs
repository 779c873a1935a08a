//! The simulated Sigstore: a Rekor log (its own P-256 log key, a Merkle tree, signed entry
//! timestamps and checkpoints) holding the provenance of the images the simulated compose
//! pins, and a Fulcio-like CA that certified the keyless signer. Served by the simulator under
//! `/rekor`, so the demo and the end-to-end tests run check `sigstore_provenance` for real.

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, KeyPair, SanType,
    PKCS_ECDSA_P256_SHA256,
};
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use venice_e2ee_proxy::attestation::provenance::policy::{Rule, RuleKind};
use venice_e2ee_proxy::attestation::provenance::rekor::{
    audit_path, leaf_hash, set_payload, tree_root, Entry,
};

/// The images the simulated compose pins (every simulated model runs the same two).
pub const MODEL_IMAGE: &str = "simulated/vllm";
pub const AGENT_IMAGE: &str = "simulated/agent";
pub const ISSUER: &str = "https://token.actions.githubusercontent.com";
pub const SUBJECT: &str =
    "https://github.com/simulated/vllm/.github/workflows/build.yml@refs/heads/main";
const WRONG_SUBJECT: &str =
    "https://github.com/attacker/vllm/.github/workflows/build.yml@refs/heads/main";
const ORIGIN: &str = "sim-rekor.invalid - 4242";

pub fn digest_of(image: &str) -> String {
    hex::encode(Sha256::digest(image.as_bytes()))
}

/// The compose `image:` value of a simulated image.
pub fn pinned(image: &str) -> String {
    format!("{image}@sha256:{}", digest_of(image))
}

/// What the simulated Rekor spoils.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RekorFault {
    /// The index knows no entry for the model image.
    MissingEntry,
    /// The model image's entry body changed after the log signed it.
    AlteredEntry,
    /// A hash of the model image's inclusion proof changed.
    BrokenProof,
    /// The model image's only entry was signed by another workflow identity.
    WrongIdentity,
    /// Rekor answers 503.
    Down,
    /// Third parties logged entries about the model image's digest, listed before its good
    /// one: another identity's, one of a type no verifier reads, one changed after the log
    /// signed it, and one the log does not return. The good entry still counts.
    PoisonedLog,
    /// The model image's digest has 1,000 entries, its good one newest: bounded work.
    Flood,
}

pub struct SimRekor {
    log_spki: Vec<u8>,
    /// The agent image's signer key, by fingerprint (its `signed` rule names it).
    agent_key: String,
    ca_der: Vec<u8>,
    /// Digest → UUIDs, UUID → entry; the wrong-identity entry apart.
    index: HashMap<String, Vec<String>>,
    entries: HashMap<String, Value>,
    wrong_identity: (String, Value),
    /// A logged entry of a type no verifier reads, and one changed after signing (both about
    /// the model image), for `PoisonedLog`.
    odd_type: (String, Value),
    altered: (String, Value),
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

impl SimRekor {
    pub fn new() -> Result<Self, String> {
        let err = |e: rcgen::Error| e.to_string();
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| "log key generation failed")?;
        let log_key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
                .map_err(|_| "log key")?;
        let log_spki = KeyPair::try_from(pkcs8.as_ref())
            .map_err(err)?
            .public_key_der();

        // The Fulcio-like CA and two keyless signers (the right and a wrong identity).
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca.distinguished_name
            .push(DnType::OrganizationName, "sim-sigstore.invalid");
        ca.distinguished_name
            .push(DnType::CommonName, "Simulated Fulcio");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.not_before = rcgen::date_time_ymd(2020, 1, 1);
        ca.not_after = rcgen::date_time_ymd(2100, 1, 1);
        let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let signer = |subject: &str| -> Result<(String, EcdsaKeyPair), String> {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err)?;
            let mut p = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
            p.subject_alt_names = vec![SanType::URI(subject.try_into().map_err(err)?)];
            // Fulcio's OIDC issuer extension (v2: a DER UTF8String).
            let mut issuer = vec![0x0c, ISSUER.len() as u8];
            issuer.extend_from_slice(ISSUER.as_bytes());
            p.custom_extensions = vec![CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 57264, 1, 8],
                issuer,
            )];
            // Ten minutes around the entries' integrated time, as Fulcio issues them.
            p.not_before = time::OffsetDateTime::from_unix_timestamp(now as i64 - 300)
                .map_err(|e| e.to_string())?;
            p.not_after = time::OffsetDateTime::from_unix_timestamp(now as i64 + 300)
                .map_err(|e| e.to_string())?;
            let cert = p.signed_by(&key, &ca_cert, &ca_key).map_err(err)?;
            let signing = EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_ASN1_SIGNING,
                &key.serialize_der(),
                &rng,
            )
            .map_err(|_| "signer key")?;
            Ok((cert.pem(), signing))
        };
        let (good_pem, good_key) = signer(SUBJECT)?;
        let (wrong_pem, wrong_key) = signer(WRONG_SUBJECT)?;
        let agent_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err)?;
        let agent_signing = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &agent_key.serialize_der(),
            &rng,
        )
        .map_err(|_| "agent key")?;

        // DSSE bodies: what Rekor keeps of a signed attestation about each image.
        let dsse = |image: &str, verifier_pem: &str, key: &EcdsaKeyPair| -> Vec<u8> {
            let payload = json!({"_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": image, "digest": {"sha256": digest_of(image)}}],
                "predicateType": "https://slsa.dev/provenance/v1", "predicate": {}})
            .to_string();
            let pae = format!(
                "DSSEv1 28 application/vnd.in-toto+json {} {payload}",
                payload.len()
            );
            let sig = key
                .sign(&rng, pae.as_bytes())
                .expect("signing")
                .as_ref()
                .to_vec();
            let envelope = json!({"payloadType": "application/vnd.in-toto+json", "payload": b64(payload.as_bytes()),
                                  "signatures": [{"sig": b64(&sig)}]});
            serde_json::to_vec(&json!({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": hex::encode(Sha256::digest(envelope.to_string()))},
                "payloadHash": {"algorithm": "sha256", "value": hex::encode(Sha256::digest(payload.as_bytes()))},
                "signatures": [{"signature": b64(&sig), "verifier": b64(verifier_pem.as_bytes())}]}}))
            .expect("JSON")
        };
        let agent_pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            b64(&agent_key.public_key_der())
        );
        let odd = serde_json::to_vec(&json!({"apiVersion": "0.0.1", "kind": "alpine",
            "spec": {"package": {"hash": {"algorithm": "sha256", "value": digest_of(MODEL_IMAGE)}}}}))
        .expect("JSON");
        let bodies = [
            (MODEL_IMAGE, dsse(MODEL_IMAGE, &good_pem, &good_key)),
            (AGENT_IMAGE, dsse(AGENT_IMAGE, &agent_pem, &agent_signing)),
            (MODEL_IMAGE, dsse(MODEL_IMAGE, &wrong_pem, &wrong_key)),
            (MODEL_IMAGE, odd),
        ];
        // Other tenants' entries around ours, so proofs have depth.
        let mut leaves: Vec<[u8; 32]> = (0..5u8).map(|i| leaf_hash(&[i])).collect();
        let first = leaves.len();
        leaves.extend(bodies.iter().map(|(_, b)| leaf_hash(b)));
        leaves.push(leaf_hash(b"after"));
        let root = tree_root(&leaves);
        let log_id = hex::encode(Sha256::digest(&log_spki));
        let note = format!("{ORIGIN}\n{}\n{}\n", leaves.len(), b64(&root));
        let note_sig = log_key.sign(&rng, note.as_bytes()).map_err(|_| "signing")?;
        let mut hinted = Sha256::digest(&log_spki)[..4].to_vec();
        hinted.extend_from_slice(note_sig.as_ref());
        let checkpoint = format!("{note}\n\u{2014} sim-rekor.invalid {}\n", b64(&hinted));
        let mut index: HashMap<String, Vec<String>> = HashMap::new();
        let mut entries = HashMap::new();
        let (mut wrong, mut odd_type) = (None, None);
        for (i, (image, body)) in bodies.iter().enumerate() {
            let at = first + i;
            let uuid = format!("24296fb24b8ad77a{}", hex::encode(leaves[at]));
            let mut e = Entry {
                uuid: uuid.clone(),
                body_text: b64(body),
                body: body.clone(),
                integrated_time: now,
                log_id: log_id.clone(),
                log_index: 90_000 + at as u64,
                set: Vec::new(),
                proof: None,
            };
            e.set = log_key
                .sign(&rng, set_payload(&e).as_bytes())
                .map_err(|_| "signing")?
                .as_ref()
                .to_vec();
            let value = json!({
                "body": e.body_text, "integratedTime": e.integrated_time, "logID": e.log_id, "logIndex": e.log_index,
                "verification": {"signedEntryTimestamp": b64(&e.set), "inclusionProof": {
                    "logIndex": at, "treeSize": leaves.len(), "rootHash": hex::encode(root),
                    "hashes": audit_path(at, &leaves).iter().map(hex::encode).collect::<Vec<_>>(),
                    "checkpoint": checkpoint}}});
            if i == 2 {
                wrong = Some((uuid, value));
            } else if i == 3 {
                odd_type = Some((uuid, value));
            } else {
                index
                    .entry(digest_of(image))
                    .or_default()
                    .push(uuid.clone());
                entries.insert(uuid, value);
            }
        }
        // The model image's good entry with its body changed after signing, under the UUID
        // its new body hashes to: only the log's signature notices.
        let good_uuid = &index[&digest_of(MODEL_IMAGE)][0];
        let mut altered = entries[good_uuid].clone();
        let mut body = bodies[0].1.clone();
        let n = body.len();
        body[n / 2] ^= 0x01;
        altered["body"] = json!(b64(&body));
        let altered_uuid = format!("24296fb24b8ad77a{}", hex::encode(leaf_hash(&body)));
        Ok(SimRekor {
            agent_key: venice_e2ee_proxy::attestation::provenance::key_fingerprint(
                &agent_key.public_key_der(),
            ),
            log_spki,
            ca_der: ca_cert.der().to_vec(),
            index,
            entries,
            wrong_identity: wrong.expect("three bodies"),
            odd_type: odd_type.expect("four bodies"),
            altered: (altered_uuid, altered),
        })
    }

    /// The trusted root a proxy needs to trust this log and CA (test PKI).
    pub fn trusted_root(&self) -> Value {
        json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{"baseUrl": "http://sim-rekor.invalid", "hashAlgorithm": "SHA2_256",
                "publicKey": {"rawBytes": b64(&self.log_spki), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                              "validFor": {"start": "2020-01-01T00:00:00Z"}},
                "logId": {"keyId": b64(&Sha256::digest(&self.log_spki))}}],
            "certificateAuthorities": [{"subject": {"organization": "sim-sigstore.invalid", "commonName": "Simulated Fulcio"},
                "uri": "http://sim-fulcio.invalid",
                "certChain": {"certificates": [{"rawBytes": b64(&self.ca_der)}]},
                "validFor": {"start": "2020-01-01T00:00:00Z"}}],
            "ctlogs": [], "timestampAuthorities": []
        })
    }

    /// The provenance rules for the simulated images.
    pub fn policy(&self) -> Vec<Rule> {
        vec![
            Rule {
                repository: MODEL_IMAGE.into(),
                rule: RuleKind::Fulcio,
                issuer: Some(ISSUER.into()),
                subject_prefix: Some("https://github.com/simulated/".into()),
                keys: Vec::new(),
            },
            Rule {
                repository: AGENT_IMAGE.into(),
                rule: RuleKind::Signed,
                issuer: None,
                subject_prefix: None,
                keys: vec![self.agent_key.clone()],
            },
            Rule {
                repository: "simulated/verifier".into(),
                rule: RuleKind::TagOnly,
                issuer: None,
                subject_prefix: None,
                keys: Vec::new(),
            },
        ]
    }

    /// `index/retrieve` for `{"hash":"sha256:…"}`.
    pub fn lookup(&self, request: &Value, fault: Option<RekorFault>) -> Value {
        let hash = request["hash"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let digest = hash.trim_start_matches("sha256:");
        let model = digest == digest_of(MODEL_IMAGE);
        let listed = self.index.get(digest).cloned().unwrap_or_default();
        match fault {
            Some(RekorFault::MissingEntry) if model => json!([]),
            Some(RekorFault::WrongIdentity) if model => json!([self.wrong_identity.0]),
            Some(RekorFault::PoisonedLog) if model => {
                let mut poisoned = vec![
                    self.wrong_identity.0.clone(),
                    self.odd_type.0.clone(),
                    self.altered.0.clone(),
                    format!("24296fb24b8ad77a{}", "ee".repeat(32)),
                ];
                poisoned.extend(listed);
                json!(poisoned)
            }
            Some(RekorFault::Flood) if model => {
                let mut flood = listed;
                flood.extend((0..999u32).map(|i| {
                    format!(
                        "24296fb24b8ad77a{}",
                        hex::encode(Sha256::digest(i.to_le_bytes()))
                    )
                }));
                json!(flood)
            }
            _ => json!(listed),
        }
    }

    /// `log/entries/retrieve` for `{"entryUUIDs":[…]}`.
    pub fn entries(&self, request: &Value, fault: Option<RekorFault>) -> Value {
        let mut out = serde_json::Map::new();
        for uuid in request["entryUUIDs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let found = [&self.wrong_identity, &self.odd_type, &self.altered]
                .into_iter()
                .find(|(u, _)| u == uuid)
                .map(|(_, e)| e.clone())
                .or_else(|| self.entries.get(uuid).cloned());
            let Some(mut e) = found else { continue };
            let model = self
                .index
                .get(&digest_of(MODEL_IMAGE))
                .is_some_and(|u| u.iter().any(|x| x == uuid));
            match fault {
                Some(RekorFault::AlteredEntry) if model => {
                    let mut body = base64::engine::general_purpose::STANDARD
                        .decode(e["body"].as_str().unwrap_or_default())
                        .unwrap_or_default();
                    let n = body.len();
                    body[n / 2] ^= 0x01;
                    e["body"] = json!(b64(&body));
                }
                Some(RekorFault::BrokenProof) if model => {
                    if let Some(h) = e.pointer_mut("/verification/inclusionProof/hashes/0") {
                        *h = json!("00".repeat(32));
                    }
                }
                _ => {}
            }
            out.insert(uuid.to_string(), e);
        }
        json!([out])
    }
}
