//! Synthetic TDX v4 quotes in the real layout, with REPORTDATA binding a key address and a
//! nonce. Not signed yet: a verifier that checks Intel signatures rejects them.

use crate::attestation::quote::{offsets, BODY_LEN, HEADER_LEN, TEE_TYPE_TDX};
use sha2::{Digest, Sha384};

pub struct QuoteParams<'a> {
    pub model: &'a str,
    pub address: [u8; 20],
    pub nonce: [u8; 32],
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

pub fn build(p: &QuoteParams<'_>) -> Vec<u8> {
    let mut q = vec![0u8; HEADER_LEN + BODY_LEN + 4];
    q[0..2].copy_from_slice(&4u16.to_le_bytes());
    q[2..4].copy_from_slice(&2u16.to_le_bytes());
    q[4..8].copy_from_slice(&TEE_TYPE_TDX.to_le_bytes());
    let attributes: u64 = if p.debug { 1 } else { 0 };
    q[offsets::TD_ATTRIBUTES..offsets::TD_ATTRIBUTES + 8]
        .copy_from_slice(&attributes.to_le_bytes());
    q[offsets::MR_TD..offsets::MR_TD + 48].copy_from_slice(&measurement(p.model, "mrtd"));
    for (i, rtmr) in p.rtmr.iter().enumerate() {
        let at = offsets::RTMR0 + 48 * i;
        q[at..at + 48].copy_from_slice(rtmr);
    }
    q[offsets::MR_CONFIG_ID..offsets::MR_CONFIG_ID + 48].copy_from_slice(p.mr_config_id);
    let rd = offsets::REPORT_DATA;
    q[rd..rd + 20].copy_from_slice(&p.address);
    q[rd + 32..rd + 64].copy_from_slice(&p.nonce);
    // Signature data length 0: no signature yet.
    q
}
