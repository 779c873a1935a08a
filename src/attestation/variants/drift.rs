//! Drifted framings of an attestation response, as real Venice attestations have been seen
//! (or could plausibly be) served: the same signed evidence in other clothes. The simulator
//! serves them on request (`Script::attestation_drift`), and the drift suite applies them to
//! the real capture; a verifier must accept every one.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Drift {
    /// NUL bytes after each GPU chain's last `-----END CERTIFICATE-----` (Venice, mid-2026).
    PemTrailingNuls,
    /// Blank lines and spaces after each PEM block.
    PemTrailingWhitespace,
    /// CRLF line ends in the PEM chains.
    PemCrlf,
    /// GPU base64 fields without `=` padding.
    Base64Unpadded,
    /// GPU base64 fields broken into 64-column lines.
    Base64Wrapped,
    /// The TDX quote as base64 instead of hex.
    QuoteBase64,
    /// Upper-case hex in every hex field.
    UpperHex,
    /// `0x` before every hex field.
    HexPrefix,
    /// Unknown fields at every level.
    ExtraFields,
    /// `app_compose` as a JSON object instead of its text.
    AppComposeObject,
    /// `info.tcb_info` as a JSON string.
    TcbInfoString,
    /// `info` as a JSON string (ACI: `vm_config` in its other form, string or object).
    InfoString,
    /// `event_log` in its other form: a JSON string for a list, a list for a string (ACI's
    /// evidence serves it as a string).
    EventLogString,
    /// `nvidia_payload` as an object instead of a JSON string.
    NvidiaPayloadObject,
}

impl Drift {
    /// Every form, in the order they compose (framing inside a payload before the payload's
    /// own encoding changes).
    pub const ALL: [Drift; 14] = [
        Drift::PemTrailingNuls,
        Drift::PemTrailingWhitespace,
        Drift::PemCrlf,
        Drift::Base64Unpadded,
        Drift::Base64Wrapped,
        Drift::QuoteBase64,
        Drift::UpperHex,
        Drift::HexPrefix,
        Drift::ExtraFields,
        Drift::AppComposeObject,
        Drift::TcbInfoString,
        Drift::InfoString,
        Drift::EventLogString,
        Drift::NvidiaPayloadObject,
    ];
}

/// Applies `drifts` (in their composing order, whatever order they are given in).
pub fn apply_all(v: &mut Value, drifts: &[Drift]) {
    for d in Drift::ALL.iter().filter(|d| drifts.contains(d)) {
        apply(v, *d);
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Runs `f` on a payload that may be a JSON string, writing it back in the form it had.
fn in_nested(v: &mut Value, f: impl FnOnce(&mut Value)) {
    match v {
        Value::String(s) => {
            if let Ok(mut inner) = serde_json::from_str::<Value>(s) {
                f(&mut inner);
                *v = json!(inner.to_string());
            }
        }
        other => f(other),
    }
}

fn gpus(v: &mut Value, mut f: impl FnMut(&mut serde_json::Map<String, Value>)) {
    if let Some(p) = v.get_mut("nvidia_payload") {
        in_nested(p, |p| {
            for g in p["evidence_list"].as_array_mut().into_iter().flatten() {
                if let Some(g) = g.as_object_mut() {
                    f(g);
                }
            }
        });
    }
}

/// Rewrites the PEM text inside each GPU's base64 certificate chain.
fn pem_text(v: &mut Value, f: impl Fn(&str) -> String) {
    gpus(v, |g| {
        let Some(pem) = g
            .get("certificate")
            .and_then(Value::as_str)
            .and_then(|c| b64().decode(c).ok())
            .and_then(|c| String::from_utf8(c).ok())
        else {
            return;
        };
        g.insert("certificate".into(), json!(b64().encode(f(&pem))));
    });
}

fn base64_fields(v: &mut Value, f: impl Fn(&str) -> String) {
    gpus(v, |g| {
        for k in ["certificate", "evidence"] {
            if let Some(s) = g.get(k).and_then(Value::as_str) {
                let drifted = f(s);
                g.insert(k.into(), json!(drifted));
            }
        }
    });
}

fn is_hex(s: &str) -> bool {
    let s = s.strip_prefix("0x").unwrap_or(s);
    !s.is_empty() && s.len() % 2 == 0 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// ACI's `attestation.evidence`, where the layout has one.
fn aci_evidence(v: &mut Value) -> Option<&mut Value> {
    v.pointer_mut("/attestation/evidence")
        .filter(|e| e.is_object())
}

/// The event logs (dstack's root one, ACI's in the evidence), in whichever form they are.
fn event_logs(v: &mut Value, mut f: impl FnMut(&mut Value)) {
    if let Some(log) = v.get_mut("event_log") {
        f(log);
    }
    if let Some(log) = aci_evidence(v).and_then(|e| e.get_mut("event_log")) {
        f(log);
    }
}

/// A payload served as a JSON string becomes the value, a value becomes its JSON string.
fn toggle_form(x: &mut Value) {
    match x {
        Value::Null => {}
        Value::String(s) => {
            if let Ok(inner) = serde_json::from_str::<Value>(s) {
                *x = inner;
            }
        }
        other => *other = json!(other.to_string()),
    }
}

/// Rewrites every hex field the verifier reads. The keyset is not among them: it is hashed
/// as served (its canonical form), so its text is signed content, not framing.
fn hex_fields(v: &mut Value, f: impl Fn(&str) -> String) {
    let rewrite = |x: &mut Value| {
        if let Some(s) = x.as_str().filter(|s| is_hex(s)) {
            *x = json!(f(s));
        }
    };
    if let Some(a) = v.get_mut("attestation") {
        if let Some(x) = a.get_mut("report_data") {
            rewrite(x);
        }
        if let Some(e) = a.get_mut("evidence") {
            for k in ["quote", "quote_report_data"] {
                if let Some(x) = e.get_mut(k) {
                    rewrite(x);
                }
            }
        }
    }
    for k in [
        "nonce",
        "request_nonce",
        "signing_key",
        "signing_public_key",
        "signing_address",
        "intel_quote",
    ] {
        if let Some(x) = v.get_mut(k) {
            rewrite(x);
        }
    }
    if let Some(p) = v.get_mut("nvidia_payload") {
        in_nested(p, |p| {
            if let Some(n) = p.get_mut("nonce") {
                rewrite(n);
            }
        });
    }
    event_logs(v, |log| {
        in_nested(log, |log| {
            for e in log.as_array_mut().into_iter().flatten() {
                if let Some(d) = e.get_mut("digest") {
                    rewrite(d);
                }
            }
        })
    });
}

fn add_extra(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "x_future_field".into(),
            json!({"note": "unknown to this verifier", "n": 1}),
        );
    }
}

pub(crate) fn apply(v: &mut Value, drift: Drift) {
    match drift {
        Drift::PemTrailingNuls => pem_text(v, |p| format!("{p}\0\0\0\0\0")),
        Drift::PemTrailingWhitespace => pem_text(v, |p| {
            p.replace(
                "-----END CERTIFICATE-----\n",
                "-----END CERTIFICATE-----\n  \n\n",
            )
        }),
        Drift::PemCrlf => pem_text(v, |p| p.replace("\r\n", "\n").replace('\n', "\r\n")),
        Drift::Base64Unpadded => base64_fields(v, |s| s.trim_end_matches('=').to_string()),
        Drift::Base64Wrapped => base64_fields(v, |s| {
            let lines: Vec<&str> = s
                .as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
                .collect();
            lines.join("\n") + "\n"
        }),
        Drift::QuoteBase64 => quotes_in_base64(v),
        Drift::UpperHex => hex_fields(v, |s| match s.strip_prefix("0x") {
            Some(h) => format!("0x{}", h.to_ascii_uppercase()),
            None => s.to_ascii_uppercase(),
        }),
        Drift::HexPrefix => hex_fields(v, |s| {
            if s.starts_with("0x") {
                s.to_string()
            } else {
                format!("0x{s}")
            }
        }),
        Drift::ExtraFields => extra_fields_everywhere(v),
        Drift::AppComposeObject => {
            if let Some(c) = aci_evidence(v).and_then(|e| e.get_mut("app_compose")) {
                parse_in_place(c);
            }
            if let Some(info) = v.get_mut("info") {
                in_nested(info, |info| {
                    if let Some(t) = info.get_mut("tcb_info") {
                        in_nested(t, |t| {
                            if let Some(c) = t.get_mut("app_compose") {
                                parse_in_place(c);
                            }
                        });
                    }
                });
            }
        }
        Drift::TcbInfoString => {
            if let Some(info) = v.get_mut("info") {
                in_nested(info, |info| {
                    if let Some(t) = info.get_mut("tcb_info").filter(|t| t.is_object()) {
                        *t = json!(t.to_string());
                    }
                });
            }
        }
        Drift::InfoString => {
            if let Some(x) = v.get_mut("info").filter(|x| !x.is_string()) {
                *x = json!(x.to_string());
            }
            if let Some(x) = aci_evidence(v).and_then(|e| e.get_mut("vm_config")) {
                toggle_form(x);
            }
        }
        Drift::EventLogString => {
            if let Some(x) = v.get_mut("event_log").filter(|x| !x.is_string()) {
                *x = json!(x.to_string());
            }
            if let Some(x) = aci_evidence(v).and_then(|e| e.get_mut("event_log")) {
                toggle_form(x);
            }
        }
        Drift::NvidiaPayloadObject => {
            if let Some(p) = v.get_mut("nvidia_payload") {
                parse_in_place(p);
            }
        }
    }
}

/// The quotes, hex as served, in base64 instead.
fn quotes_in_base64(v: &mut Value) {
    let to_base64 = |q: &mut Value| {
        if let Some(raw) = q.as_str().and_then(|q| hex::decode(q).ok()) {
            *q = json!(b64().encode(raw));
        }
    };
    if let Some(q) = v.get_mut("intel_quote") {
        to_base64(q);
    }
    if let Some(q) = aci_evidence(v).and_then(|e| e.get_mut("quote")) {
        to_base64(q);
    }
}

/// A field this verifier does not know in every object the evidence holds.
fn extra_fields_everywhere(v: &mut Value) {
    add_extra(v);
    if let Some(p) = v.get_mut("nvidia_payload") {
        in_nested(p, add_extra);
    }
    gpus(v, |g| {
        g.insert("x_future_field".into(), json!([1, 2, 3]));
    });
    event_logs(v, |log| {
        in_nested(log, |log| {
            log.as_array_mut().into_iter().flatten().for_each(add_extra)
        })
    });
    if let Some(a) = v.get_mut("attestation") {
        add_extra(a);
    }
    if let Some(e) = aci_evidence(v) {
        add_extra(e);
    }
    if let Some(info) = v.get_mut("info") {
        in_nested(info, |info| {
            add_extra(info);
            if let Some(t) = info.get_mut("tcb_info") {
                in_nested(t, add_extra);
            }
        });
    }
}

/// A JSON document served as a string, served as the object instead.
fn parse_in_place(x: &mut Value) {
    if let Some(obj) = x.as_str().and_then(|s| serde_json::from_str(s).ok()) {
        *x = obj;
    }
}
