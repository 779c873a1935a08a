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
    let d = Defs(Registry::new());
    let build_info = d.gauges(
        "build_info",
        "The proxy's version (always 1).",
        &["version"],
    )?;
    build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    Ok(Metrics {
        requests: d.counters(
            "requests_total",
            "Requests by route, model and status.",
            &["route", "model", "status"],
        )?,
        duration: d.histograms(
            "request_duration_seconds",
            "Whole request time, by route.",
            &["route"],
        )?,
        ttft: d.histograms(
            "upstream_first_byte_seconds",
            "Time to Venice's first response byte (TTFT), by model.",
            &["model"],
        )?,
        active_chats: d.gauge(
            "active_chats",
            "Chat completions in flight.",
        )?,
        decrypted_chunks: d.counter(
            "decrypted_chunks_total",
            "Encrypted SSE chunks decrypted.",
        )?,
        bytes: d.counters(
            "bytes_total",
            "Body bytes, by direction (upstream_request, client_response).",
            &["direction"],
        )?,
        attestation_refreshes: d.counters(
            "attestation_refreshes_total",
            "Attestation fetches and verifications, by model and outcome.",
            &["model", "outcome"],
        )?,
        attestation_age: d.gauges(
            "attestation_age_seconds",
            "Age of the verified attestation in use, by model.",
            &["model"],
        )?,
        tool_calls: d.counters(
            "tool_call_parses_total",
            "Emulated tool-call answers parsed, by outcome.",
            &["outcome"],
        )?,
        tool_retries: d.counter(
            "tool_call_retries_total",
            "Upstream retries after an invalid tool call.",
        )?,
        client_auth_failures: d.counter(
            "client_auth_failures_total",
            "Requests refused for a missing or wrong client token.",
        )?,
        stream_failures: d.counters(
            "stream_failures_total",
            "Streams that began and were ended by an error event, by error code.",
            &["code"],
        )?,
        client_connections: d.gauge(
            "client_connections",
            "Client connections open.",
        )?,
        connections_refused: d.counter(
            "client_connections_refused_total",
            "Client connections refused beyond server.max_connections.",
        )?,
        receipts: d.counters(
            "receipts_total",
            "ACI receipts checked after answers, by model and result.",
            &["model", "result"],
        )?,
        upstream_verifications: d.counters(
            "upstream_verifications_total",
            "The gateway's upstream.verified events in receipts, by model and result.",
            &["model", "result"],
        )?,
        upstream_checks: d.counters(
            "upstream_checks_total",
            "The proxy's own checks of the upstreams receipts cite, by model and result (verified, refuted).",
            &["model", "result"],
        )?,
        workload_reviews: d.counters(
            "workload_reviews_total",
            "Verifications by the workload policy's verdict on the attested compose (reviewed, unreviewed, refused), by model.",
            &["model", "result"],
        )?,
        model_verified: d.gauges(
            "model_verified",
            "1 while the model holds a usable verified key, 0 otherwise, by model.",
            &["model"],
        )?,
        model_verified_at: d.gauges(
            "model_verified_at_seconds",
            "When the model's key in use was verified (Unix time), by model.",
            &["model"],
        )?,
        attestation_refusals: d.counters(
            "attestation_refusals_total",
            "Requests refused because the model's attestation did not verify (or a receipt refused it), by model and check.",
            &["model", "check"],
        )?,
        drift_events: d.counters(
            "drift_events_total",
            "Changes in what serves a model (compose, OS image, gateway commit, keyset, upstream route, model list), by model and what.",
            &["model", "what"],
        )?,
        trust_relaxed: d.gauge(
            "trust_relaxed",
            "Test roots, relaxed checks and switches in force (0: pinned roots, every check enforced).",
        )?,
        ready: d.gauge(
            "ready",
            "1 while /readyz answers ready (Venice reachable, prewarmed models verified), 0 otherwise.",
        )?,
        model_retires_at: d.gauges(
            "model_retires_at_seconds",
            "When Venice retires the model (Unix time; its model list's deprecation), by model: only models with a scheduled retirement.",
            &["model"],
        )?,
        registry: d.0,
    })
}

/// Defines each metric and registers it in the same step: none is served unregistered.
struct Defs(Registry);

impl Defs {
    fn add<M: prometheus::core::Collector + Clone + 'static>(
        &self,
        metric: M,
    ) -> Result<M, prometheus::Error> {
        self.0.register(Box::new(metric.clone()))?;
        Ok(metric)
    }

    fn opts(name: &str, help: &str) -> Opts {
        Opts::new(format!("venice_e2ee_proxy_{name}"), help)
    }

    fn counter(&self, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
        self.add(IntCounter::with_opts(Self::opts(name, help))?)
    }

    fn counters(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntCounterVec, prometheus::Error> {
        self.add(IntCounterVec::new(Self::opts(name, help), labels)?)
    }

    fn gauge(&self, name: &str, help: &str) -> Result<IntGauge, prometheus::Error> {
        self.add(IntGauge::with_opts(Self::opts(name, help))?)
    }

    fn gauges(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntGaugeVec, prometheus::Error> {
        self.add(IntGaugeVec::new(Self::opts(name, help), labels)?)
    }

    /// Latency histograms, all on the same buckets.
    fn histograms(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<HistogramVec, prometheus::Error> {
        let opts = HistogramOpts::new(format!("venice_e2ee_proxy_{name}"), help)
            .buckets(LATENCY_BUCKETS.to_vec());
        self.add(HistogramVec::new(opts, labels)?)
    }
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
