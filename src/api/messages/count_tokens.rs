//! `POST /v1/messages/count_tokens`, the Messages API's own extra endpoint: the request is
//! read and checked as a Messages request would be, and its input tokens estimated. Not the
//! model's tokenizer, which the proxy does not have.

use super::translate;
use crate::api::{check_omitted, checked, Context};
use crate::chat::conversation::Message;
use crate::chat::request::ChatRequest;
use crate::error::ApiError;
use serde_json::{json, Value};

/// The answer's body and the checked request's model (still to be looked up).
pub(crate) fn answer(raw: &[u8], ctx: &Context<'_>) -> Result<(String, Value), ApiError> {
    let (req, meta) = translate::translate(raw)?;
    check_omitted(&meta.omitted_tools, ctx.hosted_tools)?;
    let req = checked(req, ctx.names)?;
    let estimate = estimate(&req);
    Ok((req.model, json!({"input_tokens": estimate})))
}

/// About four characters per token over what would be sent (roles, text, calls, tools), plus
/// four per message.
pub(crate) fn estimate(req: &ChatRequest) -> u64 {
    let chars = |s: &str| s.chars().count();
    let messages: usize = req
        .messages
        .iter()
        .map(|m| match m {
            Message::System(text) => chars("system") + chars(text),
            Message::User(text) => chars("user") + chars(text),
            Message::Assistant { content, calls } => {
                chars("assistant")
                    + chars(content)
                    + calls
                        .iter()
                        .map(|c| chars(&c.id) + chars(&c.name) + chars(&c.arguments))
                        .sum::<usize>()
            }
            Message::Tool { call_id, content } => chars("tool") + chars(call_id) + chars(content),
        })
        .sum();
    let tools: usize = req
        .tools
        .iter()
        .flat_map(|set| &set.tools)
        .map(|t| {
            chars(&t.name)
                + t.description.as_deref().map_or(0, chars)
                + chars(&t.parameters.to_string())
        })
        .sum();
    ((messages + tools) as u64).div_ceil(4) + 4 * req.messages.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate_of(v: Value) -> u64 {
        let (req, _) = translate::translate(v.to_string().as_bytes()).unwrap();
        estimate(&req)
    }

    #[test]
    fn the_estimate_grows_with_the_request() {
        // "user" and "hi": six characters, two tokens, and four for the message.
        let small = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(estimate_of(small), 2 + 4);
        let big = json!({"model": "m", "system": "x".repeat(400),
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "w", "input_schema": {"type": "object"}}]});
        assert!(estimate_of(big) > 100 + 8);
    }
}
