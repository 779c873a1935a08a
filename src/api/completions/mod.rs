//! Chat completions (`POST /v1/chat/completions`): the OpenAI request parsed into the internal
//! request, and the shapes its answers take.

pub mod parse;
pub(crate) mod wire;
pub mod writer;

use super::{Context, Dialect, DialectKind};
use crate::chat::answer::Mode;
use crate::chat::answer_writer::AnswerWriter;
use crate::chat::request::ChatRequest;
use crate::error::ApiError;

/// Chat completions: the request is the internal request's own dialect; nothing to echo.
pub(crate) struct Completions;

impl Dialect for Completions {
    fn parse(raw: &[u8], _ctx: &Context<'_>) -> Result<(ChatRequest, Self), ApiError> {
        Ok((parse::parse_body(raw)?, Completions))
    }

    fn writer(&self, model: &str, mode: Mode) -> Box<dyn AnswerWriter> {
        Box::new(writer::ChatWriter::new(model.to_string(), mode))
    }

    fn kind(&self) -> DialectKind {
        DialectKind::Completions
    }
}
