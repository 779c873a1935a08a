//! The E2EE core: the field codec, the sealing of requests to the attested model key, client
//! key rotation, and the decryption side (the SSE parser and the stream transformation).

pub mod codec;
pub mod keys;
pub(crate) mod request;
pub mod sealing;
pub(crate) mod sse;
pub mod stop;
pub mod stream;
