//! The admin listener: Prometheus metrics, the probes and the status page (`status`), apart from the client API (its own
//! port, loopback by default), and operator actions behind their own token
//! (`server.admin_token`): the attestation forms pinned per model, and accepting a new one
//! without a restart.

use crate::attestation::cache::AcceptError;
use crate::metrics::METRICS;
use crate::state::AppState;
use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use std::sync::Arc;

pub(crate) struct AdminApp {
    state: Arc<AppState>,
}

impl AdminApp {
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        AdminApp { state }
    }
}

impl AdminApp {
    /// The status is read-only and holds nothing secret, yet with an admin token configured
    /// it asks for it as the admin actions do (Bearer, or Basic with the token as password).
    fn status_allowed(&self, auth: Option<&[u8]>) -> bool {
        self.state.config.server.admin_token.is_none() || self.state.admin_authorized(auth)
    }
}

fn json(status: u16, v: serde_json::Value) -> Response<Vec<u8>> {
    response(status, "application/json", v.to_string().into_bytes())
}

impl AdminApp {
    /// `GET /admin/pins[/{model}]`, `POST /admin/pins/{model}/accept`, `GET /admin/workloads`,
    /// `POST /admin/workloads/accept`.
    fn admin(
        &self,
        method: &str,
        path: &str,
        query: &str,
        auth: Option<&[u8]>,
    ) -> Response<Vec<u8>> {
        use serde_json::json;
        if self.state.config.server.admin_token.is_none() {
            return json(
                403,
                json!({"error": "admin actions are off: set VENICE_E2EE_PROXY__SERVER__ADMIN_TOKEN"}),
            );
        }
        if !self.state.admin_authorized(auth) {
            crate::metrics::METRICS.client_auth_failures.inc();
            return json(401, json!({"error": "missing or wrong admin token"}));
        }
        let store = &self.state.attestations;
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        match (method, parts.as_slice()) {
            ("GET", ["pins"]) => json(200, json!({"data": store.pin_states(None)})),
            ("GET", ["pins", model]) => match store.pin_states(Some(model)).pop() {
                Some(state) => json(200, json!(state)),
                None => json(
                    404,
                    json!({"error": format!("`{model}` has no pinned form")}),
                ),
            },
            ("POST", ["pins", model, "accept"]) => {
                let Some(digest) = query_param(query, "digest") else {
                    return json(
                        400,
                        json!({"error": "name the form you reviewed: ?digest=<refused.digest from GET /admin/pins/{model}>"}),
                    );
                };
                match store.accept_refused(model, digest) {
                    Ok((old, new)) => {
                        log::warn!(
                            target: "audit",
                            "admin accepted a new attestation form for model {model}: layout {} -> {}, gpus {} -> {}, checks passing {} -> {}",
                            old.layout.unwrap_or("-"),
                            new.layout.unwrap_or("-"),
                            old.gpus,
                            new.gpus,
                            old.passed.len(),
                            new.passed.len()
                        );
                        json(200, json!({"model": model, "previous": old, "pinned": new}))
                    }
                    Err(AcceptError::Nothing(e)) => json(409, json!({"error": e})),
                    Err(AcceptError::Changed(now)) => json(
                        409,
                        json!({"error": "the refused form stored now is not the one reviewed; nothing was pinned", "refused": now}),
                    ),
                }
            }
            ("GET", ["workloads"]) => {
                let reviewed: Vec<_> = store
                    .verifier()
                    .workloads()
                    .iter()
                    .map(|w| json!({"name": w.name, "source": w.source}))
                    .collect();
                let unreviewed: Vec<_> = store
                    .unreviewed_workloads()
                    .into_iter()
                    .map(|(model, review)| json!({"model": model, "review": review}))
                    .collect();
                json(200, json!({"reviewed": reviewed, "unreviewed": unreviewed}))
            }
            ("POST", ["workloads", "accept"]) => {
                let Some(digest) = query_param(query, "digest") else {
                    return json(
                        400,
                        json!({"error": "name the workload you reviewed: ?digest=<workload digest from the report or GET /admin/workloads>"}),
                    );
                };
                match store.accept_workload(digest) {
                    Ok((entry, lines)) => {
                        log::warn!(
                            target: "audit",
                            "admin accepted workload {digest} as `{}` (compose {}): until restart; persist it under attestation.extra_workloads",
                            entry.name,
                            entry.compose_hashes.join(", ")
                        );
                        json(200, json!({"accepted": entry, "policy_lines": lines}))
                    }
                    Err(AcceptError::Nothing(e)) => json(409, json!({"error": e})),
                    Err(AcceptError::Changed(now)) => {
                        json(409, json!({"error": "changed", "refused": now}))
                    }
                }
            }
            _ => json(404, json!({"error": "no such admin action"})),
        }
    }
}

/// A query parameter's value (digests and ids need no percent-decoding).
fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// The status page: no script may run and nothing may frame it, so a page the user visits
/// can neither script it nor overlay it.
fn page(html: String) -> Response<Vec<u8>> {
    let mut r = response(200, "text/html; charset=utf-8", html.into_bytes());
    let h = r.headers_mut();
    h.insert(
        "content-security-policy",
        http::HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert("x-frame-options", http::HeaderValue::from_static("DENY"));
    h.insert("cache-control", http::HeaderValue::from_static("no-store"));
    r
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
        let path = session.req_header().uri.path().to_string();
        let probe = matches!(path.as_str(), "/healthz" | "/readyz");
        let allowed =
            crate::proxy::gate::admin_host_allowed(&self.state.allowed_hosts, session.req_header());
        if !probe && !allowed {
            return json(
                403,
                serde_json::json!({"error": "this admin listener does not answer under that Host"}),
            );
        }
        let auth = session
            .req_header()
            .headers
            .get("authorization")
            .map(|v| v.as_bytes().to_vec());
        if let Some(rest) = path.strip_prefix("/admin/") {
            let method = session.req_header().method.as_str().to_string();
            let query = session.req_header().uri.query().unwrap_or("").to_string();
            return self.admin(&method, rest, &query, auth.as_deref());
        }
        match path.as_str() {
            "/metrics" => {
                // Gauges that are states, not events, are read at scrape time.
                METRICS.ready.set(i64::from(self.state.ready().is_ok()));
                for model in self.state.attestations.models_tried() {
                    let entry = self.state.attestations.cached(&model);
                    METRICS
                        .model_verified
                        .with_label_values(&[&model])
                        .set(i64::from(entry.is_some()));
                    if let Some(entry) = entry {
                        METRICS
                            .attestation_age
                            .with_label_values(&[&model])
                            .set(entry.age().as_secs() as i64);
                        METRICS
                            .model_verified_at
                            .with_label_values(&[&model])
                            .set(entry.verified_unix as i64);
                    }
                }
                response(200, "text/plain; version=0.0.4", METRICS.render())
            }
            "/status" | "/status.json" if !self.status_allowed(auth.as_deref()) => {
                crate::metrics::METRICS.client_auth_failures.inc();
                let mut r = json(
                    401,
                    serde_json::json!({"error": "missing or wrong admin token"}),
                );
                r.headers_mut().insert(
                    "www-authenticate",
                    http::HeaderValue::from_static(
                        "Basic realm=\"venice-e2ee-proxy status\", charset=\"UTF-8\"",
                    ),
                );
                r
            }
            "/status" => page(super::status::html(&super::status::snapshot(&self.state))),
            "/status.json" => json(200, super::status::snapshot(&self.state)),
            "/healthz" => response(200, "application/json", br#"{"status":"ok"}"#.to_vec()),
            "/readyz" => match self.state.ready() {
                Ok(()) => response(200, "application/json", br#"{"status":"ready"}"#.to_vec()),
                Err(missing) => json(503, missing),
            },
            _ => response(
                404,
                "application/json",
                br#"{"error":"not found"}"#.to_vec(),
            ),
        }
    }
}
