//! The Responses API (`POST /v1/responses`), spoken at the edge: a request is translated
//! into a chat request and takes the one chat path; the answer is rendered back as a
//! Response object or as Responses stream events.

pub mod store;
pub mod tools;
pub mod translate;
pub mod writer;

use serde_json::{Map, Value};

/// What a Response echoes of its request, and the conversation to store with it.
#[derive(Debug, Default)]
pub struct Meta {
    pub model: String,
    pub instructions: Option<String>,
    pub tools: Value,
    pub tool_choice: Value,
    pub parallel_tool_calls: bool,
    pub max_output_tokens: Value,
    /// `temperature`, `top_p` as given.
    pub sampling: Map<String, Value>,
    pub reasoning: Value,
    pub text: Value,
    pub metadata: Value,
    /// Whether the response may be stored (`store`, default true) for `previous_response_id`.
    pub store: bool,
    pub previous_response_id: Option<String>,
    /// The conversation as chat messages: what a previous response stored, then this input.
    pub history: Vec<Value>,
    /// Tools offered under another name or kind than the client's (namespaces, custom,
    /// local_shell), by the name the model sees.
    pub tool_origins: std::collections::HashMap<String, tools::ToolOrigin>,
    /// Hosted tools the request named that were not offered (they cannot run over E2EE).
    pub omitted_tools: Vec<String>,
}

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{:032x}", rand::random::<u128>())
}
