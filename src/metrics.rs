//! Prometheus metrics, served on the admin listener. Labels never carry message text, keys
//! or tokens: routes are fixed names and models are ids from the upstream catalogue.

use once_cell::sync::Lazy;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub(crate) requests: IntCounterVec,
    pub(crate) duration: HistogramVec,
    pub(crate) ttft: HistogramVec,
    pub(crate) active_chats: IntGauge,
    pub(crate) decrypted_chunks: IntCounter,
    pub(crate) bytes: IntCounterVec,
    pub(crate) attestation_refreshes: IntCounterVec,
    pub(crate) attestation_age: IntGaugeVec,
    pub(crate) tool_calls: IntCounterVec,
    pub(crate) tool_retries: IntCounter,
    pub(crate) client_auth_failures: IntCounter,
    /// Streams that began (status 200) and ended with an error event, by error code.
    pub(crate) stream_failures: IntCounterVec,
    pub(crate) client_connections: IntGauge,
    pub(crate) connections_refused: IntCounter,
    /// ACI receipts checked, by model and result (verified, authentic, unanchored, failed, missing).
    pub(crate) receipts: IntCounterVec,
    /// `upstream.verified` events in verified receipts, by model and result.
    pub(crate) upstream_verifications: IntCounterVec,
    pub(crate) upstream_checks: IntCounterVec,
    pub(crate) workload_reviews: IntCounterVec,
    /// Whether each model attested so far holds a usable verified key (1) or not (0).
    pub(crate) model_verified: IntGaugeVec,
    /// When each model's key in use was verified (Unix seconds).
    pub(crate) model_verified_at: IntGaugeVec,
    /// Requests refused because the model's attestation failed (or a receipt refused it),
    /// by model and check.
    pub(crate) attestation_refusals: IntCounterVec,
    /// Changes in what serves a model, by model and what changed.
    pub(crate) drift_events: IntCounterVec,
    /// Test roots, relaxed checks and switches in force (0: the pinned roots, every check).
    pub(crate) trust_relaxed: IntGauge,
    /// What `/readyz` answers (1 ready), read at scrape time.
    pub(crate) ready: IntGauge,
    /// When Venice retires each model it lists with a scheduled retirement (Unix seconds).
    pub(crate) model_retires_at: IntGaugeVec,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new();
    let name = |n: &str, h: &str| Opts::new(format!("venice_e2ee_proxy_{n}"), h);
    let hist = |n: &str, h: &str| {
        HistogramOpts::new(format!("venice_e2ee_proxy_{n}"), h).buckets(LATENCY_BUCKETS.to_vec())
    };
    let m = Metrics {
        requests: IntCounterVec::new(
            name("requests_total", "Requests by route, model and status."),
            &["route", "model", "status"],
        )?,
        duration: HistogramVec::new(
            hist("request_duration_seconds", "Whole request time, by route."),
            &["route"],
        )?,
        ttft: HistogramVec::new(
            hist(
                "upstream_first_byte_seconds",
                "Time to Venice's first response byte (TTFT), by model.",
            ),
            &["model"],
        )?,
        active_chats: IntGauge::with_opts(name("active_chats", "Chat completions in flight."))?,
        decrypted_chunks: IntCounter::with_opts(name(
            "decrypted_chunks_total",
            "Encrypted SSE chunks decrypted.",
        ))?,
        bytes: IntCounterVec::new(
            name(
                "bytes_total",
                "Body bytes, by direction (upstream_request, client_response).",
            ),
            &["direction"],
        )?,
        attestation_refreshes: IntCounterVec::new(
            name(
                "attestation_refreshes_total",
                "Attestation fetches and verifications, by model and outcome.",
            ),
            &["model", "outcome"],
        )?,
        attestation_age: IntGaugeVec::new(
            name(
                "attestation_age_seconds",
                "Age of the verified attestation in use, by model.",
            ),
            &["model"],
        )?,
        tool_calls: IntCounterVec::new(
            name(
                "tool_call_parses_total",
                "Emulated tool-call answers parsed, by outcome.",
            ),
            &["outcome"],
        )?,
        tool_retries: IntCounter::with_opts(name(
            "tool_call_retries_total",
            "Upstream retries after an invalid tool call.",
        ))?,
        client_auth_failures: IntCounter::with_opts(name(
            "client_auth_failures_total",
            "Requests refused for a missing or wrong client token.",
        ))?,
        stream_failures: IntCounterVec::new(
            name(
                "stream_failures_total",
                "Streams that began and were ended by an error event, by error code.",
            ),
            &["code"],
        )?,
        client_connections: IntGauge::with_opts(name(
            "client_connections",
            "Client connections open.",
        ))?,
        connections_refused: IntCounter::with_opts(name(
            "client_connections_refused_total",
            "Client connections refused beyond server.max_connections.",
        ))?,
        receipts: IntCounterVec::new(
            name(
                "receipts_total",
                "ACI receipts checked after answers, by model and result.",
            ),
            &["model", "result"],
        )?,
        upstream_verifications: IntCounterVec::new(
            name(
                "upstream_verifications_total",
                "The gateway's upstream.verified events in receipts, by model and result.",
            ),
            &["model", "result"],
        )?,
        upstream_checks: IntCounterVec::new(
            name(
                "upstream_checks_total",
                "The proxy's own checks of the upstreams receipts cite, by model and result (verified, refuted).",
            ),
            &["model", "result"],
        )?,
        workload_reviews: IntCounterVec::new(
            name(
                "workload_reviews_total",
                "Verifications by the workload policy's verdict on the attested compose (reviewed, unreviewed, refused), by model.",
            ),
            &["model", "result"],
        )?,
        model_verified: IntGaugeVec::new(
            name(
                "model_verified",
                "1 while the model holds a usable verified key, 0 otherwise, by model.",
            ),
            &["model"],
        )?,
        model_verified_at: IntGaugeVec::new(
            name(
                "model_verified_at_seconds",
                "When the model's key in use was verified (Unix time), by model.",
            ),
            &["model"],
        )?,
        attestation_refusals: IntCounterVec::new(
            name(
                "attestation_refusals_total",
                "Requests refused because the model's attestation did not verify (or a receipt refused it), by model and check.",
            ),
            &["model", "check"],
        )?,
        drift_events: IntCounterVec::new(
            name(
                "drift_events_total",
                "Changes in what serves a model (compose, OS image, gateway commit, keyset, upstream route, model list), by model and what.",
            ),
            &["model", "what"],
        )?,
        trust_relaxed: IntGauge::with_opts(name(
            "trust_relaxed",
            "Test roots, relaxed checks and switches in force (0: pinned roots, every check enforced).",
        ))?,
        ready: IntGauge::with_opts(name(
            "ready",
            "1 while /readyz answers ready (Venice reachable, prewarmed models verified), 0 otherwise.",
        ))?,
        model_retires_at: IntGaugeVec::new(
            name(
                "model_retires_at_seconds",
                "When Venice retires the model (Unix time; its model list's deprecation), by model: only models with a scheduled retirement.",
            ),
            &["model"],
        )?,
        registry,
    };
    let build_info = IntGaugeVec::new(
        name("build_info", "The proxy's version (always 1)."),
        &["version"],
    )?;
    build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    m.registry.register(Box::new(m.requests.clone()))?;
    m.registry.register(Box::new(m.duration.clone()))?;
    m.registry.register(Box::new(m.ttft.clone()))?;
    m.registry.register(Box::new(m.active_chats.clone()))?;
    m.registry.register(Box::new(m.decrypted_chunks.clone()))?;
    m.registry.register(Box::new(m.bytes.clone()))?;
    m.registry
        .register(Box::new(m.attestation_refreshes.clone()))?;
    m.registry.register(Box::new(m.attestation_age.clone()))?;
    m.registry.register(Box::new(m.tool_calls.clone()))?;
    m.registry.register(Box::new(m.tool_retries.clone()))?;
    m.registry
        .register(Box::new(m.client_auth_failures.clone()))?;
    m.registry.register(Box::new(m.stream_failures.clone()))?;
    m.registry
        .register(Box::new(m.client_connections.clone()))?;
    m.registry
        .register(Box::new(m.connections_refused.clone()))?;
    m.registry.register(Box::new(m.receipts.clone()))?;
    m.registry
        .register(Box::new(m.upstream_verifications.clone()))?;
    m.registry.register(Box::new(m.upstream_checks.clone()))?;
    m.registry.register(Box::new(m.workload_reviews.clone()))?;
    m.registry.register(Box::new(m.model_verified.clone()))?;
    m.registry.register(Box::new(m.model_verified_at.clone()))?;
    m.registry
        .register(Box::new(m.attestation_refusals.clone()))?;
    m.registry.register(Box::new(m.drift_events.clone()))?;
    m.registry.register(Box::new(m.trust_relaxed.clone()))?;
    m.registry.register(Box::new(m.ready.clone()))?;
    m.registry.register(Box::new(m.model_retires_at.clone()))?;
    m.registry.register(Box::new(build_info))?;
    Ok(m)
}

/// The process's metrics (one registry per process, like the client key).
pub static METRICS: Lazy<Metrics> = Lazy::new(|| build().expect("metric definitions are valid"));

impl Metrics {
    /// The text exposition format, the process's own metrics (Prometheus' standard names)
    /// after the proxy's.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding of gathered metrics");
        out.extend_from_slice(process::exposition().as_bytes());
        out
    }
}

/// The process's CPU time, memory, descriptors and start time, read from `/proc/self` at
/// scrape time (nothing where `/proc` is missing).
mod process {
    use std::fmt::Write as _;

    fn ticks_per_second() -> f64 {
        // Linux's USER_HZ: 100 on every architecture it runs on.
        100.0
    }

    pub(super) fn exposition() -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command name (which may hold spaces) close with ')'.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map_or("", |(_, rest)| rest)
                .split_whitespace()
                .collect();
            let field = |n: usize| fields.get(n).and_then(|v| v.parse::<f64>().ok());
            if let (Some(user), Some(system)) = (field(11), field(12)) {
                metric(
                    "process_cpu_seconds_total",
                    "counter",
                    "User and system CPU time spent in seconds.",
                    (user + system) / ticks_per_second(),
                );
            }
            if let (Some(start), Some(boot)) = (field(19), boot_time()) {
                metric(
                    "process_start_time_seconds",
                    "gauge",
                    "Start time of the process since the Unix epoch in seconds.",
                    boot + start / ticks_per_second(),
                );
            }
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            let kib = |key: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            };
            if let Some(rss) = kib("VmRSS:") {
                metric(
                    "process_resident_memory_bytes",
                    "gauge",
                    "Resident memory size in bytes.",
                    rss * 1024.0,
                );
            }
            if let Some(vm) = kib("VmSize:") {
                metric(
                    "process_virtual_memory_bytes",
                    "gauge",
                    "Virtual memory size in bytes.",
                    vm * 1024.0,
                );
            }
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            metric(
                "process_open_fds",
                "gauge",
                "Number of open file descriptors.",
                fds.count() as f64,
            );
        }
        if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
            let max = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse::<f64>().ok());
            if let Some(max) = max {
                metric(
                    "process_max_fds",
                    "gauge",
                    "Maximum number of open file descriptors.",
                    max,
                );
            }
        }
        out
    }

    fn boot_time() -> Option<f64> {
        std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()
    }
}
