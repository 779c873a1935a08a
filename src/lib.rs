//! venice-e2ee-proxy: a Pingora sidecar that serves Venice.ai's end-to-end-encrypted models
//! to OpenAI- and Anthropic-style clients (chat completions, Responses, Messages) as a plain
//! endpoint. Pure logic lives in plain modules; `proxy` wires it into
//! Pingora's hooks. Items are `pub` only where the tools crate, the tests, the benchmarks or
//! the fuzz targets use them.

#![deny(unreachable_pub)]
// One `unsafe` block in the product: `server::raise_fd_limit` (setrlimit), allowed there.
#![deny(unsafe_code)]

pub mod agent_sessions;
pub mod api;
pub mod attestation;
pub mod budget;
pub mod chat;
pub mod config;
pub mod e2ee;
pub mod error;
pub(crate) mod exchange;
pub mod logging;
pub mod metrics;
pub mod proxy;
pub mod server;
pub mod state;
pub mod venice;
