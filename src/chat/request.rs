//! The product's internal request: what every dialect parses into, what the tool and format
//! prompts render, and what is sealed into Venice's body (`chat::sealed`).

use super::conversation::Message;
use super::structured::OutputFormat;
use super::tool_calls::defs::ToolSet;
use super::tool_calls::prompt::{self, Family};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub(crate) model: String,
    pub(crate) messages: Vec<Message>,
    /// Offered tools, emulated through the prompt.
    pub(crate) tools: Option<Arc<ToolSet>>,
    /// The prompt and call syntax the model was trained on.
    pub(crate) family: Family,
    /// The client asked for SSE; Venice is always asked to stream.
    pub(crate) stream: bool,
    /// The client asked for the usage chunk (`stream_options.include_usage`).
    pub(crate) include_usage: bool,
    /// Generation fields forwarded (validated; numbers and known values only: nothing the
    /// client wrote leaves in clear).
    pub(crate) forwarded: Map<String, Value>,
    /// The client's stop sequences: applied by the proxy to the decrypted answer, unless the
    /// operator sends them (`encryption.send_stop_sequences`).
    pub(crate) stop: Vec<String>,
    /// Venice flags the client may set (`strip_thinking_response`, `disable_thinking`).
    pub(crate) venice_flags: Map<String, Value>,
    /// Structured output asked for (`response_format`), emulated through the prompt.
    pub(crate) format: Option<Arc<OutputFormat>>,
    /// `prompt_cache_key`: where no session is named, it names one (an agent thread).
    pub(crate) prompt_cache_key: Option<String>,
    /// The agent session (`metadata.session_id`), which selects the client key pair. Never
    /// sent upstream.
    pub(crate) session: Option<String>,
}

impl ChatRequest {
    /// The messages Venice receives, before encryption: the rendered conversation (tool and
    /// format prompts included) and `extra` turns (a retry's correction).
    pub(crate) fn upstream_messages<'a>(
        &'a self,
        extra: &'a [(&'static str, String)],
    ) -> Vec<(&'static str, Cow<'a, str>)> {
        let mut rendered = prompt::render(&self.messages, self.family, self.tools.as_deref());
        if let Some(format) = &self.format {
            prompt::add_system(&mut rendered, &format.prompt());
        }
        rendered.extend(
            extra
                .iter()
                .map(|(role, text)| (*role, Cow::Borrowed(text.as_str()))),
        );
        rendered
    }
}
