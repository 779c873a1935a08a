//! The simulated enclave's TD report: REPORTDATA (dstack's address ‖ 0 ‖ nonce, or ACI's
//! statement digest) and the workload's measurements. `dcap` signs it into a quote.

use sha2::{Digest, Sha384};
use venice_e2ee_proxy::attestation::quote::{offsets, HEADER_LEN};

/// dstack's REPORTDATA: the key's address, 12 zero bytes, the client's nonce.
pub fn address_report_data(address: &[u8; 20], nonce: &[u8; 32]) -> [u8; 64] {
    let mut rd = [0u8; 64];
    rd[..20].copy_from_slice(address);
    rd[32..].copy_from_slice(nonce);
    rd
}

pub struct QuoteParams<'a> {
    pub model: &'a str,
    pub report_data: [u8; 64],
    pub debug: bool,
    pub rtmr: &'a [[u8; 48]; 4],
    pub mr_config_id: &'a [u8; 48],
}

/// A measurement that is stable per model, so reports look like one deployment.
fn measurement(model: &str, what: &str) -> [u8; 48] {
    let mut h = Sha384::new();
    h.update(what.as_bytes());
    h.update(model.as_bytes());
    h.finalize().into()
}

/// The TD report body (584 bytes): `template` (a real report, for its TCB SVNs and SEAM
/// measurements) with this enclave's attributes, MRTD, MRCONFIGID, RTMRs and REPORTDATA.
pub fn body(template: &[u8], p: &QuoteParams<'_>) -> Vec<u8> {
    let mut b = template.to_vec();
    // Offsets in `offsets` count from the start of the quote; the body starts after the header.
    let at = |offset: usize| offset - HEADER_LEN;
    // Keep the template's attributes (e.g. SEPT_VE_DISABLE, which DCAP policy requires); only
    // the DEBUG bit is ours to set.
    let attr_at = at(offsets::TD_ATTRIBUTES);
    let template_attributes =
        u64::from_le_bytes(b[attr_at..attr_at + 8].try_into().expect("8 bytes"));
    let attributes = (template_attributes & !1) | u64::from(p.debug);
    b[attr_at..attr_at + 8].copy_from_slice(&attributes.to_le_bytes());
    b[at(offsets::MR_TD)..at(offsets::MR_TD) + 48].copy_from_slice(&measurement(p.model, "mrtd"));
    b[at(offsets::MR_CONFIG_ID)..at(offsets::MR_CONFIG_ID) + 48].copy_from_slice(p.mr_config_id);
    for (i, rtmr) in p.rtmr.iter().enumerate() {
        let o = at(offsets::RTMR0) + 48 * i;
        b[o..o + 48].copy_from_slice(rtmr);
    }
    let rd = at(offsets::REPORT_DATA);
    b[rd..rd + 64].copy_from_slice(&p.report_data);
    b
}
