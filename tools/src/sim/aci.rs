//! The simulated Venice as an ACI gateway (`aci/1`), the way Venice serves most E2EE models
//! since mid-2026: dstack's root fields beside `api_version` and the nested `attestation`
//! (keyset, restated report data, source provenance, evidence with event log, compose and a
//! `vm_config` of a CVM without GPUs), and per-answer receipts signed with the gateway's
//! Ed25519 key that cite an attested session of the upstream that served.

use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use venice_e2ee_proxy::attestation::aci::jcs;
use venice_e2ee_proxy::attestation::unix_now as now;
use venice_e2ee_proxy::e2ee::codec;

/// The one gateway CVM that serves every model in the ACI layouts (its measurements' name).
pub const GATEWAY: &str = "private-ai-gateway";
pub const SOURCE_REPO: &str = "https://github.com/Dstack-TEE/private-ai-gateway.git";
/// The commit Venice's gateway runs (the public audit of Venice's live chain names it).
pub const SOURCE_COMMIT: &str = "aa65d64c191949b8df7b1ebe210f5b8f8a8e6b99";
/// The image the gateway's compose names by tag only, as Venice's does.
pub const TAG_ONLY_IMAGE: &str = "dstacktee/dstack-verifier:latest";
/// The launcher that clones and builds the gateway at boot.
const LAUNCHER_IMAGE: &str = "ghcr.io/redpill-ai/private-ai-launcher";
/// dstack-dev-0.5.9, the development OS image Venice's gateway runs (its hash as
/// private-ai-gateway's verifier publishes it).
pub const DEV_OS_IMAGE: &str = "0e09f2bcb510c682b461d16b97192c710886db582852991e05146291063f890b";
const RECEIPT_KEY_ID: &str = "sim-receipt-1";
/// The Ed25519 receipt key's id as aa65d64's dstack key provider names it.
const DEPLOYED_RECEIPT_KEY_ID: &str = "dstack-kms-receipt-ed25519-v1";

/// A secp256k1 key as the gateway lists it: uncompressed SEC1, hex.
fn uncompressed(k: &k256::ecdsa::SigningKey) -> String {
    hex::encode(k.verifying_key().to_encoded_point(false).as_bytes())
}
const UPSTREAM_ORIGIN: &str = "https://upstream.sim.invalid";
/// Receipts kept for lookup; older ones answer 404 like expired ones.
const KEEP_RECEIPTS: usize = 4096;

/// How `GET /tee/attestation` frames its answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// dstack/NEAR at the root, REPORTDATA = address ‖ 0 ‖ nonce.
    #[default]
    Dstack,
    /// `aci/1`, REPORTDATA = sha256(statement over the keyset digest and the nonce).
    Aci,
    /// `aci/1` framing whose quote still binds the address (Venice's legacy binding); the
    /// gateway's own endpoint binds the keyset (`venice`: as Venice serves its gateways).
    #[serde(alias = "venice")]
    AciAddressBound,
}

impl Layout {
    pub fn is_aci(self) -> bool {
        self != Layout::Dstack
    }
}

/// What a receipt spoils.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptFault {
    /// No receipt is kept (lookups answer 404).
    Missing,
    /// Signed, then a field changed.
    Signature,
    /// `response.returned` hashes other bytes than were sent.
    BodyHash,
    /// Names another keyset than the attested one.
    KeysetDigest,
    /// The gateway did not verify the upstream it forwarded to.
    UpstreamNotVerified,
    /// The cited session record no longer hashes to its id.
    SessionAltered,
    /// The receipt's hashes countersigned by another key than the quote-bound one.
    ForeignCountersignature,
    /// The cited session's upstream quote was changed after it was signed.
    UpstreamQuoteAltered,
    /// The cited session binds a TLS key its upstream's keyset does not list.
    UpstreamChannelNotAttested,
    /// A hop relabels every answer after the first with the first answer's chat id and
    /// `x-receipt-id`; the later answers' own receipts say the upstream was not verified.
    Relabelled,
}

/// What the hashes in a receipt cover.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptBodies {
    /// As behind `api.venice.ai`: Venice re-serializes the bodies between the client and the
    /// gateway, so the gateway hashes other bytes and records `transparency.*_modified`.
    #[default]
    Rewrapped,
    /// As when the gateway is reached directly: the bytes the client exchanged.
    Exact,
}

/// Which shapes the gateway's artifacts take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Forms {
    /// As private-ai-gateway `aa65d64` serves them, the commit Venice's gateway runs: an
    /// identity key and `keyset_epoch` in the keyset, the statement with `workload_id` and the
    /// identity key's endorsement, receipts with `signature: {algo, key_id, value}`, `seq`,
    /// `workload_id`, `response.returned {cleartext_hash, wire_hash}` and
    /// `transparency.response_modified` (its E2EE re-encryption), `as_` session ids over
    /// their material with absent fields as null, custody records without `kms_public_key`.
    #[default]
    Deployed,
    /// As the spec at HEAD gives them.
    Head,
}

/// Receipts (as Venice's signature endpoint serves them: the countersignature beside the
/// receipt) by receipt id and by chat id, and the (receipt, chat) id pairs in the order they
/// came, oldest first.
#[derive(Default)]
struct Kept {
    by_id: HashMap<String, Value>,
    order: VecDeque<(String, String)>,
}

pub struct Gateway {
    receipt_key: Ed25519KeyPair,
    /// The workload's identity key (deployed form): it endorses each keyset.
    identity: k256::ecdsa::SigningKey,
    /// Every keyset of this gateway expires then (fixed, so digests are stable).
    not_after: u64,
    receipts: Mutex<Kept>,
    /// dstack's KMS as the gateway's key custody names it: its root, the app key it issued,
    /// and the key derived for receipts.
    kms: [k256::ecdsa::SigningKey; 3],
    /// Attested sessions by id, and which id each upstream variant has in each form.
    sessions: HashMap<String, Value>,
    session_ids: HashMap<(UpstreamVariant, Forms), String>,
}

/// What the simulated gateway hashed of one exchange.
pub struct Exchange<'a> {
    pub model: &'a str,
    /// The gateway's keyset the receipt names.
    pub keyset: Value,
    pub chat_id: &'a str,
    pub receipt_id: &'a str,
    pub request: [u8; 32],
    pub response: [u8; 32],
    pub fault: Option<ReceiptFault>,
    pub bodies: ReceiptBodies,
    pub forms: Forms,
    /// The model's enclave key, which countersigns the receipt's hashes (EIP-191).
    pub countersigner: &'a k256::ecdsa::SigningKey,
}

/// The upstream a session describes: as the gateway verified it, or spoiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpstreamVariant {
    Genuine,
    /// Its quote changed after the attestation key signed it.
    AlteredQuote,
    /// The TLS key the gateway bound is not one the upstream's keyset lists.
    ForeignChannel,
}

/// The simulated upstream's own ACI report (`aci/1`): a second trust domain, its keyset
/// listing the TLS key it serves `UPSTREAM_ORIGIN` with, its quote binding that keyset with
/// the gateway's nonce (never published). `quote` signs a quote body with the simulated
/// Intel PKI.
pub fn upstream_report(
    quote: &dyn Fn(&[u8; 64], &super::evidence::Workload) -> Vec<u8>,
    variant: UpstreamVariant,
) -> Vec<u8> {
    let keyset = json!({
        "subject": "dstack-app://simulated/upstream",
        "not_after": now() + 30 * 86400,
        "receipt_signing_keys": [], "e2ee_public_keys": [],
        "tls_public_keys": [{"spki_sha256": upstream_spki(), "domain": "upstream.sim.invalid"}]
    });
    let digest = jcs::digest(&keyset);
    let gateway_nonce: [u8; 32] = rand::random();
    let report_data = venice_e2ee_proxy::attestation::aci::report_data(&digest, &gateway_nonce);
    let workload = super::evidence::workload_of(
        "simulated-upstream",
        &super::evidence::Manifest {
            docker_compose_file: format!(
                "services:\n  vllm:\n    image: {}\n",
                super::rekor::pinned(super::rekor::MODEL_IMAGE)
            ),
            ..Default::default()
        },
    );
    let mut q = quote(&report_data, &workload);
    if variant == UpstreamVariant::AlteredQuote {
        q[venice_e2ee_proxy::attestation::quote::offsets::MR_TD] ^= 0x01;
    }
    json!({
        "api_version": "aci/1",
        "workload_keyset_digest": digest,
        "attestation": {
            "tee_type": "tdx",
            "workload_keyset": keyset,
            "report_data": hex::encode(&report_data[..32]),
            "evidence": {"quote": hex::encode(q), "event_log": Value::Array(workload.events).to_string(),
                "app_compose": workload.app_compose}
        },
        "service_capabilities": {"supported_e2ee_versions": [], "serving": "direct"}
    })
    .to_string()
    .into_bytes()
}

fn upstream_spki() -> String {
    hex::encode(Sha256::digest(b"simulated upstream spki"))
}

/// A session record over `evidence` and its id: in the deployed form `as_` + the SHA-256 of
/// the JCS of its material (absent `identity` as null), in HEAD's the SHA-256 of the JCS of
/// the whole record.
fn session_of(evidence: &[u8], spki: &str, forms: Forms) -> (String, Value) {
    let at = now();
    let unknown = json!({"status": "unknown"});
    let mut session = json!({
        "api_version": "aci/1",
        "upstream_name": "simulated-upstream",
        "endpoint": UPSTREAM_ORIGIN,
        "verifier_id": "simulated-verifier/1",
        "established_at": at - 60,
        "expires_at": at + 30 * 86400,
        "identity": {},
        "channel_binding": [{"type": "tls_spki_sha256", "origin": UPSTREAM_ORIGIN, "spki_sha256": spki}],
        "claims": {
            "tee_attested": {"status": "asserted", "source": "hardware_proven", "reason": "simulated quote verified"},
            "gpu_attested": unknown, "tcb_up_to_date": unknown, "os_known_good": unknown,
            "serving_software_known_good": unknown, "model_weights_provenance": unknown,
            "extra": {"tcb_status": "UpToDate"}
        },
        "evidence": {"digest": jcs::sha256_tagged(evidence),
            "data": format!("data:application/json;base64,{}", base64::engine::general_purpose::STANDARD.encode(evidence))}
    });
    let id = match forms {
        Forms::Deployed => {
            // The wire record omits what the verifier established no value for.
            session
                .as_object_mut()
                .expect("an object")
                .remove("identity");
            let material = json!({
                "upstream_name": session["upstream_name"], "endpoint": session["endpoint"],
                "verifier_id": session["verifier_id"], "identity": null,
                "channel_binding": session["channel_binding"], "claims": session["claims"],
                "evidence_digest": session["evidence"]["digest"],
            });
            format!(
                "as_{}",
                hex::encode(Sha256::digest(jcs::canonical(&material)))
            )
        }
        Forms::Head => hex::encode(Sha256::digest(jcs::canonical(&session))),
    };
    (id, session)
}

impl Gateway {
    /// `upstream` gives each variant's upstream report (signed by the simulated Intel PKI).
    pub fn new(upstream: &dyn Fn(UpstreamVariant) -> Vec<u8>) -> Result<Gateway, String> {
        let seed: [u8; 32] = rand::random();
        let receipt_key = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|e| e.to_string())?;
        let mut sessions = HashMap::new();
        let mut session_ids = HashMap::new();
        for variant in [
            UpstreamVariant::Genuine,
            UpstreamVariant::AlteredQuote,
            UpstreamVariant::ForeignChannel,
        ] {
            let spki = if variant == UpstreamVariant::ForeignChannel {
                hex::encode(Sha256::digest(b"another machine's spki"))
            } else {
                upstream_spki()
            };
            let evidence = upstream(variant);
            for forms in [Forms::Deployed, Forms::Head] {
                let (id, doc) = session_of(&evidence, &spki, forms);
                session_ids.insert((variant, forms), id.clone());
                sessions.insert(id, doc);
            }
        }
        let key = || k256::ecdsa::SigningKey::random(&mut rand::thread_rng());
        Ok(Gateway {
            receipt_key,
            identity: key(),
            kms: [key(), key(), key()],
            not_after: now() + 7 * 86400,
            receipts: Mutex::default(),
            sessions,
            session_ids,
        })
    }

    /// The gateway's keyset (one for the whole service, §4): its receipt keys and each
    /// model's E2EE key, as (model, public key hex), in `forms`.
    pub fn keyset(
        &self,
        e2ee_keys: &[(&str, String)],
        not_after: Option<u64>,
        forms: Forms,
    ) -> Value {
        let e2ee: Vec<Value> = e2ee_keys
            .iter()
            .map(|(model, key)| {
                json!({"key_id": format!("e2ee-{model}"),
                    "algo": "secp256k1-aes-256-gcm-hkdf-sha256", "public_key": key})
            })
            .collect();
        let not_after = not_after.unwrap_or(self.not_after);
        let ed25519 = hex::encode(self.receipt_key.public_key().as_ref());
        match forms {
            Forms::Head => json!({
                "subject": format!("dstack-app://simulated/{GATEWAY}"),
                "not_after": not_after,
                "receipt_signing_keys": [{"key_id": RECEIPT_KEY_ID, "algo": "ed25519", "public_key": ed25519}],
                "e2ee_public_keys": e2ee,
                "tls_public_keys": []
            }),
            Forms::Deployed => json!({
                "workload_identity": {"public_key": {"algo": "ecdsa-secp256k1",
                    "public_key": uncompressed(&self.identity)},
                    "subject": format!("dstack-app://simulated/{GATEWAY}")},
                "keyset_epoch": {"version": 1, "not_after": not_after},
                // As aa65d64's dstack key provider lists them: Ed25519 first (the signer),
                // the secp256k1 receipt key for `ecrecover` verifiers.
                "receipt_signing_keys": [
                    {"key_id": DEPLOYED_RECEIPT_KEY_ID, "algo": "ed25519", "public_key": ed25519},
                    {"key_id": "dstack-kms-receipt-v1", "algo": "ecdsa-secp256k1",
                     "public_key": uncompressed(&self.kms[2])}],
                "e2ee_public_keys": e2ee,
                "tls_public_keys": []
            }),
        }
    }

    /// What the quote's REPORTDATA slot holds for `keyset` and `nonce`: the statement over
    /// its digest (HEAD), or with the identity key's `workload_id` too (deployed).
    pub fn report_data(&self, keyset: &Value, nonce: &[u8; 32], forms: Forms) -> [u8; 64] {
        let digest = jcs::digest(keyset);
        match keyset
            .pointer("/workload_identity/public_key")
            .filter(|_| forms == Forms::Deployed)
        {
            None => venice_e2ee_proxy::attestation::aci::report_data(&digest, nonce),
            Some(identity) => {
                let statement = jcs::canonical(&json!({"purpose": "aci.report_data.v1",
                    "workload_id": jcs::digest(identity), "workload_keyset_digest": digest,
                    "nonce": hex::encode(nonce)}));
                let mut slot = [0u8; 64];
                slot[..32].copy_from_slice(&Sha256::digest(statement));
                slot
            }
        }
    }

    /// The report fields of the deployed form: `workload_id` and the identity key's
    /// `keyset_endorsement` (64-byte r ‖ s over the SHA-256 of the JCS payload).
    pub fn identity_fields(&self, keyset: &Value) -> Option<(String, Value)> {
        use k256::ecdsa::signature::Signer as _;
        let identity = keyset.pointer("/workload_identity/public_key")?;
        let payload = jcs::canonical(&json!({"purpose": "aci.keyset.endorsement.v1",
            "workload_keyset_digest": jcs::digest(keyset)}));
        let sig: k256::ecdsa::Signature = self.identity.sign(&payload);
        Some((
            jcs::digest(identity),
            json!({"algo": "ecdsa-secp256k1", "value": hex::encode(sig.to_bytes())}),
        ))
    }

    /// The receipt key's custody as dstack's KMS publishes it (`evidence.key_custody`): the
    /// app key signs (purpose : derived key), the root signs (app id ‖ app key).
    pub fn key_custody(&self, app_id: &[u8], forms: Forms) -> Value {
        use sha3::{Digest as _, Keccak256};
        let [root, app, derived] = &self.kms;
        let compressed = |k: &k256::ecdsa::SigningKey| {
            k.verifying_key().to_encoded_point(true).as_bytes().to_vec()
        };
        let sign = |k: &k256::ecdsa::SigningKey, m: &[u8]| {
            let (sig, recovery) = k
                .sign_digest_recoverable(Keccak256::new_with_prefix(m))
                .expect("signing a digest");
            let mut b = sig.to_bytes().to_vec();
            b.push(recovery.to_byte() + 27);
            hex::encode(b)
        };
        let issued = sign(
            root,
            &[b"dstack-kms-issued:".as_slice(), app_id, &compressed(app)].concat(),
        );
        let key = match forms {
            // HEAD: the Ed25519 receipt key, its KMS-derived secp256k1 key named apart.
            Forms::Head => {
                let purpose = "aci.receipt.ed25519.v1";
                json!({"role": "receipt", "purpose": purpose, "algo": "ed25519",
                    "public_key": hex::encode(self.receipt_key.public_key().as_ref()),
                    "kms_public_key": hex::encode(compressed(derived)),
                    "signature_chain": [
                        sign(app, format!("{purpose}:{}", hex::encode(compressed(derived))).as_bytes()),
                        issued]})
            }
            // aa65d64: the secp256k1 receipt key is the KMS-derived key itself.
            Forms::Deployed => {
                let purpose = "aci.receipt.v1";
                json!({"role": "receipt", "path": "aci/receipt/v1", "purpose": purpose,
                    "algo": "ecdsa-secp256k1", "public_key": uncompressed(derived),
                    "signature_chain": [
                        sign(app, format!("{purpose}:{}", hex::encode(compressed(derived))).as_bytes()),
                        issued]})
            }
        };
        json!({"provider": "dstack-kms", "keys": [key]})
    }

    /// The KMS root the custody chain ends at (compressed, hex).
    pub fn kms_root(&self) -> String {
        hex::encode(
            self.kms[0]
                .verifying_key()
                .to_encoded_point(true)
                .as_bytes(),
        )
    }

    /// Venice's ACI gateway as the public audit of it describes it (jooray/venice-e2ee-proxy
    /// docs/SECURITY-AUDIT.md §2.2, 2026-08-06): dstack-ingress and the launcher pinned by
    /// digest, the launcher building private-ai-gateway at the commit Venice runs, the verifier
    /// sidecar by tag, node-exporter pinned; `public_logs` on, `secure_time` off, a dstack
    /// development OS image. The digests and the settings the audit does not give are this
    /// simulator's own. Its ingress serves `ingress_host`.
    pub fn manifest(ingress_host: &str) -> super::evidence::Manifest {
        let digest = |name: &str| hex::encode(Sha256::digest(format!("simulated image {name}")));
        let compose = format!(
            "services:
  dstack-ingress:
    image: dstacktee/dstack-ingress:2.2@sha256:{ingress}
    restart: unless-stopped
    ports:
      - \"443:443\"
    environment:
      - DOMAINS={ingress_host}
      - TARGET_ENDPOINT=http://launcher:8086
      - CLOUDFLARE_API_TOKEN=${{CLOUDFLARE_API_TOKEN}}
      - CERTBOT_EMAIL=${{CERTBOT_EMAIL}}
      - SET_CAA=true
    volumes:
      - /var/run/dstack.sock:/var/run/dstack.sock
      - cert-data:/etc/letsencrypt
  launcher:
    image: {LAUNCHER_IMAGE}@sha256:{launcher}
    restart: unless-stopped
    environment:
      - GIT_REPO={SOURCE_REPO}
      - GIT_REV={SOURCE_COMMIT}
      - RUST_LOG=info,request_outcome=debug
      - ADMIN_TOKEN=${{ADMIN_TOKEN}}
      - CONTROL_TOKEN=${{CONTROL_TOKEN}}
    volumes:
      - /var/run/dstack.sock:/var/run/dstack.sock
      - pal-cache:/var/cache/pal
      - pal-state:/var/lib/pal
    configs:
      - source: gateway-upstreams
        target: /etc/private-ai-gateway/upstreams.seed.json
    logging:
      driver: json-file
      options:
        max-size: 500m
        max-file: \"10\"
  dstack-verifier:
    image: {TAG_ONLY_IMAGE}
    restart: unless-stopped
  node-exporter:
    image: prom/node-exporter:v1.8.2@sha256:{exporter}
    restart: unless-stopped
    command:
      - --path.procfs=/host/proc
      - --path.sysfs=/host/sys
    volumes:
      - /proc:/host/proc:ro
      - /sys:/host/sys:ro
configs:
  gateway-upstreams:
    content: |
      []
volumes:
  cert-data:
  pal-cache:
  pal-state:
",
            ingress = digest("dstack-ingress"),
            launcher = digest("launcher"),
            exporter = digest("node-exporter"),
        );
        let settings = json!({"kms_enabled": true, "gateway_enabled": true,
            "local_key_provider_enabled": false, "key_provider_id": "", "public_logs": true,
            "public_sysinfo": true, "no_instance_id": false, "secure_time": false});
        super::evidence::Manifest {
            docker_compose_file: compose,
            allowed_envs: [
                "ADMIN_TOKEN",
                "CERTBOT_EMAIL",
                "CLOUDFLARE_API_TOKEN",
                "CONTROL_TOKEN",
                "DSTACK_ROOT_PUBLIC_KEY",
            ]
            .map(String::from)
            .into(),
            pre_launch_script: None,
            settings: settings.as_object().expect("an object").clone(),
            os_image_hash: Some(DEV_OS_IMAGE.into()),
        }
    }

    /// Signs and keeps the receipt of one exchange (unless the fault is `Missing`).
    pub fn record(&self, x: &Exchange<'_>) {
        if x.fault == Some(ReceiptFault::Missing) {
            return;
        }
        let keyset = &x.keyset;
        let digest = if x.fault == Some(ReceiptFault::KeysetDigest) {
            jcs::sha256_tagged(b"another keyset")
        } else {
            jcs::digest(keyset)
        };
        // Re-wrapped bodies: the gateway hashed what Venice made of them, and says so.
        let rewrap = |h: &[u8; 32]| -> [u8; 32] {
            Sha256::digest([b"venice:".as_slice(), h].concat()).into()
        };
        let rewrapped = x.bodies == ReceiptBodies::Rewrapped;
        let request = if rewrapped {
            rewrap(&x.request)
        } else {
            x.request
        };
        let response = match (x.fault, rewrapped) {
            (Some(ReceiptFault::BodyHash), _) => [0x42; 32],
            (_, true) => rewrap(&x.response),
            (_, false) => x.response,
        };
        let transparency: Vec<Value> = if rewrapped && x.fault != Some(ReceiptFault::BodyHash) {
            vec![
                json!({"type": "transparency.request_modified"}),
                json!({"type": "transparency.response_modified"}),
            ]
        } else {
            Vec::new()
        };
        let tagged = |h: &[u8; 32]| format!("sha256:{}", hex::encode(h));
        let upstream = if matches!(
            x.fault,
            Some(ReceiptFault::UpstreamNotVerified | ReceiptFault::Relabelled)
        ) {
            json!({"type": "upstream.verified", "result": "failed", "required": false,
                "model_id": x.model, "reason": "simulated quote did not verify", "upstream_name": "simulated-upstream"})
        } else {
            let variant = match x.fault {
                Some(ReceiptFault::UpstreamQuoteAltered) => UpstreamVariant::AlteredQuote,
                Some(ReceiptFault::UpstreamChannelNotAttested) => UpstreamVariant::ForeignChannel,
                _ => UpstreamVariant::Genuine,
            };
            let session_id = &self.session_ids[&(variant, x.forms)];
            json!({"type": "upstream.verified", "result": "verified", "required": false,
                "model_id": x.model, "session_id": session_id, "url_origin": UPSTREAM_ORIGIN,
                "verifier_id": "simulated-verifier/1",
                // As Venice's gateway records them: the claims, by name and status.
                "claims": self.sessions[session_id]["claims"]})
        };
        let route = json!({"type": "route.selected", "target_route_id": format!("simulated-upstream:{}", x.model)});
        let mut doc = json!({
            "api_version": "aci/1",
            "receipt_id": x.receipt_id,
            "chat_id": x.chat_id,
            "model": x.model,
            "workload_keyset_digest": digest,
            "endpoint": "/v1/chat/completions",
            "method": "POST",
            "served_at": now(),
        });
        let mut log = vec![
            json!({"type": "request.received", "body_hash": tagged(&request)}),
            json!({"type": "request.forwarded", "body_hash": tagged(&request)}),
            route,
            upstream,
        ];
        match x.forms {
            Forms::Head => {
                log.extend(transparency);
                log.push(json!({"type": "response.returned", "body_hash": tagged(&response)}));
                doc["key_id"] = json!(RECEIPT_KEY_ID);
            }
            Forms::Deployed => {
                // Its own E2EE re-encryption is a response modification, whatever Venice does.
                if rewrapped {
                    log.push(json!({"type": "transparency.request_modified"}));
                }
                log.push(json!({"type": "transparency.response_modified"}));
                let cleartext: [u8; 32] =
                    Sha256::digest([b"cleartext:".as_slice(), &response].concat()).into();
                log.push(
                    json!({"type": "response.returned", "cleartext_hash": tagged(&cleartext),
                    "wire_hash": tagged(&response)}),
                );
                for (seq, event) in log.iter_mut().enumerate() {
                    event["seq"] = json!(seq);
                }
                if let Some(identity) = keyset.pointer("/workload_identity/public_key") {
                    doc["workload_id"] = json!(jcs::digest(identity));
                }
                doc["signature"] = json!({"algo": "ed25519", "key_id": DEPLOYED_RECEIPT_KEY_ID});
            }
        }
        doc["event_log"] = Value::Array(log);
        let signature = self.receipt_key.sign(&jcs::canonical(&doc));
        match x.forms {
            Forms::Head => doc["signature"] = json!(hex::encode(signature.as_ref())),
            Forms::Deployed => doc["signature"]["value"] = json!(hex::encode(signature.as_ref())),
        }
        if x.fault == Some(ReceiptFault::Signature) {
            doc["served_at"] = json!(0);
        }
        let foreign;
        let countersigner = if x.fault == Some(ReceiptFault::ForeignCountersignature) {
            foreign = k256::ecdsa::SigningKey::random(&mut rand::thread_rng());
            &foreign
        } else {
            x.countersigner
        };
        let text = format!("{}:{}", hex::encode(request), hex::encode(response));
        let envelope = json!({"api_version": "aci/1", "text": text,
            "signature": personal_sign(countersigner, &text),
            "signing_address": format!("0x{}", hex::encode(codec::address(&(*countersigner.verifying_key()).into()))),
            "signing_algo": "ecdsa", "receipt": doc});
        let mut kept = self.receipts.lock().expect("poisoned");
        if kept.order.len() >= KEEP_RECEIPTS {
            if let Some((receipt, chat)) = kept.order.pop_front() {
                kept.by_id.remove(&receipt);
                kept.by_id.remove(&chat);
            }
        }
        kept.by_id
            .insert(x.receipt_id.to_string(), envelope.clone());
        kept.by_id.insert(x.chat_id.to_string(), envelope);
        kept.order
            .push_back((x.receipt_id.to_string(), x.chat_id.to_string()));
    }

    /// A receipt by receipt id or chat id, with its countersignature beside it.
    pub fn envelope(&self, id: &str) -> Option<Value> {
        self.receipts
            .lock()
            .expect("poisoned")
            .by_id
            .get(id)
            .cloned()
    }

    /// The attested session by id; `altered` serves it changed (no longer its id's content).
    pub fn session(&self, id: &str, altered: bool) -> Option<Value> {
        let mut s = self.sessions.get(id)?.clone();
        if altered {
            s["claims"]["gpu_attested"] =
                json!({"status": "asserted", "source": "provider_asserted"});
        }
        Some(s)
    }
}

/// EIP-191 `personal_sign` as dstack's legacy signature endpoint makes it: `0x` ‖ r ‖ s ‖
/// (27 + parity).
fn personal_sign(key: &k256::ecdsa::SigningKey, text: &str) -> String {
    use sha3::{Digest as _, Keccak256};
    let mut h = Keccak256::new();
    h.update(format!("\x19Ethereum Signed Message:\n{}", text.len()).as_bytes());
    h.update(text.as_bytes());
    let (sig, recovery) = key
        .sign_prehash_recoverable(&h.finalize())
        .expect("signing a 32-byte hash");
    let mut bytes = sig.to_bytes().to_vec();
    bytes.push(recovery.to_byte() + 27);
    format!("0x{}", hex::encode(bytes))
}
