//! The Responses API (`POST /v1/responses`), spoken at the edge: a request is built into the
//! internal request and takes the one chat path; the answer is rendered back as a Response
//! object or as Responses stream events. Its own state, the response store, lives here.

pub mod items;
pub(crate) mod store;
pub mod translate;
pub mod writer;

use super::{Context, Dialect, DialectKind};
use crate::chat::answer::Mode;
use crate::chat::answer_writer::AnswerWriter;
use crate::chat::conversation::Message;
use crate::chat::request::ChatRequest;
use crate::error::ApiError;
use serde_json::{Map, Value};
use std::sync::Arc;
use store::ResponseStore;

/// The Responses API's own state: its store of responses, for `previous_response_id`.
pub(crate) struct State {
    /// `None`: the store is off.
    store: Option<Arc<ResponseStore>>,
}

impl State {
    pub(crate) fn new(config: &crate::config::ResponsesSection) -> Self {
        State {
            store: ResponseStore::new(config.store_size, config.store_ttl).map(Arc::new),
        }
    }
}

/// The Responses API: what a Response echoes of its request, and where it is stored.
pub(crate) struct Responses {
    meta: Arc<Meta>,
    store: Option<Arc<ResponseStore>>,
}

impl Dialect for Responses {
    fn parse(raw: &[u8], ctx: &Context<'_>) -> Result<(ChatRequest, Self), ApiError> {
        let own = &ctx.states.responses.store;
        let store = own.as_deref().map(|s| (s, ctx.tenant));
        let (req, meta) = translate::translate(raw, store)?;
        Ok((
            req,
            Responses {
                meta: Arc::new(meta),
                store: own.clone(),
            },
        ))
    }

    fn writer(&self, _model: &str, _mode: Mode) -> Box<dyn AnswerWriter> {
        Box::new(writer::ResponsesWriter::new(
            self.meta.clone(),
            self.store.clone(),
        ))
    }

    fn omitted_tools(&self) -> &[String] {
        &self.meta.omitted_tools
    }

    fn kind(&self) -> DialectKind {
        DialectKind::Responses
    }
}

/// What a Response echoes of its request, and the conversation to store with it.
#[derive(Debug, Default)]
pub struct Meta {
    pub(crate) model: String,
    pub(crate) instructions: Option<String>,
    pub(crate) tools: Value,
    pub(crate) tool_choice: Value,
    pub(crate) parallel_tool_calls: bool,
    pub(crate) max_output_tokens: Value,
    /// `temperature`, `top_p` as given.
    pub(crate) sampling: Map<String, Value>,
    pub(crate) reasoning: Value,
    pub(crate) text: Value,
    pub(crate) metadata: Value,
    /// Whether the response may be stored (`store`, default true) for `previous_response_id`.
    pub(crate) store: bool,
    pub(crate) previous_response_id: Option<String>,
    /// Whose store the answer goes to (tenants never continue each other's responses).
    pub(crate) tenant: crate::config::Tenant,
    /// The conversation: what a previous response stored, then this input.
    pub(crate) history: Vec<Message>,
    /// Tools offered under another name or kind than the client's (namespaces, custom,
    /// local_shell), by the name the model sees.
    pub(crate) tool_origins: std::collections::HashMap<String, items::ToolOrigin>,
    /// Hosted tools the request named that were not offered (they cannot run over E2EE).
    pub(crate) omitted_tools: Vec<String>,
}

pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{:032x}", rand::random::<u128>())
}
