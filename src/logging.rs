//! Logging set-up. `RUST_LOG` chooses the levels, but other crates' records are capped at
//! `info` whatever it says: at `debug` Pingora logs the upstream request header (the Venice
//! API key), at `trace` the client's (its token, the session id), and hyper, h2 and friends
//! log headers and bodies too. The proxy's own code never
//! logs secrets or conversation text at any level (tests/e2e/privacy.rs scans for it).
//!
//! Lines are text (`[time LEVEL target] message key=value …`) or, with `logging.format:
//! json`, one JSON object per line (`ts`, `level`, `target`, `msg`, then the record's
//! key-values: `request_id`, `peer`, `model`, … as fields).

use log::{LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static JSON: AtomicBool = AtomicBool::new(false);

/// Switches every later line to JSON (`logging.format: json`, once the configuration is
/// read) or back to text.
pub fn set_json(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

struct Capped(env_logger::Logger);

fn own(target: &str) -> bool {
    target.starts_with("venice_e2ee_proxy") || matches!(target, "access" | "audit" | "drift")
}

impl Log for Capped {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        (own(meta.target()) || meta.level() <= LevelFilter::Info) && self.0.enabled(meta)
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            self.0.log(record);
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
}

/// Collects a record's key-values as (key, value) text pairs.
struct Fields(Vec<(String, String)>);

impl<'kvs> log::kv::VisitSource<'kvs> for Fields {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        self.0.push((key.to_string(), value.to_string()));
        Ok(())
    }
}

/// One line for `record` at Unix time `now`, in the format chosen.
fn line(record: &Record<'_>, now: u64, json: bool) -> String {
    let mut fields = Fields(Vec::new());
    let _ = record.key_values().visit(&mut fields);
    let ts = rfc3339(now);
    if json {
        let mut obj = serde_json::Map::new();
        obj.insert("ts".into(), ts.into());
        obj.insert("level".into(), record.level().as_str().into());
        obj.insert("target".into(), record.target().into());
        obj.insert("msg".into(), record.args().to_string().into());
        for (k, v) in fields.0 {
            obj.entry(k).or_insert(v.into());
        }
        serde_json::Value::Object(obj).to_string()
    } else {
        let mut out = format!(
            "[{ts} {:5} {}] {}",
            record.level(),
            record.target(),
            record.args()
        );
        for (k, v) in fields.0 {
            out.push(' ');
            out.push_str(&k);
            out.push('=');
            out.push_str(&v);
        }
        out
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Installs the process's logger (`RUST_LOG`, default `info`), writing text until
/// `set_format` says otherwise.
pub fn init() {
    let logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
            .format(|buf, record| {
                writeln!(buf, "{}", line(record, now(), JSON.load(Ordering::Relaxed)))
            })
            .build();
    log::set_max_level(logger.filter());
    // Only fails when a logger is already set (tests): keep that one.
    let _ = log::set_boxed_logger(Box::new(Capped(logger)));
}

/// A Unix time as RFC 3339 (UTC), for reports, logs and pages people read.
pub fn rfc3339(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(unix).unwrap_or(i64::MAX))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// Serializes a Unix time as RFC 3339 (`#[serde(serialize_with = "…")]`).
pub(crate) fn rfc3339_field<S: serde::Serializer>(unix: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*unix))
}

/// `rfc3339_field` for an optional time (`null` when absent).
pub(crate) fn rfc3339_opt_field<S: serde::Serializer>(
    unix: &Option<u64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match unix {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(json: bool) -> String {
        let kvs: &[(&str, &str)] = &[("request_id", "r-1"), ("peer", "127.0.0.1:5")];
        line(
            &Record::builder()
                .args(format_args!("POST chat_completions status=200"))
                .level(log::Level::Info)
                .target("access")
                .key_values(&kvs)
                .build(),
            1_780_000_000,
            json,
        )
    }

    #[test]
    fn lines_carry_their_fields_as_text_or_json() {
        assert_eq!(
            render(false),
            "[2026-05-28T20:26:40Z INFO  access] POST chat_completions status=200 request_id=r-1 peer=127.0.0.1:5"
        );
        let v: serde_json::Value = serde_json::from_str(&render(true)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"ts": "2026-05-28T20:26:40Z", "level": "INFO", "target": "access",
                "msg": "POST chat_completions status=200", "request_id": "r-1", "peer": "127.0.0.1:5"})
        );
    }
}
