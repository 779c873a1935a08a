//! OpenAI tool calls over E2EE, emulated: Venice cannot see encrypted tool definitions, so
//! the proxy describes the tools in the model family's own prompt format and reads the
//! calls back out of the decrypted text.

pub mod defs;
pub mod emulate;
pub(crate) mod error;
pub(crate) mod parser;
pub(crate) mod prompt;
