//! One internal configuration, built from `conf/proxy.yaml` plus `VENICE_E2EE_PROXY__*`
//! environment overrides (see `load`).

mod load;
pub mod units;

pub use load::{load, load_from_str, ConfigError, ENV_PREFIX};

pub mod attestation;

/// Why the proxy could not be set up from a loaded configuration.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A setting that names something unusable: a file unreadable, a root that does not
    /// parse, a key not fit for a header.
    #[error("{setting}: {reason}")]
    Setting {
        setting: &'static str,
        reason: String,
    },
    #[error("the HTTP client could not be built: {0}")]
    Http(#[from] reqwest::Error),
}

impl SetupError {
    pub(crate) fn setting(setting: &'static str, reason: impl std::fmt::Display) -> Self {
        SetupError::Setting {
            setting,
            reason: reason.to_string(),
        }
    }
}

/// The prompt and call syntax a model was trained on (`tools.families` names it per model;
/// by default `chat::tool_calls::prompt` reads it from the id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Family {
    Glm,
    Glm47,
    Qwen,
    QwenXml,
    Gemma4,
    DeepseekDsml,
    Hermes,
}

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerSection,
    pub venice: VeniceSection,
    pub attestation: AttestationSection,
    pub keys: KeysSection,
    pub(crate) sessions: SessionsSection,
    pub tools: ToolsSection,
    pub responses: ResponsesSection,
    pub encryption: EncryptionSection,
    pub models: ModelsSection,
    pub logging: LoggingSection,
}

/// How the process logs (levels come from `RUST_LOG`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingSection {
    /// `text` (default) or `json`: one JSON object per line, a request's fields as keys.
    pub format: LogFormat,
}

/// How log lines are written (`logging.format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Whose request it is: the index of the client token it carried in `server.auth_tokens`
/// (0 when no tokens are configured: one client). Client keys, sessions and stored responses
/// are kept apart per tenant.
pub type Tenant = usize;

/// Model names clients may use for E2EE models.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsSection {
    /// Alias → E2EE model, in every dialect (e.g. the Claude names Claude Code asks for). A
    /// trailing `*` matches any name with that prefix; an exact name wins, then the longest
    /// prefix.
    pub aliases: std::collections::BTreeMap<String, String>,
}

impl ModelsSection {
    /// The model an alias stands for, or `None` when `name` is no alias.
    pub(crate) fn resolve(&self, name: &str) -> Option<&str> {
        if let Some(target) = self.aliases.get(name) {
            return Some(target);
        }
        self.aliases
            .iter()
            .filter_map(|(alias, target)| Some((alias.strip_suffix('*')?, target)))
            .filter(|(prefix, _)| name.starts_with(prefix))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, target)| target.as_str())
    }
}

/// How request messages are encrypted (see `sealing.rs` and SECURITY.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionSection {
    /// Send an unchanged message (same model key, client, role and text) as the ciphertext it
    /// was sent as before instead of encrypting it again. Venice's infrastructure outside the
    /// enclave can then tell that a client's requests repeat a message (as an agent's history
    /// does every turn); it learns nothing of its text.
    pub reuse_ciphertexts: bool,
    /// Ciphertext kept for reuse at most (least recently used dropped).
    #[serde(with = "units::size")]
    pub cache_size: u64,
    /// Send the client's stop sequences to Venice (in clear, as its API takes them). Off:
    /// the proxy applies them to the decrypted answer and cancels the rest upstream.
    pub send_stop_sequences: bool,
}

impl Default for EncryptionSection {
    fn default() -> Self {
        EncryptionSection {
            reuse_ciphertexts: true,
            cache_size: 16 << 20,
            send_stop_sequences: false,
        }
    }
}

/// The Responses API's `previous_response_id` store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResponsesSection {
    /// Responses kept for `previous_response_id` (0: off, the default: the store keeps
    /// conversation text in the proxy's memory).
    pub store_size: usize,
    /// How long a stored response can be continued.
    #[serde(with = "units::duration")]
    pub(crate) store_ttl: Duration,
    /// Hosted tools (web search, file search, code interpreter, …) cannot run over E2EE:
    /// `omit` leaves them out and answers (naming them in `x-venice-e2ee-tools-omitted`),
    /// `error` refuses the request with a 400.
    pub hosted_tools: HostedTools,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostedTools {
    Omit,
    Error,
}

impl Default for ResponsesSection {
    fn default() -> Self {
        ResponsesSection {
            store_size: 0,
            store_ttl: Duration::from_secs(3600),
            hosted_tools: HostedTools::Omit,
        }
    }
}

/// Agent sessions: a client key pair per session id (see `agent_sessions.rs`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsSection {
    /// Request header carrying the session id (`metadata.session_id` works too).
    pub header: String,
    /// A session's key is replaced after this long unused…
    #[serde(with = "units::duration")]
    pub idle_ttl: Duration,
    /// …or this long after it was made…
    #[serde(with = "units::duration")]
    pub max_ttl: Duration,
    /// …or after this many requests.
    pub max_requests: u64,
    /// Live sessions held at most (least recently used evicted); 0 turns sessions off.
    pub max_sessions: usize,
}

impl Default for SessionsSection {
    fn default() -> Self {
        SessionsSection {
            header: "X-Venice-Proxy-Session-Id".into(),
            idle_ttl: Duration::from_secs(30 * 60),
            max_ttl: Duration::from_secs(24 * 3600),
            max_requests: 10_000,
            max_sessions: 10_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Address the OpenAI-compatible listener binds.
    #[serde(with = "units::addr")]
    pub listen: SocketAddr,
    /// Largest request body accepted (413 beyond it).
    #[serde(with = "units::size")]
    pub body_limit: u64,
    /// Admin listener: Prometheus `/metrics` and the probes (null: none).
    #[serde(with = "units::opt_addr")]
    pub admin_listen: Option<SocketAddr>,
    /// Chat completions in flight at once; more get 429.
    pub max_concurrent_chats: usize,
    /// What all requests together may hold whole in memory: request bodies while read and
    /// sealed, answers read whole, a tool-call stream's held text, structured outputs. A
    /// request that would go past it gets 503 `memory_budget_exhausted` (see `budget.rs`).
    #[serde(with = "units::size")]
    pub memory_budget: u64,
    /// An idle keep-alive client connection is closed after this long (Pingora keeps them
    /// forever otherwise).
    #[serde(with = "units::duration")]
    pub keepalive_timeout: Duration,
    /// Client connections open at once; one more gets a 503 (`too_many_connections`) and is
    /// closed.
    pub max_connections: usize,
    /// A request's header must be complete this long after the connection opened (first
    /// request) or after its first byte (later ones); else 408 and the connection is closed.
    #[serde(with = "units::duration")]
    pub header_read_timeout: Duration,
    /// Longest wait for the next piece of a request body; a client that stalls gets 408.
    #[serde(with = "units::duration")]
    pub body_read_timeout: Duration,
    /// Bearer tokens clients must present (empty: no client auth). Required whenever
    /// `listen` is not a loopback address. Never printed.
    #[serde(skip_serializing)]
    pub auth_tokens: Vec<Secret>,
    /// A file with one client token per line (e.g. a mounted Kubernetes Secret), added to
    /// `auth_tokens` at start-up.
    pub(crate) auth_tokens_file: Option<PathBuf>,
    /// Host names (the `Host` a request names, port aside) the API answers under, besides the
    /// loopback names and the listen address, which always work. A web page can make the
    /// user's browser send requests under its own name to a loopback port (DNS rebinding):
    /// those are refused. `*` allows any name (behind a proxy that checks it).
    pub allowed_hosts: Vec<String>,
    /// Bearer token for the admin listener's actions (`/admin/…`); only from the environment
    /// (`VENICE_E2EE_PROXY__SERVER__ADMIN_TOKEN`). None: the actions are refused.
    #[serde(skip)]
    pub admin_token: Option<Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VeniceSection {
    pub base_url: String,
    /// Never read from a file: only from `VENICE_API_KEY` or the override variable.
    #[serde(skip_serializing)]
    pub api_key: Secret,
    /// PEM bundle trusted for the upstream instead of the system roots (tests, private PKI).
    pub ca_file: Option<PathBuf>,
    #[serde(with = "units::duration")]
    pub connect_timeout: Duration,
    /// Wait for the upstream's response headers.
    #[serde(with = "units::duration")]
    pub first_byte_timeout: Duration,
    /// Longest silence between two stream chunks.
    #[serde(with = "units::duration")]
    pub idle_timeout: Duration,
    /// Whole-call limit for the model list and attestation fetches.
    #[serde(with = "units::duration")]
    pub request_timeout: Duration,
    /// How long the upstream model list is cached.
    #[serde(with = "units::duration")]
    pub models_ttl: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttestationSection {
    /// A verified attestation older than this is never used.
    #[serde(with = "units::duration")]
    pub max_age: Duration,
    /// Refresh starts this long before `max_age` runs out.
    #[serde(with = "units::duration")]
    pub refresh_lead: Duration,
    /// How a failing attestation endpoint is retried (Venice's answers 502 for a model for
    /// hours at times): a bounded number of fetches, never one per request.
    pub fetch_retry: FetchRetry,
    /// Models attested at start-up; `/readyz` waits for them.
    pub prewarm: Vec<String>,
    /// Accept TDs with the DEBUG attribute (never in production).
    pub allow_debug: bool,
    /// Intel PCS (or a PCCS with the same API) for TCB info, QE identity and the PCK CRL.
    pub pcs_url: String,
    /// Where Intel's root CA CRL is fetched from.
    pub root_ca_crl_url: String,
    /// While PCS is unreachable, cached collateral may be used this long past its
    /// nextUpdate (0: never; an outage then fails closed).
    #[serde(with = "units::duration")]
    pub(crate) collateral_grace: Duration,
    /// TDX TCB statuses accepted.
    pub tcb_statuses: Vec<String>,
    /// Checks that are reported but not enforced (names as in the report). Empty: all
    /// enforced.
    pub report_only: Vec<String>,
    /// PEM files replacing the pinned Intel / NVIDIA roots. Only for test PKIs (the demo's
    /// simulated Venice); reports and response headers say so loudly.
    pub intel_root_ca: Option<PathBuf>,
    pub nvidia_root_ca: Option<PathBuf>,
    /// Allowed workload measurements (hex). An empty list only reports the value.
    pub(crate) allow: attestation::Allowlists,
    /// Also submit GPU evidence to NVIDIA NRAS and verify its token (check `gpu_nras`).
    pub nras: bool,
    pub nras_url: String,
    pub nras_jwks_url: String,
    /// Sigstore's transparency log, for check `sigstore_provenance`.
    pub rekor_url: String,
    /// Log entries examined per image digest at most (newest first, fetched in batches):
    /// anyone can log entries about a digest, so the work they can cause is bounded.
    pub(crate) rekor_max_entries: usize,
    /// A Sigstore trusted root replacing the pinned public-good one. Only for test PKIs (the
    /// demo's simulated Rekor); reports say so loudly.
    pub sigstore_trusted_root: Option<PathBuf>,
    /// Which provenance each image repository needs (longest prefix wins; an image no rule
    /// covers fails the check). Default: the images Venice's enclaves run (see docs/ATTESTATION.md).
    pub provenance_policy: Vec<attestation::Rule>,
    /// The workloads someone reviewed (default: `conf/workloads.yaml`, compiled in): the
    /// only source of trust in what an attested CVM runs, and of which one is a gateway
    /// (check `workload_policy`). Setting it replaces the shipped list.
    pub workloads: Vec<attestation::ReviewedWorkload>,
    /// Reviewed workloads added to `workloads` (an operator's own reviews).
    pub extra_workloads: Vec<attestation::ReviewedWorkload>,
    /// `enforce` (an unreviewed workload is refused) or `report` (served, with the verdict
    /// in the report, a trust warning on every answer and a metric).
    pub workload_policy: attestation::WorkloadPolicyMode,
    /// Names for OS image hashes (`<sha256 hex>: dstack-0.5.9`), shown for the hash RTMR3
    /// measures; a name with `-dev` marks a development image. Unlisted hashes are named as
    /// Venice's `vm_config` claims, and said to be a claim.
    pub(crate) os_images: std::collections::BTreeMap<String, String>,
    /// An image the compose names through a variable the deployer sets (`allowed_envs`):
    /// `refuse` (check `sigstore_provenance` fails) or `report` (its default is checked).
    pub(crate) deployer_named_images: attestation::DeployerNamedImages,
    /// ACI receipts: checked after each answer (`report`), required (`require`) or `off`.
    pub receipts: attestation::ReceiptsSection,
    /// The upstream model names (`model_name`, `upstream_model`) each model's attestation may
    /// state, exactly. A model not listed is compared by its id's family and size tokens.
    pub model_names: std::collections::BTreeMap<String, Vec<String>>,
    /// Where an ACI gateway's own attestation is fetched to anchor the keyset Venice serves
    /// in hardware (`https://host`, tried in order). Empty: the hosts the gateway's measured
    /// ingress serves (`DOMAIN` / `DOMAINS` of its dstack-ingress service).
    pub aci_anchor_origins: Vec<String>,
    /// Test switch: allow plain http for Intel PCS, its CRL host, NVIDIA NRAS and Rekor (the
    /// simulated ones on loopback). Off: their URLs must be https, checked at load. Reported in
    /// every attestation report, answer header and `check-config`.
    pub plain_http_for_tests: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysSection {
    /// The client key pair is replaced this often; streams keep the key they began with.
    #[serde(with = "units::duration")]
    pub client_key_rotation: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolsSection {
    /// Upstream retries, with a correction prompt, after an invalid tool call (or structured
    /// output), streamed or not: the client has seen nothing of what is corrected.
    pub max_retries: u32,
    /// When a call is still invalid after the retries: `pass` (the call as the model wrote
    /// it, as a server without validation answers: the agent's tool layer reports the
    /// mistake), `error` (502 / an error event, `tool_call_invalid`) or `content` (the model's
    /// raw text as content; answers read whole only, streams pass).
    #[serde(alias = "on_invalid")]
    pub invalid_calls: InvalidCalls,
    /// Streams with tools: `hold` streams text as it comes and each call once it is whole and
    /// valid (corrected inside the stream); `buffer` reads the whole answer first, then
    /// streams it (structured outputs are then retried too).
    pub stream_validation: StreamValidation,
    /// Prompt/call format per model id (`qwen_xml`, `qwen`, `glm`, `glm47`, `gemma4`, `deepseek_dsml`, `hermes`), overriding the guess from
    /// the id.
    pub(crate) families: std::collections::HashMap<String, Family>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvalidCalls {
    Pass,
    Error,
    Content,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamValidation {
    /// `error` was the name before calls were held (they then streamed unvalidated).
    #[serde(alias = "error")]
    Hold,
    Buffer,
}

impl Default for ToolsSection {
    fn default() -> Self {
        ToolsSection {
            max_retries: 2,
            invalid_calls: InvalidCalls::Pass,
            stream_validation: StreamValidation::Hold,
            families: Default::default(),
        }
    }
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit: 32 << 20,
            admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9090))),
            max_concurrent_chats: 256,
            memory_budget: 128 << 20,
            keepalive_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            auth_tokens: Vec::new(),
            auth_tokens_file: None,
            allowed_hosts: Vec::new(),
            admin_token: None,
        }
    }
}

impl Default for VeniceSection {
    fn default() -> Self {
        VeniceSection {
            base_url: "https://api.venice.ai/api/v1".into(),
            api_key: Secret::default(),
            ca_file: None,
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
            models_ttl: Duration::from_secs(300),
        }
    }
}

/// Retries of a failing attestation fetch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchRetry {
    /// Retries within one fetch after a 5xx, 429, timeout or connection failure (250 ms
    /// apart, then twice as long each time).
    pub retries: u32,
    /// After a fetch failed, the model is not fetched again for this long; each further
    /// failure doubles it, up to `backoff_max`. Requests meanwhile get the last error at once.
    /// 0: every request may fetch.
    #[serde(with = "units::duration")]
    pub backoff: Duration,
    #[serde(with = "units::duration")]
    pub backoff_max: Duration,
}

impl Default for FetchRetry {
    fn default() -> Self {
        FetchRetry {
            retries: 2,
            backoff: Duration::from_secs(1),
            backoff_max: Duration::from_secs(120),
        }
    }
}

impl AttestationSection {
    /// Every root replaced and check relaxed, one sentence each (empty: the pinned roots,
    /// every check enforced): logged at start-up, in `check-config`, in every report, on the
    /// status page and in the trust-warning header.
    pub(crate) fn relaxations(&self) -> Vec<String> {
        let mut out = Vec::new();
        let replaced = [
            (
                &self.intel_root_ca,
                "Intel root",
                "simulated root, not Intel's",
            ),
            (
                &self.nvidia_root_ca,
                "NVIDIA root",
                "simulated root, not NVIDIA's",
            ),
            (
                &self.sigstore_trusted_root,
                "Sigstore trusted root",
                "simulated Rekor and Fulcio, not Sigstore's",
            ),
        ];
        for (path, what, whose) in replaced {
            if let Some(p) = path {
                out.push(format!("{what} replaced by {} ({whose})", p.display()));
            }
        }
        for check in &self.report_only {
            out.push(format!("{check} is reported but not enforced"));
        }
        if self.allow_debug {
            out.push(
                "attestation.allow_debug: TDs in DEBUG mode (readable by the host) are accepted"
                    .into(),
            );
        }
        if self.workload_policy == attestation::WorkloadPolicyMode::Report {
            out.push(
                "attestation.workload_policy: report: workloads nobody reviewed are served".into(),
            );
        }
        if self.plain_http_for_tests {
            out.push(
                "Intel PCS, NVIDIA NRAS and Rekor may be reached over plain http (attestation.plain_http_for_tests)".into(),
            );
        }
        out
    }
}

impl Default for AttestationSection {
    fn default() -> Self {
        AttestationSection {
            max_age: Duration::from_secs(600),
            refresh_lead: Duration::from_secs(120),
            fetch_retry: FetchRetry::default(),
            prewarm: Vec::new(),
            allow_debug: false,
            pcs_url: "https://api.trustedservices.intel.com".into(),
            root_ca_crl_url: "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
                .into(),
            collateral_grace: Duration::ZERO,
            tcb_statuses: vec!["UpToDate".into(), "SWHardeningNeeded".into()],
            report_only: Vec::new(),
            intel_root_ca: None,
            nvidia_root_ca: None,
            allow: attestation::Allowlists::default(),
            nras: false,
            nras_url: "https://nras.attestation.nvidia.com/v3/attest/gpu".into(),
            nras_jwks_url: "https://nras.attestation.nvidia.com/.well-known/jwks.json".into(),
            rekor_url: "https://rekor.sigstore.dev".into(),
            rekor_max_entries: attestation::DEFAULT_MAX_ENTRIES,
            sigstore_trusted_root: None,
            provenance_policy: attestation::default_policy(),
            workloads: attestation::default_workloads(),
            extra_workloads: Vec::new(),
            workload_policy: Default::default(),
            os_images: attestation::known_os_images(),
            deployer_named_images: Default::default(),
            receipts: Default::default(),
            model_names: Default::default(),
            aci_anchor_origins: Vec::new(),
            plain_http_for_tests: false,
        }
    }
}

impl Default for KeysSection {
    fn default() -> Self {
        KeysSection {
            client_key_rotation: Duration::from_secs(3600),
        }
    }
}

/// A string that never shows up in debug output or logs.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<unset>"
        } else {
            "<redacted>"
        })
    }
}

/// The parts of the upstream base URL the proxy needs on the hot path, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Path prefix without a trailing slash, e.g. `/api/v1`.
    pub(crate) path: String,
}

impl UpstreamUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!("`{url}` must start with https:// or http://"));
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
                h.trim_matches(|c| c == '[' || c == ']'),
                p.parse().map_err(|_| format!("bad port in `{url}`"))?,
            ),
            _ => (authority, if tls { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(format!("no host in `{url}`"));
        }
        Ok(UpstreamUrl {
            tls,
            host: host.to_string(),
            port,
            path: path.trim_end_matches('/').to_string(),
        })
    }

    pub(crate) fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// `Host` header value.
    pub(crate) fn authority(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl ServerSection {
    /// Every host name the API answers under: the loopback names, the listen address (when
    /// it is one), and `allowed_hosts`.
    pub(crate) fn host_names(&self) -> Vec<String> {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
        if !self.listen.ip().is_unspecified() {
            names.push(self.listen.ip().to_string());
        }
        for h in &self.allowed_hosts {
            names.push(h.trim().trim_end_matches('.').to_ascii_lowercase());
        }
        names
    }
}

/// A configuration error naming its field.
fn invalid(field: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message,
    }
}

impl Config {
    /// The configuration as YAML without its secrets (`check-config`), and whether the API
    /// key is set.
    pub fn describe(&self) -> Result<String, String> {
        let yaml = serde_yaml::to_string(self).map_err(|e| e.to_string())?;
        let key = if self.venice.api_key.is_empty() {
            "NOT SET: serve refuses to start (set VENICE_API_KEY)"
        } else {
            "set (hidden)"
        };
        let admin = match (&self.server.admin_token, self.server.admin_listen) {
            (Some(_), _) => "set (hidden): admin actions on, the status page asks for it",
            (None, Some(_)) => {
                "not set: admin actions off, the status page open to the admin listener"
            }
            (None, None) => "not set (no admin listener)",
        };
        let mut warnings: String = self
            .attestation
            .relaxations()
            .iter()
            .map(|r| format!("# WARNING: trust relaxed: {r}\n"))
            .collect();
        if warnings.is_empty() {
            warnings =
                "# trust: the pinned Intel, NVIDIA and Sigstore roots, every check enforced\n"
                    .into();
        }
        Ok(format!(
            "{yaml}# venice.api_key: {key}\n# server.admin_token: {admin}\n{warnings}"
        ))
    }

    /// Checks that cannot be expressed in the types. Messages name the field.
    pub fn validate(&self) -> Result<UpstreamUrl, ConfigError> {
        let bad = invalid;
        let url =
            UpstreamUrl::parse(&self.venice.base_url).map_err(|m| bad("venice.base_url", m))?;
        if !url.tls && !url.is_loopback() {
            return Err(bad(
                "venice.base_url",
                "plain http is only allowed for a loopback upstream (the simulator)".into(),
            ));
        }
        self.validate_server()?;
        self.validate_durations()?;
        self.validate_attestation()?;
        if let Some(path) = &self.venice.ca_file {
            if !path.is_file() {
                return Err(bad(
                    "venice.ca_file",
                    format!("{} is not a file", path.display()),
                ));
            }
        }
        Ok(url)
    }

    /// The listeners, their limits, host names, aliases and the session header.
    fn validate_server(&self) -> Result<(), ConfigError> {
        let bad = invalid;
        if !self.server.listen.ip().is_loopback()
            && self.server.auth_tokens.is_empty()
            && self.server.auth_tokens_file.is_none()
        {
            return Err(bad(
                "server.auth_tokens",
                format!(
                    "listening on {} (not loopback) requires client tokens",
                    self.server.listen
                ),
            ));
        }
        if let Some(h) =
            self.server.allowed_hosts.iter().find(|h| {
                h.trim().is_empty() || h.contains(['/', ' ']) || h.matches(':').count() == 1
            })
        {
            return Err(bad(
                "server.allowed_hosts",
                format!("`{h}` is not a host name (no scheme, port or path)"),
            ));
        }
        if let Some((alias, target)) = self
            .models
            .aliases
            .iter()
            .find(|(a, t)| a.trim().is_empty() || t.trim().is_empty() || t.contains('*'))
        {
            return Err(bad(
                "models.aliases",
                format!("`{alias}: {target}`: an alias and its model must be names (a `*` only ends an alias)"),
            ));
        }
        if http::HeaderName::from_bytes(self.sessions.header.as_bytes()).is_err() {
            return Err(bad(
                "sessions.header",
                format!("`{}` is not a header name", self.sessions.header),
            ));
        }
        if self.server.max_connections == 0 {
            return Err(bad("server.max_connections", "must be above 0".into()));
        }
        if self.server.max_concurrent_chats == 0 {
            return Err(bad("server.max_concurrent_chats", "must be above 0".into()));
        }
        if self.server.body_limit == 0 {
            return Err(bad("server.body_limit", "must be above 0".into()));
        }
        if self.server.memory_budget < self.server.body_limit {
            return Err(bad(
                "server.memory_budget",
                format!(
                    "{} bytes cannot hold one request of server.body_limit ({} bytes)",
                    self.server.memory_budget, self.server.body_limit
                ),
            ));
        }
        Ok(())
    }

    /// Lifetimes and timeouts: none zero, the refresh lead inside max_age.
    fn validate_durations(&self) -> Result<(), ConfigError> {
        let bad = invalid;
        if self.attestation.max_age.is_zero() {
            return Err(bad("attestation.max_age", "must be above 0".into()));
        }
        if self.attestation.refresh_lead >= self.attestation.max_age {
            let secs = |d: Duration| format!("{}s", d.as_secs_f64());
            return Err(bad(
                "attestation.max_age",
                format!(
                    "{} is not longer than attestation.refresh_lead ({}), which refreshes start that long before max_age: raise max_age (a bare number is seconds: write 10m) or lower refresh_lead",
                    secs(self.attestation.max_age),
                    secs(self.attestation.refresh_lead)
                ),
            ));
        }
        if self.keys.client_key_rotation < Duration::from_secs(1) {
            return Err(bad(
                "keys.client_key_rotation",
                "must be at least 1s".into(),
            ));
        }
        for (field, d) in [
            ("venice.connect_timeout", self.venice.connect_timeout),
            ("venice.first_byte_timeout", self.venice.first_byte_timeout),
            ("venice.idle_timeout", self.venice.idle_timeout),
            ("venice.request_timeout", self.venice.request_timeout),
        ] {
            if d.is_zero() {
                return Err(bad(field, "must be above 0".into()));
            }
        }
        Ok(())
    }

    /// Attestation: the checks that may be relaxed, https for every service, signed rules
    /// with keys, at least one reviewed workload.
    fn validate_attestation(&self) -> Result<(), ConfigError> {
        let bad = invalid;
        for check in &self.attestation.report_only {
            if !attestation::CHECK_NAMES.contains(&check.as_str()) || check == "envelope" {
                return Err(bad(
                    "attestation.report_only",
                    format!(
                        "`{check}` is not a check that can be relaxed; these can: {}",
                        attestation::CHECK_NAMES
                            .iter()
                            .filter(|c| **c != "envelope")
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        let a = &self.attestation;
        for (field, url) in [
            ("attestation.pcs_url", &a.pcs_url),
            ("attestation.root_ca_crl_url", &a.root_ca_crl_url),
            ("attestation.nras_url", &a.nras_url),
            ("attestation.nras_jwks_url", &a.nras_jwks_url),
            ("attestation.rekor_url", &a.rekor_url),
        ]
        .into_iter()
        .chain(
            a.aci_anchor_origins
                .iter()
                .map(|o| ("attestation.aci_anchor_origins", o)),
        ) {
            let plain_allowed = a.plain_http_for_tests && url.starts_with("http://");
            if !url.starts_with("https://") && !plain_allowed {
                return Err(bad(
                    field,
                    format!("`{url}` must be an https URL (plain http only with attestation.plain_http_for_tests)"),
                ));
            }
        }
        if let Some(r) = a
            .provenance_policy
            .iter()
            .find(|r| r.rule == attestation::RuleKind::Signed && r.keys.is_empty())
        {
            return Err(bad(
                "attestation.provenance_policy",
                format!(
                    "the `signed` rule for {} names no signer keys (keys: [sha256:…])",
                    r.repository
                ),
            ));
        }
        if a.workloads.is_empty()
            && a.extra_workloads.is_empty()
            && a.workload_policy == attestation::WorkloadPolicyMode::Enforce
        {
            return Err(bad(
                "attestation.workloads",
                "no reviewed workload is left, so every attestation would be refused (leave `workloads` out to keep the shipped ones)".into(),
            ));
        }
        Ok(())
    }
}
