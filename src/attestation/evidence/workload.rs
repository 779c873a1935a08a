//! The workload inside the trust domain (dstack): the event log replayed into RTMR0–3, the
//! app compose bound by MRCONFIGID, and what the compose pins.

use super::EvidenceError;
use crate::attestation::framing;
use crate::attestation::quote::TdReport;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha384};

#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    #[serde(deserialize_with = "number_or_string")]
    pub(crate) imr: u64,
    pub(crate) digest: String,
}

/// Integers come as JSON numbers or, liberally, as decimal or `0x` strings.
fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = Value::deserialize(d)?;
    framing::number(&v)
        .ok_or_else(|| serde::de::Error::custom(format!("{v} is not a non-negative integer")))
}

/// The event log: a JSON list, or a string holding one.
pub(crate) fn parse_event_log(v: &Value) -> Result<Vec<Event>, EvidenceError> {
    let list = framing::nested(v, "event log")?;
    Vec::<Event>::deserialize(list.as_ref()).map_err(|e| format!("event log: {e}").into())
}

/// The event log at the root of the attestation, in ACI's `attestation.evidence`, or inside
/// `info.tcb_info`; `None` when the attestation carries none anywhere.
pub fn find_event_log(raw: &Value) -> Option<Result<Vec<Event>, EvidenceError>> {
    // ACI evidence writes an absent log as `null`; dstack's root field is read as served.
    if let Some(v) = raw.get("event_log").or_else(|| {
        raw.pointer("/attestation/evidence/event_log")
            .filter(|v| !v.is_null())
    }) {
        return Some(parse_event_log(v));
    }
    let tcb = raw.get("info").map(|info| {
        let info = framing::nested(info, "info")?;
        match info.get("tcb_info") {
            Some(t) => framing::nested(t, "tcb_info").map(|t| t.get("event_log").cloned()),
            None => Ok(None),
        }
    });
    match tcb {
        Some(Ok(Some(v))) if !v.is_null() => Some(parse_event_log(&v)),
        Some(Err(e)) => Some(Err(e.into())),
        _ => None,
    }
}

/// The compose and workload from ACI's `attestation.evidence.app_compose` when present (with
/// `info`, if any, for the app and OS image ids), else from dstack's `info`; `None` when the
/// attestation carries neither.
pub(crate) fn find_compose(
    raw: &Value,
    report: &TdReport,
) -> Option<Result<(String, Workload), EvidenceError>> {
    let info = raw.get("info");
    match raw
        .pointer("/attestation/evidence/app_compose")
        .filter(|v| !v.is_null())
    {
        Some(field) => {
            let info = match info.map(|i| framing::nested(i, "info")).transpose() {
                Ok(i) => i,
                Err(e) => return Some(Err(e.into())),
            };
            Some(describe_compose(field, info.as_deref(), report).map_err(Into::into))
        }
        None => info.map(|i| describe(i, report)),
    }
}

/// RTMR[i] = SHA384(RTMR[i] ‖ digest) for each event of register i, in order, from zero.
pub(crate) fn replay(events: &[Event]) -> Result<[[u8; 48]; 4], EvidenceError> {
    let mut rtmr = [[0u8; 48]; 4];
    for (n, e) in events.iter().enumerate() {
        let i = usize::try_from(e.imr)
            .ok()
            .filter(|i| *i < 4)
            .ok_or_else(|| format!("event {n} extends register {}, which does not exist", e.imr))?;
        let digest =
            framing::hex_bytes(&e.digest).map_err(|_| format!("event {n} digest is not hex"))?;
        if digest.len() != 48 {
            return Err(format!("event {n} digest has {} bytes, not 48", digest.len()).into());
        }
        let mut h = Sha384::new();
        h.update(rtmr[i]);
        h.update(&digest);
        rtmr[i] = h.finalize().into();
    }
    Ok(rtmr)
}

pub(crate) fn check_rtmrs(report: &TdReport, events: &[Event]) -> Result<(), EvidenceError> {
    let replayed = replay(events)?;
    match (0..4).find(|&i| replayed[i] != report.rtmr[i]) {
        Some(i) => {
            Err(format!("RTMR{i} replayed from the event log does not match the quote").into())
        }
        None => Ok(()),
    }
}

/// dstack's MRCONFIGID for a compose: 0x01 ‖ sha256(app_compose) ‖ zero padding.
fn mr_config_id(app_compose: &str) -> [u8; 48] {
    let mut id = [0u8; 48];
    id[0] = 0x01;
    id[1..33].copy_from_slice(&Sha256::digest(app_compose.as_bytes()));
    id
}

pub(crate) fn check_mr_config_id(
    report: &TdReport,
    app_compose: &str,
) -> Result<(), EvidenceError> {
    if report.mr_config_id == mr_config_id(app_compose) {
        Ok(())
    } else {
        Err("MRCONFIGID does not bind this app compose".into())
    }
}

/// What the attested workload is, for the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Workload {
    pub(crate) app_id: Option<String>,
    pub(crate) compose_hash: String,
    pub(crate) os_image_hash: Option<String>,
    /// Container images the compose pins.
    pub(crate) images: Vec<String>,
}

/// The texts an `app_compose` may have been hashed as. A string is the text itself; an object
/// (drifted framing) is tried in the serializations dstack tools write, compact and indented.
/// Whichever text MRCONFIGID binds is the one used, so an object never weakens the binding:
/// the bound text parses back to exactly this object.
fn compose_texts(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Object(_) => {
            let pretty = |indent: &[u8]| {
                let mut out = Vec::new();
                let fmt = serde_json::ser::PrettyFormatter::with_indent(indent);
                let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
                v.serialize(&mut ser).expect("JSON values serialize");
                String::from_utf8(out).expect("JSON is UTF-8")
            };
            vec![
                serde_json::to_string(v).expect("JSON values serialize"),
                pretty(b"    "),
                pretty(b"  "),
            ]
        }
        _ => Vec::new(),
    }
}

/// `info` (an object or a JSON string, its `tcb_info` likewise) → the app compose text that
/// `report` binds (or the first candidate, which then fails MRCONFIGID) and the workload.
pub fn describe(info: &Value, report: &TdReport) -> Result<(String, Workload), EvidenceError> {
    let info = framing::nested(info, "info")?;
    let tcb = match info.get("tcb_info") {
        Some(t) => Some(framing::nested(t, "tcb_info")?),
        None => None,
    };
    let field = tcb
        .as_deref()
        .and_then(|t| t.get("app_compose"))
        .or_else(|| info.get("app_compose"))
        .ok_or("attestation info has no app_compose")?;
    describe_compose(field, Some(&info), report).map_err(Into::into)
}

/// The compose text `report` binds among the forms `field` may have been hashed as (or the
/// first, which then fails MRCONFIGID), and the workload it describes.
pub(crate) fn describe_compose(
    field: &Value,
    info: Option<&Value>,
    report: &TdReport,
) -> Result<(String, Workload), String> {
    let mut texts = compose_texts(field);
    if texts.is_empty() {
        return Err("app_compose is neither text nor an object".into());
    }
    let bound = texts
        .iter()
        .position(|t| mr_config_id(t) == report.mr_config_id)
        .unwrap_or(0);
    let compose = texts.swap_remove(bound);
    let text = |k: &str| info?.get(k).and_then(Value::as_str).map(str::to_string);
    let images = serde_json::from_str::<Value>(&compose)
        .ok()
        .and_then(|c| {
            c.get("docker_compose_file")
                .and_then(Value::as_str)
                .map(images_of)
        })
        .unwrap_or_default();
    let workload = Workload {
        app_id: text("app_id"),
        compose_hash: hex::encode(Sha256::digest(compose.as_bytes())),
        os_image_hash: text("os_image_hash"),
        images,
    };
    Ok((compose, workload))
}

fn images_of(compose_yaml: &str) -> Vec<String> {
    let Ok(doc) = serde_yaml::from_str::<serde_yaml::Value>(compose_yaml) else {
        return Vec::new();
    };
    let Some(services) = doc.get("services").and_then(|s| s.as_mapping()) else {
        return Vec::new();
    };
    services
        .values()
        .filter_map(|s| s.get("image").and_then(|i| i.as_str()).map(str::to_string))
        .collect()
}
