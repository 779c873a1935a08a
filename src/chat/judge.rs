//! An answer read whole, judged before the client sees it: its tool calls read out and
//! validated (when tools are offered) and, when it made none, its structured output (when one
//! was asked for). A fault carries the turn that asks the model to fix it.

use super::answer::Answer;
use super::request::ChatRequest;
use super::tool_calls::defs::ToolSet;
use super::tool_calls::emulate::{parse_answer, Parsed};
use super::tool_calls::error::ToolCallError;
use super::tool_calls::prompt::correction;
use std::sync::Arc;

pub(crate) const TOOL_CALL_INVALID: &str = ToolCallError::CODE;

/// Why an answer is not acceptable, and the turn that asks the model to fix it.
pub(crate) struct Fault {
    pub(crate) code: &'static str,
    pub(crate) reason: String,
    pub(crate) correction: String,
}

/// Reads an answer's tool calls (when tools are offered) and, when it made none, its
/// structured output (when one was asked for).
pub(crate) fn judge(
    req: &ChatRequest,
    tools: Option<&Arc<ToolSet>>,
    answer: &Answer,
) -> Result<Parsed, Fault> {
    let mut parsed = match tools {
        Some(set) => parse_answer(set, &answer.content, &answer.reasoning).map_err(|e| {
            let reason = e.to_string();
            Fault {
                code: TOOL_CALL_INVALID,
                correction: correction(&reason),
                reason,
            }
        })?,
        None => Parsed {
            content: Some(answer.content.clone()),
            reasoning: answer.reasoning.clone(),
            calls: Vec::new(),
        },
    };
    if let (Some(format), true) = (&req.format, parsed.calls.is_empty()) {
        let json = format
            .extract(parsed.content.as_deref().unwrap_or(""))
            .map_err(|reason| Fault {
                code: "structured_output_invalid",
                correction: format.correction(&reason),
                reason,
            })?;
        parsed.content = Some(json);
    }
    Ok(parsed)
}
