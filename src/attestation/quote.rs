//! TDX quote v4: the header and TD report body fields the verifier reads. Signature
//! verification against Intel's collateral is a separate step.

use std::fmt;

pub const HEADER_LEN: usize = 48;
pub const BODY_LEN: usize = 584;
pub(crate) const TEE_TYPE_TDX: u32 = 0x81;
const DEBUG_BIT: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuoteError {
    Encoding,
    TooShort(usize),
    Version(u16),
    TeeType(u32),
}

impl fmt::Display for QuoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuoteError::Encoding => write!(f, "quote is neither hex nor base64"),
            QuoteError::TooShort(n) => write!(
                f,
                "quote has {n} bytes, a TDX v4 quote has at least {}",
                HEADER_LEN + BODY_LEN
            ),
            QuoteError::Version(v) => write!(f, "quote version {v}, expected 4"),
            QuoteError::TeeType(t) => write!(f, "quote TEE type {t:#x}, expected TDX (0x81)"),
        }
    }
}

/// The measured fields of a TD report, as fixed-size arrays copied out of the quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdReport {
    pub(crate) tee_tcb_svn: [u8; 16],
    pub(crate) mr_seam: [u8; 48],
    pub(crate) td_attributes: u64,
    pub(crate) mr_td: [u8; 48],
    pub(crate) mr_config_id: [u8; 48],
    pub(crate) rtmr: [[u8; 48]; 4],
    pub(crate) report_data: [u8; 64],
}

impl TdReport {
    pub(crate) fn debug(&self) -> bool {
        self.td_attributes & DEBUG_BIT != 0
    }
}

/// Decodes a quote sent as hex (real captures) or base64 (the docs). A wrong guess cannot
/// pass: the bytes must still parse as a quote and carry Intel's signature.
pub fn decode_quote_text(text: &str) -> Result<Vec<u8>, QuoteError> {
    super::framing::hex_bytes(text)
        .or_else(|_| super::framing::base64_bytes(text))
        .map_err(|_| QuoteError::Encoding)
}

fn array<const N: usize>(raw: &[u8], at: usize) -> [u8; N] {
    raw[at..at + N].try_into().expect("bounds checked by parse")
}

/// The TD report of a TDX v4 quote, once its header says it is one (its signature is DCAP's
/// to check, over the same bytes).
pub fn parse(raw: &[u8]) -> Result<TdReport, QuoteError> {
    if raw.len() < HEADER_LEN + BODY_LEN {
        return Err(QuoteError::TooShort(raw.len()));
    }
    let version = u16::from_le_bytes(array(raw, 0));
    if version != 4 {
        return Err(QuoteError::Version(version));
    }
    let tee_type = u32::from_le_bytes(array(raw, 4));
    if tee_type != TEE_TYPE_TDX {
        return Err(QuoteError::TeeType(tee_type));
    }
    Ok(TdReport {
        tee_tcb_svn: array(raw, 48),
        mr_seam: array(raw, 64),
        td_attributes: u64::from_le_bytes(array(raw, 168)),
        mr_td: array(raw, 184),
        mr_config_id: array(raw, 232),
        rtmr: [
            array(raw, 376),
            array(raw, 424),
            array(raw, 472),
            array(raw, 520),
        ],
        report_data: array(raw, 568),
    })
}

/// Offsets a quote builder (the simulator) writes to.
pub mod offsets {
    pub const TD_ATTRIBUTES: usize = 168;
    pub const MR_TD: usize = 184;
    pub const MR_CONFIG_ID: usize = 232;
    pub const RTMR0: usize = 376;
    pub const REPORT_DATA: usize = 568;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venice::Attestation;

    fn captured() -> Attestation {
        let body = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/capture/0001_api.venice.ai_api_v1_tee_attestation.body"
        ))
        .unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    #[test]
    fn parses_the_captured_quote() {
        let a = captured();
        let r = parse(&decode_quote_text(a.quote_text().unwrap()).unwrap()).unwrap();
        assert!(!r.debug());
        assert_eq!(
            hex::encode(&r.report_data[..20]),
            "6525e128afcffebf7eed05d485d7be983cdae934"
        );
        assert_eq!(
            hex::encode(&r.report_data[32..]),
            "ac82eb750ec4cfbb273f90d33567776bfae8657e2a43f6dff2f3adad9b86095a"
        );
    }

    #[test]
    fn base64_and_hex_decode_to_the_same_bytes() {
        let raw = decode_quote_text(captured().quote_text().unwrap()).unwrap();
        let b64 = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(&raw)
        };
        assert_eq!(decode_quote_text(&b64).unwrap(), raw);
    }

    #[test]
    fn rejects_wrong_shapes() {
        let raw = decode_quote_text(captured().quote_text().unwrap()).unwrap();
        assert_eq!(parse(&raw[..600]).unwrap_err(), QuoteError::TooShort(600));
        let mut v3 = raw.clone();
        v3[0] = 3;
        assert_eq!(parse(&v3).unwrap_err(), QuoteError::Version(3));
        let mut sgx = raw.clone();
        sgx[4] = 0;
        assert_eq!(parse(&sgx).unwrap_err(), QuoteError::TeeType(0));
        assert_eq!(
            decode_quote_text("not a quote!").unwrap_err(),
            QuoteError::Encoding
        );
    }
}
