//! Chat completions' answers, the one place they are rendered: a `chat.completion.chunk`
//! per upstream chunk while streaming, a validated whole answer replayed as chunks, or one
//! `chat.completion` object. Borrowed wire shapes keep serialization copy-free.

use super::wire::{self as out, CHUNK_OBJECT, COMPLETION_OBJECT};
use crate::chat::answer::Mode;
use crate::chat::answer_writer::{AnswerWriter, Judged, Shown};
use crate::chat::tool_calls::emulate::CallDelta;
use crate::error::ApiError;
use bytes::{BufMut, Bytes, BytesMut};

pub struct ChatWriter {
    /// The model as the request named it after aliases (what Venice serves).
    model: String,
    /// The client asked for the usage chunk (`stream_options.include_usage`).
    include_usage: bool,
}

impl ChatWriter {
    pub fn new(model: String, mode: Mode) -> Self {
        let include_usage = match mode {
            Mode::Stream { include_usage } => include_usage,
            Mode::Aggregate => true,
        };
        ChatWriter {
            model,
            include_usage,
        }
    }
}

fn call_deltas(calls: &[CallDelta]) -> Option<Vec<out::ToolCallDelta<'_>>> {
    if calls.is_empty() {
        return None;
    }
    Some(
        calls
            .iter()
            .map(|c| out::ToolCallDelta {
                index: c.index,
                id: c.id.as_deref(),
                kind: c.id.as_ref().map(|_| "function"),
                function: out::FunctionDelta {
                    name: c.name.as_deref(),
                    arguments: &c.arguments,
                },
            })
            .collect(),
    )
}

impl AnswerWriter for ChatWriter {
    /// One chunk out per chunk in; nothing for a chunk that shows nothing.
    fn show(&mut self, out: &mut BytesMut, s: &Shown<'_>) {
        let usage = s.usage.filter(|_| self.include_usage);
        let has_choice = s.role.is_some()
            || s.content.is_some()
            || s.reasoning.is_some()
            || !s.calls.is_empty()
            || s.finish.is_some();
        if !has_choice && usage.is_none() {
            return;
        }
        let choices = if has_choice {
            vec![out::ChunkChoice {
                index: 0,
                delta: out::Delta {
                    role: s.role,
                    content: s.content,
                    reasoning_content: s.reasoning,
                    tool_calls: call_deltas(s.calls),
                },
                logprobs: None,
                finish_reason: s.finish,
            }]
        } else {
            Vec::new()
        };
        let event = out::Chunk {
            id: s.id,
            object: CHUNK_OBJECT,
            created: s.created,
            model: &self.model,
            choices,
            usage,
        };
        write_event(out, &event);
    }

    fn end(&mut self, out: &mut BytesMut) {
        out.extend_from_slice(b"data: [DONE]\n\n");
    }

    fn judged(&mut self, w: &Judged<'_>, stream: bool) -> Bytes {
        if stream {
            self.replay(w)
        } else {
            self.completion(w)
        }
    }

    fn failed(&mut self, out: &mut BytesMut, e: &ApiError) {
        out.extend_from_slice(&e.sse_event());
    }
}

impl ChatWriter {
    /// A validated whole answer as a stream: the role, the reasoning, the content, each call,
    /// the finish reason and the usage, one chunk each.
    fn replay(&mut self, w: &Judged<'_>) -> Bytes {
        let answer = w.answer;
        let mut out = BytesMut::new();
        let at = Shown {
            id: &answer.id,
            created: answer.created,
            ..Shown::default()
        };
        self.show(
            &mut out,
            &Shown {
                role: Some("assistant"),
                content: Some(""),
                ..at
            },
        );
        if !answer.reasoning.is_empty() {
            let reasoning = Some(answer.reasoning.as_str());
            self.show(&mut out, &Shown { reasoning, ..at });
        }
        if w.content.is_some() {
            self.show(
                &mut out,
                &Shown {
                    content: w.content,
                    ..at
                },
            );
        }
        for (i, c) in w.calls.iter().enumerate() {
            let call = [CallDelta {
                index: i as u32,
                id: Some(c.id.clone()),
                name: Some(c.name.clone()),
                arguments: c.arguments.clone(),
            }];
            self.show(&mut out, &Shown { calls: &call, ..at });
        }
        let finish = Some(answer.finish_with(w.calls));
        self.show(&mut out, &Shown { finish, ..at });
        if let Some(usage) = answer.usage.as_ref() {
            let usage = Some(usage);
            self.show(&mut out, &Shown { usage, ..at });
        }
        self.end(&mut out);
        out.freeze()
    }

    /// One `chat.completion` body, with `content` (null when `None`) and any tool calls.
    fn completion(&self, w: &Judged<'_>) -> Bytes {
        let answer = w.answer;
        let tool_calls = (!w.calls.is_empty()).then(|| {
            w.calls
                .iter()
                .map(|c| out::ToolCall {
                    id: &c.id,
                    kind: "function",
                    function: out::Function {
                        name: &c.name,
                        arguments: &c.arguments,
                    },
                })
                .collect()
        });
        let completion = out::Completion {
            id: if answer.id.is_empty() {
                "chatcmpl-empty"
            } else {
                &answer.id
            },
            object: COMPLETION_OBJECT,
            created: answer.created,
            model: &self.model,
            choices: vec![out::CompletionChoice {
                index: 0,
                message: out::Message {
                    role: "assistant",
                    content: w.content,
                    reasoning_content: Some(answer.reasoning.as_str()).filter(|r| !r.is_empty()),
                    tool_calls,
                    refusal: None,
                },
                logprobs: None,
                finish_reason: answer.finish_with(w.calls),
            }],
            usage: answer.usage.as_ref(),
        };
        Bytes::from(serde_json::to_vec(&completion).expect("completion serializes"))
    }
}

/// Writes one SSE `data:` event, serialized straight into the output.
fn write_event(out: &mut BytesMut, value: &impl serde::Serialize) {
    out.extend_from_slice(b"data: ");
    serde_json::to_writer(out.writer(), value).expect("chunk serializes");
    out.extend_from_slice(b"\n\n");
}
