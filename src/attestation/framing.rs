//! Liberal decoding of the attestation's framing: the parts no signature covers. Real
//! attestations drift (NULs after a PEM chain, CRLF, `0x` and upper-case hex, base64 with or
//! without padding or line breaks, nested payloads as JSON strings or objects), and a strict
//! parser would refuse a genuine enclave for it. What these functions return is exactly the
//! bytes a signature or hash is then checked over, so accepting framing never relaxes a check.

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde_json::Value;
use std::borrow::Cow;
use x509_cert::der::Decode;
use x509_cert::Certificate;

/// Characters that frame a value without being part of it.
fn is_padding(c: char) -> bool {
    c.is_whitespace() || c == '\0'
}

fn trim(s: &str) -> &str {
    s.trim_matches(is_padding)
}

/// Hex with optional `0x`/`0X`, either case, surrounding whitespace or NULs.
pub(crate) fn hex_bytes(s: &str) -> Result<Vec<u8>, String> {
    let t = trim(s);
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    hex::decode(t).map_err(|_| "not hex".to_string())
}

/// Whether a hex field names exactly `bytes`.
pub(crate) fn hex_matches(s: &str, bytes: &[u8]) -> bool {
    hex_bytes(s).is_ok_and(|b| b == bytes)
}

const INDIFFERENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, INDIFFERENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, INDIFFERENT);

/// Base64 (standard or URL-safe alphabet), padded or not, with line breaks or not.
pub fn base64_bytes(s: &str) -> Result<Vec<u8>, String> {
    let compact: String = s.chars().filter(|c| !is_padding(*c)).collect();
    let engine = if compact.contains(['-', '_']) {
        &URL_SAFE
    } else {
        &STANDARD
    };
    engine
        .decode(compact.as_bytes())
        .map_err(|_| "not base64".to_string())
}

const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
const END: &[u8] = b"-----END CERTIFICATE-----";

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Every certificate of a PEM chain, in order. Text outside the blocks (explanatory text,
/// whitespace, trailing NULs) is ignored as RFC 7468 allows; line ends may be LF or CRLF. Each
/// block must hold exactly one DER certificate: the signed bytes are taken as they are.
pub(crate) fn pem_certificates(pem: &[u8]) -> Result<Vec<Certificate>, String> {
    let mut certs = Vec::new();
    let mut rest = pem;
    while let Some(start) = find(rest, BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let end = find(body, END).ok_or_else(|| {
            format!(
                "certificate {} has no END CERTIFICATE line",
                certs.len() + 1
            )
        })?;
        let text = std::str::from_utf8(&body[..end])
            .map_err(|_| format!("certificate {} is not text", certs.len() + 1))?;
        let der =
            base64_bytes(text).map_err(|e| format!("certificate {}: {e}", certs.len() + 1))?;
        let cert = Certificate::from_der(&der)
            .map_err(|e| format!("certificate {}: {e}", certs.len() + 1))?;
        certs.push(cert);
        rest = &body[end + END.len()..];
    }
    if certs.is_empty() {
        return Err("no PEM certificate".into());
    }
    Ok(certs)
}

/// A PEM chain sent as base64 of the PEM text (Venice's form) or, liberally, as PEM itself.
pub fn pem_field(s: &str) -> Result<Vec<Certificate>, String> {
    if trim(s).starts_with("-----BEGIN") {
        return pem_certificates(s.as_bytes());
    }
    pem_certificates(&base64_bytes(s)?)
}

/// A PEM chain field in canonical form (base64 of LF-framed PEM, nothing after the last
/// block), for services that expect exactly what Venice first served.
pub(crate) fn canonical_pem_field(s: &str) -> Result<String, String> {
    use x509_cert::der::Encode;
    let mut pem = String::new();
    for cert in pem_field(s)? {
        let der = cert.to_der().map_err(|e| e.to_string())?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(pem))
}

/// A base64 field in canonical form (standard alphabet, padded, one line).
pub(crate) fn canonical_base64(s: &str) -> Result<String, String> {
    Ok(base64::engine::general_purpose::STANDARD.encode(base64_bytes(s)?))
}

/// A nested payload sent as a JSON object (or list) or as a string holding one.
pub(crate) fn nested<'a>(v: &'a Value, what: &str) -> Result<Cow<'a, Value>, String> {
    match v {
        Value::String(s) => serde_json::from_str(trim(s))
            .map(Cow::Owned)
            .map_err(|e| format!("{what} is a string that is not JSON: {e}")),
        Value::Null => Err(format!("{what} is null")),
        other => Ok(Cow::Borrowed(other)),
    }
}

/// A number sent as a JSON number or a decimal (or `0x` hex) string.
pub(crate) fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            let t = trim(s);
            match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(h) => u64::from_str_radix(h, 16).ok(),
                None => t.parse().ok(),
            }
        }
        _ => None,
    }
}

/// Seconds since the Unix epoch for an RFC 3339 UTC time, as PCS collateral, Sigstore
/// roots and captures write them (`2026-04-24T01:58:41.5Z`).
pub fn unix_time(text: &str) -> Option<u64> {
    let (date, time) = text.trim().split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim_end_matches('Z');
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let sec = t.next()?.split('.').next()?.parse::<i64>().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + min * 60 + sec).ok()
}

/// DER of the first PEM block (a certificate or a public key) in a PEM text.
pub(crate) fn pem_to_der(pem: &str) -> Result<Vec<u8>, String> {
    let mut lines = pem.lines().skip_while(|l| !l.starts_with("-----BEGIN"));
    if lines.next().is_none() {
        return Err("no PEM block (-----BEGIN …)".into());
    }
    let body: String = lines.take_while(|l| !l.starts_with("-----END")).collect();
    match base64::engine::general_purpose::STANDARD.decode(body.trim()) {
        Ok(der) if !der.is_empty() => Ok(der),
        _ => Err("the PEM block is not base64 DER".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A configured root that is no PEM at all is refused, not read as an empty key.
    #[test]
    fn pem_blocks_are_required() {
        let der = pem_to_der("-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n");
        assert_eq!(der, Ok(vec![0, 1, 2]));
        assert!(pem_to_der("vm\n").is_err());
        assert!(pem_to_der("").is_err());
        assert!(pem_to_der("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n").is_err());
        assert!(
            pem_to_der("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n").is_err()
        );
    }

    #[test]
    fn times() {
        assert_eq!(unix_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_time("2026-04-24T01:58:41.564682Z"),
            Some(1_776_995_921)
        );
        assert_eq!(unix_time("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(unix_time("yesterday"), None);
    }

    #[test]
    fn hex_forms() {
        for s in ["abCD", "0xabcd", "0XABCD", " abcd\n", "abcd\0\0"] {
            assert_eq!(hex_bytes(s).unwrap(), [0xab, 0xcd], "{s:?}");
        }
        assert!(hex_bytes("abc").is_err());
        assert!(hex_bytes("0xzz").is_err());
        assert!(hex_matches("0xAB", &[0xab]));
        assert!(!hex_matches("ab", &[0xac]));
    }

    #[test]
    fn base64_forms() {
        let data = b"any carnal pleasure.";
        for s in [
            "YW55IGNhcm5hbCBwbGVhc3VyZS4=",
            "YW55IGNhcm5hbCBwbGVhc3VyZS4",
            "YW55IGNhcm5h\r\nbCBwbGVhc3VyZS4=\n",
        ] {
            assert_eq!(base64_bytes(s).unwrap(), data, "{s:?}");
        }
        assert_eq!(base64_bytes("-_8").unwrap(), [0xfb, 0xff]);
        assert!(base64_bytes("a").is_err());
        assert!(base64_bytes("!!!!").is_err());
    }

    #[test]
    fn nested_forms() {
        let obj = json!({"a": 1});
        assert_eq!(*nested(&obj, "x").unwrap(), obj);
        assert_eq!(*nested(&json!(" {\"a\": 1}\n"), "x").unwrap(), obj);
        assert!(nested(&json!("{"), "x").is_err());
        assert!(nested(&Value::Null, "x").is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(number(&json!(3)), Some(3));
        assert_eq!(number(&json!(" 3 ")), Some(3));
        assert_eq!(number(&json!("0x80000001")), Some(0x8000_0001));
        assert_eq!(number(&json!(-1)), None);
        assert_eq!(number(&json!("three")), None);
    }

    #[test]
    fn canonical_forms_undo_drift() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let capture: Value = serde_json::from_slice(
            &std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/capture/0001_api.venice.ai_api_v1_tee_attestation.body"
            ))
            .unwrap(),
        )
        .unwrap();
        let payload: Value =
            serde_json::from_str(capture["nvidia_payload"].as_str().unwrap()).unwrap();
        let original = payload["evidence_list"][0]["certificate"].as_str().unwrap();
        let mut pem = b64.decode(original).unwrap();
        pem.extend_from_slice(b"\0\0\0");
        let drifted = b64.encode(&pem).replace('=', "");
        assert_eq!(canonical_pem_field(&drifted).unwrap(), original);
        assert_eq!(canonical_base64("YW55\nIGNh").unwrap(), "YW55IGNh");
    }

    #[test]
    fn pem_without_certificates_or_end() {
        assert!(pem_certificates(b"nothing here").is_err());
        assert!(pem_certificates(b"-----BEGIN CERTIFICATE-----\nMIIB").is_err());
        assert!(
            pem_certificates(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")
                .is_err()
        );
    }
}
