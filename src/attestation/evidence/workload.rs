//! The workload inside the trust domain (dstack): the event log replayed into RTMR0–3, the
//! identity its RTMR3 events measure (app id, compose hash, OS image, KMS), the app compose
//! bound by MRCONFIGID, and what the compose runs.

use super::compose::AppCompose;
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
    #[serde(default, deserialize_with = "optional_number")]
    pub(crate) event_type: Option<u64>,
    /// A runtime event's name (`app-id`, `compose-hash`, …).
    #[serde(default)]
    pub(crate) event: Option<String>,
    /// Its payload, hex.
    #[serde(default)]
    pub(crate) event_payload: Option<String>,
}

/// dstack's runtime events, extended into RTMR3 by the guest.
const RUNTIME_EVENT: u64 = 0x0800_0001;

fn optional_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.as_ref().and_then(framing::number))
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
            Some(describe_compose(field, info.as_deref(), report))
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

/// The runtime events (RTMR3) whose digest is their content's, `SHA384(type as u32 LE ‖ ":"
/// ‖ name ‖ ":" ‖ payload)`, by name: once the log replays to the quote's RTMRs, these names
/// and payloads are measured. An event whose digest is not its content's says nothing; a
/// name that occurs twice is ambiguous and left out.
pub(crate) fn runtime_events(events: &[Event]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut found: std::collections::BTreeMap<String, Option<Vec<u8>>> = Default::default();
    for e in events
        .iter()
        .filter(|e| e.imr == 3 && e.event_type == Some(RUNTIME_EVENT))
    {
        let (Some(name), Some(payload)) = (&e.event, &e.event_payload) else {
            continue;
        };
        let Ok(payload) = framing::hex_bytes(payload) else {
            continue;
        };
        let mut h = Sha384::new();
        h.update((RUNTIME_EVENT as u32).to_le_bytes());
        h.update(b":");
        h.update(name.as_bytes());
        h.update(b":");
        h.update(&payload);
        let carried = framing::hex_bytes(&e.digest).is_ok_and(|d| d[..] == h.finalize()[..]);
        if carried {
            found
                .entry(name.clone())
                .and_modify(|v| *v = None)
                .or_insert(Some(payload));
        }
    }
    found
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect()
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

/// A value of the report and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Sourced {
    pub(crate) value: String,
    pub(crate) from: &'static str,
}

pub(crate) const FROM_RTMR3: &str = "RTMR3 event log (measured)";
pub(crate) const FROM_INFO: &str = "info (Venice's claim, not measured)";
pub(crate) const FROM_VM_CONFIG: &str = "vm_config (Venice's claim, not measured)";
pub(crate) const FROM_CONFIG: &str = "attestation.os_images";

/// What the attested workload is, for the report: each identity value with its source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Workload {
    pub(crate) app_id: Option<Sourced>,
    /// sha256 of the app compose MRCONFIGID binds.
    pub(crate) compose_hash: String,
    pub(crate) os_image_hash: Option<Sourced>,
    /// The OS image's name: from `attestation.os_images` for a measured hash, else as
    /// Venice's `vm_config` claims it.
    pub(crate) os_image: Option<Sourced>,
    /// dstack names its development images `dstack-dev-…`: SSH and console access.
    pub(crate) dev_os_image: bool,
    pub(crate) instance_id: Option<Sourced>,
    /// The key provider (dstack's KMS, its public key) and the KMS measurement.
    pub(crate) key_provider: Option<Sourced>,
    pub(crate) mr_kms: Option<Sourced>,
    /// Container images the compose runs, resolved as the CVM resolves them.
    pub(crate) images: Vec<String>,
    /// The compose read as what it runs (`None` when it does not parse: `compose_error`).
    pub(crate) compose: Option<AppCompose>,
    pub(crate) compose_error: Option<String>,
}

impl Workload {
    /// Takes the identity RTMR3 measures in place of what `info` claims. Fails when its
    /// compose-hash event names another compose than the one MRCONFIGID binds.
    pub(crate) fn measure(
        &mut self,
        events: &std::collections::BTreeMap<String, Vec<u8>>,
    ) -> Result<(), EvidenceError> {
        let hex_of = |name: &str| events.get(name).map(hex::encode);
        let measured = |value: String| Sourced {
            value,
            from: FROM_RTMR3,
        };
        if let Some(h) = hex_of("compose-hash") {
            if h != self.compose_hash {
                return Err(EvidenceError::Invalid(format!(
                    "RTMR3's compose-hash event measures compose {h}, not the {} MRCONFIGID binds",
                    self.compose_hash
                )));
            }
        }
        let replace = |slot: &mut Option<Sourced>, value: Option<String>| {
            if let Some(v) = value {
                *slot = Some(measured(v));
            }
        };
        replace(&mut self.app_id, hex_of("app-id"));
        replace(&mut self.os_image_hash, hex_of("os-image-hash"));
        replace(&mut self.instance_id, hex_of("instance-id"));
        replace(&mut self.mr_kms, hex_of("mr-kms"));
        replace(
            &mut self.key_provider,
            events
                .get("key-provider")
                .map(|p| String::from_utf8_lossy(p).into_owned()),
        );
        Ok(())
    }

    /// Names the OS image: from the operator's table when its hash is measured and listed,
    /// else from Venice's `vm_config` claim when that claim names the same hash.
    pub(crate) fn name_os_image(
        &mut self,
        known: &std::collections::BTreeMap<String, String>,
        vm_config: Option<&Value>,
    ) {
        let Some(hash) = &self.os_image_hash else {
            return;
        };
        let listed = (hash.from == FROM_RTMR3)
            .then(|| {
                known
                    .iter()
                    .find(|(h, _)| h.trim_start_matches("0x").eq_ignore_ascii_case(&hash.value))
            })
            .flatten();
        self.os_image = match listed {
            Some((_, name)) => Some(Sourced {
                value: name.clone(),
                from: FROM_CONFIG,
            }),
            None => vm_config
                .filter(|v| {
                    v.get("os_image_hash")
                        .and_then(Value::as_str)
                        .is_some_and(|h| h.eq_ignore_ascii_case(&hash.value))
                })
                .and_then(|v| v.get("image").and_then(Value::as_str))
                .map(|name| Sourced {
                    value: name.to_string(),
                    from: FROM_VM_CONFIG,
                }),
        };
        self.dev_os_image = self
            .os_image
            .as_ref()
            .is_some_and(|n| n.value.to_ascii_lowercase().contains("-dev"));
    }
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
    describe_compose(field, Some(&info), report)
}

/// The compose text `report` binds among the forms `field` may have been hashed as (or the
/// first, which then fails MRCONFIGID), and the workload it describes.
pub(crate) fn describe_compose(
    field: &Value,
    info: Option<&Value>,
    report: &TdReport,
) -> Result<(String, Workload), EvidenceError> {
    let mut texts = compose_texts(field);
    if texts.is_empty() {
        return Err("app_compose is neither text nor an object".into());
    }
    let bound = texts
        .iter()
        .position(|t| mr_config_id(t) == report.mr_config_id)
        .unwrap_or(0);
    let compose = texts.swap_remove(bound);
    let claimed = |k: &str| {
        info?.get(k).and_then(Value::as_str).map(|v| Sourced {
            value: v.to_string(),
            from: FROM_INFO,
        })
    };
    let (parsed, compose_error) = match AppCompose::parse(&compose) {
        Ok(c) => (Some(c), None),
        Err(e) => (None, Some(e)),
    };
    let images = parsed
        .iter()
        .flat_map(|c| &c.services)
        .filter_map(|s| Some(s.image.as_ref()?.value.clone()))
        .collect();
    let workload = Workload {
        app_id: claimed("app_id"),
        compose_hash: hex::encode(Sha256::digest(compose.as_bytes())),
        os_image_hash: claimed("os_image_hash"),
        instance_id: claimed("instance_id"),
        images,
        compose: parsed,
        compose_error,
        ..Workload::default()
    };
    Ok((compose, workload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn measured_os(hash: &str) -> Workload {
        Workload {
            os_image_hash: Some(Sourced {
                value: hash.into(),
                from: FROM_RTMR3,
            }),
            ..Workload::default()
        }
    }

    #[test]
    fn os_images_are_named_by_measurement_first() {
        let known = crate::config::attestation::known_os_images();
        let dev = "0e09f2bcb510c682b461d16b97192c710886db582852991e05146291063f890b";
        // Venice's vm_config calls it a production image: the measured hash says otherwise.
        let claim = json!({"os_image_hash": dev, "image": "dstack-0.5.9"});
        let mut w = measured_os(dev);
        w.name_os_image(&known, Some(&claim));
        assert_eq!(w.os_image.as_ref().unwrap().value, "dstack-dev-0.5.9");
        assert_eq!(w.os_image.as_ref().unwrap().from, FROM_CONFIG);
        assert!(w.dev_os_image);
        // An unlisted hash: named as claimed, and said to be a claim.
        let other = "ab".repeat(32);
        let mut w = measured_os(&other);
        w.name_os_image(
            &known,
            Some(&json!({"os_image_hash": other, "image": "dstack-dev-0.6.0"})),
        );
        assert_eq!(w.os_image.as_ref().unwrap().from, FROM_VM_CONFIG);
        assert!(w.dev_os_image);
        // A claim about another hash names nothing.
        let mut w = measured_os(&other);
        w.name_os_image(&known, Some(&claim));
        assert!(w.os_image.is_none() && !w.dev_os_image);
    }
}
