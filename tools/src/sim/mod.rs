//! A faithful simulated Venice: the model list, dstack-layout attestations with synthetic
//! TDX quotes, and E2EE chat that enforces the protocol's rules and answers with per-chunk
//! encrypted SSE. Scriptable (replies, pacing, faults) and recording, for tests, benchmarks
//! and the keyless `demo`.

pub mod aci;
pub mod bench;
pub mod dcap;
pub mod evidence;
mod http;
pub mod quote;
pub mod rekor;
pub mod responder;
pub mod script;
pub mod tls;

pub use script::{
    AciGpu, AnchorFault, AttestationFault, ChatFault, ChatRecord, Pacing, Record, Reply, Script,
};
pub use venice_e2ee_proxy::attestation::variants::drift::{self, Drift};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use venice_e2ee_proxy::e2ee::codec::KeyPair;

/// One model in the simulated catalogue.
#[derive(Debug, Clone)]
pub struct SimModel {
    pub id: &'static str,
    pub kind: &'static str,
    pub e2ee: bool,
    pub tee: bool,
    /// Venice's `model_spec.name`.
    pub name: &'static str,
    pub function_calling: bool,
    pub reasoning: bool,
    /// `reasoningEffortOptions` (empty: no reasoning effort).
    pub efforts: &'static [&'static str],
    pub vision: bool,
    pub context_tokens: u64,
}

impl SimModel {
    /// A model Venice serves over E2EE, with its capabilities as its model list states them.
    const fn e2ee(
        id: &'static str,
        name: &'static str,
        function_calling: bool,
        reasoning: bool,
        efforts: &'static [&'static str],
        vision: bool,
        context_tokens: u64,
    ) -> SimModel {
        SimModel {
            id,
            kind: "text",
            e2ee: true,
            tee: true,
            name,
            function_calling,
            reasoning,
            efforts,
            vision,
            context_tokens,
        }
    }

    const fn other(id: &'static str, kind: &'static str, e2ee: bool, tee: bool) -> SimModel {
        SimModel {
            id,
            kind,
            e2ee,
            tee,
            name: id,
            function_calling: false,
            reasoning: false,
            efforts: &[],
            vision: false,
            context_tokens: 32_000,
        }
    }
}

/// Venice's E2EE models as its model list names them (veniceai/api-docs' snapshot of
/// 2026-08-22: ids, names, capabilities, context), and, unusable through the proxy, a
/// TEE-only model, a plain one and an image model.
pub const MODELS: &[SimModel] = &[
    SimModel::e2ee(
        "e2ee-deepseek-v4-flash",
        "DeepSeek V4 Flash",
        true,
        true,
        &[],
        false,
        1_000_000,
    ),
    SimModel::e2ee("e2ee-glm-5-1", "GLM 5.1", false, true, &[], false, 200_000),
    SimModel::e2ee(
        "e2ee-glm-5-2-p",
        "GLM 5.2",
        true,
        true,
        &["none", "low", "medium", "high"],
        false,
        524_288,
    ),
    SimModel::e2ee(
        "e2ee-gemma-3-27b-p",
        "Gemma 3 27B",
        false,
        false,
        &[],
        false,
        40_000,
    ),
    SimModel::e2ee(
        "e2ee-gemma-4-26b-a4b-uncensored-p",
        "Gemma 4 26B A4B Uncensored",
        false,
        false,
        &[],
        false,
        64_000,
    ),
    SimModel::e2ee(
        "e2ee-gpt-oss-120b-p",
        "GPT OSS 120B",
        false,
        true,
        &["low", "medium", "high"],
        false,
        128_000,
    ),
    SimModel::e2ee(
        "e2ee-gpt-oss-20b-p",
        "GPT OSS 20B",
        false,
        true,
        &["none", "low", "medium", "high"],
        false,
        128_000,
    ),
    SimModel::e2ee(
        "e2ee-qwen-2-5-7b-p",
        "Qwen 2.5 7B",
        false,
        false,
        &[],
        false,
        32_000,
    ),
    SimModel::e2ee(
        "e2ee-qwen3-6-35b-a3b",
        "Qwen 3.6 35B A3B FP8",
        true,
        true,
        &[],
        false,
        32_000,
    ),
    SimModel::e2ee(
        "e2ee-qwen3-6-35b-a3b-uncensored-p",
        "Qwen3.6 35B A3B Uncensored",
        false,
        false,
        &[],
        false,
        128_000,
    ),
    SimModel::e2ee(
        "e2ee-qwen3-vl-30b-a3b-p",
        "Qwen3 VL 30B A3B",
        true,
        false,
        &[],
        true,
        128_000,
    ),
    SimModel::other("tee-deepseek-r1", "text", false, true),
    SimModel::other("venice-uncensored", "text", false, false),
    SimModel::other("e2ee-flux-image", "image", true, true),
];

/// A model's enclave key: it decrypts prompts and, as dstack's legacy signing key, signs
/// the hashes of each answer's receipt (EIP-191).
/// The root files `Simulator::configure` wrote for `config`.
pub fn written_roots(config: &venice_e2ee_proxy::config::Config) -> Vec<std::path::PathBuf> {
    let a = &config.attestation;
    [
        &a.intel_root_ca,
        &a.nvidia_root_ca,
        &a.sigstore_trusted_root,
    ]
    .into_iter()
    .flatten()
    .filter(|p| p.starts_with(std::env::temp_dir()))
    .cloned()
    .collect()
}

pub struct ModelKey {
    pair: KeyPair,
    pub(crate) signer: k256::ecdsa::SigningKey,
}

impl ModelKey {
    fn generate() -> ModelKey {
        loop {
            let secret: [u8; 32] = rand::random();
            if let (Ok(pair), Ok(signer)) = (
                KeyPair::from_bytes(&secret),
                k256::ecdsa::SigningKey::from_slice(&secret),
            ) {
                return ModelKey { pair, signer };
            }
        }
    }
}

impl std::ops::Deref for ModelKey {
    type Target = KeyPair;
    fn deref(&self) -> &KeyPair {
        &self.pair
    }
}

pub struct SimState {
    pub api_key: String,
    gpus: evidence::GpuPki,
    intel: dcap::IntelPki,
    nras: evidence::Nras,
    keys: Mutex<HashMap<&'static str, Arc<ModelKey>>>,
    script: Mutex<Script>,
    record: Mutex<Record>,
    /// `sim --bench`: replayed answers.
    bench: Option<bench::Bench>,
    /// The simulated Sigstore (Rekor and a Fulcio-like CA).
    rekor: rekor::SimRekor,
    /// The ACI gateway: its receipt key, receipts and attested session.
    gateway: aci::Gateway,
    /// The client key of the last chat answered (`ChatFault::AnswerToPreviousClient`).
    last_client_key: Mutex<Option<k256::PublicKey>>,
    /// `host:port` this simulator listens on: the ACI gateway's ingress host.
    own_host: std::sync::OnceLock<String>,
    /// Under `ReceiptFault::Relabelled`: the first answer's (chat id, receipt id), which
    /// every later answer is shown under.
    relabelled_as: Mutex<Option<(String, String)>>,
}

impl SimState {
    fn new(api_key: String, bench: Option<bench::Bench>) -> std::io::Result<Self> {
        let keys = MODELS
            .iter()
            .filter(|m| m.tee)
            .map(|m| (m.id, Arc::new(ModelKey::generate())))
            .collect();
        let intel = dcap::IntelPki::generate().map_err(std::io::Error::other)?;
        let sign = |report_data: &[u8; 64], w: &evidence::Workload| {
            let params = quote::QuoteParams {
                model: "simulated-upstream",
                report_data: *report_data,
                debug: false,
                rtmr: &w.rtmr,
                mr_config_id: &w.mr_config_id,
            };
            intel.quote(&quote::body(&intel.template_body(), &params))
        };
        let gateway = aci::Gateway::new(&|variant| aci::upstream_report(&sign, variant))
            .map_err(std::io::Error::other)?;
        Ok(SimState {
            api_key,
            gpus: evidence::gpu_pki().map_err(std::io::Error::other)?,
            intel,
            nras: evidence::Nras::new().map_err(std::io::Error::other)?,
            keys: Mutex::new(keys),
            script: Mutex::new(Script {
                // A benchmark's requests would only grow the record.
                skip_chat_records: bench.is_some(),
                ..Script::default()
            }),
            record: Mutex::default(),
            bench,
            rekor: rekor::SimRekor::new().map_err(std::io::Error::other)?,
            gateway,
            last_client_key: Mutex::default(),
            own_host: std::sync::OnceLock::new(),
            relabelled_as: Mutex::default(),
        })
    }

    fn model_key(&self, model: &str) -> Option<Arc<ModelKey>> {
        self.keys.lock().expect("poisoned").get(model).cloned()
    }

    /// The ACI gateway's keyset: every E2EE model's key, `replaced` (model, key) swapped in.
    fn gateway_keyset(
        &self,
        replaced: Option<(&str, String)>,
        not_after: Option<u64>,
    ) -> serde_json::Value {
        let keys: Vec<(&str, String)> = {
            let keys = self.keys.lock().expect("poisoned");
            MODELS
                .iter()
                .filter(|m| m.e2ee)
                .filter_map(|m| {
                    let key = match &replaced {
                        Some((model, key)) if *model == m.id => key.clone(),
                        _ => keys.get(m.id)?.public_hex().to_string(),
                    };
                    Some((m.id, key))
                })
                .collect()
        };
        let forms = self.script.lock().expect("poisoned").aci_forms;
        self.gateway.keyset(&keys, not_after, forms)
    }

    /// The one gateway CVM of the ACI layouts, its ingress serving this simulator's host (or
    /// the workload the script serves in its place).
    fn gateway_workload(&self) -> evidence::Workload {
        let host = self.own_host.get().map_or("127.0.0.1", String::as_str);
        let served = self.script.lock().expect("poisoned").workload.clone();
        evidence::workload_of(
            aci::GATEWAY,
            &served.unwrap_or_else(|| aci::Gateway::manifest(host)),
        )
    }
}

/// Handle to a running simulator. Dropping it does not stop the listeners; they live as long
/// as the runtime they were spawned on.
#[derive(Clone)]
pub struct Simulator {
    pub state: Arc<SimState>,
    pub addr: SocketAddr,
    /// HTTPS listener and the PEM of the CA that signed its certificate, when started.
    pub tls: Option<(SocketAddr, String)>,
}

pub struct SimOptions {
    pub api_key: String,
    pub listen: SocketAddr,
    /// Also serve HTTPS (HTTP/2 via ALPN) on an ephemeral loopback port.
    pub tls: bool,
    /// The benchmark upstream: answers of this many tokens, encrypted once per client key and
    /// replayed (see `bench.rs`).
    pub bench_reply_tokens: Option<usize>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            api_key: "sim-key".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: false,
            bench_reply_tokens: None,
        }
    }
}

impl Simulator {
    /// Binds and serves on the current tokio runtime.
    pub async fn start(opts: SimOptions) -> std::io::Result<Simulator> {
        let bench = opts.bench_reply_tokens.map(bench::Bench::new);
        let state = Arc::new(SimState::new(opts.api_key, bench)?);
        let listener = tokio::net::TcpListener::bind(opts.listen).await?;
        let addr = listener.local_addr()?;
        let _ = state.own_host.set(addr.to_string());
        tokio::spawn(http::serve(listener, None, state.clone()));
        let tls = if opts.tls {
            let pki = tls::generate(&["localhost", "127.0.0.1"]).map_err(std::io::Error::other)?;
            let tls_listener =
                tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
            let tls_addr = tls_listener.local_addr()?;
            let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config);
            tokio::spawn(http::serve(tls_listener, Some(acceptor), state.clone()));
            Some((tls_addr, pki.ca_pem))
        } else {
            None
        };
        Ok(Simulator { state, addr, tls })
    }

    pub fn set_rekor_fault(&self, fault: Option<rekor::RekorFault>) {
        self.script(|s| s.rekor_fault = fault);
    }

    /// The simulated NVIDIA root the GPU evidence chains to (PEM).
    pub fn nvidia_root_pem(&self) -> &str {
        &self.state.gpus.root_pem
    }

    /// Points `config` at this simulator and makes it trust the simulator's test PKIs: the
    /// simulated Intel root (with the simulator as PCS) and the simulated NVIDIA root. Only for
    /// the demo and tests; reports and answers say so loudly.
    /// Points `config` at this simulator and trusts its test PKIs, whose roots it writes to
    /// the temporary directory (`written_roots` names them, to remove once read).
    pub fn configure(&self, config: &mut venice_e2ee_proxy::config::Config) -> std::io::Result<()> {
        let write_root = |name: &str, pem: &str| -> std::io::Result<std::path::PathBuf> {
            let path = std::env::temp_dir().join(format!(
                "venice-e2ee-proxy-sim-{name}-root-{}-{}.pem",
                std::process::id(),
                self.addr.port()
            ));
            std::fs::write(&path, pem)?;
            Ok(path)
        };
        config.venice.base_url = self.base_url();
        config.venice.api_key = venice_e2ee_proxy::config::Secret::new(self.state.api_key.clone());
        config.venice.ca_file = None;
        config.attestation.nvidia_root_ca = Some(write_root("nvidia", self.nvidia_root_pem())?);
        config.attestation.intel_root_ca = Some(write_root("intel", &self.state.intel.root_pem)?);
        config.attestation.pcs_url = format!("http://{}/pcs", self.addr);
        config.attestation.root_ca_crl_url = format!("http://{}/pcs/rootcacrl.der", self.addr);
        config.attestation.report_only.clear();
        // The simulated PCS, NRAS and Rekor answer on this listener, over plain http.
        config.attestation.plain_http_for_tests = true;
        let sigstore = std::env::temp_dir().join(format!(
            "venice-e2ee-proxy-sim-sigstore-root-{}-{}.json",
            std::process::id(),
            self.addr.port()
        ));
        std::fs::write(&sigstore, self.state.rekor.trusted_root().to_string())?;
        config.attestation.sigstore_trusted_root = Some(sigstore);
        config.attestation.rekor_url = format!("http://{}/rekor", self.addr);
        for rule in self.state.rekor.policy() {
            if !config.attestation.provenance_policy.contains(&rule) {
                config.attestation.provenance_policy.push(rule);
            }
        }
        // The simulator's own model workload, reviewed for the demo and the tests only.
        let reviewed: venice_e2ee_proxy::config::attestation::ReviewedWorkload =
            serde_yaml::from_str(&evidence::reviewed_model_workload())
                .map_err(std::io::Error::other)?;
        if !config.attestation.extra_workloads.contains(&reviewed) {
            config.attestation.extra_workloads.push(reviewed);
        }
        Ok(())
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/api/v1", self.addr)
    }

    pub fn script(&self, f: impl FnOnce(&mut Script)) {
        f(&mut self.state.script.lock().expect("poisoned"));
    }

    pub fn push_reply(&self, content: &str, reasoning: Option<&str>) {
        self.script(|s| {
            s.replies.push_back(Reply {
                content: content.into(),
                reasoning: reasoning.map(Into::into),
                model: None,
            })
        });
    }

    pub fn set_chat_fault(&self, fault: Option<ChatFault>) {
        self.script(|s| s.chat_fault = fault);
    }

    pub fn set_attestation_fault(&self, fault: Option<AttestationFault>) {
        self.script(|s| s.attestation_fault = fault);
    }

    /// Serves attestations in these drifted framings from now on.
    pub fn set_attestation_drift(&self, drifts: &[Drift]) {
        self.script(|s| s.attestation_drift = drifts.to_vec());
    }

    /// Serves attestations in this layout from now on (ACI layouts also sign receipts).
    pub fn set_attestation_layout(&self, layout: aci::Layout) {
        self.script(|s| s.attestation_layout = layout);
    }

    pub fn set_receipt_fault(&self, fault: Option<aci::ReceiptFault>) {
        self.script(|s| s.receipt_fault = fault);
    }

    /// The KMS root the ACI gateway's key custody chain ends at.
    pub fn kms_root(&self) -> String {
        self.state.gateway.kms_root()
    }

    pub fn set_anchor_fault(&self, fault: Option<script::AnchorFault>) {
        self.script(|s| s.anchor_fault = fault);
    }

    pub fn set_aci_forms(&self, forms: aci::Forms) {
        self.script(|s| s.aci_forms = forms);
    }

    pub fn set_receipt_bodies(&self, bodies: aci::ReceiptBodies) {
        self.script(|s| s.receipt_bodies = bodies);
    }

    pub fn set_keyset_lifetime(&self, lifetime: Option<std::time::Duration>) {
        self.script(|s| s.keyset_lifetime_secs = lifetime.map(|l| l.as_secs()));
    }

    pub fn set_pacing(&self, pacing: Pacing) {
        self.script(|s| s.pacing = pacing);
    }

    /// Gives `model` a new key pair, as a redeployed enclave would. Returns the new public key.
    pub fn rotate_key(&self, model: &str) -> Option<String> {
        let mut keys = self.state.keys.lock().expect("poisoned");
        let (_, slot) = keys.iter_mut().find(|(id, _)| **id == model)?;
        *slot = Arc::new(ModelKey::generate());
        Some(slot.public_hex().to_string())
    }

    pub fn model_public_key(&self, model: &str) -> Option<String> {
        self.state
            .model_key(model)
            .map(|k| k.public_hex().to_string())
    }

    pub fn record(&self) -> Record {
        self.state.record.lock().expect("poisoned").clone()
    }

    pub fn clear_record(&self) {
        *self.state.record.lock().expect("poisoned") = Record::default();
    }
}
