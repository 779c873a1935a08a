//! The full verification of one attestation and its report: every check with pass, fail or
//! skipped, whether it is enforced, and why; the measurements; the workload; the TCB status.

use super::compose::AppCompose;
use super::dcap::{self, Collateral, TcbVerdict};
use super::nvidia::{self, GpuCheck};
use super::review::{self, ReviewStatus, ReviewedWorkload, WorkloadReview};
use super::source::{self, GatewaySource, SourceClaim};
use super::workload::{self, Workload};
use crate::attestation::aci::{self, Binding, Keyset};
use crate::attestation::envelope::{self, AttestationError, Check, Policy, VerifiedKey};
use crate::attestation::provenance::policy::DeployerNamedImages;
use crate::attestation::provenance::{ImageResult, Provenance, Source};
use crate::attestation::quote;
#[cfg(test)]
pub(crate) use crate::config::attestation::CHECK_NAMES;
pub use crate::config::attestation::{Allowlists, WorkloadPolicyMode};
use crate::venice::Attestation;
use serde::Serialize;
use serde_json::Value;
use x509_cert::Certificate;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Pass,
    Fail,
    Skipped,
    /// The check has nothing to examine, as a signed or measured fact shows (the compose
    /// MRCONFIGID binds runs the gateway, which holds no GPU; the quote's REPORTDATA binds the
    /// key directly, so no keyset is needed); its detail names that fact. Never a failure;
    /// the format pin still notices a check that passed before and no longer applies.
    #[serde(rename = "not_applicable")]
    NotApplicable,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct CheckResult {
    pub(crate) name: &'static str,
    pub(crate) status: Status,
    pub(crate) enforced: bool,
    pub(crate) detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Measurements {
    pub(crate) mr_td: String,
    pub(crate) mr_seam: String,
    pub(crate) mr_config_id: String,
    pub(crate) rtmr: [String; 4],
    pub(crate) report_data: String,
    pub(crate) td_attributes: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub(crate) model: String,
    /// Every enforced check passed.
    pub verified: bool,
    pub(crate) layout: Option<&'static str>,
    pub(crate) signing_address: Option<String>,
    pub(crate) nonce: String,
    /// The time (Unix seconds; RFC 3339 in JSON) the evidence was verified at.
    #[serde(serialize_with = "crate::logging::rfc3339_field")]
    pub(crate) verified_at: u64,
    /// Until when (Unix seconds) the Intel collateral used is valid.
    #[serde(serialize_with = "crate::logging::rfc3339_opt_field")]
    pub(crate) collateral_valid_until: Option<u64>,
    pub(crate) tcb: Option<TcbVerdict>,
    pub(crate) measurements: Option<Measurements>,
    pub(crate) workload: Option<Workload>,
    /// The workload policy's verdict on the compose MRCONFIGID binds.
    pub(crate) review: Option<WorkloadReview>,
    /// The gateway the reviewed workload runs: the attested CVM is a routing gateway.
    pub(crate) gateway: Option<GatewaySource>,
    pub(crate) gpus: usize,
    /// Whose GPU evidence was verified: `attested_cvm` (the machine the quote covers),
    /// `relayed` (a gateway's upstream's, bound to our nonce but not to this CVM), or `none`.
    pub(crate) gpu_evidence: &'static str,
    /// Trust anchors that are not the pinned production roots (test PKIs), said loudly.
    pub(crate) trust_overrides: Vec<String>,
    pub(crate) checks: Vec<CheckResult>,
    /// Per image the compose pins: digest, rule, entries checked, identity, outcome.
    pub(crate) provenance: Vec<ImageResult>,
    /// The ACI view, for an `aci/1` attestation or one carrying a keyset.
    pub(crate) aci: Option<AciSummary>,
    /// Evidence Venice served that this proxy does not verify, named so nobody reads it as
    /// checked (NEAR's `compose_manager_attestation`, `ohttp_key_config`).
    pub(crate) not_verified: Vec<String>,
}

/// What an ACI attestation says about who serves, as reported.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AciSummary {
    pub(crate) tee_type: Option<String>,
    pub(crate) vendor: Option<String>,
    /// What the quote binds; with `address` the keyset is not anchored in hardware.
    pub(crate) binding: Option<Binding>,
    pub(crate) keyset: Option<Keyset>,
    /// The keyset entry holding the key the proxy encrypts to.
    pub(crate) e2ee_key_id: Option<String>,
    /// `service_capabilities.serving` as Venice claims it (`direct`, `aggregator`).
    pub(crate) serving: Option<String>,
    /// Venice's `vm_config`, as claimed (unsigned: it decides nothing).
    pub(crate) vm_config: Option<Value>,
    pub(crate) source: Option<SourceClaim>,
    /// In plain words: which machine is attested and what that leaves open.
    pub(crate) attested: String,
}

impl Report {
    /// The first enforced check that did not pass, as the error a request fails with.
    pub(crate) fn failure(&self) -> Option<AttestationError> {
        let c = self
            .checks
            .iter()
            .find(|c| c.enforced && !matches!(c.status, Status::Pass | Status::NotApplicable))?;
        let check = Check::from_report_name(c.name).unwrap_or(Check::Quote);
        let state = if c.status == Status::Skipped {
            "could not be checked"
        } else {
            "failed"
        };
        Some(AttestationError::new(
            check,
            format!("{} {state}: {}", c.name, c.detail),
        ))
    }
}

/// What the verifier trusts and enforces.
pub struct Trust<'a> {
    pub intel_root_der: &'a [u8],
    pub nvidia_root: &'a Certificate,
    /// Intel collateral for the quote; `None` skips (and so fails, when enforced) DCAP.
    pub collateral: Option<&'a Collateral>,
    /// TCB statuses accepted (default: UpToDate, SWHardeningNeeded).
    pub tcb_statuses: &'a [String],
    pub policy: Policy,
    /// The time to verify at, Unix seconds.
    pub now: u64,
    /// Allowed workload measurements; empty lists allow anything.
    pub allow: &'a Allowlists,
    /// NRAS's answer and JWKS when NRAS is used (`None`: not used).
    pub nras: Option<Result<(Value, Value), super::EvidenceError>>,
    /// Checks reported but not enforced.
    pub report_only: &'a [String],
    /// Why an Intel collateral was not available, when it was not.
    pub collateral_error: Option<String>,
    /// Verify DCAP as of this time instead of `now` (stale collateral within its grace).
    pub dcap_at: Option<u64>,
    pub trust_overrides: Vec<String>,
    /// The reviewed workloads: the only source of trust in what runs (and of which
    /// workload is a gateway).
    pub workloads: &'a [ReviewedWorkload],
    /// Whether an unreviewed workload is refused or served with a warning.
    pub workload_mode: WorkloadPolicyMode,
    /// Names of OS image hashes (`attestation.os_images`).
    pub os_images: &'a std::collections::BTreeMap<String, String>,
    /// The upstream model names each model may state (`attestation.model_names`).
    pub model_names: &'a std::collections::BTreeMap<String, Vec<String>>,
}

pub const DEFAULT_TCB_STATUSES: [&str; 2] = ["UpToDate", "SWHardeningNeeded"];

struct Checks<'a> {
    list: Vec<CheckResult>,
    report_only: &'a [String],
}

impl Checks<'_> {
    fn push(&mut self, name: &'static str, status: Status, detail: String) {
        let enforced = !self.report_only.iter().any(|r| r == name);
        self.list.push(CheckResult {
            name,
            status,
            enforced,
            detail,
        });
    }

    fn record(&mut self, name: &'static str, result: Result<String, String>) {
        match result {
            Ok(d) => self.push(name, Status::Pass, d),
            Err(d) => self.push(name, Status::Fail, d),
        }
    }

    /// Marks the check just recorded as reported only (`attestation.workload_policy: report`).
    fn report_only_if(&mut self, relaxed: bool) {
        if relaxed {
            if let Some(last) = self.list.last_mut() {
                last.enforced = false;
            }
        }
    }

    fn skip(&mut self, name: &'static str, why: &str) {
        self.push(name, Status::Skipped, why.into());
    }

    fn not_applicable(&mut self, name: &'static str, why: &str) {
        self.push(name, Status::NotApplicable, why.into());
    }

    /// The report is verified when every enforced check passed.
    fn conclude(self, report: &mut Report) {
        report.verified = self
            .list
            .iter()
            .filter(|c| c.enforced)
            .all(|c| matches!(c.status, Status::Pass | Status::NotApplicable));
        report.checks = self.list;
    }
}

fn hex48(b: &[u8; 48]) -> String {
    hex::encode(b)
}

/// Runs every check on `raw` (an attestation response) for `model` and our `nonce`. Returns
/// the report and the envelope's outcome (the verified key, when the envelope holds).
pub fn verify_all(
    raw: &Value,
    model: &str,
    nonce: &[u8; 32],
    trust: &Trust<'_>,
) -> (Report, Result<VerifiedKey, AttestationError>) {
    let mut checks = Checks {
        list: Vec::new(),
        report_only: trust.report_only,
    };
    let (att, envelope) = read_envelope(raw, model, nonce, trust);
    let mut report = new_report(raw, model, nonce, trust);
    record_envelope(&envelope, &mut checks);
    record_model_identity(model, raw, trust, &mut checks);
    let key = envelope.as_ref().ok();
    let raw_quote = att
        .quote_text()
        .and_then(|q| quote::decode_quote_text(q).ok());
    let parsed = raw_quote.as_deref().and_then(|q| quote::parse(q).ok());
    if let Some(k) = key {
        report.layout = Some(k.layout);
        report.signing_address = Some(k.address_hex());
    }
    report.measurements = parsed.as_ref().map(measurements);
    keyset_checks(
        &att,
        raw,
        key,
        parsed.as_ref(),
        trust,
        &mut checks,
        &mut report,
    );
    dcap_checks(raw_quote.as_deref(), trust, &mut checks, &mut report);
    let bound = workload_checks(raw, parsed.as_ref(), trust, &mut checks, &mut report);
    // What runs, from the bound compose only, as far as someone reviewed it.
    review_workload(&mut report, bound, trust, &mut checks);
    source_checks(&att, &mut checks, &mut report);
    if let Some(m) = &report.measurements {
        checks.record(
            "workload_allowlist",
            allowlisted(trust.allow, m, report.workload.as_ref()),
        );
    }
    gpu_checks(raw, nonce, trust, &mut checks, &mut report);
    checks.conclude(&mut report);
    (report, envelope)
}

/// The envelope read and its own checks (`envelope::verify`); a report format this proxy
/// does not read (Chutes') or a field of the wrong type is `attestation_malformed`.
fn read_envelope(
    raw: &Value,
    model: &str,
    nonce: &[u8; 32],
    trust: &Trust<'_>,
) -> (Attestation, Result<VerifiedKey, AttestationError>) {
    let foreign = raw
        .get("attestation_type")
        .and_then(Value::as_str)
        .filter(|t| t.eq_ignore_ascii_case("chutes"));
    if let Some(kind) = foreign {
        return (
            Attestation::default(),
            Err(AttestationError::new(
                Check::Malformed,
                format!(
                    "a {kind} attestation (its own report format, served for models Venice routes through Chutes): this proxy does not verify it, so nothing is sent"
                ),
            )),
        );
    }
    match serde_path_to_error::deserialize::<_, Attestation>(raw) {
        Ok(att) => {
            let envelope = envelope::verify(&att, model, nonce, trust.policy);
            (att, envelope)
        }
        Err(e) => (
            Attestation::default(),
            Err(AttestationError::new(
                Check::Malformed,
                format!("attestation field `{}`: {}", e.path(), e.inner()),
            )),
        ),
    }
}

/// A report with nothing verified yet.
fn new_report(raw: &Value, model: &str, nonce: &[u8; 32], trust: &Trust<'_>) -> Report {
    Report {
        model: model.to_string(),
        verified: false,
        layout: None,
        signing_address: None,
        nonce: hex::encode(nonce),
        verified_at: trust.now,
        collateral_valid_until: trust.collateral.and_then(Collateral::valid_until),
        tcb: None,
        measurements: None,
        workload: None,
        review: None,
        gateway: None,
        gpus: 0,
        gpu_evidence: "none",
        trust_overrides: trust.trust_overrides.clone(),
        checks: Vec::new(),
        provenance: Vec::new(),
        aci: None,
        not_verified: ["compose_manager_attestation", "ohttp_key_config"]
            .into_iter()
            .filter(|k| raw.get(*k).is_some_and(|v| !v.is_null()))
            .map(|k| format!("`{k}` is served but not verified by this proxy"))
            .collect(),
    }
}

/// Check `envelope`, naming the REPORTDATA binding it verified.
fn record_envelope(envelope: &Result<VerifiedKey, AttestationError>, checks: &mut Checks<'_>) {
    match envelope {
        Ok(k) => {
            let binding = match &k.binding {
                Binding::Address => "REPORTDATA = address ‖ 0 ‖ nonce".to_string(),
                Binding::Statement {
                    keyset_digest,
                    workload_id,
                } => format!(
                    "REPORTDATA = sha256(ACI statement over keyset {keyset_digest}{} and this nonce), the key listed in that keyset",
                    workload_id
                        .as_deref()
                        .map(|w| format!(", workload {w} (the drafts' form)"))
                        .unwrap_or_default()
                ),
            };
            checks.record(
                "envelope",
                Ok(format!("verified flag, nonce and model echoes, signing key and address, TDX quote shape and DEBUG bit, {binding}")),
            )
        }
        Err(e) => checks.record(
            "envelope",
            Err(format!("{}: {}", e.check.code(), e.message)),
        ),
    }
}

/// Check `model_identity`: the model names Venice states, against the id asked for.
fn record_model_identity(model: &str, raw: &Value, trust: &Trust<'_>, checks: &mut Checks<'_>) {
    use crate::attestation::model_identity::{self, Verdict};
    match model_identity::check(model, raw, trust.model_names.get(model).map(Vec::as_slice)) {
        Verdict::Pass(d) => checks.record("model_identity", Ok(d)),
        Verdict::Fail(d) => checks.record("model_identity", Err(d)),
        Verdict::NotApplicable(d) => checks.not_applicable("model_identity", &d),
    }
}

/// The quote's measurements, as hex.
fn measurements(r: &quote::TdReport) -> Measurements {
    Measurements {
        mr_td: hex48(&r.mr_td),
        mr_seam: hex48(&r.mr_seam),
        mr_config_id: hex48(&r.mr_config_id),
        rtmr: [
            hex48(&r.rtmr[0]),
            hex48(&r.rtmr[1]),
            hex48(&r.rtmr[2]),
            hex48(&r.rtmr[3]),
        ],
        report_data: hex::encode(r.report_data),
        td_attributes: format!("{:016x}", r.td_attributes),
    }
}

/// Checks `aci_keyset` and `aci_report_data`: run for an `aci/1` attestation or one serving
/// a keyset; not applicable when REPORTDATA binds the key's address directly.
fn keyset_checks(
    att: &Attestation,
    raw: &Value,
    key: Option<&VerifiedKey>,
    parsed: Option<&quote::TdReport>,
    trust: &Trust<'_>,
    checks: &mut Checks<'_>,
    report: &mut Report,
) {
    if att.layout() == aci::API_VERSION || att.keyset().is_some() {
        report.aci = Some(aci_checks(att, raw, key, parsed, trust.now, checks));
    } else if key.is_some_and(|k| k.binding == Binding::Address) {
        checks.not_applicable(
            "aci_keyset",
            "the quote's REPORTDATA binds the signing key's address and our nonce directly: no keyset is needed",
        );
        checks.not_applicable(
            "aci_report_data",
            "nothing restated: REPORTDATA is read from the signed quote itself",
        );
    } else {
        checks.skip("aci_keyset", "the envelope did not verify");
        checks.skip("aci_report_data", "the envelope did not verify");
    }
}

/// Checks `tdx_quote_signature` and `tdx_tcb_status`: Intel DCAP (signature, chain, CRLs),
/// then the TCB status policy.
fn dcap_checks(
    raw_quote: Option<&[u8]>,
    trust: &Trust<'_>,
    checks: &mut Checks<'_>,
    report: &mut Report,
) {
    match (raw_quote, trust.collateral) {
        (Some(q), Some(c)) => match dcap::verify(
            q,
            c,
            trust.intel_root_der,
            trust.now,
            trust.policy.allow_debug,
        ) {
            Ok(verdict) => {
                let stale = trust
                    .dcap_at
                    .map(|t| {
                        format!(" (collateral expired, used within its grace period as of {t})")
                    })
                    .unwrap_or_default();
                checks.record(
                    "tdx_quote_signature",
                    Ok(format!("quote, QE report and PCK chain verify to the trusted Intel SGX root; CRLs checked{stale}")),
                );
                let accepted = trust.tcb_statuses.iter().any(|s| s == &verdict.status);
                let detail = format!(
                    "{} (advisories: {})",
                    verdict.status,
                    verdict.advisory_ids.join(", ")
                );
                checks.record(
                    "tdx_tcb_status",
                    if accepted {
                        Ok(detail)
                    } else {
                        Err(format!("{detail} is not accepted"))
                    },
                );
                report.tcb = Some(verdict);
            }
            Err(e) => {
                checks.record("tdx_quote_signature", Err(e.to_string()));
                checks.skip("tdx_tcb_status", "no verified quote");
            }
        },
        (None, _) => {
            checks.record("tdx_quote_signature", Err("no decodable quote".into()));
            checks.skip("tdx_tcb_status", "no verified quote");
        }
        (Some(_), None) => {
            let why = format!(
                "no Intel collateral available{}",
                trust
                    .collateral_error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
            checks.skip("tdx_quote_signature", &why);
            checks.skip("tdx_tcb_status", &why);
        }
    }
}

/// Checks `rtmr_replay` and `mr_config_id`: the event log replays to RTMR0-3 and its RTMR3
/// events measure the identity; the compose MRCONFIGID binds says what runs. Without them
/// nothing measured says what runs, whatever the layout. Whether the compose is bound.
fn workload_checks(
    raw: &Value,
    parsed: Option<&quote::TdReport>,
    trust: &Trust<'_>,
    checks: &mut Checks<'_>,
    report: &mut Report,
) -> bool {
    let Some(q) = parsed else {
        checks.skip("rtmr_replay", "no quote");
        checks.skip("mr_config_id", "no quote");
        return false;
    };
    let replayed = match workload::find_event_log(raw) {
        Some(Ok(events)) => match workload::check_rtmrs(q, &events) {
            Ok(()) => {
                let measured = workload::runtime_events(&events);
                checks.record(
                    "rtmr_replay",
                    Ok(format!(
                        "{} events replay to RTMR0-3; {} RTMR3 events carry their content",
                        events.len(),
                        measured.len()
                    )),
                );
                Some(measured)
            }
            Err(e) => {
                checks.record("rtmr_replay", Err(e.to_string()));
                None
            }
        },
        Some(Err(e)) => {
            checks.record("rtmr_replay", Err(e.to_string()));
            None
        }
        None => {
            checks.record("rtmr_replay", Err("no event log".into()));
            None
        }
    };
    match workload::find_compose(raw, q) {
        Some(Ok((compose, mut w))) => {
            let verdict = workload::check_mr_config_id(q, &compose)
                .and_then(|()| replayed.as_ref().map_or(Ok(()), |m| w.measure(m)))
                .map_err(|e| e.to_string());
            let bound = verdict.is_ok();
            let agrees = if replayed
                .as_ref()
                .is_some_and(|m| m.contains_key("compose-hash"))
            {
                "; RTMR3's compose-hash event agrees"
            } else {
                ""
            };
            checks.record(
                "mr_config_id",
                verdict.map(|()| format!("binds compose {}{agrees}", w.compose_hash)),
            );
            w.name_os_image(trust.os_images, vm_config(raw).as_ref());
            report.workload = Some(w);
            bound
        }
        Some(Err(e)) => {
            checks.record("mr_config_id", Err(e.to_string()));
            false
        }
        None => {
            checks.record("mr_config_id", Err("no app compose".into()));
            false
        }
    }
}

/// Check `source_provenance`: Venice's unsigned source claim against the reviewed gateway.
fn source_checks(att: &Attestation, checks: &mut Checks<'_>, report: &mut Report) {
    let claim = att
        .attestation
        .as_ref()
        .and_then(|a| a.source_provenance.as_ref());
    let (verdict, reported) = source::check(claim, report.review.as_ref(), report.gateway.as_ref());
    match verdict {
        source::Verdict::Pass(d) => checks.record("source_provenance", Ok(d)),
        source::Verdict::Fail(d) => checks.record("source_provenance", Err(d)),
        // Nothing reviewed says what runs: as enforced as the workload policy that says so.
        source::Verdict::Skipped(d) => {
            checks.skip("source_provenance", &d);
            let policy = checks.list.iter().find(|c| c.name == "workload_policy");
            let enforced = policy.is_none_or(|c| c.enforced);
            checks.list.last_mut().expect("just pushed").enforced &= enforced;
        }
        source::Verdict::NotApplicable(d) => checks.not_applicable("source_provenance", &d),
    }
    if let Some(summary) = report.aci.as_mut() {
        summary.source = reported;
        if report.gateway.is_some() {
            summary.attested = GATEWAY_ATTESTED.into();
        }
    }
}

/// The GPU checks: a workload that is not the gateway must prove its GPUs. The gateway
/// holds none; GPU evidence it serves is its upstream's, relayed: verified and reported as
/// such.
fn gpu_checks(
    raw: &Value,
    nonce: &[u8; 32],
    trust: &Trust<'_>,
    checks: &mut Checks<'_>,
    report: &mut Report,
) {
    let payload = raw.get("nvidia_payload").map(nvidia::parse_payload);
    let placeholder = match &payload {
        None => true,
        Some(Ok(p)) => p.evidence_list.is_empty(),
        Some(Err(_)) => false,
    };
    if let (Some(g), true) = (&report.gateway, placeholder) {
        let why = format!(
            "the compose MRCONFIGID binds is reviewed workload `{}`, whose service `{}` runs the gateway ({}@{}): the attested CVM routes and holds no GPU, and no relayed GPU evidence was served",
            g.workload, g.service, g.repository, g.commit
        );
        for name in GPU_CHECKS {
            checks.not_applicable(name, &why);
        }
        return;
    }
    let relayed = report.gateway.is_some();
    verify_gpus(payload, nonce, trust, relayed, checks, report);
    match &trust.nras {
        None => checks.list.push(CheckResult {
            name: "gpu_nras",
            status: Status::Skipped,
            enforced: false,
            detail: "NRAS not used (attestation.nras)".into(),
        }),
        Some(Err(e)) => checks.record("gpu_nras", Err(e.to_string())),
        Some(Ok((answer, jwks))) => checks.record(
            "gpu_nras",
            super::nras::verify_eat(answer, jwks, nonce, trust.now)
                .map(|d| relayed_note(relayed, d))
                .map_err(|e| e.to_string()),
        ),
    }
}

/// Check `workload_policy`: the compose MRCONFIGID binds (`bound`), on the OS image RTMR3
/// measures, against the reviewed workloads; the gateway, if the one it matches names one.
fn review_workload(report: &mut Report, bound: bool, trust: &Trust<'_>, checks: &mut Checks<'_>) {
    let Some(w) = report.workload.as_ref().filter(|_| bound) else {
        checks.skip(
            "workload_policy",
            "no compose is bound by MRCONFIGID, so nothing measured says what runs",
        );
        return checks.report_only_if(trust.workload_mode == WorkloadPolicyMode::Report);
    };
    let Some(compose) = &w.compose else {
        checks.record(
            "workload_policy",
            Err(format!(
                "the bound compose cannot be read: {}",
                w.compose_error.as_deref().unwrap_or("-")
            )),
        );
        return checks.report_only_if(trust.workload_mode == WorkloadPolicyMode::Report);
    };
    let os_image = w
        .os_image_hash
        .as_ref()
        .filter(|h| h.from == workload::FROM_RTMR3)
        .map(|h| h.value.as_str());
    let verdict = review::review(compose, &w.compose_hash, os_image, trust.workloads);
    let detail = match verdict.status {
        ReviewStatus::Reviewed => Ok(format!(
            "reviewed workload `{}` ({}){}",
            verdict.workload.as_deref().unwrap_or_default(),
            verdict.reviewed_from.as_deref().unwrap_or_default(),
            if verdict.unmeasured.is_empty() {
                String::new()
            } else {
                format!(
                    "; not fixed by the measurement: {}",
                    verdict.unmeasured.join("; ")
                )
            }
        )),
        ReviewStatus::Refused => Err(format!(
            "refused whatever the policy says: {}",
            verdict.refusals.join("; ")
        )),
        ReviewStatus::Unreviewed => Err(format!(
            "not a reviewed workload (digest {}); closest `{}` differs: {}",
            verdict.digest,
            verdict.closest.as_deref().unwrap_or("-"),
            if verdict.differences.is_empty() {
                "-".to_string()
            } else {
                verdict.differences.join("; ")
            }
        )),
    };
    checks.record("workload_policy", detail);
    checks.report_only_if(trust.workload_mode == WorkloadPolicyMode::Report);
    if verdict.status == ReviewStatus::Refused {
        // Not readable with certainty: no policy, no relaxation lifts that.
        checks.list.last_mut().expect("just recorded").enforced = true;
    }
    if verdict.status != ReviewStatus::Reviewed && trust.workload_mode == WorkloadPolicyMode::Report
    {
        report.trust_overrides.push(format!(
            "workload {} is not reviewed (attestation.workload_policy: report)",
            verdict.digest
        ));
    }
    report.gateway = verdict.gateway.as_ref().map(|g| GatewaySource {
        workload: verdict.workload.clone().unwrap_or_default(),
        service: g.service.clone(),
        repository: g.repository.clone(),
        commit: g.commit.clone(),
        image_digest: compose
            .service(&g.service)
            .and_then(|s| s.image.as_ref())
            .and_then(|i| crate::attestation::provenance::policy::parse_image(&i.value).digest),
    });
    report.review = Some(verdict);
}

/// The ACI checks (`aci_keyset`, `aci_report_data`) and the summary for the report.
fn aci_checks(
    att: &Attestation,
    raw: &Value,
    key: Option<&VerifiedKey>,
    quote: Option<&quote::TdReport>,
    now: u64,
    checks: &mut Checks<'_>,
) -> AciSummary {
    let binding = key.map(|k| k.binding.clone());
    let anchored = matches!(binding, Some(Binding::Statement { .. }));
    let parsed = att.keyset().map(Keyset::parse);
    match &parsed {
        None if anchored => {
            checks.record("aci_keyset", Err("the bound keyset is not served".into()))
        }
        None => checks.not_applicable(
            "aci_keyset",
            "no workload keyset served; the quote binds the key directly",
        ),
        Some(Err(e)) => checks.record("aci_keyset", Err(e.to_string())),
        Some(Ok(ks)) => {
            let verdict = match att
                .restated_digests()
                .into_iter()
                .find(|d| !d.trim().eq_ignore_ascii_case(&ks.digest))
            {
                Some(d) => Err(format!(
                    "the restated digest {d} is not the keyset's recomputed {}",
                    ks.digest
                )),
                None => ks
                    .check(now)
                    .map(|d| {
                        if anchored {
                            format!("{d}; bound by the quote's statement")
                        } else {
                            format!("{d}; not bound by this quote (REPORTDATA binds the address), so receipts under it are not anchored in hardware")
                        }
                    })
                    .map_err(|e| e.to_string()),
            };
            checks.record("aci_keyset", verdict);
        }
    }
    let restated = att.restated_report_data();
    match (quote, restated.is_empty()) {
        (_, true) => checks.not_applicable("aci_report_data", "no report_data restated"),
        (Some(q), false) => checks.record(
            "aci_report_data",
            aci::check_restated(&q.report_data, &restated).map_err(|e| e.to_string()),
        ),
        (None, false) => checks.skip("aci_report_data", "no quote"),
    }
    let nested = att.attestation.as_ref();
    let serving = att
        .service_capabilities
        .as_ref()
        .or_else(|| raw.pointer("/attestation/service_capabilities"))
        .and_then(|c| c.get("serving"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let keyset = parsed.and_then(Result::ok);
    let e2ee_key_id = match (&keyset, key) {
        (Some(ks), Some(k)) => ks.e2ee_entry_for(&k.key).map(|e| e.key_id.clone()),
        _ => None,
    };
    AciSummary {
        tee_type: nested.and_then(|a| a.tee_type.clone()),
        vendor: nested.and_then(|a| a.vendor.clone()),
        binding,
        keyset,
        e2ee_key_id,
        serving,
        vm_config: vm_config(raw),
        source: None,
        // Until the measured compose shows the gateway (see `verify_all`).
        attested: "The attested CVM serves the model itself: the compose MRCONFIGID binds runs no gateway source.".into(),
    }
}

const GATEWAY_ATTESTED: &str = "The attested CVM is a routing gateway (its measured compose runs the gateway's source): it decrypts the prompt and forwards it over TLS to an upstream it chooses per request, which sees the plaintext. The upstream is not covered by this quote; receipts report which one served and whether the gateway verified it.";

const GPU_CHECKS: [&str; 4] = [
    "gpu_cert_chain",
    "gpu_spdm_signature",
    "gpu_nonce",
    "gpu_nras",
];

/// Venice's `vm_config` (ACI evidence, or dstack's `info`), as it claims it.
fn vm_config(raw: &Value) -> Option<Value> {
    let framing = crate::attestation::framing::nested;
    let v = raw
        .pointer("/attestation/evidence/vm_config")
        .cloned()
        .or_else(|| {
            let info = framing(raw.get("info")?, "info").ok()?;
            info.get("vm_config").cloned()
        })?;
    framing(&v, "vm_config").ok().map(|v| v.into_owned())
}

fn relayed_note(relayed: bool, detail: String) -> String {
    if relayed {
        format!(
            "relayed from the gateway's upstream (bound to our nonce, not to this CVM): {detail}"
        )
    } else {
        detail
    }
}

/// Adds check `sigstore_provenance` to a report: the images of the compose MRCONFIGID binds
/// (only a bound compose names what runs), looked up through `source`.
pub async fn add_provenance(
    report: &mut Report,
    provenance: &Provenance,
    source: &dyn Source,
    report_only: &[String],
) {
    let mut checks = Checks {
        list: std::mem::take(&mut report.checks),
        report_only,
    };
    let bound = checks
        .list
        .iter()
        .any(|c| c.name == "mr_config_id" && c.status == Status::Pass);
    match report.workload.as_ref().filter(|_| bound) {
        Some(w) => match &w.compose {
            None => checks.record(
                "sigstore_provenance",
                Err(format!(
                    "the bound compose cannot be read: {}",
                    w.compose_error.as_deref().unwrap_or("-")
                )),
            ),
            Some(c) => {
                let plan = images_to_check(c, provenance.deployer_named_images);
                let (verdict, images) = provenance.check(&plan.images, source).await;
                checks.record("sigstore_provenance", plan.conclude(verdict));
                report.provenance = images;
            }
        },
        None => checks.skip(
            "sigstore_provenance",
            "the compose is not bound by MRCONFIGID",
        ),
    }
    checks.conclude(report);
}

/// What `sigstore_provenance` looks up of a compose, and what it refuses or reports without
/// a lookup.
pub(super) struct ImagePlan {
    pub(super) images: Vec<String>,
    /// What runs that no image digest can cover.
    refused: Vec<String>,
    /// Said with the verdict (a deployer-named image whose default was checked). What changes
    /// how an image runs is the workload policy's to judge.
    reported: Vec<String>,
}

/// A service built from a Dockerfile runs what no digest covers; an image named through a
/// variable the deployer sets (`allowed_envs`) is the deployer's choice, not a measurement.
pub(super) fn images_to_check(c: &AppCompose, deployer_named: DeployerNamedImages) -> ImagePlan {
    let mut plan = ImagePlan {
        images: Vec::new(),
        refused: Vec::new(),
        reported: Vec::new(),
    };
    for s in &c.services {
        if s.build {
            plan.refused.push(format!(
                "service `{}` is built from a Dockerfile at deploy time (build:), which no image digest covers",
                s.name
            ));
        }
        match &s.image {
            Some(image) if !image.deployer_vars.is_empty() => {
                let why = format!(
                    "service `{}` runs an image named through {}, which the deployer sets (allowed_envs)",
                    s.name,
                    image.deployer_vars.join(", ")
                );
                match deployer_named {
                    DeployerNamedImages::Refuse => plan.refused.push(why),
                    DeployerNamedImages::Report => {
                        plan.reported
                            .push(format!("{why}; its default was checked"));
                        plan.images.push(image.value.clone());
                    }
                }
            }
            Some(image) => plan.images.push(image.value.clone()),
            None if s.build => {}
            None => plan
                .refused
                .push(format!("service `{}` names no image", s.name)),
        }
    }
    plan
}

impl ImagePlan {
    pub(super) fn conclude(self, looked_up: Result<String, String>) -> Result<String, String> {
        let mut failed = self.refused;
        match looked_up {
            Err(e) => failed.push(e),
            Ok(d) if failed.is_empty() => {
                return Ok(if self.reported.is_empty() {
                    d
                } else {
                    format!("{d}; reported: {}", self.reported.join("; "))
                })
            }
            Ok(_) => {}
        }
        Err(failed.join("; "))
    }
}

/// Every measurement with a non-empty allowlist must be on it.
fn allowlisted(
    allow: &Allowlists,
    m: &Measurements,
    w: Option<&Workload>,
) -> Result<String, String> {
    let compose = w.map(|w| w.compose_hash.as_str()).unwrap_or("");
    // Only a measured OS image hash counts (the one RTMR3 measures).
    let os_image = w
        .and_then(|w| w.os_image_hash.as_ref())
        .filter(|h| h.from == workload::FROM_RTMR3)
        .map_or("(not measured)", |h| h.value.as_str());
    let pairs = [
        ("mrtd", &allow.mrtd, m.mr_td.as_str()),
        ("mrseam", &allow.mrseam, m.mr_seam.as_str()),
        ("rtmr0", &allow.rtmr0, m.rtmr[0].as_str()),
        ("rtmr1", &allow.rtmr1, m.rtmr[1].as_str()),
        ("rtmr2", &allow.rtmr2, m.rtmr[2].as_str()),
        ("compose_hash", &allow.compose_hash, compose),
        ("os_image_hash", &allow.os_image_hash, os_image),
    ];
    let mut enforced = Vec::new();
    for (name, list, value) in pairs {
        if list.is_empty() {
            continue;
        }
        if !list
            .iter()
            .any(|a| a.trim_start_matches("0x").eq_ignore_ascii_case(value))
        {
            return Err(format!("{name} {value} is not on the allowlist"));
        }
        enforced.push(name);
    }
    Ok(if enforced.is_empty() {
        "no allowlist configured (measurements reported only)".into()
    } else {
        format!("on the allowlist: {}", enforced.join(", "))
    })
}

fn verify_gpus(
    payload: Option<Result<nvidia::Payload, super::EvidenceError>>,
    nonce: &[u8; 32],
    trust: &Trust<'_>,
    relayed: bool,
    checks: &mut Checks<'_>,
    report: &mut Report,
) {
    const NAMES: [(GpuCheck, &str); 3] = [
        (GpuCheck::CertChain, "gpu_cert_chain"),
        (GpuCheck::Signature, "gpu_spdm_signature"),
        (GpuCheck::Nonce, "gpu_nonce"),
    ];
    let payload = match payload {
        Some(Ok(p)) if !p.evidence_list.is_empty() => p,
        Some(Err(e)) => {
            for (_, name) in NAMES {
                checks.record(name, Err(e.to_string()));
            }
            return;
        }
        _ => {
            for (_, name) in NAMES {
                checks.record(name, Err("no GPU evidence".into()));
            }
            return;
        }
    };
    report.gpus = payload.evidence_list.len();
    report.gpu_evidence = if relayed { "relayed" } else { "attested_cvm" };
    let mut failures: Vec<(GpuCheck, String)> = Vec::new();
    if payload
        .nonce
        .as_deref()
        .is_some_and(|n| !crate::attestation::framing::hex_matches(n, nonce))
    {
        failures.push((
            GpuCheck::Nonce,
            "nvidia_payload names a different nonce".into(),
        ));
    }
    for (i, gpu) in payload.evidence_list.iter().enumerate() {
        if let Err((check, why)) = nvidia::verify_gpu(gpu, trust.nvidia_root, nonce, trust.now) {
            failures.push((check, format!("GPU {i}: {why}")));
        }
    }
    let n = payload.evidence_list.len();
    for (check, name) in NAMES {
        let failed: Vec<&str> = failures
            .iter()
            .filter(|(c, _)| *c == check)
            .map(|(_, w)| w.as_str())
            .collect();
        // A GPU that failed an earlier check was not examined further.
        let blocked = failures.iter().any(|(c, _)| (*c as u8) < (check as u8));
        if !failed.is_empty() {
            checks.record(name, Err(failed.join("; ")));
        } else if blocked {
            checks.skip(name, "an earlier GPU check failed");
        } else {
            let detail = match check {
                GpuCheck::CertChain => format!("{n} device chains lead to the pinned NVIDIA root"),
                GpuCheck::Signature => {
                    format!("{n} SPDM measurement reports signed by their device keys")
                }
                GpuCheck::Nonce => format!("{n} reports carry our nonce"),
            };
            checks.record(name, Ok(relayed_note(relayed, detail)));
        }
    }
}

/// The report for people: one line per check, then the measurements.
pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    for o in &r.trust_overrides {
        out.push_str(&format!("WARNING: {o}\n"));
    }
    out.push_str(&format!(
        "model {}  {}\nsigning address {}  layout {}  nonce {}\n",
        r.model,
        if r.verified {
            "VERIFIED"
        } else {
            "NOT VERIFIED"
        },
        r.signing_address.as_deref().unwrap_or("-"),
        r.layout.unwrap_or("-"),
        r.nonce,
    ));
    for c in &r.checks {
        let status = match c.status {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Skipped => "skip",
            Status::NotApplicable => "n/a ",
        };
        let note = if c.enforced { "" } else { " (report only)" };
        out.push_str(&format!("  [{status}] {:<20} {}{note}\n", c.name, c.detail));
    }
    if let Some(a) = &r.aci {
        text_aci(&mut out, a);
    }
    if let Some(t) = &r.tcb {
        out.push_str(&format!(
            "TCB status {}  collateral valid until {}\n",
            t.status,
            r.collateral_valid_until
                .map_or("-".to_string(), crate::logging::rfc3339)
        ));
    }
    if let Some(w) = &r.workload {
        text_workload(&mut out, w);
    }
    if let Some(v) = &r.review {
        text_review(&mut out, v);
    }
    if let Some(g) = &r.gateway {
        out.push_str(&format!("gateway: {}\n", g.describe()));
    }
    for i in &r.provenance {
        out.push_str(&format!(
            "  image {} rule {} entries {}/{} {}{}: {}\n",
            i.image,
            i.rule.map_or("none", |r| r.name()),
            i.entries_checked,
            i.entries_listed,
            if i.passed { "pass" } else { "FAIL" },
            if i.cached { " (cached)" } else { "" },
            i.outcome
        ));
    }
    if let Some(m) = &r.measurements {
        out.push_str(&format!(
            "MRTD {}\nRTMR0 {}\nRTMR1 {}\nRTMR2 {}\nRTMR3 {}\n",
            m.mr_td, m.rtmr[0], m.rtmr[1], m.rtmr[2], m.rtmr[3]
        ));
    }
    out.push_str(&format!(
        "GPUs {} ({})  verified at {}\n",
        r.gpus,
        r.gpu_evidence,
        crate::logging::rfc3339(r.verified_at)
    ));
    out.push_str(&summary(r));
    out
}

/// What the ACI layout proved: the binding, the keys serving, the source.
fn text_aci(out: &mut String, a: &AciSummary) {
    let binding = match &a.binding {
        Some(Binding::Statement { keyset_digest, .. }) => {
            format!("ACI statement over {keyset_digest}")
        }
        Some(Binding::Address) => {
            "the signing address (dstack form); the keyset is not anchored".into()
        }
        None => "-".into(),
    };
    out.push_str(&format!(
        "ACI: quote binds {binding}; serving {}; E2EE key {}\n{}\n",
        a.serving.as_deref().unwrap_or("-"),
        a.e2ee_key_id.as_deref().unwrap_or("-"),
        a.attested
    ));
    if let Some(s) = &a.source {
        out.push_str(&format!(
            "source {} commit {} image {}: {}\n",
            s.repo_url.as_deref().unwrap_or("-"),
            s.repo_commit.as_deref().unwrap_or("-"),
            s.image_digest.as_deref().unwrap_or("none"),
            s.corroboration
        ));
    }
    if let Some(v) = &a.vm_config {
        out.push_str(&format!("vm_config (Venice's claim) {v}\n"));
    }
}

/// The measured workload: identity, images, and what the compose leaves open.
fn text_workload(out: &mut String, w: &Workload) {
    let sourced = |s: &Option<workload::Sourced>| {
        s.as_ref()
            .map_or("-".to_string(), |s| format!("{} ({})", s.value, s.from))
    };
    out.push_str(&format!(
        "app {}\ncompose {}\nos image {}{}{}\nkey provider {}\nimages: {}\n",
        sourced(&w.app_id),
        w.compose_hash,
        sourced(&w.os_image_hash),
        w.os_image
            .as_ref()
            .map(|n| format!(", named {} by {}", n.value, n.from))
            .unwrap_or_default(),
        if w.dev_os_image {
            "; a development image: SSH and console access are possible"
        } else {
            ""
        },
        sourced(&w.key_provider),
        w.images.join(", ")
    ));
    if let Some(c) = &w.compose {
        for s in &c.services {
            if s.build || !s.overrides.is_empty() {
                out.push_str(&format!(
                    "  service {}: {}{}\n",
                    s.name,
                    if s.build {
                        "built from a Dockerfile; "
                    } else {
                        ""
                    },
                    s.overrides.join(", ")
                ));
            }
        }
        if let Some(h) = &c.pre_launch_script_sha256 {
            out.push_str(&format!("  pre_launch_script sha256 {h}\n"));
        }
        if !c.allowed_envs.is_empty() {
            let names: Vec<&str> = c.allowed_envs.iter().map(String::as_str).collect();
            out.push_str(&format!(
                "  set by the deployer, unmeasured: {}\n",
                names.join(", ")
            ));
        }
    }
}

/// Whether someone reviewed this workload, and how to accept it after review.
fn text_review(out: &mut String, v: &WorkloadReview) {
    out.push_str(&format!(
        "workload digest {}: {}\n",
        v.digest,
        match v.status {
            ReviewStatus::Reviewed => format!(
                "reviewed as `{}` ({})",
                v.workload.as_deref().unwrap_or("-"),
                v.reviewed_from.as_deref().unwrap_or("-")
            ),
            ReviewStatus::Unreviewed => format!(
                "NOT REVIEWED; closest reviewed workload `{}`",
                v.closest.as_deref().unwrap_or("-")
            ),
            ReviewStatus::Refused => "REFUSED whatever the policy says".into(),
        }
    ));
    for line in v.refusals.iter().chain(&v.differences) {
        out.push_str(&format!("  - {line}\n"));
    }
    for line in &v.unmeasured {
        out.push_str(&format!("  unmeasured: {line}\n"));
    }
    if let Some(lines) = &v.policy_lines {
        out.push_str(
            "  after reviewing it, accept it with POST /admin/workloads/accept?digest=<digest> or these lines under attestation.extra_workloads:\n",
        );
        for line in lines.lines() {
            out.push_str(&format!("    {line}\n"));
        }
    }
}

/// The report's last line: the verdict, naming each failed check (enforced or not).
fn summary(r: &Report) -> String {
    let failed = |enforced: bool| -> Vec<&str> {
        r.checks
            .iter()
            .filter(|c| c.status == Status::Fail && c.enforced == enforced)
            .map(|c| c.name)
            .collect()
    };
    let (refused, waived) = (failed(true), failed(false));
    let mut out = if r.verified {
        format!(
            "VERIFIED: {} checks passed",
            r.checks.iter().filter(|c| c.status == Status::Pass).count()
        )
    } else {
        format!("NOT VERIFIED: failed {}", refused.join(", "))
    };
    if !waived.is_empty() {
        out.push_str(&format!("; failed but report-only: {}", waived.join(", ")));
    }
    if !r.trust_overrides.is_empty() {
        out.push_str(&format!(
            "; under {} trust relaxation(s) (WARNING lines above)",
            r.trust_overrides.len()
        ));
    }
    out.push('\n');
    out
}
