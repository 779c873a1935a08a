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
        registry,
    };
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
    Ok(m)
}

/// The process's metrics (one registry per process, like the client key).
pub static METRICS: Lazy<Metrics> = Lazy::new(|| build().expect("metric definitions are valid"));

impl Metrics {
    /// The text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding of gathered metrics");
        out
    }
}
