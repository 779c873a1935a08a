//! The OpenAI side: request parsing and normalization, response shapes, errors.

pub(crate) mod error;
pub mod request;
pub(crate) mod response;
pub mod responses;
pub mod structured;
