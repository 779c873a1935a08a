//! Checks on one attestation envelope: Venice's verdict, nonce and model echoes, the signing
//! key and its address, the TDX quote's shape and DEBUG bit, and the REPORTDATA binding of
//! key and nonce. Pure: no I/O, no clock beyond what the caller passes.

use super::aci::{self, Binding, Keyset};
use super::framing::hex_matches;
use super::quote;
use crate::e2ee::codec;
use crate::venice::Attestation;
use k256::PublicKey;
use std::fmt;
use std::sync::Arc;

/// Each failing check has its own error code, which is what a client sees in a 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    Fetch,
    /// A field of the envelope has a type no reading can accept.
    Malformed,
    Verified,
    Nonce,
    Model,
    SigningAlgo,
    SigningKey,
    Address,
    Quote,
    Debug,
    ReportData,
    TdxQuoteSignature,
    TdxTcbStatus,
    RtmrReplay,
    MrConfigId,
    GpuCertChain,
    GpuSpdmSignature,
    GpuNonce,
    WorkloadAllowlist,
    /// The measured compose is not a workload someone reviewed (`attestation.workloads`).
    WorkloadPolicy,
    GpuNras,
    SigstoreProvenance,
    /// ACI: the E2EE key is not listed in the keyset the quote's statement binds.
    AciE2eeKey,
    /// ACI: the keyset does not hash to its restated digest, is expired or breaks a rule.
    AciKeyset,
    /// ACI: a restated `report_data` differs from the quote's.
    AciReportData,
    /// ACI: the source provenance is missing, off the policy, or backed by no measurement.
    SourceProvenance,
    /// A receipt was missing or did not verify, or the upstream was not verified, with
    /// `attestation.receipts: require`.
    Receipt,
    /// A refresh proved less than the model's pinned attestation form.
    Downgrade,
    /// The enclave says it serves another model than the one asked for.
    ModelIdentity,
}

impl Check {
    /// Every check, for counters that start at zero (an alert on `increase` sees the first).
    pub(crate) const ALL: [Check; 29] = [
        Check::Fetch,
        Check::Malformed,
        Check::Verified,
        Check::Nonce,
        Check::Model,
        Check::SigningAlgo,
        Check::SigningKey,
        Check::Address,
        Check::Quote,
        Check::Debug,
        Check::ReportData,
        Check::TdxQuoteSignature,
        Check::TdxTcbStatus,
        Check::RtmrReplay,
        Check::MrConfigId,
        Check::GpuCertChain,
        Check::GpuSpdmSignature,
        Check::GpuNonce,
        Check::WorkloadAllowlist,
        Check::WorkloadPolicy,
        Check::GpuNras,
        Check::SigstoreProvenance,
        Check::AciE2eeKey,
        Check::AciKeyset,
        Check::AciReportData,
        Check::SourceProvenance,
        Check::Receipt,
        Check::Downgrade,
        Check::ModelIdentity,
    ];

    pub(crate) fn code(self) -> &'static str {
        match self {
            Check::Fetch => "attestation_fetch_failed",
            Check::Malformed => "attestation_malformed",
            Check::Verified => "attestation_not_verified",
            Check::Nonce => "attestation_nonce_mismatch",
            Check::Model => "attestation_model_mismatch",
            Check::SigningAlgo => "attestation_signing_algo_unsupported",
            Check::SigningKey => "attestation_signing_key_invalid",
            Check::Address => "attestation_address_mismatch",
            Check::Quote => "attestation_quote_invalid",
            Check::Debug => "attestation_debug_td",
            Check::ReportData => "attestation_report_data_mismatch",
            Check::TdxQuoteSignature => "attestation_tdx_quote_signature",
            Check::TdxTcbStatus => "attestation_tdx_tcb_status",
            Check::RtmrReplay => "attestation_rtmr_replay",
            Check::MrConfigId => "attestation_mr_config_id",
            Check::GpuCertChain => "attestation_gpu_cert_chain",
            Check::GpuSpdmSignature => "attestation_gpu_spdm_signature",
            Check::GpuNonce => "attestation_gpu_nonce",
            Check::WorkloadAllowlist => "attestation_workload_not_allowed",
            Check::WorkloadPolicy => "attestation_workload_policy",
            Check::GpuNras => "attestation_gpu_nras",
            Check::SigstoreProvenance => "attestation_sigstore_provenance",
            Check::AciE2eeKey => "attestation_aci_e2ee_key",
            Check::AciKeyset => "attestation_aci_keyset",
            Check::AciReportData => "attestation_aci_report_data",
            Check::SourceProvenance => "attestation_source_provenance",
            Check::Receipt => "attestation_receipt",
            Check::Downgrade => "attestation_downgrade",
            Check::ModelIdentity => "attestation_model_identity",
        }
    }

    /// The check behind a hardware-evidence report entry.
    pub(crate) fn from_report_name(name: &str) -> Option<Check> {
        Some(match name {
            "tdx_quote_signature" => Check::TdxQuoteSignature,
            "tdx_tcb_status" => Check::TdxTcbStatus,
            "rtmr_replay" => Check::RtmrReplay,
            "mr_config_id" => Check::MrConfigId,
            "gpu_cert_chain" => Check::GpuCertChain,
            "gpu_spdm_signature" => Check::GpuSpdmSignature,
            "gpu_nonce" => Check::GpuNonce,
            "workload_allowlist" => Check::WorkloadAllowlist,
            "workload_policy" => Check::WorkloadPolicy,
            "gpu_nras" => Check::GpuNras,
            "sigstore_provenance" => Check::SigstoreProvenance,
            "aci_keyset" => Check::AciKeyset,
            "aci_report_data" => Check::AciReportData,
            "source_provenance" => Check::SourceProvenance,
            "model_identity" => Check::ModelIdentity,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationError {
    pub(crate) check: Check,
    pub(crate) message: String,
}

impl AttestationError {
    pub(crate) fn new(check: Check, message: impl Into<String>) -> Self {
        AttestationError {
            check,
            message: message.into(),
        }
    }
}

impl fmt::Display for AttestationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.check.code())
    }
}

impl std::error::Error for AttestationError {}

/// A model whose enclave is not verified is a 503 naming the check: nothing was sent.
impl From<&AttestationError> for crate::error::ApiError {
    fn from(e: &AttestationError) -> Self {
        Self::new(
            503,
            "attestation_error",
            e.check.code(),
            format!(
                "the model's enclave could not be verified, nothing was sent: {}",
                e.message
            ),
        )
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    pub(crate) allow_debug: bool,
}

/// What a passing attestation establishes: this public key belongs to a TDX trust domain
/// serving `model`, freshly (the quote carries our nonce).
#[derive(Debug, Clone)]
pub struct VerifiedKey {
    pub(crate) key: PublicKey,
    /// The key prepared for encryption, once.
    pub(crate) recipient: codec::Recipient,
    /// Uncompressed lowercase hex, as sent in `X-Venice-TEE-Model-Pub-Key`.
    pub key_hex: String,
    pub(crate) address: [u8; 20],
    pub(crate) layout: &'static str,
    /// What REPORTDATA binds: the key's address, or an ACI statement over a keyset.
    pub(crate) binding: Binding,
    /// The served ACI keyset, when there is one that parses. It holds the receipt keys; only
    /// a `Binding::Statement` makes it the attested one.
    pub(crate) keyset: Option<Arc<Keyset>>,
}

impl VerifiedKey {
    pub(crate) fn address_hex(&self) -> String {
        format!("0x{}", hex::encode(self.address))
    }
}

/// Checks one attestation envelope in order; the first failing check decides the error.
pub fn verify(
    att: &Attestation,
    model: &str,
    nonce: &[u8; 32],
    policy: Policy,
) -> Result<VerifiedKey, AttestationError> {
    verdict_and_echoes(att, model, nonce)?;
    let key = signing_key(att)?;
    let address = codec::address(&key);
    signing_address(att, &address)?;
    let report = td_report(att, policy)?;
    let keyset = att.keyset().map(Keyset::parse);
    let binding = report_data_binding(att, &report.report_data, &address, nonce)?;
    if let Binding::Statement { keyset_digest, .. } = &binding {
        key_listed_in_bound_keyset(keyset_digest, keyset.as_ref(), &key)?;
    }
    Ok(VerifiedKey {
        key_hex: codec::public_key_hex(&key),
        recipient: codec::Recipient::new(&key),
        key,
        address,
        layout: att.layout(),
        binding,
        keyset: keyset.and_then(Result::ok).map(Arc::new),
    })
}

fn fail<T>(check: Check, message: impl Into<String>) -> Result<T, AttestationError> {
    Err(AttestationError::new(check, message))
}

/// Venice's verdict, then its echoes of our nonce and the model: every nonce echo present
/// must match, and at least one must be present.
fn verdict_and_echoes(
    att: &Attestation,
    model: &str,
    nonce: &[u8; 32],
) -> Result<(), AttestationError> {
    if att.verified != Some(true) {
        return fail(
            Check::Verified,
            "Venice did not report the attestation as verified",
        );
    }
    let echoes: Vec<&str> = [att.nonce.as_deref(), att.request_nonce.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    if echoes.is_empty() {
        return fail(Check::Nonce, "attestation does not echo the nonce");
    }
    if echoes.iter().any(|e| !hex_matches(e, nonce)) {
        return fail(Check::Nonce, "attestation echoes a different nonce");
    }
    match att.model.as_deref() {
        Some(m) if m == model => Ok(()),
        Some(m) => fail(
            Check::Model,
            format!("attestation is for model `{m}`, not `{model}`"),
        ),
        None => fail(Check::Model, "attestation does not name its model"),
    }
}

/// The signing key, an ecdsa secp256k1 key; both key fields, when present, name it.
fn signing_key(att: &Attestation) -> Result<PublicKey, AttestationError> {
    if let Some(algo) = att.signing_algo.as_deref() {
        if !algo.eq_ignore_ascii_case("ecdsa") {
            return fail(
                Check::SigningAlgo,
                format!("signing algorithm `{algo}` is not ecdsa"),
            );
        }
    }
    let Some(key_text) = att.signing_key_text() else {
        return fail(Check::SigningKey, "attestation has no signing key");
    };
    let key = codec::parse_public_key(key_text).map_err(|_| {
        AttestationError::new(
            Check::SigningKey,
            "signing key is not a secp256k1 public key",
        )
    })?;
    if let (Some(a), Some(b)) = (
        att.signing_key.as_deref(),
        att.signing_public_key.as_deref(),
    ) {
        if codec::parse_public_key(a).ok() != codec::parse_public_key(b).ok() {
            return fail(
                Check::SigningKey,
                "signing_key and signing_public_key differ",
            );
        }
    }
    Ok(key)
}

/// The served address must be the one derived from the key.
fn signing_address(att: &Attestation, address: &[u8; 20]) -> Result<(), AttestationError> {
    match att.signing_address.as_deref() {
        Some(a) if hex_matches(a, address) => Ok(()),
        Some(_) => fail(
            Check::Address,
            "signing address is not derived from the signing key",
        ),
        None => fail(Check::Address, "attestation has no signing address"),
    }
}

/// The TDX quote's shape, and no DEBUG trust domain unless the policy allows one.
fn td_report(att: &Attestation, policy: Policy) -> Result<quote::TdReport, AttestationError> {
    let quote_text = att
        .quote_text()
        .ok_or_else(|| AttestationError::new(Check::Quote, "attestation has no TDX quote"))?;
    let report = quote::decode_quote_text(quote_text)
        .and_then(|raw| quote::parse(&raw))
        .map_err(|e| AttestationError::new(Check::Quote, e.to_string()))?;
    if report.debug() && !policy.allow_debug {
        return fail(
            Check::Debug,
            "the trust domain runs with the DEBUG attribute",
        );
    }
    Ok(report)
}

/// REPORTDATA is dstack's `address ‖ 0 ‖ nonce` or ACI's statement over the keyset digest
/// and the nonce: the data says which, and either binds the key only when it holds.
fn report_data_binding(
    att: &Attestation,
    report_data: &[u8; 64],
    address: &[u8; 20],
    nonce: &[u8; 32],
) -> Result<Binding, AttestationError> {
    let mut expected = [0u8; 64];
    expected[..20].copy_from_slice(address);
    expected[32..].copy_from_slice(nonce);
    if *report_data == expected {
        return Ok(Binding::Address);
    }
    let digests = aci::candidate_digests(att.keyset(), &att.restated_digests());
    let workload_ids = aci::candidate_workload_ids(att.keyset(), &att.restated_workload_ids());
    aci::statement_bound(report_data, &digests, &workload_ids, nonce).ok_or_else(|| {
        AttestationError::new(
            Check::ReportData,
            "quote REPORTDATA binds neither the signing address and this nonce (dstack) nor the ACI statement over the keyset digest and this nonce",
        )
    })
}

/// The quote binds a keyset, not the key: the key is attested only if listed in it.
fn key_listed_in_bound_keyset(
    keyset_digest: &str,
    served: Option<&Result<Keyset, aci::AciError>>,
    key: &PublicKey,
) -> Result<(), AttestationError> {
    let ks = match served {
        Some(Ok(k)) => k,
        Some(Err(e)) => return fail(Check::AciE2eeKey, format!("the bound keyset: {e}")),
        None => {
            return fail(
                Check::AciE2eeKey,
                format!(
                    "the quote binds keyset {keyset_digest}, which the attestation does not carry"
                ),
            )
        }
    };
    if ks.digest != keyset_digest {
        return fail(
            Check::AciE2eeKey,
            format!(
                "the quote binds keyset {keyset_digest}, the served keyset hashes to {}",
                ks.digest
            ),
        );
    }
    if ks.e2ee_entry_for(key).is_none() {
        return fail(
            Check::AciE2eeKey,
            "the signing key is not listed in the attested keyset's e2ee_public_keys",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn every_check_has_its_own_code_and_is_documented() {
        let codes: std::collections::BTreeSet<&str> = Check::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(codes.len(), Check::ALL.len());
        let docs = include_str!("../../docs/ATTESTATION.md");
        for code in codes {
            assert!(
                docs.contains(&format!("| `{code}` |")),
                "{code} is not in docs/ATTESTATION.md"
            );
        }
    }

    use super::*;
    use serde_json::{json, Value};

    const MODEL: &str = "e2ee-qwen3-5-122b-a10b";

    fn captured() -> (Value, [u8; 32]) {
        let body = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/capture/0001_api.venice.ai_api_v1_tee_attestation.body"
        ))
        .unwrap();
        let manifest: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/capture/manifest.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let nonce = hex::decode(manifest["nonce_hex"].as_str().unwrap()).unwrap();
        (
            serde_json::from_slice(&body).unwrap(),
            nonce.try_into().unwrap(),
        )
    }

    fn check(v: &Value, nonce: &[u8; 32], policy: Policy) -> Result<VerifiedKey, Check> {
        let att: Attestation = serde_json::from_value(v.clone()).unwrap();
        verify(&att, MODEL, nonce, policy).map_err(|e| e.check)
    }

    fn set_quote_byte(v: &mut Value, at: usize, byte: u8) {
        let mut raw = hex::decode(v["intel_quote"].as_str().unwrap()).unwrap();
        raw[at] = byte;
        v["intel_quote"] = json!(hex::encode(raw));
    }

    #[test]
    fn the_real_capture_passes() {
        let (v, nonce) = captured();
        let k = check(&v, &nonce, Policy::default()).unwrap();
        assert_eq!(
            k.address_hex(),
            "0x6525e128afcffebf7eed05d485d7be983cdae934"
        );
        assert_eq!(k.layout, "dstack");
        assert_eq!(k.key_hex, v["signing_key"].as_str().unwrap());
    }

    #[test]
    fn each_check_fails_on_its_own_fault() {
        let (base, nonce) = captured();
        let p = Policy::default();
        type Mutation = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Check, Mutation)> = vec![
            (Check::Verified, Box::new(|v| v["verified"] = json!(false))),
            (
                Check::Verified,
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("verified");
                }),
            ),
            (
                Check::Nonce,
                Box::new(|v| v["nonce"] = json!("00".repeat(32))),
            ),
            (
                Check::Nonce,
                Box::new(|v| v["request_nonce"] = json!("00".repeat(32))),
            ),
            (
                Check::Nonce,
                Box::new(|v| {
                    let o = v.as_object_mut().unwrap();
                    o.remove("nonce");
                    o.remove("request_nonce");
                }),
            ),
            (Check::Model, Box::new(|v| v["model"] = json!("e2ee-other"))),
            (
                Check::SigningAlgo,
                Box::new(|v| v["signing_algo"] = json!("ed25519")),
            ),
            (
                Check::SigningKey,
                Box::new(|v| v["signing_key"] = json!("04beef")),
            ),
            (
                Check::SigningKey,
                Box::new(|v| {
                    v["signing_key"] = json!(crate::e2ee::codec::KeyPair::generate().public_hex());
                }),
            ),
            (
                Check::Address,
                Box::new(|v| {
                    v["signing_address"] = json!("0x0000000000000000000000000000000000000001")
                }),
            ),
            (Check::Quote, Box::new(|v| v["intel_quote"] = json!("zz"))),
            (Check::Quote, Box::new(|v| set_quote_byte(v, 0, 3))),
            (Check::Debug, Box::new(|v| set_quote_byte(v, 168, 1))),
            (
                Check::ReportData,
                Box::new(|v| set_quote_byte(v, 568 + 40, 0xff)),
            ),
            (
                Check::ReportData,
                Box::new(|v| set_quote_byte(v, 568, 0x00)),
            ),
        ];
        for (expected, mutate) in cases {
            let mut v = base.clone();
            mutate(&mut v);
            assert_eq!(check(&v, &nonce, p).unwrap_err(), expected);
        }
        // A different nonce than the one echoed and bound.
        assert_eq!(check(&base, &[7u8; 32], p).unwrap_err(), Check::Nonce);
    }

    #[test]
    fn a_key_swap_with_matching_address_still_fails_the_binding() {
        // An attacker who replaces key and address consistently still cannot forge REPORTDATA.
        let (mut v, nonce) = captured();
        let other = crate::e2ee::codec::KeyPair::generate();
        let addr = crate::e2ee::codec::address(&other.public_key());
        v["signing_key"] = json!(other.public_hex());
        v["signing_public_key"] = json!(other.public_hex());
        v["signing_address"] = json!(format!("0x{}", hex::encode(addr)));
        assert_eq!(
            check(&v, &nonce, Policy::default()).unwrap_err(),
            Check::ReportData
        );
    }

    #[test]
    fn debug_is_allowed_only_by_policy() {
        let (mut v, nonce) = captured();
        set_quote_byte(&mut v, 168, 1);
        assert!(check(&v, &nonce, Policy { allow_debug: true }).is_ok());
    }

    /// The capture reframed as ACI with its quote's REPORTDATA set to the statement over a
    /// keyset listing `listed` (the signature is DCAP's concern, not this check's).
    fn statement_bound(listed: &str, nonce: &[u8; 32]) -> Value {
        let (mut v, _) = captured();
        let keyset = json!({"not_after": 2_000_000_000u64, "subject": null,
            "receipt_signing_keys": [{"key_id": "r1", "algo": "ed25519", "public_key": "11".repeat(32)}],
            "e2ee_public_keys": [{"key_id": "e1", "algo": "secp256k1-aes-256-gcm-hkdf-sha256", "public_key": listed}],
            "tls_public_keys": []});
        let digest = aci::jcs::digest(&keyset);
        let slot = aci::report_data(&digest, nonce);
        let mut raw = hex::decode(v["intel_quote"].as_str().unwrap()).unwrap();
        raw[568..632].copy_from_slice(&slot);
        v.as_object_mut().unwrap().remove("intel_quote");
        v["api_version"] = json!("aci/1");
        v["workload_keyset_digest"] = json!(digest);
        v["attestation"] = json!({"tee_type": "tdx", "workload_keyset": keyset,
            "evidence": {"quote": hex::encode(raw)}});
        v
    }

    #[test]
    fn an_aci_statement_binds_the_key_only_when_the_keyset_lists_it() {
        let (base, nonce) = captured();
        let ours = base["signing_key"].as_str().unwrap().to_string();
        let v = statement_bound(&ours, &nonce);
        let k = check(&v, &nonce, Policy::default()).unwrap();
        assert!(matches!(k.binding, Binding::Statement { .. }));
        assert_eq!(k.keyset.unwrap().e2ee_public_keys[0].key_id, "e1");

        // Another key in the keyset: the quote binds a keyset that does not hold ours.
        let other = crate::e2ee::codec::KeyPair::generate()
            .public_hex()
            .to_string();
        let v = statement_bound(&other, &nonce);
        assert_eq!(
            check(&v, &nonce, Policy::default()).unwrap_err(),
            Check::AciE2eeKey
        );

        // The bound keyset swapped for one listing our key (its restated digest kept).
        let mut v = statement_bound(&other, &nonce);
        v["attestation"]["workload_keyset"]["e2ee_public_keys"][0]["public_key"] = json!(ours);
        assert_eq!(
            check(&v, &nonce, Policy::default()).unwrap_err(),
            Check::AciE2eeKey
        );

        // The keyset left out: the quote names a keyset nobody can read.
        let mut v = statement_bound(&ours, &nonce);
        v["attestation"]
            .as_object_mut()
            .unwrap()
            .remove("workload_keyset");
        assert_eq!(
            check(&v, &nonce, Policy::default()).unwrap_err(),
            Check::AciE2eeKey
        );

        // A statement over another nonce binds nothing fresh.
        let v = statement_bound(&ours, &[3u8; 32]);
        assert_eq!(
            check(&v, &nonce, Policy::default()).unwrap_err(),
            Check::ReportData
        );
    }

    #[test]
    fn the_drafts_statement_over_a_workload_id_binds_the_key_too() {
        use sha2::{Digest, Sha256};
        let (base, nonce) = captured();
        let ours = base["signing_key"].as_str().unwrap().to_string();
        let mut v = statement_bound(&ours, &nonce);
        let ks = &mut v["attestation"]["workload_keyset"];
        let identity = json!({"algo": "ecdsa-secp256k1", "public_key": ours});
        ks["workload_identity"] = json!({"public_key": identity, "subject": null});
        ks.as_object_mut().unwrap().remove("not_after");
        ks["keyset_epoch"] = json!({"version": 1, "not_after": 2_000_000_000u64});
        let digest = aci::jcs::digest(ks);
        let workload = aci::jcs::digest(&identity);
        let mut raw = hex::decode(v["attestation"]["evidence"]["quote"].as_str().unwrap()).unwrap();
        raw[568..632].fill(0);
        raw[568..600].copy_from_slice(&Sha256::digest(aci::draft_statement(
            &digest, &workload, &nonce,
        )));
        v["attestation"]["evidence"]["quote"] = json!(hex::encode(raw));
        v["workload_id"] = json!(workload);
        v["workload_keyset_digest"] = json!(digest);
        let k = check(&v, &nonce, Policy::default()).unwrap();
        assert_eq!(
            k.binding,
            Binding::Statement {
                keyset_digest: digest,
                workload_id: Some(workload)
            }
        );
    }

    #[test]
    fn liberal_in_key_forms_and_layouts() {
        let (mut v, nonce) = captured();
        let key = v["signing_key"].as_str().unwrap().to_string();
        v["signing_key"] = json!(format!("0x{}", &key[2..]));
        v["signing_address"] = json!(v["signing_address"]
            .as_str()
            .unwrap()
            .to_uppercase()
            .replace("0X", "0x"));
        let quote = v["intel_quote"].take();
        v.as_object_mut().unwrap().remove("intel_quote");
        v["api_version"] = json!("aci/1");
        v["attestation"] = json!({"tee_type": "tdx", "evidence": {"quote": quote}});
        let k = check(&v, &nonce, Policy::default()).unwrap();
        assert_eq!(k.layout, "aci/1");
        assert_eq!(k.key_hex, key);
        assert_eq!(k.binding, Binding::Address);
    }
}
