//! Cryptography only: the field codec, the sealing of messages to the attested model key
//! (with its reuse cache), client key rotation, and the SSE framing Venice's answers arrive in.

pub mod codec;
pub mod keys;
pub mod sealing;
pub(crate) mod sse;
