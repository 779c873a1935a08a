//! The attestation section's own types: allowlists, the image provenance policy, the
//! gateway's source policy, receipts, known OS images and the checks an operator may name.
//! The verifier reads them; the configuration owns them, so it depends on nothing it
//! configures.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Measurements the workload must match (`attestation.allowlists`; empty: any, reported).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Allowlists {
    pub(crate) mrtd: Vec<String>,
    pub(crate) mrseam: Vec<String>,
    pub(crate) rtmr0: Vec<String>,
    pub(crate) rtmr1: Vec<String>,
    pub(crate) rtmr2: Vec<String>,
    pub(crate) compose_hash: Vec<String>,
    /// The OS image hash RTMR3 measures (an operator can require production images).
    pub(crate) os_image_hash: Vec<String>,
}

pub(crate) const CHECK_NAMES: [&str; 16] = [
    "envelope",
    "model_identity",
    "aci_keyset",
    "aci_report_data",
    "tdx_quote_signature",
    "tdx_tcb_status",
    "rtmr_replay",
    "mr_config_id",
    "workload_policy",
    "workload_allowlist",
    "gpu_cert_chain",
    "gpu_spdm_signature",
    "gpu_nonce",
    "gpu_nras",
    "sigstore_provenance",
    "source_provenance",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// A log entry signed by a Fulcio certificate whose identity matches is required.
    Fulcio,
    /// A verified log entry signed by one of the rule's `keys` is required.
    Signed,
    /// No log entry required: the digest pinned in the attested compose is the guarantee.
    ComposePinned,
    /// The image may be named by tag alone (reported as such); pinned, as `compose_pinned`.
    /// The compose fixes the tag, not the content it resolves to.
    TagOnly,
}

impl RuleKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            RuleKind::Fulcio => "fulcio",
            RuleKind::Signed => "signed",
            RuleKind::ComposePinned => "compose_pinned",
            RuleKind::TagOnly => "tag_only",
        }
    }
}

/// What to do with an image the compose names through a variable the deployer sets
/// (`allowed_envs`): it is the deployer's choice, not a measurement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployerNamedImages {
    /// `sigstore_provenance` fails.
    #[default]
    Refuse,
    /// Its default is checked, and the report says the deployer may run another.
    Report,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// An image repository prefix (`nearaidev/`, `datadog/agent`), Docker Hub names without
    /// `docker.io/` or `library/`.
    pub repository: String,
    pub rule: RuleKind,
    /// `fulcio`: the OIDC issuer the certificate must name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `fulcio`: the certificate subject (a workflow URI) must start with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_prefix: Option<String>,
    /// `signed`: the signer keys that count, by fingerprint (`sha256:` + hex of the SHA-256
    /// of the key's SubjectPublicKeyInfo DER).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
}

/// The policy for the images Venice's enclaves run, and why. The dstack-layout enclaves
/// (2026-04-24 capture):
/// - `nearaidev/`: NEAR AI builds its own images (compose-manager) in GitHub Actions of the
///   `nearai` organisation and signs them keyless: require exactly that identity.
/// - `datadog/agent`: Datadog signs its agent images with its own key (no Fulcio identity):
///   require a verified log entry signed by that key (the one the capture's entry names).
/// - `certbot/`: certbot's images are not signed in Rekor at all; the digest the attested
///   compose pins is the whole guarantee (it cannot change without changing MRCONFIGID).
///
/// The ACI gateway (Phala's private-ai-gateway under dstack): its images are not known to be
/// signed in Rekor, so the pinned digest is the guarantee (`dstacktee/dstack-ingress`,
/// `ghcr.io/redpill-ai/`, `prom/node-exporter`); `dstacktee/dstack-verifier` is named by tag
/// only (`:latest`) and serves NEAR AI's verification path, not the ACI path that sees the
/// prompt, so it is allowed and reported as unpinned. The gateway itself is not an image: its
/// launcher builds a pinned commit at boot (check `source_provenance`).
pub fn default_policy() -> Vec<Rule> {
    let rule = |repository: &str, rule, issuer: Option<&str>, subject_prefix: Option<&str>| Rule {
        repository: repository.into(),
        rule,
        issuer: issuer.map(Into::into),
        subject_prefix: subject_prefix.map(Into::into),
        keys: Vec::new(),
    };
    vec![
        rule(
            "nearaidev/",
            RuleKind::Fulcio,
            Some("https://token.actions.githubusercontent.com"),
            Some("https://github.com/nearai/"),
        ),
        Rule {
            keys: vec![DATADOG_AGENT_KEY.into()],
            ..rule("datadog/agent", RuleKind::Signed, None, None)
        },
        rule("certbot/", RuleKind::ComposePinned, None, None),
        rule(
            "dstacktee/dstack-ingress",
            RuleKind::ComposePinned,
            None,
            None,
        ),
        rule("dstacktee/dstack-verifier", RuleKind::TagOnly, None, None),
        rule("ghcr.io/redpill-ai/", RuleKind::ComposePinned, None, None),
        rule("prom/node-exporter", RuleKind::ComposePinned, None, None),
    ]
}

/// The key Datadog signs its agent images with (the 2026-04-24 capture's Rekor entry).
const DATADOG_AGENT_KEY: &str =
    "sha256:25bcab4ec8eede1e3091a14692126798c23986832ae6e5948d6f7eb0a928ab0b";

/// What `attestation.workload_policy` does with a workload no reviewed workload accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadPolicyMode {
    /// Check `workload_policy` fails: nothing is sent to it.
    #[default]
    Enforce,
    /// Served anyway, with the verdict in the report, a trust warning on every answer and the
    /// metric `venice_e2ee_proxy_unreviewed_workloads_total`: availability chosen over review.
    Report,
}

/// A workload someone reviewed: the only source of trust in what an attested CVM runs. A
/// measured compose is accepted when it is one of `compose_hashes`, or when it runs exactly
/// these services with exactly these security-relevant parts (see docs/ATTESTATION.md,
/// "Workload policy"); ordinary settings (log sizes, labels, restart policy, environment
/// values no reviewed image reads as code) may change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewedWorkload {
    /// A name for reports and logs.
    pub name: String,
    /// Where it was reviewed from (a capture, a published compose, an audit), and what the
    /// review leaves open.
    pub source: String,
    /// Whole app composes accepted as they are (sha256 hex of the manifest MRCONFIGID binds).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compose_hashes: Vec<String>,
    /// OS images accepted, by the hash RTMR3 measures (empty: any, reported).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub os_images: Vec<String>,
    /// `pre_launch_script`s accepted, by the sha256 of their text (empty: none may run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_launch_scripts: Vec<String>,
    /// Variables the deployer may set (the compose's `allowed_envs` must be among them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_envs: Vec<String>,
    /// Variables outside `allowed_envs` that a reviewed service of this workload sets when it
    /// runs docker compose again (variable → that service). Any other such variable in a
    /// security-relevant value refuses the workload.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub runtime_vars: BTreeMap<String, String>,
    /// The reviewed service that is the routing gateway, and the source it builds or runs. A
    /// workload without one is no gateway: it must prove its GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<ReviewedGateway>,
    /// The manifest's security-relevant settings (`runner`, the key provider, `secure_time`,
    /// `public_logs`, …), exactly.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub manifest: BTreeMap<String, serde_json::Value>,
    /// The services, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub services: BTreeMap<String, ReviewedService>,
    /// The compose file's top-level `volumes`, `configs`, `secrets` and `networks`, exactly.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub definitions: BTreeMap<String, serde_yaml::Value>,
}

/// One reviewed service: its image and every security-relevant key as written in the compose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewedService {
    /// The image as written (`repo@sha256:…`, `repo:tag`, an interpolation), or any digest of
    /// a repository (`repo@sha256:*`, `repo:tag@sha256:*`): its publisher is then trusted and
    /// the provenance rule for the repository decides.
    pub image: String,
    /// Environment variables the reviewed image reads as code or as where its code comes from
    /// (a launcher's repository and commit), with their values as written. Variables any
    /// runtime reads as code (`LD_PRELOAD`, `PYTHONPATH`, …) may be set only as listed here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub code_env: BTreeMap<String, String>,
    /// Every other key that is not ordinary (`entrypoint`, `command`, `volumes`, `configs`,
    /// `privileged`, `cap_add`, `devices`, `network_mode`, `pid`, `ipc`, `env_file`,
    /// `build`, …), exactly as written; a key left out must be absent.
    #[serde(flatten)]
    pub fields: BTreeMap<String, serde_yaml::Value>,
}

/// The routing gateway of a reviewed workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewedGateway {
    /// The service that builds or runs it (no `entrypoint` override).
    pub service: String,
    /// Its source repository (`https://host/owner/name`) and the reviewed commit, both named
    /// in that service's reviewed settings.
    pub repository: String,
    pub commit: String,
}

/// The workloads reviewed for this release (`conf/workloads.yaml`, compiled in), each with
/// where it was reviewed from.
pub fn default_workloads() -> Vec<ReviewedWorkload> {
    serde_yaml::from_str(SHIPPED_WORKLOADS).expect("conf/workloads.yaml is a list of workloads")
}

pub(crate) const SHIPPED_WORKLOADS: &str = include_str!("../../conf/workloads.yaml");

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptMode {
    /// Receipts are not fetched.
    Off,
    /// Fetched, verified and reported; nothing is refused (Venice does not let a client
    /// require verified serving).
    #[default]
    Report,
    /// As `report`, and a receipt that is missing, fails, is not anchored in the quote, or
    /// says the upstream was not verified refuses the model until it is attested anew.
    Require,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiptsSection {
    pub mode: ReceiptMode,
    /// Where a receipt is fetched, under `venice.base_url`; `{model}` and `{id}` (the
    /// `x-receipt-id` header, else the answer's id) are filled in.
    pub(crate) path: String,
    /// Where an attested session is fetched, under `venice.base_url`; `{id}` is its id.
    pub(crate) session_path: String,
}

impl Default for ReceiptsSection {
    fn default() -> Self {
        ReceiptsSection {
            mode: ReceiptMode::Report,
            path: "/tee/signature?model={model}&request_id={id}".into(),
            session_path: "/aci/sessions/{id}".into(),
        }
    }
}

/// dstack OS images whose hash is known to name them: each published image's
/// `os_image_hash` is the SHA-256 of its file list, which pins its `metadata.json` (version,
/// `is_dev`). From the hashes private-ai-gateway's verifier seeds (Phala's fleet, 2026).
pub(crate) fn known_os_images() -> std::collections::BTreeMap<String, String> {
    [
        (
            "806a352e16175d90568de97dff563f31f680239e6b90e9b5b2e9141d0955b0d9",
            "dstack-0.5.9",
        ),
        (
            "0e09f2bcb510c682b461d16b97192c710886db582852991e05146291063f890b",
            "dstack-dev-0.5.9",
        ),
        (
            "021bf66a7c9fd4a05031b8fa688834948874631c2ad5b9a2d566b4421b817271",
            "dstack-dev-0.5.5",
        ),
    ]
    .into_iter()
    .map(|(h, n)| (h.to_string(), n.to_string()))
    .collect()
}

/// `attestation.rekor_max_entries` by default.
pub(crate) const DEFAULT_MAX_ENTRIES: usize = 16;
