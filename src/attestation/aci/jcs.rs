//! RFC 8785 JSON Canonicalization Scheme, the form ACI hashes and signs its own documents in
//! (keyset, receipts, sessions). The served encoding is free; what counts is this form of the
//! parsed document. Our JSON values keep insertion order, so members are sorted here.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The canonical bytes of `v`.
pub fn canonical(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(v, &mut out);
    out
}

/// `sha256:<lowercase hex>` of the canonical form, as ACI writes digests.
pub fn digest(v: &Value) -> String {
    sha256_tagged(&canonical(v))
}

/// `sha256:<lowercase hex>` of raw bytes.
pub fn sha256_tagged(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn write(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // Members sorted by their names' UTF-16 code units (RFC 8785 §3.2.3).
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write(v, out);
            }
            out.push(b'}');
        }
    }
}

/// serde_json escapes exactly as JCS does: `"`, `\`, the short forms \b \f \n \r \t, other
/// controls as lowercase `\u00xx`, everything else (non-ASCII included) as is.
fn write_string(s: &str, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// Integers as they are; other numbers in ECMAScript's shortest form (ACI's documents use
/// integers only, so this is for completeness).
fn write_number(n: &serde_json::Number, out: &mut Vec<u8>) {
    if n.is_i64() || n.is_u64() {
        out.extend_from_slice(n.to_string().as_bytes());
        return;
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f.fract() == 0.0 && f.abs() < 1e21 {
        // 1.0 → "1", -0.0 → "0".
        out.extend_from_slice(format!("{}", f as i128).as_bytes());
        return;
    }
    // Rust prints the shortest round-trip digits; ECMAScript signs positive exponents.
    let text = format!("{f:e}");
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let formatted = if (-6..21).contains(&exp) {
        format!("{f}")
    } else if exp > 0 {
        format!("{mantissa}e+{exp}")
    } else {
        format!("{mantissa}e{exp}")
    };
    out.extend_from_slice(formatted.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(v: &Value) -> String {
        String::from_utf8(canonical(v)).unwrap()
    }

    #[test]
    fn members_sort_and_whitespace_goes() {
        let v: Value = serde_json::from_str(
            r#"{ "b": [1, {"z": null, "a": true}], "a": "x",
                 "\u00e9": 1, "\ud83d\ude00": 2, "\uffff": 3 }"#,
        )
        .unwrap();
        // UTF-16 order: U+00E9 < U+D83D (the emoji's high surrogate) < U+FFFF.
        assert_eq!(
            text(&v),
            "{\"a\":\"x\",\"b\":[1,{\"a\":true,\"z\":null}],\"é\":1,\"😀\":2,\"\u{ffff}\":3}"
        );
    }

    #[test]
    fn strings_escape_as_rfc_8785_says() {
        assert_eq!(
            text(&json!("a\"b\\c\n\t\u{1}\u{7f}é/")),
            "\"a\\\"b\\\\c\\n\\t\\u0001\u{7f}é/\""
        );
    }

    #[test]
    fn numbers_in_ecmascript_form() {
        let v: Value =
            serde_json::from_str("[0, -1, 1800000000, 1.0, -0.0, 0.5, 1e21, 1e-7]").unwrap();
        assert_eq!(text(&v), "[0,-1,1800000000,1,0,0.5,1e+21,1e-7]");
    }
}
