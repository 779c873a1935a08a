//! The front doors: one module per dialect (chat completions, the Responses API, Anthropic's
//! Messages API). Each parses its requests into the one internal `chat::request::ChatRequest`
//! and renders answers through its `chat::answer_writer::AnswerWriter`; errors take its shape.

pub mod completions;
pub(crate) mod fields;
pub mod messages;
pub mod responses;

use crate::chat::answer::Mode;
use crate::chat::answer_writer::AnswerWriter;
use crate::chat::request::{ChatRequest, ModelNames};
use crate::config::{Config, HostedTools, Tenant};
use crate::error::ApiError;
use bytes::{Bytes, BytesMut};
use serde_json::Value;
use std::sync::Arc;

/// Which API a route speaks; all take the one chat path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DialectKind {
    Completions,
    Responses,
    /// Anthropic's Messages API: its errors have their own shape too.
    Messages,
}

/// What parsing a request needs from the configuration and the state.
pub(crate) struct Context<'a> {
    pub(crate) names: ModelNames<'a>,
    /// Hosted tools a request names: left out, or refused.
    pub(crate) hosted_tools: HostedTools,
    /// Each dialect's own state.
    pub(crate) states: &'a DialectStates,
    /// The client's tenant (tenants never continue each other's responses).
    pub(crate) tenant: Tenant,
}

/// What each dialect keeps across requests, built once from the configuration.
pub(crate) struct DialectStates {
    pub(crate) responses: responses::State,
}

impl DialectStates {
    pub(crate) fn new(config: &Config) -> Self {
        DialectStates {
            responses: responses::State::new(&config.responses),
        }
    }
}

/// An endpoint a dialect answers itself, without Venice, from a request in that dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LocalEndpoint {
    /// `POST /v1/messages/count_tokens`: an estimate of a Messages request's input tokens.
    MessagesCountTokens,
}

impl LocalEndpoint {
    /// Every local endpoint: adding one adds it here and to its dialect's folder.
    pub(crate) const ALL: [LocalEndpoint; 1] = [LocalEndpoint::MessagesCountTokens];

    pub(crate) fn path(self) -> &'static str {
        match self {
            LocalEndpoint::MessagesCountTokens => "/v1/messages/count_tokens",
        }
    }

    /// The dialect its requests and errors speak.
    pub(crate) fn dialect(self) -> DialectKind {
        match self {
            LocalEndpoint::MessagesCountTokens => DialectKind::Messages,
        }
    }

    /// Its label in logs and metrics.
    pub(crate) fn label(self) -> &'static str {
        match self {
            LocalEndpoint::MessagesCountTokens => "count_tokens",
        }
    }

    /// The answer's body, and the model the request named (the caller looks it up).
    pub(crate) fn answer(self, raw: &[u8], ctx: &Context<'_>) -> Result<(String, Value), ApiError> {
        match self {
            LocalEndpoint::MessagesCountTokens => messages::count_tokens::answer(raw, ctx),
        }
    }
}

/// One front door. `parse` builds the internal request from its request and keeps, as
/// `Self`, what the answer echoes; `writer` renders one answer; `error_body` shapes its errors.
pub(crate) trait Dialect: Send + Sync {
    fn parse(raw: &[u8], ctx: &Context<'_>) -> Result<(ChatRequest, Self), ApiError>
    where
        Self: Sized;

    /// A writer for one answer of `model` (Venice's id), streamed or whole.
    fn writer(&self, model: &str, mode: Mode) -> Box<dyn AnswerWriter>;

    /// Hosted or server tools the request named that were not offered to the model.
    fn omitted_tools(&self) -> &[String] {
        &[]
    }

    fn kind(&self) -> DialectKind;

    fn error_body(e: &ApiError) -> Bytes
    where
        Self: Sized,
    {
        e.body()
    }
}

impl DialectKind {
    /// Every dialect: adding one adds it here, to its path and label, and to its folder.
    pub(crate) const ALL: [DialectKind; 3] = [
        DialectKind::Completions,
        DialectKind::Responses,
        DialectKind::Messages,
    ];

    /// The endpoint that speaks it.
    pub(crate) fn path(self) -> &'static str {
        match self {
            DialectKind::Completions => "/v1/chat/completions",
            DialectKind::Responses => "/v1/responses",
            DialectKind::Messages => "/v1/messages",
        }
    }

    /// Its label in logs and metrics.
    pub(crate) fn label(self) -> &'static str {
        match self {
            DialectKind::Completions => "chat_completions",
            DialectKind::Responses => "responses",
            DialectKind::Messages => "messages",
        }
    }

    /// The request in this dialect, built into the internal request, which is then checked
    /// and its model resolved, whichever door built it; hosted tools it named are left out,
    /// or refused when so configured.
    pub(crate) fn parse(
        self,
        raw: &[u8],
        ctx: &Context<'_>,
    ) -> Result<(ChatRequest, Arc<dyn Dialect>), ApiError> {
        fn boxed<D: Dialect + 'static>(
            (req, d): (ChatRequest, D),
        ) -> (ChatRequest, Arc<dyn Dialect>) {
            (req, Arc::new(d))
        }
        let (req, dialect) = match self {
            DialectKind::Completions => boxed(completions::Completions::parse(raw, ctx)?),
            DialectKind::Responses => boxed(responses::Responses::parse(raw, ctx)?),
            DialectKind::Messages => boxed(messages::Messages::parse(raw, ctx)?),
        };
        check_omitted(dialect.omitted_tools(), ctx.hosted_tools)?;
        Ok((checked(req, ctx.names)?, dialect))
    }

    /// An error's body in this dialect.
    pub(crate) fn error_body(self, e: &ApiError) -> Bytes {
        match self {
            DialectKind::Completions => completions::Completions::error_body(e),
            DialectKind::Responses => responses::Responses::error_body(e),
            DialectKind::Messages => messages::Messages::error_body(e),
        }
    }
}

/// The internal request checked and its model resolved: the one validation every door's
/// request passes.
pub(crate) fn checked(
    mut req: ChatRequest,
    names: ModelNames<'_>,
) -> Result<ChatRequest, ApiError> {
    req.validate()?;
    req.resolve(names);
    Ok(req)
}

/// Hosted tools cannot run over E2EE (Venice cannot see tools, the proxy cannot run them).
pub(crate) fn check_omitted(omitted: &[String], hosted: HostedTools) -> Result<(), ApiError> {
    // Named in a response header and a log line: tool types are identifiers, nothing else.
    if let Some(bad) = omitted.iter().find(|t| !is_tool_type(t)) {
        return Err(ApiError::invalid(
            "tools",
            format!(
                "tool type {:?} is not a tool type (letters, digits, `_`, `-`, `.`, `:`; at most 64)",
                bad.chars().take(80).collect::<String>()
            ),
        ));
    }
    if omitted.is_empty() {
        return Ok(());
    }
    let names = omitted.join(", ");
    if hosted == HostedTools::Error {
        return Err(ApiError::unsupported(
            "tools",
            format!("hosted tools cannot run over E2EE (Venice cannot see tools, the proxy cannot run them): {names}"),
        ));
    }
    log::info!("hosted tools not offered to the model (they cannot run over E2EE): {names}");
    Ok(())
}

fn is_tool_type(t: &str) -> bool {
    (1..=64).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// One SSE event named `kind`, as both dialects frame theirs. The JSON is serialized
/// straight into the output.
pub(crate) fn write_named_event(out: &mut BytesMut, kind: &str, body: &Value) {
    use bytes::BufMut;
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    serde_json::to_writer(out.writer(), body).expect("JSON serializes");
    out.extend_from_slice(b"\n\n");
}

/// `event: …` / `data: …` pairs as the data objects, checking each event's name is its
/// data's `type` (both dialects name their events so).
#[cfg(test)]
pub(crate) fn named_events(out: &[u8]) -> Vec<Value> {
    std::str::from_utf8(out)
        .unwrap()
        .split("\n\n")
        .filter_map(|e| e.split_once("\ndata: "))
        .map(|(head, data)| {
            let v: Value = serde_json::from_str(data).unwrap();
            assert_eq!(head, format!("event: {}", v["type"].as_str().unwrap()));
            v
        })
        .collect()
}
