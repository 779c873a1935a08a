//! The workload inside the trust domain (dstack): the event log replayed into RTMR0–3, the
//! app compose bound by MRCONFIGID, and what the compose pins.

use crate::attestation::quote::TdReport;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha384};

#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub imr: u32,
    pub digest: String,
    #[serde(default)]
    pub event_type: u64,
    #[serde(default)]
    pub event: String,
    #[serde(default)]
    pub event_payload: String,
}

/// The event log: a JSON list, or a string holding one.
pub fn parse_event_log(v: &Value) -> Result<Vec<Event>, String> {
    let list = match v {
        Value::String(s) => {
            serde_json::from_str(s).map_err(|e| format!("event log string is not JSON: {e}"))?
        }
        other => other.clone(),
    };
    serde_json::from_value(list).map_err(|e| format!("event log: {e}"))
}

/// RTMR[i] = SHA384(RTMR[i] ‖ digest) for each event of register i, in order, from zero.
pub fn replay(events: &[Event]) -> Result<[[u8; 48]; 4], String> {
    let mut rtmr = [[0u8; 48]; 4];
    for (n, e) in events.iter().enumerate() {
        let i = e.imr as usize;
        if i >= 4 {
            return Err(format!(
                "event {n} extends register {i}, which does not exist"
            ));
        }
        let digest = hex::decode(&e.digest).map_err(|_| format!("event {n} digest is not hex"))?;
        if digest.len() != 48 {
            return Err(format!(
                "event {n} digest has {} bytes, not 48",
                digest.len()
            ));
        }
        let mut h = Sha384::new();
        h.update(rtmr[i]);
        h.update(&digest);
        rtmr[i] = h.finalize().into();
    }
    Ok(rtmr)
}

pub fn check_rtmrs(report: &TdReport, events: &[Event]) -> Result<(), String> {
    let replayed = replay(events)?;
    match (0..4).find(|&i| replayed[i] != report.rtmr[i]) {
        Some(i) => Err(format!(
            "RTMR{i} replayed from the event log does not match the quote"
        )),
        None => Ok(()),
    }
}

/// dstack binds the app compose as MRCONFIGID = 0x01 ‖ sha256(app_compose) ‖ zero padding.
pub fn check_mr_config_id(report: &TdReport, app_compose: &str) -> Result<(), String> {
    let mut expected = [0u8; 48];
    expected[0] = 0x01;
    expected[1..33].copy_from_slice(&Sha256::digest(app_compose.as_bytes()));
    if report.mr_config_id == expected {
        Ok(())
    } else {
        Err("MRCONFIGID does not bind this app compose".into())
    }
}

/// What the attested workload is, for the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Workload {
    pub app_id: Option<String>,
    pub compose_hash: String,
    pub os_image_hash: Option<String>,
    /// Container images the compose pins.
    pub images: Vec<String>,
}

/// `info` (an object or a JSON string) → the app compose text and the workload summary.
pub fn describe(info: &Value) -> Result<(String, Workload), String> {
    let info: Value = match info {
        Value::String(s) => {
            serde_json::from_str(s).map_err(|e| format!("info is not JSON: {e}"))?
        }
        other => other.clone(),
    };
    let compose = info
        .pointer("/tcb_info/app_compose")
        .and_then(Value::as_str)
        .or_else(|| info.get("app_compose").and_then(Value::as_str))
        .ok_or("attestation info has no app_compose")?
        .to_string();
    let text = |k: &str| info.get(k).and_then(Value::as_str).map(str::to_string);
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
