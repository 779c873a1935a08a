//! The product's internal language: the request every dialect parses into, the conversation,
//! structured outputs, the body sealed for Venice, tool-call emulation, and the answer
//! pipeline (decrypt → stop sequences → tool calls → structured output → the dialect's
//! writer), shared by streams and answers read whole.

pub mod answer;
pub mod answer_writer;
pub(crate) mod conversation;
pub(crate) mod generation;
pub(crate) mod judge;
#[cfg(test)]
mod properties;
pub mod request;
pub(crate) mod sealed;
pub mod stop;
pub mod structured;
pub mod tool_calls;
