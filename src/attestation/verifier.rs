//! The full verifier as the server runs it: pinned (or configured test) trust roots, Intel
//! collateral from PCS, the TCB and enforcement policy.

use super::envelope::{AttestationError, Policy, VerifiedKey};
use super::evidence::dcap::{self, TcbVerdict};
use super::evidence::nras::Nras;
use super::evidence::nvidia;
use super::evidence::pcs::Pcs;
use super::evidence::report::{self, Report, Trust};
use super::evidence::review::{self, ReviewedWorkload};
use super::evidence::trust_roots::{self, Roots};
use super::evidence::EvidenceError;
use super::provenance::trusted_root::TrustedRoot;
use super::provenance::{Provenance, Rekor};
use super::quote;
use super::unix_now as now;
use crate::config::{Config, SetupError};
use crate::venice::client::{UpstreamError, VeniceClient};
use serde_json::Value;

pub struct EvidenceVerifier {
    roots: Roots,
    pcs: Pcs,
    tcb_statuses: Vec<String>,
    report_only: Vec<String>,
    policy: Policy,
    trust_overrides: Vec<String>,
    allow: crate::attestation::evidence::report::Allowlists,
    nras: Option<Nras>,
    provenance: Provenance,
    rekor: Rekor,
    /// The reviewed workloads: configured, then accepted by an operator at runtime.
    workloads: arc_swap::ArcSwap<Vec<ReviewedWorkload>>,
    workload_mode: crate::config::attestation::WorkloadPolicyMode,
    os_images: std::collections::BTreeMap<String, String>,
    model_names: std::collections::BTreeMap<String, Vec<String>>,
}

/// The HTTP client for the services a verifier consults besides Venice (Intel PCS and its
/// CRL host, NVIDIA NRAS, Sigstore Rekor): it carries no credential of any kind, so the
/// Venice key can never reach them, and it refuses plain http unless the configuration's
/// test switch allows it (checked at load too, see `Config::validate`).
pub(crate) fn third_party_http(config: &Config) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(config.venice.connect_timeout)
        .timeout(config.venice.request_timeout)
        .https_only(!config.attestation.plain_http_for_tests)
        .user_agent(concat!("venice-e2ee-proxy/", env!("CARGO_PKG_VERSION")))
        .build()
}

impl EvidenceVerifier {
    pub fn from_config(config: &Config) -> Result<Self, SetupError> {
        let cfg = &config.attestation;
        let http = third_party_http(config)?;
        let mut roots =
            trust_roots::pinned().map_err(|e| SetupError::setting("the pinned trust roots", e))?;
        if let Some(path) = &cfg.intel_root_ca {
            let setting = |e| SetupError::setting("attestation.intel_root_ca", e);
            let pem = std::fs::read_to_string(path).map_err(|e| setting(e.to_string()))?;
            roots.intel_der = crate::attestation::framing::pem_to_der(&pem).map_err(setting)?;
        }
        if let Some(path) = &cfg.nvidia_root_ca {
            let setting = |e: String| SetupError::setting("attestation.nvidia_root_ca", e);
            let pem = std::fs::read_to_string(path).map_err(|e| setting(e.to_string()))?;
            roots.nvidia =
                super::evidence::nvidia::parse_root(&pem).map_err(|e| setting(e.to_string()))?;
        }
        let sigstore_root = match &cfg.sigstore_trusted_root {
            Some(path) => {
                let setting =
                    |e: String| SetupError::setting("attestation.sigstore_trusted_root", e);
                let text = std::fs::read_to_string(path).map_err(|e| setting(e.to_string()))?;
                TrustedRoot::parse(&text).map_err(|e| setting(e.to_string()))?
            }
            None => TrustedRoot::public_good()
                .map_err(|e| SetupError::setting("the pinned Sigstore trusted root", e))?,
        };
        let workloads: Vec<ReviewedWorkload> = cfg
            .workloads
            .iter()
            .chain(&cfg.extra_workloads)
            .cloned()
            .collect();
        review::validate(&workloads)
            .map_err(|e| SetupError::setting("attestation.workloads / extra_workloads", e))?;
        Ok(EvidenceVerifier {
            roots,
            pcs: Pcs::new(
                http.clone(),
                &cfg.pcs_url,
                &cfg.root_ca_crl_url,
                cfg.collateral_grace,
            ),
            tcb_statuses: cfg.tcb_statuses.clone(),
            report_only: cfg.report_only.clone(),
            policy: Policy {
                allow_debug: cfg.allow_debug,
            },
            trust_overrides: cfg.relaxations(),
            allow: cfg.allow.clone(),
            nras: cfg
                .nras
                .then(|| Nras::new(http.clone(), &cfg.nras_url, &cfg.nras_jwks_url)),
            provenance: Provenance::new(sigstore_root, cfg.provenance_policy.clone())
                .with_max_entries(cfg.rekor_max_entries)
                .with_deployer_named_images(cfg.deployer_named_images),
            rekor: Rekor::new(http, &cfg.rekor_url),
            workloads: arc_swap::ArcSwap::from_pointee(workloads),
            workload_mode: cfg.workload_policy,
            os_images: cfg.os_images.clone(),
            model_names: cfg.model_names.clone(),
        })
    }

    /// Verifies an attestation response: the envelope, then (with Intel collateral fetched
    /// for the quote) every hardware-evidence check. Fails with the first enforced check
    /// that did not pass.
    pub async fn verify(
        &self,
        raw: &Value,
        model: &str,
        nonce: &[u8; 32],
    ) -> (Report, Result<VerifiedKey, AttestationError>) {
        let quote = raw
            .get("intel_quote")
            .or_else(|| raw.pointer("/attestation/evidence/quote"))
            .and_then(Value::as_str)
            .and_then(|q| quote::decode_quote_text(q).ok());
        let (fetched, collateral_error) = match &quote {
            Some(q) => match self.pcs.collateral(q).await {
                Ok(f) => (Some(f), None),
                Err(e) => (None, Some(e.to_string())),
            },
            None => (None, None),
        };
        let nras = match (
            &self.nras,
            raw.get("nvidia_payload").map(nvidia::parse_payload),
        ) {
            (None, _) => None,
            (Some(n), Some(Ok(payload))) => Some(n.attest(&payload, nonce).await),
            (Some(_), _) => Some(Err("no GPU evidence to submit to NRAS".into())),
        };
        let workloads = self.workloads.load_full();
        let trust = Trust {
            intel_root_der: &self.roots.intel_der,
            nvidia_root: &self.roots.nvidia,
            collateral: fetched.as_ref().map(|f| f.collateral.as_ref()),
            dcap_at: fetched.as_ref().and_then(|f| f.stale_verify_at),
            tcb_statuses: &self.tcb_statuses,
            policy: self.policy,
            now: now(),
            report_only: &self.report_only,
            collateral_error,
            trust_overrides: self.trust_overrides.clone(),
            allow: &self.allow,
            nras,
            workloads: &workloads,
            workload_mode: self.workload_mode,
            os_images: &self.os_images,
            model_names: &self.model_names,
        };
        let (mut report, envelope) = report::verify_all(raw, model, nonce, &trust);
        report::add_provenance(
            &mut report,
            &self.provenance,
            &self.rekor,
            &self.report_only,
        )
        .await;
        let outcome = match (envelope, report.failure()) {
            (Err(e), _) => Err(e),
            (Ok(_), Some(e)) => Err(e),
            (Ok(k), None) => Ok(k),
        };
        (report, outcome)
    }
}
impl EvidenceVerifier {
    /// Adds a workload an operator accepted (`POST /admin/workloads/accept`): used by every
    /// verification from now on, until the proxy restarts.
    pub(crate) fn accept_workload(&self, w: ReviewedWorkload) {
        self.workloads.rcu(|list| {
            let mut list = Vec::clone(list);
            list.retain(|x| x.name != w.name);
            list.push(w.clone());
            list
        });
    }

    /// What relaxes trust here (test roots, report-only checks, switches), said everywhere.
    pub(crate) fn trust_overrides(&self) -> &[String] {
        &self.trust_overrides
    }

    /// The reviewed workloads in use (configured and accepted).
    pub(crate) fn workloads(&self) -> std::sync::Arc<Vec<ReviewedWorkload>> {
        self.workloads.load_full()
    }

    /// Intel DCAP for a quote that is not Venice's answer (an ACI gateway's own report, an
    /// upstream's): signature, QE report and PCK chain to the pinned Intel root, CRLs, the
    /// DEBUG policy, then the TCB status policy. `attestation.report_only` applies here as to
    /// Venice's quote: a relaxed check is reported in the verdict's status, not enforced.
    pub(crate) async fn verify_quote(&self, raw_quote: &[u8]) -> Result<TcbVerdict, EvidenceError> {
        let relaxed = |check: &str| self.report_only.iter().any(|c| c == check);
        let verdict = self.dcap(raw_quote).await;
        let verdict = match verdict {
            Err(e) if relaxed("tdx_quote_signature") => {
                return Ok(TcbVerdict {
                    status: format!("not verified ({e}; tdx_quote_signature is report-only)"),
                    advisory_ids: Vec::new(),
                })
            }
            other => other?,
        };
        if !self.tcb_statuses.contains(&verdict.status) {
            if relaxed("tdx_tcb_status") {
                return Ok(TcbVerdict {
                    status: format!(
                        "{} (not accepted; tdx_tcb_status is report-only)",
                        verdict.status
                    ),
                    ..verdict
                });
            }
            return Err(EvidenceError::Invalid(format!(
                "TCB status {} is not accepted",
                verdict.status
            )));
        }
        Ok(verdict)
    }

    async fn dcap(&self, raw_quote: &[u8]) -> Result<TcbVerdict, EvidenceError> {
        let fetched = self.pcs.collateral(raw_quote).await.map_err(|e| match e {
            EvidenceError::Unavailable(m) => {
                EvidenceError::Unavailable(format!("Intel collateral: {m}"))
            }
            EvidenceError::Invalid(m) => EvidenceError::Invalid(format!("Intel collateral: {m}")),
        })?;
        let at = fetched.stale_verify_at.unwrap_or_else(now);
        dcap::verify(
            raw_quote,
            &fetched.collateral,
            &self.roots.intel_der,
            at,
            self.policy.allow_debug,
        )
    }
}

/// Why a live model could not be verified once (`verify --model`): the proxy could not be
/// set up, or Venice did not serve an attestation.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("Venice served no attestation: {0}")]
    Fetch(#[from] UpstreamError),
}

/// One verification of a live model with a fresh nonce, as the server does it (`verify
/// --model`).
pub async fn verify_live(config: &Config, model: &str) -> Result<Report, LiveError> {
    config.validate().map_err(SetupError::from)?;
    let client = VeniceClient::new(config)?;
    let verifier = EvidenceVerifier::from_config(config)?;
    let nonce: [u8; 32] = rand::random();
    let raw = client.attestation(model, &nonce).await?;
    Ok(verifier.verify(&raw, model, &nonce).await.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `attestation.report_only` reaches every quote the proxy checks, not only Venice's: the
    /// anchor's and the upstream's quotes go through `verify_quote`. Here PCS is unreachable,
    /// so DCAP cannot verify the capture's quote.
    #[tokio::test]
    async fn report_only_applies_to_every_quote() {
        let quote =
            hex::decode(crate::attestation::aci::anchor::tests::quote_with([0; 64])).unwrap();
        let verifier = |report_only: &[&str]| {
            let mut c = Config::default();
            c.attestation.plain_http_for_tests = true;
            c.attestation.pcs_url = "http://127.0.0.1:9".into();
            c.attestation.root_ca_crl_url = "http://127.0.0.1:9/crl".into();
            c.attestation.report_only = report_only.iter().map(|s| s.to_string()).collect();
            EvidenceVerifier::from_config(&c).unwrap()
        };
        assert!(verifier(&[]).verify_quote(&quote).await.is_err());
        let relaxed = verifier(&["tdx_quote_signature"])
            .verify_quote(&quote)
            .await
            .unwrap();
        assert!(relaxed.status.contains("report-only"), "{}", relaxed.status);
    }
}
