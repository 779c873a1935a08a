//! The simulated enclave's workload and GPU evidence, in the real formats: a dstack event
//! log whose replay gives the quote's RTMRs, an app compose bound by MRCONFIGID, and SPDM
//! GET_MEASUREMENTS reports signed by simulated GPU device keys under a simulated NVIDIA
//! root (a throw-away PKI; the proxy trusts it only when configured to, and says so).

use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, PKCS_ECDSA_P384_SHA384};
use ring::signature::{EcdsaKeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha384};

pub const GPUS: usize = 2;

pub struct GpuPki {
    pub root_pem: String,
    devices: Vec<(String, EcdsaKeyPair)>,
}

pub fn gpu_pki() -> Result<GpuPki, String> {
    let err = |e: rcgen::Error| e.to_string();
    let root_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(err)?;
    let mut root = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    root.distinguished_name
        .push(DnType::CommonName, "Simulated NVIDIA Device Identity CA");
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let root_cert = root.self_signed(&root_key).map_err(err)?;
    let rng = ring::rand::SystemRandom::new();
    let mut devices = Vec::with_capacity(GPUS);
    for i in 0..GPUS {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        params
            .distinguished_name
            .push(DnType::CommonName, format!("Simulated GH100 {i}"));
        let cert = params.signed_by(&key, &root_cert, &root_key).map_err(err)?;
        let signer =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &key.serialize_der(), &rng)
                .map_err(|e| e.to_string())?;
        devices.push((format!("{}{}", cert.pem(), root_cert.pem()), signer));
    }
    Ok(GpuPki {
        root_pem: root_cert.pem(),
        devices,
    })
}

/// Which part of the GPU evidence a fault spoils.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum GpuFault {
    None,
    /// Signed over a different nonce: a valid signature, the wrong freshness.
    Nonce,
    /// A byte changed after signing.
    Signature,
}

impl GpuPki {
    /// `nvidia_payload` for `nonce`.
    pub fn payload(&self, nonce: &[u8; 32], fault: GpuFault) -> String {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let rng = ring::rand::SystemRandom::new();
        let signed_nonce = if fault == GpuFault::Nonce {
            [0x5a; 32]
        } else {
            *nonce
        };
        let list: Vec<Value> = self
            .devices
            .iter()
            .enumerate()
            .map(|(i, (chain, key))| {
                let mut request = vec![0x11, 0xE0, 0x01, 0xFF];
                request.extend_from_slice(&signed_nonce);
                request.push(0x00);
                let record = Sha384::digest(format!("gpu {i} firmware").as_bytes());
                let mut response = vec![0x11, 0x60, 0x00, 0x00, 0x01];
                response.extend_from_slice(&(record.len() as u32).to_le_bytes()[..3]);
                response.extend_from_slice(&record);
                response.extend_from_slice(&rand::random::<[u8; 32]>());
                response.extend_from_slice(&0u16.to_le_bytes());
                let mut evidence = request;
                evidence.extend_from_slice(&response);
                let signature = key.sign(&rng, &evidence).expect("ECDSA signing");
                evidence.extend_from_slice(signature.as_ref());
                if fault == GpuFault::Signature {
                    evidence[50] ^= 0x01;
                }
                json!({"arch": "HOPPER", "certificate": b64(chain.as_bytes()), "evidence": b64(&evidence)})
            })
            .collect();
        json!({"arch": "HOPPER", "nonce": hex::encode(nonce), "evidence_list": list}).to_string()
    }
}

/// A dstack-style workload: the event log, the RTMRs it replays to, the app compose and the
/// MRCONFIGID binding it.
pub struct Workload {
    pub events: Vec<Value>,
    pub rtmr: [[u8; 48]; 4],
    pub app_compose: String,
    pub mr_config_id: [u8; 48],
}

/// The app compose a simulated CVM runs: dstack's manifest around a docker compose file. A
/// hostile Venice may serve any (`Script::workload`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub docker_compose_file: String,
    #[serde(default)]
    pub allowed_envs: Vec<String>,
    #[serde(default)]
    pub pre_launch_script: Option<String>,
    /// Further manifest settings (`kms_enabled`, `public_logs`, …).
    #[serde(default)]
    pub settings: serde_json::Map<String, Value>,
    /// The OS image hash RTMR3 measures (hex); default: the simulated image's.
    #[serde(default)]
    pub os_image_hash: Option<String>,
}

impl Manifest {
    /// The manifest text MRCONFIGID binds.
    fn text(&self, name: &str) -> String {
        let mut m = json!({"manifest_version": 2, "name": name, "runner": "docker-compose",
            "docker_compose_file": self.docker_compose_file, "allowed_envs": self.allowed_envs});
        if let Some(script) = &self.pre_launch_script {
            m["pre_launch_script"] = json!(script);
        }
        for (k, v) in &self.settings {
            m[k] = v.clone();
        }
        m.to_string()
    }
}

/// What every simulated model runs: images whose provenance the simulated Rekor holds. The
/// simulator's own workload, reviewed only by the test configuration (`reviewed_model_workload`).
pub fn model_manifest() -> Manifest {
    Manifest {
        docker_compose_file: format!(
            "services:\n  model:\n    image: {}\n    restart: unless-stopped\n  agent:\n    image: {}\n",
            super::rekor::pinned(super::rekor::MODEL_IMAGE),
            super::rekor::pinned(super::rekor::AGENT_IMAGE)
        ),
        ..Manifest::default()
    }
}

/// The policy entry (YAML) that reviews `model_manifest` for the demo and the tests.
pub fn reviewed_model_workload() -> String {
    format!(
        "name: simulated-model\nsource: the simulator's own model workload (tools/src/sim/evidence.rs), reviewed by the test configuration only\nos_images: [{}]\nmanifest: {{runner: docker-compose}}\nservices:\n  model:\n    image: {}\n  agent:\n    image: {}\n",
        os_image_hash(),
        super::rekor::pinned(super::rekor::MODEL_IMAGE),
        super::rekor::pinned(super::rekor::AGENT_IMAGE)
    )
}

pub fn workload(model: &str, manifest: Option<&Manifest>) -> Workload {
    workload_of(model, manifest.unwrap_or(&model_manifest()))
}

/// The simulated OS image (dstack measures its hash into RTMR3).
pub const OS_IMAGE: &str = "dstack-simulated-0.5";

pub fn os_image_hash() -> String {
    hex::encode(Sha256::digest(OS_IMAGE.as_bytes()))
}

/// dstack's runtime event type (RTMR3).
const RUNTIME_EVENT: u32 = 0x0800_0001;

/// The workload of `name` running `manifest`: boot events in RTMR0-2, then dstack's runtime
/// events in RTMR3 as the guest extends them (`SHA384(type ‖ ":" ‖ name ‖ ":" ‖ payload)`),
/// measuring the app id, the compose hash, the OS image and the KMS.
pub fn workload_of(name: &str, manifest: &Manifest) -> Workload {
    let app_compose = manifest.text(name);
    let compose_hash = Sha256::digest(app_compose.as_bytes());
    let app_id = &Sha256::digest(format!("app:{name}").as_bytes())[..20];
    let mut rtmr = [[0u8; 48]; 4];
    let mut events = Vec::new();
    let mut extend = |imr: usize, event_type: u32, digest: [u8; 48], name: &str, payload: &[u8]| {
        let mut h = Sha384::new();
        h.update(rtmr[imr]);
        h.update(digest);
        rtmr[imr] = h.finalize().into();
        events.push(
            json!({"imr": imr, "event_type": event_type, "digest": hex::encode(digest),
            "event": name, "event_payload": hex::encode(payload)}),
        );
    };
    for (imr, event) in [
        (0, "firmware"),
        (1, "kernel"),
        (1, "initrd"),
        (2, "cmdline"),
    ] {
        let digest = Sha384::digest(format!("{name}:{event}").as_bytes()).into();
        extend(imr, 1, digest, "", b"");
    }
    let key_provider = br#"{"name":"kms","id":"simulated-kms"}"#;
    let os_image = hex::decode(manifest.os_image_hash.clone().unwrap_or_else(os_image_hash))
        .expect("an OS image hash is hex");
    let runtime: [(&str, &[u8]); 9] = [
        ("system-preparing", b""),
        ("app-id", app_id),
        ("compose-hash", &compose_hash),
        ("instance-id", &app_id[..16]),
        ("boot-mr-done", b""),
        ("mr-kms", &[0x5a; 32]),
        ("os-image-hash", &os_image),
        ("key-provider", key_provider),
        ("system-ready", b""),
    ];
    for (event, payload) in runtime {
        let mut h = Sha384::new();
        h.update(RUNTIME_EVENT.to_le_bytes());
        h.update(b":");
        h.update(event.as_bytes());
        h.update(b":");
        h.update(payload);
        extend(3, RUNTIME_EVENT, h.finalize().into(), event, payload);
    }
    let mut mr_config_id = [0u8; 48];
    mr_config_id[0] = 0x01;
    mr_config_id[1..33].copy_from_slice(&compose_hash);
    Workload {
        events,
        rtmr,
        app_compose,
        mr_config_id,
    }
}

/// The simulated NRAS: answers GPU evidence with ES384-signed EAT tokens and publishes its
/// key as a JWKS, the way NVIDIA's service does.
pub struct Nras {
    key: EcdsaKeyPair,
    kid: String,
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl Nras {
    pub fn new() -> Result<Nras, String> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
            .map_err(|e| e.to_string())?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|e| e.to_string())?;
        Ok(Nras {
            key,
            kid: format!("sim-nras-{:016x}", rand::random::<u64>()),
        })
    }

    pub fn jwks(&self) -> Value {
        use ring::signature::KeyPair as _;
        let point = self.key.public_key().as_ref();
        json!({"keys": [{"kty": "EC", "crv": "P-384", "kid": self.kid, "x": b64url(&point[1..49]), "y": b64url(&point[49..97])}]})
    }

    fn token(&self, claims: &Value) -> String {
        let head = b64url(
            json!({"kid": self.kid, "alg": "ES384"})
                .to_string()
                .as_bytes(),
        );
        let body = b64url(claims.to_string().as_bytes());
        let signed = format!("{head}.{body}");
        let sig = self
            .key
            .sign(&ring::rand::SystemRandom::new(), signed.as_bytes())
            .expect("ECDSA signing");
        format!("{signed}.{}", b64url(sig.as_ref()))
    }

    /// The answer to a submission: each GPU passes when its evidence carries the nonce.
    pub fn attest(&self, request: &Value) -> Value {
        let nonce = request["nonce"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut submods = serde_json::Map::new();
        let mut gpus = serde_json::Map::new();
        let mut all_ok = true;
        for (i, gpu) in request["evidence_list"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let evidence = base64::engine::general_purpose::STANDARD
                .decode(gpu["evidence"].as_str().unwrap_or_default())
                .unwrap_or_default();
            let ok = evidence.len() > 36 && hex::encode(&evidence[4..36]) == nonce;
            all_ok &= ok;
            let token = self.token(
                &json!({"iss": "https://nras.attestation.nvidia.com", "eat_nonce": nonce,
                "x-nvidia-gpu-attestation-report-nonce-match": ok, "nbf": now, "exp": now + 3600}),
            );
            submods.insert(
                format!("GPU-{i}"),
                json!([
                    "DIGEST",
                    ["SHA-256", hex::encode(Sha256::digest(token.as_bytes()))]
                ]),
            );
            gpus.insert(format!("GPU-{i}"), json!(token));
        }
        let overall = self.token(&json!({"sub": "NVIDIA-PLATFORM-ATTESTATION", "iss": "https://nras.attestation.nvidia.com",
            "x-nvidia-overall-att-result": all_ok, "eat_nonce": nonce, "nbf": now, "iat": now, "exp": now + 3600, "submods": submods}));
        json!([["JWT", overall], gpus])
    }
}
