//! Why a tool call the model made is refused. The message is what the correction prompt tells
//! the model and what the client reads in a `tool_call_invalid` error.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ToolCallError {
    #[error("`{name}` is not one of the offered tools ({offered})")]
    NotOffered { name: String, offered: String },
    #[error("arguments of `{name}` are not valid JSON: {reason}")]
    NotJson { name: String, reason: String },
    #[error("arguments of `{name}` must be a JSON object")]
    NotObject { name: String },
    #[error("arguments of `{name}` do not match its schema: {problems}")]
    Schema { name: String, problems: String },
    #[error("the reply had to call `{0}` and did not")]
    NamedNotCalled(String),
    #[error("the reply had to call a tool and did not")]
    NoneCalled,
    #[error("the reply made {0} calls but parallel_tool_calls is false")]
    NotParallel(usize),
    /// A call the syntax reader could not read (an unclosed block, broken arguments).
    #[error("{0}")]
    Unreadable(String),
}

impl ToolCallError {
    /// The error code a client sees for any of them.
    pub(crate) const CODE: &'static str = "tool_call_invalid";
}
