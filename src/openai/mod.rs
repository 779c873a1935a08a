//! The OpenAI side: request parsing and normalization, response shapes, errors.

pub mod error;
pub mod request;
pub mod response;
pub mod responses;
pub mod structured;
