//! The conversation as every dialect normalizes it: the turns the prompt renderer writes in
//! the model's own format before they are encrypted. Neither the OpenAI parsing nor the tool
//! prompts own it, so each depends on it and not on the other.

/// One conversation turn, normalized (`developer` is a system turn).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Message {
    System(String),
    User(String),
    Assistant {
        content: String,
        calls: Vec<PastCall>,
    },
    Tool {
        call_id: String,
        content: String,
    },
}

/// A tool call in the conversation history.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PastCall {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) arguments: String,
}
