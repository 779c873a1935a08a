//! What was proven for an answer, in one header (`x-venice-e2ee-claims`) an agent or a gateway
//! can enforce policy on: `key=value` pairs separated by `; `, each value one token.
//!
//! - `tee`: `verified` (Intel DCAP to the pinned root, the TCB accepted), `test-root` (a root
//!   other than Intel's was configured), `relaxed` (a TDX check reported only);
//! - `gpu`: `verified` (the attested CVM's own GPUs), `relayed` (a gateway's upstream's GPU
//!   evidence: our nonce, not this CVM), `n/a` (a reviewed gateway, which holds none),
//!   `relaxed` (a GPU check reported only);
//! - `workload`: `reviewed` (a workload someone reviewed) or `report-only` (served under
//!   `attestation.workload_policy: report` without a review);
//! - `upstream`: `n/a` (the attested CVM serves the model itself), else the proxy's own check
//!   of the upstream the model's last receipt cited (`verified`, `genuine`, `refuted`) or
//!   `unknown` (none yet);
//! - `receipt`: `n/a` (no receipts in this layout), `after` (this answer's receipt is judged
//!   after it), with `last_receipt` the model's last outcome when there is one.

use super::evidence::report::{Report, Status};
use super::receipt_checks::Outcome;

fn passed(report: &Report, names: &[&str]) -> bool {
    names.iter().all(|n| {
        report
            .checks
            .iter()
            .find(|c| c.name == *n)
            .is_some_and(|c| c.status == Status::Pass || c.status == Status::NotApplicable)
    })
}

/// The claims of an answer encrypted to the key `report` verified, with the model's last
/// receipt outcome.
pub(crate) fn summary(report: &Report, last: Option<&Outcome>) -> String {
    let test_root = report
        .trust_overrides
        .iter()
        .any(|o| o.contains("Intel root replaced"));
    let tee = match (
        passed(report, &["tdx_quote_signature", "tdx_tcb_status"]),
        test_root,
    ) {
        (false, _) => "relaxed",
        (true, true) => "test-root",
        (true, false) => "verified",
    };
    let gpu = if !passed(
        report,
        &["gpu_cert_chain", "gpu_spdm_signature", "gpu_nonce"],
    ) {
        "relaxed"
    } else {
        match report.gpu_evidence {
            "attested_cvm" => "verified",
            "relayed" => "relayed",
            _ if report.gateway.is_some() => "n/a",
            _ => "relaxed",
        }
    };
    let workload = if passed(report, &["workload_policy"]) {
        "reviewed"
    } else {
        "report-only"
    };
    let aci = report.aci.is_some();
    let upstream = if !aci {
        "n/a"
    } else {
        last.and_then(|o| o.sessions.iter().find_map(|s| s.upstream_check.as_ref()))
            .map_or("unknown", |c| c.result)
    };
    let mut out = format!("tee={tee}; gpu={gpu}; workload={workload}; upstream={upstream}");
    if aci {
        out.push_str("; receipt=after");
        if let Some(o) = last {
            out.push_str("; last_receipt=");
            out.push_str(o.result);
        }
    } else {
        out.push_str("; receipt=n/a");
    }
    out
}
