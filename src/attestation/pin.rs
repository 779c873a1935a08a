//! Format pinning: what a model's attestation looked like when first verified (layout,
//! checks passed, GPUs). A later attestation that is weaker in any of these is refused, so a
//! model cannot silently slide to a layout or evidence set that proves less. Pins live in
//! memory; an operator accepts a new form with the admin action (`POST /admin/pins/{model}/
//! accept` on the admin listener), or by restarting the proxy.

use super::evidence::report::{Report, Status};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Pin {
    pub(crate) layout: Option<&'static str>,
    /// ACI: whether the quote bound the keyset (`statement`) or only the key (`address`).
    pub(crate) binding: Option<&'static str>,
    pub(crate) passed: BTreeSet<&'static str>,
    pub(crate) gpus: usize,
    /// The measured compose runs the gateway. Its GPU evidence, when served, is an
    /// upstream's, relayed per answer, so it is not part of the gateway's form.
    pub(crate) gateway: bool,
}

impl Pin {
    pub(crate) fn of(report: &Report) -> Pin {
        let binding = report
            .aci
            .as_ref()
            .and_then(|a| a.binding.as_ref())
            .map(|b| match b {
                super::aci::Binding::Address => "address",
                super::aci::Binding::Statement { .. } => "statement",
            });
        let gateway = report.gateway.is_some();
        Pin {
            layout: report.layout,
            binding,
            passed: report
                .checks
                .iter()
                .filter(|c| c.status == Status::Pass)
                .filter(|c| !(gateway && c.name.starts_with("gpu_")))
                .map(|c| c.name)
                .collect(),
            gpus: if gateway { 0 } else { report.gpus },
            gateway,
        }
    }

    /// What names this form: sha256 of its JSON (fields in a fixed order, checks sorted), so
    /// an operator accepts exactly the form reviewed.
    pub(crate) fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(
            serde_json::to_vec(self).expect("a pin serializes"),
        ))
    }

    /// Why `next` proves less than this pin, if it does.
    pub(crate) fn weakened_by(&self, next: &Pin) -> Option<String> {
        if self.layout != next.layout {
            return Some(format!(
                "attestation layout changed from {} to {}",
                self.layout.unwrap_or("-"),
                next.layout.unwrap_or("-")
            ));
        }
        if self.gateway != next.gateway {
            return Some(format!(
                "the measured compose {} runs the gateway",
                if next.gateway { "now" } else { "no longer" }
            ));
        }
        if self.binding == Some("statement") && next.binding == Some("address") {
            return Some(
                "the quote no longer binds the ACI keyset (statement), only the key's address: receipts would no longer be anchored".into(),
            );
        }
        let lost: Vec<&str> = self.passed.difference(&next.passed).copied().collect();
        if !lost.is_empty() {
            return Some(format!(
                "checks that passed before no longer pass: {}",
                lost.join(", ")
            ));
        }
        if next.gpus < self.gpus {
            return Some(format!(
                "GPU evidence shrank from {} to {} GPUs",
                self.gpus, next.gpus
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(layout: &'static str, passed: &[&'static str], gpus: usize) -> Pin {
        Pin {
            layout: Some(layout),
            binding: None,
            passed: passed.iter().copied().collect(),
            gpus,
            gateway: false,
        }
    }

    #[test]
    fn weaker_forms_are_named() {
        let base = pin(
            "dstack",
            &["envelope", "tdx_quote_signature", "gpu_nonce"],
            8,
        );
        assert_eq!(base.weakened_by(&base), None);
        assert_eq!(
            base.weakened_by(&pin(
                "dstack",
                &[
                    "envelope",
                    "tdx_quote_signature",
                    "gpu_nonce",
                    "rtmr_replay"
                ],
                8
            )),
            None
        );
        assert!(base
            .weakened_by(&pin(
                "aci/1",
                &["envelope", "tdx_quote_signature", "gpu_nonce"],
                8
            ))
            .unwrap()
            .contains("layout"));
        assert!(base
            .weakened_by(&pin("dstack", &["envelope", "gpu_nonce"], 8))
            .unwrap()
            .contains("tdx_quote_signature"));
        assert!(base
            .weakened_by(&pin(
                "dstack",
                &["envelope", "tdx_quote_signature", "gpu_nonce"],
                4
            ))
            .unwrap()
            .contains("GPU"));
        let bound = |b| Pin {
            binding: Some(b),
            ..pin("aci/1", &["envelope"], 0)
        };
        assert!(bound("statement")
            .weakened_by(&bound("address"))
            .unwrap()
            .contains("no longer binds"));
        assert_eq!(bound("address").weakened_by(&bound("statement")), None);
    }

    #[test]
    fn a_form_has_one_digest() {
        let a = pin("dstack", &["envelope", "gpu_nonce"], 8);
        assert_eq!(
            a.digest(),
            pin("dstack", &["gpu_nonce", "envelope"], 8).digest()
        );
        assert_eq!(a.digest().len(), 64);
        assert_ne!(
            a.digest(),
            pin("dstack", &["envelope", "gpu_nonce"], 4).digest()
        );
        assert_ne!(
            a.digest(),
            pin("aci/1", &["envelope", "gpu_nonce"], 8).digest()
        );
    }
}
