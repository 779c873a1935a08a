//! Intel DCAP verification of the TDX quote with `dcap-qvl`: quote signature, QE report,
//! PCK chain to the pinned Intel SGX root, CRLs, and TCB status from Intel's TCB info and QE
//! identity, all at a given time.

use dcap_qvl::QuoteCollateralV3;

/// Intel's collateral for one quote, as Intel PCS (or a PCCS) serves it.
#[derive(Debug, Clone)]
pub struct Collateral {
    /// The `tcbInfo` object's exact JSON text (the signature covers these bytes).
    pub tcb_info: String,
    pub tcb_info_signature: Vec<u8>,
    pub tcb_info_issuer_chain: String,
    /// The `enclaveIdentity` object's exact JSON text.
    pub qe_identity: String,
    pub qe_identity_signature: Vec<u8>,
    pub qe_identity_issuer_chain: String,
    pub pck_crl: Vec<u8>,
    pub pck_crl_issuer_chain: String,
    pub root_ca_crl: Vec<u8>,
}

/// Splits a PCS body `{"tcbInfo": {…}, "signature": "hex"}` into the signed object's exact
/// text and the signature, without re-serializing (which could change the signed bytes).
pub fn split_signed(body: &str, key: &str) -> Result<(String, Vec<u8>), String> {
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

    /// The earliest `nextUpdate` of the TCB info and QE identity: the collateral is good
    /// until then.
    pub fn next_update(&self) -> Option<String> {
        let next = |json: &str| -> Option<String> {
            serde_json::from_str::<serde_json::Value>(json)
                .ok()?
                .get("nextUpdate")?
                .as_str()
                .map(str::to_string)
        };
        match (next(&self.tcb_info), next(&self.qe_identity)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TcbVerdict {
    pub status: String,
    pub advisory_ids: Vec<String>,
}

/// Verifies the quote against the collateral and the trusted root at `now` (Unix seconds).
pub fn verify(
    raw_quote: &[u8],
    collateral: &Collateral,
    root_der: &[u8],
    now: u64,
    allow_debug: bool,
) -> Result<TcbVerdict, String> {
    // A DEBUG trust domain passes only when the policy allows it.
    let verifier = dcap_qvl::verify::QuoteVerifier::new(root_der.to_vec()).allow_debug(allow_debug);
    let report = verifier
        .verify(raw_quote, &collateral.to_qvl(), now)
        .map_err(|e| format!("{e:#}"))?;
    Ok(TcbVerdict {
        status: report.status,
        advisory_ids: report.advisory_ids,
    })
}
