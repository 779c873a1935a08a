//! Chat completions (`POST /v1/chat/completions`): the OpenAI request parsed into the internal
//! request, and the shapes its answers take.

pub mod parse;
pub(crate) mod wire;
pub mod writer;
