//! The product's internal request: what every front door builds, checked here once whichever
//! door built it, rendered by the tool and format prompts and sealed into Venice's body
//! (`chat::sealed`).

use super::conversation::Message;
use super::generation::{Generation, VeniceFlags};
use super::structured::OutputFormat;
use super::tool_calls::defs::ToolSet;
use super::tool_calls::prompt::{self, Family};
use crate::config::ModelsSection;
use crate::error::ApiError;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// The model as the client named it, then (`resolve`) the model Venice serves.
    pub(crate) model: String,
    pub(crate) messages: Vec<Message>,
    /// Offered tools, emulated through the prompt.
    pub(crate) tools: Option<Arc<ToolSet>>,
    /// The prompt and call syntax the model was trained on (set by `resolve`).
    pub(crate) family: Family,
    /// The client asked for SSE; Venice is always asked to stream.
    pub(crate) stream: bool,
    /// The client asked for the usage chunk (`stream_options.include_usage`).
    pub(crate) include_usage: bool,
    /// Generation controls forwarded: typed, so nothing the client wrote leaves in clear.
    pub(crate) generation: Generation,
    /// The client's stop sequences: applied by the proxy to the decrypted answer, unless the
    /// operator sends them (`encryption.send_stop_sequences`).
    pub(crate) stop: Vec<String>,
    /// Venice flags the client may set (`strip_thinking_response`, `disable_thinking`).
    pub(crate) venice: VeniceFlags,
    /// Structured output asked for, emulated through the prompt.
    pub(crate) format: Option<Arc<OutputFormat>>,
    /// `prompt_cache_key`: where no session is named, it names one (an agent thread).
    pub(crate) prompt_cache_key: Option<String>,
    /// The agent session (`metadata.session_id`), which selects the client key pair. Never
    /// sent upstream.
    pub(crate) session: Option<String>,
}

/// How a request's model name resolves, once: an alias to the model Venice serves, and that
/// model's family (configured per model, else read from its id).
#[derive(Clone, Copy)]
pub(crate) struct ModelNames<'a> {
    pub(crate) aliases: &'a ModelsSection,
    pub(crate) families: &'a HashMap<String, Family>,
}

/// At most this many stop sequences, as OpenAI allows.
const MAX_STOPS: usize = 4;

impl ChatRequest {
    /// A request for `model` with this conversation and nothing else asked.
    pub(crate) fn new(model: String, messages: Vec<Message>) -> ChatRequest {
        ChatRequest {
            model,
            messages,
            tools: None,
            family: Family::Hermes,
            stream: false,
            include_usage: false,
            generation: Generation::default(),
            stop: Vec::new(),
            venice: VeniceFlags::default(),
            format: None,
            prompt_cache_key: None,
            session: None,
        }
    }

    /// The checks every request passes, whichever door built it: a model, a conversation
    /// whose tool results answer calls made before them, controls within their ranges.
    pub(crate) fn validate(&self) -> Result<(), ApiError> {
        if self.model.is_empty() {
            return Err(ApiError::invalid("model", "`model` is required"));
        }
        if self.messages.is_empty() {
            return Err(ApiError::invalid(
                "messages",
                "`messages` must not be empty",
            ));
        }
        for (i, m) in self.messages.iter().enumerate() {
            let Message::Tool { call_id, .. } = m else {
                continue;
            };
            let called = self.messages[..i].iter().any(|p| {
                matches!(p, Message::Assistant { calls, .. } if calls.iter().any(|c| &c.id == call_id))
            });
            if !called {
                return Err(ApiError::invalid(
                    format!("messages[{i}].tool_call_id"),
                    format!("no earlier assistant tool call has the id `{call_id}`"),
                ));
            }
        }
        if self.stop.len() > MAX_STOPS {
            return Err(ApiError::invalid(
                "stop",
                format!("at most {MAX_STOPS} stop sequences"),
            ));
        }
        self.generation.validate()
    }

    /// The model resolved once: an alias to the model Venice serves, and the prompt and call
    /// syntax of that real model.
    pub(crate) fn resolve(&mut self, names: ModelNames<'_>) {
        if let Some(target) = names.aliases.resolve(&self.model) {
            self.model = target.to_string();
        }
        self.family = Family::for_model(&self.model, names.families);
    }

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
