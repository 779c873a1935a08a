//! The admin listener: Prometheus metrics and the probes, apart from the client API (its own
//! port, loopback by default).

use crate::metrics::METRICS;
use crate::state::AppState;
use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use std::sync::Arc;

pub struct AdminApp {
    state: Arc<AppState>,
}

impl AdminApp {
    pub fn new(state: Arc<AppState>) -> Self {
        AdminApp { state }
    }
}

fn response(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .body(body)
        .expect("valid response")
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        match session.req_header().uri.path() {
            "/metrics" => {
                // Gauges that are states, not events, are read at scrape time.
                for model in self.state.attestations.models() {
                    if let Some(entry) = self.state.attestations.cached(&model) {
                        METRICS
                            .attestation_age
                            .with_label_values(&[&model])
                            .set(entry.age().as_secs() as i64);
                    }
                }
                response(200, "text/plain; version=0.0.4", METRICS.render())
            }
            "/healthz" => response(200, "application/json", br#"{"status":"ok"}"#.to_vec()),
            "/readyz" => match self.state.ready() {
                Ok(()) => response(200, "application/json", br#"{"status":"ready"}"#.to_vec()),
                Err(_) => response(
                    503,
                    "application/json",
                    br#"{"status":"not_ready"}"#.to_vec(),
                ),
            },
            _ => response(
                404,
                "application/json",
                br#"{"error":"not found"}"#.to_vec(),
            ),
        }
    }
}
