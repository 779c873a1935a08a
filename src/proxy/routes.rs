//! Which endpoint a request is for, and the endpoints answered locally (health, readiness,
//! model list).

use super::respond;
use crate::api::{DialectKind, LocalEndpoint};
use crate::error::ApiError;
use crate::state::AppState;
use crate::venice::Model;
use bytes::Bytes;
use pingora::proxy::Session;
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// A chat answer in a dialect (chat completions, the Responses API, the Messages API),
    /// each translated onto the one chat path.
    Chat(DialectKind),
    /// A dialect's own endpoint answered locally (the Messages API's token count).
    Local(LocalEndpoint),
    Models,
    Model(String),
    /// Cached attestation reports: all models, or one.
    Attestations,
    Attestation(String),
    Health,
    Ready,
    MethodNotAllowed(&'static str),
    /// An OpenAI endpoint Venice E2EE has no equivalent for (embeddings, audio, …).
    Unsupported(&'static str),
    NotFound,
}

/// OpenAI API families this proxy cannot serve: E2EE covers chat models only.
const UNSUPPORTED: [&str; 14] = [
    "/v1/completions",
    "/v1/embeddings",
    "/v1/audio",
    "/v1/images",
    "/v1/files",
    "/v1/uploads",
    "/v1/batches",
    "/v1/assistants",
    "/v1/threads",
    "/v1/vector_stores",
    "/v1/fine_tuning",
    "/v1/moderations",
    "/v1/realtime",
    "/v1/containers",
];

impl Route {
    pub(crate) fn classify(method: &str, path: &str) -> Route {
        let path = path.trim_end_matches('/');
        let chat = DialectKind::ALL.into_iter().find(|d| d.path() == path);
        let local = LocalEndpoint::ALL.into_iter().find(|e| e.path() == path);
        let (route, allowed) = match (chat, local) {
            (Some(dialect), _) => (Route::Chat(dialect), "POST"),
            (None, Some(endpoint)) => (Route::Local(endpoint), "POST"),
            (None, None) => match path {
                "/v1/models" => (Route::Models, "GET"),
                "/healthz" => (Route::Health, "GET"),
                "/readyz" => (Route::Ready, "GET"),
                "/v1/attestation" => (Route::Attestations, "GET"),
                _ => {
                    if let Some(id) = path.strip_prefix("/v1/models/").filter(|id| !id.is_empty()) {
                        (Route::Model(id.to_string()), "GET")
                    } else if let Some(id) = path
                        .strip_prefix("/v1/attestation/")
                        .filter(|id| !id.is_empty())
                    {
                        (Route::Attestation(id.to_string()), "GET")
                    } else if let Some(family) = UNSUPPORTED
                        .iter()
                        .find(|p| path == **p || path.starts_with(&format!("{p}/")))
                    {
                        return Route::Unsupported(family);
                    } else {
                        return Route::NotFound;
                    }
                }
            },
        };
        if method == allowed || (allowed == "GET" && method == "HEAD") {
            route
        } else {
            Route::MethodNotAllowed(allowed)
        }
    }

    /// A chat answer, in any dialect: proxied, not answered locally.
    pub(crate) fn is_chat(&self) -> bool {
        matches!(self, Route::Chat(_))
    }

    /// The API the client speaks here, which shapes its answers and errors.
    pub(crate) fn dialect(&self) -> DialectKind {
        match self {
            Route::Chat(dialect) => *dialect,
            Route::Local(endpoint) => endpoint.dialect(),
            _ => DialectKind::Completions,
        }
    }

    /// Label for logs and metrics: never the model id from a path.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Route::Chat(dialect) => dialect.label(),
            Route::Local(endpoint) => endpoint.label(),
            Route::Models => "models",
            Route::Model(_) => "model",
            Route::Attestations => "attestations",
            Route::Attestation(_) => "attestation",
            Route::Health => "healthz",
            Route::Ready => "readyz",
            Route::MethodNotAllowed(_) => "method_not_allowed",
            Route::Unsupported(_) => "unsupported",
            Route::NotFound => "not_found",
        }
    }
}

/// The OpenAI-facing error for a failed call to one of Venice's JSON endpoints.
/// A model as listed, under its own id or an alias's. Tool calls work with every model here
/// (the proxy emulates them: Venice cannot see encrypted tool definitions), so
/// `supportsFunctionCalling` says so whatever Venice's list says of the model itself;
/// Venice's scheduled retirement is passed on as `deprecation`.
fn openai_model(m: &Model, id: &str) -> Value {
    let mut capabilities = m.capabilities().cloned().unwrap_or_default();
    capabilities.insert("supportsFunctionCalling".into(), Value::Bool(true));
    let mut out = json!({
        "id": id,
        "object": "model",
        "created": m.created,
        "owned_by": m.owned_by.as_deref().unwrap_or("venice.ai"),
        "capabilities": capabilities,
    });
    if let Some(d) = m.deprecation() {
        out["deprecation"] = json!(d);
    }
    out
}

/// Answers a local route. Returns `Ok(())` once the response is written.
pub(crate) async fn answer(
    state: &AppState,
    session: &mut Session,
    route: &Route,
) -> pingora::Result<()> {
    let result: Result<(u16, Value), ApiError> = match route {
        Route::Health => Ok((200, json!({"status": "ok"}))),
        Route::Ready => Ok(match state.ready() {
            Ok(()) => (200, json!({"status": "ready"})),
            Err(missing) => (503, missing),
        }),
        Route::Models => state
            .catalog
            .get()
            .await
            .map(|snap| {
                let models = snap.models.iter().map(|m| openai_model(m, &m.id));
                // Aliases of models that exist (a `*` pattern is no model name).
                let aliases = state.config.models.aliases.iter()
                    .filter(|(alias, _)| !alias.ends_with('*'))
                    .filter_map(|(alias, target)| snap.get(target).map(|m| openai_model(m, alias)));
                (200, json!({"object": "list", "data": models.chain(aliases).collect::<Vec<_>>()}))
            })
            .map_err(|e| ApiError::from(&e)),
        Route::Model(id) => match state.catalog.get().await {
            Ok(snap) => snap
                .get(state.config.models.resolve(id).unwrap_or(id))
                .map(|m| (200, openai_model(m, id)))
                .ok_or_else(|| ApiError::model_not_found(id)),
            Err(e) => Err(ApiError::from(&e)),
        },
        Route::Local(endpoint) => super::chat_request::answer_local(state, session, *endpoint)
            .await
            .map(|v| (200, v)),
        Route::Attestations => Ok((200, attestations(state, None))),
        Route::Attestation(id) => match state.attestations.cached(id) {
            Some(_) => Ok((200, attestations(state, Some(id)))),
            None => {
                let error = state.attestations.last_error(id).map(|(at, e)| {
                    json!({"code": e.check.code(), "message": e.message, "at": crate::logging::rfc3339(at)})
                });
                match (state.attestations.last_failed_report(id), error) {
                    (Some(r), error) => Ok((200, json!({"model": id, "usable": false, "last_error": error, "report": *r}))),
                    (None, Some(error)) => Ok((200, json!({"model": id, "usable": false, "last_error": error}))),
                    (None, None) => Err(ApiError::not_found("attestation_not_found", format!("no attestation of `{id}` has been made yet"))),
                }
            }
        },
        Route::MethodNotAllowed(allowed) => {
            let mut e = ApiError::new(405, "invalid_request_error", "method_not_allowed", format!("use {allowed} for this endpoint"));
            e.param = None;
            Err(e)
        }
        Route::Unsupported(path) => Err(ApiError::not_found(
            "unsupported_endpoint",
            format!("`{path}` is not available: Venice end-to-end encryption serves chat models only; use /v1/chat/completions, /v1/responses or /v1/messages"),
        )),
        Route::NotFound => Err(ApiError::not_found("unknown_url", "no such endpoint on this proxy")),
        Route::Chat(_) => {
            Err(ApiError::internal("chat is proxied, not answered locally"))
        }
    };
    match result {
        Ok((status, body)) => respond::json(session, status, Bytes::from(body.to_string())).await,
        Err(e) => respond::error(session, route.dialect(), &e).await,
    }
}

/// Cached verified attestations with their age; one model when `only` is given.
/// Every model attested or tried (or one): its verified key and report when usable, and the
/// last error and its time when not (or when its last refresh failed).
fn attestations(state: &AppState, only: Option<&str>) -> Value {
    let models = match only {
        Some(m) => vec![m.to_string()],
        None => state.attestations.models_tried(),
    };
    let iso = crate::logging::rfc3339;
    let data: Vec<Value> = models
        .iter()
        .filter_map(|m| {
            let error = state.attestations.last_error(m).map(
                |(at, e)| json!({"code": e.check.code(), "message": e.message, "at": iso(at)}),
            );
            match state.attestations.cached(m) {
                Some(e) => Some(json!({
                    "model": m,
                    "usable": true,
                    "signing_address": e.key.address_hex(),
                    "verified_at": e.verified_unix,
                    "verified_at_iso": iso(e.verified_unix),
                    "age_seconds": e.age().as_secs(),
                    "last_error": error,
                    "report": e.report,
                    "receipt": state.receipts.last(m).as_deref(),
                    "anchor": state.receipts.anchor_of(&e).as_deref(),
                })),
                None => {
                    error.map(|error| json!({"model": m, "usable": false, "last_error": error}))
                }
            }
        })
        .collect();
    match only {
        Some(_) => data.into_iter().next().unwrap_or(Value::Null),
        None => json!({"object": "list", "data": data}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            Route::classify("POST", "/v1/chat/completions"),
            Route::Chat(DialectKind::Completions)
        );
        assert_eq!(
            Route::classify("GET", "/v1/chat/completions"),
            Route::MethodNotAllowed("POST")
        );
        assert_eq!(Route::classify("GET", "/v1/models/"), Route::Models);
        assert_eq!(
            Route::classify("GET", "/v1/models/e2ee-x"),
            Route::Model("e2ee-x".into())
        );
        assert_eq!(Route::classify("GET", "/v2/else"), Route::NotFound);
        assert_eq!(
            Route::classify("POST", "/v1/embeddings"),
            Route::Unsupported("/v1/embeddings")
        );
        assert_eq!(
            Route::classify("POST", "/v1/audio/transcriptions"),
            Route::Unsupported("/v1/audio")
        );
        assert_eq!(
            Route::classify("GET", "/v1/files/file-1/content"),
            Route::Unsupported("/v1/files")
        );
        assert_eq!(Route::classify("POST", "/v1/completionsx"), Route::NotFound);
        assert_eq!(Route::classify("HEAD", "/healthz"), Route::Health);
        assert_eq!(
            Route::classify("POST", "/v1/messages"),
            Route::Chat(DialectKind::Messages)
        );
        assert_eq!(
            Route::classify("POST", "/v1/responses/"),
            Route::Chat(DialectKind::Responses)
        );
        assert_eq!(Route::Chat(DialectKind::Responses).label(), "responses");
        assert_eq!(
            Route::classify("POST", "/v1/messages/count_tokens"),
            Route::Local(LocalEndpoint::MessagesCountTokens)
        );
        let count = Route::Local(LocalEndpoint::MessagesCountTokens);
        assert_eq!(count.dialect(), DialectKind::Messages);
        assert!(!count.is_chat());
        assert_eq!(
            Route::classify("GET", "/v1/attestation"),
            Route::Attestations
        );
        assert_eq!(
            Route::classify("GET", "/v1/attestation/m"),
            Route::Attestation("m".into())
        );
    }
}
