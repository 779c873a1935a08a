//! Logging set-up. `RUST_LOG` chooses the levels, but other crates' records are capped at
//! `info` whatever it says: at `debug` Pingora logs the upstream request header (the Venice
//! API key), at `trace` the client's (its token, the session id), and hyper, h2 and friends
//! log headers and bodies too. The proxy's own code never
//! logs secrets or conversation text at any level (tests/e2e/privacy.rs scans for it).

use log::{LevelFilter, Log, Metadata, Record};

struct Capped(env_logger::Logger);

fn own(target: &str) -> bool {
    target.starts_with("venice_e2ee_proxy") || target == "access" || target == "audit"
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

/// Installs the process's logger (`RUST_LOG`, default `info`).
pub fn init() {
    let logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).build();
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
