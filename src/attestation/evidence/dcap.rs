//! Intel DCAP verification of the TDX quote with `dcap-qvl`: quote signature, QE report,
//! PCK chain to the pinned Intel SGX root, CRLs, and TCB status from Intel's TCB info and QE
//! identity, all at a given time.

use super::EvidenceError;
use dcap_qvl::QuoteCollateralV3;

/// Intel's collateral for one quote, as Intel PCS (or a PCCS) serves it.
#[derive(Debug, Clone)]
pub struct Collateral {
    /// The `tcbInfo` object's exact JSON text (the signature covers these bytes).
    pub(crate) tcb_info: String,
    pub(crate) tcb_info_signature: Vec<u8>,
    pub(crate) tcb_info_issuer_chain: String,
    /// The `enclaveIdentity` object's exact JSON text.
    pub(crate) qe_identity: String,
    pub(crate) qe_identity_signature: Vec<u8>,
    pub(crate) qe_identity_issuer_chain: String,
    pub(crate) pck_crl: Vec<u8>,
    pub(crate) pck_crl_issuer_chain: String,
    pub(crate) root_ca_crl: Vec<u8>,
}

/// Splits a PCS body `{"tcbInfo": {…}, "signature": "hex"}` into the signed object's exact
/// text and the signature, without re-serializing (which could change the signed bytes).
pub(crate) fn split_signed(body: &str, key: &str) -> Result<(String, Vec<u8>), EvidenceError> {
    #[derive(serde::Deserialize)]
    struct Signed<'a> {
        #[serde(borrow)]
        signature: &'a str,
    }
    let v: std::collections::HashMap<String, &serde_json::value::RawValue> =
        serde_json::from_str(body).map_err(|e| format!("collateral is not JSON: {e}"))?;
    let object = v
        .get(key)
        .ok_or_else(|| format!("collateral has no `{key}`"))?;
    let signed: Signed =
        serde_json::from_str(body).map_err(|e| format!("collateral signature: {e}"))?;
    let signature =
        hex::decode(signed.signature).map_err(|_| "collateral signature is not hex".to_string())?;
    Ok((object.get().to_string(), signature))
}

impl Collateral {
    fn to_qvl(&self) -> QuoteCollateralV3 {
        QuoteCollateralV3 {
            pck_crl_issuer_chain: self.pck_crl_issuer_chain.clone(),
            root_ca_crl: self.root_ca_crl.clone(),
            pck_crl: self.pck_crl.clone(),
            tcb_info_issuer_chain: self.tcb_info_issuer_chain.clone(),
            tcb_info: self.tcb_info.clone(),
            tcb_info_signature: self.tcb_info_signature.clone(),
            qe_identity_issuer_chain: self.qe_identity_issuer_chain.clone(),
            qe_identity: self.qe_identity.clone(),
            qe_identity_signature: self.qe_identity_signature.clone(),
            pck_certificate_chain: None,
        }
    }

    /// Until when (Unix seconds) every part is valid: the earliest `nextUpdate` of the TCB
    /// info, the QE identity and both CRLs. `None` when one cannot be read.
    pub(crate) fn valid_until(&self) -> Option<u64> {
        use der::Decode;
        let json_next = |json: &str| -> Option<u64> {
            let v: serde_json::Value = serde_json::from_str(json).ok()?;
            crate::attestation::framing::unix_time(v.get("nextUpdate")?.as_str()?)
        };
        let crl_next = |der: &[u8]| -> Option<u64> {
            let crl =
                x509_cert::crl::CertificateList::<x509_cert::certificate::Rfc5280>::from_der(der)
                    .ok()?;
            Some(crl.tbs_cert_list.next_update?.to_unix_duration().as_secs())
        };
        [
            json_next(&self.tcb_info),
            json_next(&self.qe_identity),
            crl_next(&self.pck_crl),
            crl_next(&self.root_ca_crl),
        ]
        .into_iter()
        .try_fold(u64::MAX, |min, t| t.map(|t| min.min(t)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TcbVerdict {
    pub status: String,
    pub(crate) advisory_ids: Vec<String>,
}

/// Verifies the quote against the collateral and the trusted root at `now` (Unix seconds).
pub fn verify(
    raw_quote: &[u8],
    collateral: &Collateral,
    root_der: &[u8],
    now: u64,
    allow_debug: bool,
) -> Result<TcbVerdict, EvidenceError> {
    // A DEBUG trust domain passes only when the policy allows it.
    let verifier = dcap_qvl::verify::QuoteVerifier::new(root_der.to_vec()).allow_debug(allow_debug);
    let report = verifier
        .verify(raw_quote, &collateral.to_qvl(), now)
        .map_err(|e| EvidenceError::Invalid(format!("{e:#}")))?;
    Ok(TcbVerdict {
        status: report.status,
        advisory_ids: report.advisory_ids,
    })
}
