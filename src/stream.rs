//! Venice's encrypted SSE → OpenAI SSE (one chunk out per chunk in) or one aggregated
//! `chat.completion`. Every non-empty `content` / `reasoning_content` must decrypt under the
//! client key; anything else (plaintext, tampering) stops the stream.

use crate::codec::{CodecError, KeyPair};
use crate::openai::error::ApiError;
use crate::openai::response::{self as out, CHUNK_OBJECT, COMPLETION_OBJECT};
use crate::sse::SseParser;
use crate::venice::ChatChunk;
use bytes::BytesMut;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamError {
    /// A text field that is not ciphertext for our key: tampering or a plaintext downgrade.
    Decrypt(CodecError),
    Malformed(String),
    /// Venice reported an error inside the stream.
    Upstream(String),
    /// The stream ended before `[DONE]` or a finish reason.
    Truncated,
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Decrypt(e) => write!(
                f,
                "upstream sent a field that does not decrypt ({e}); stream stopped"
            ),
            StreamError::Malformed(m) => write!(f, "upstream sent a malformed chunk: {m}"),
            StreamError::Upstream(m) => write!(f, "upstream error: {m}"),
            StreamError::Truncated => write!(f, "upstream stream ended before completion"),
        }
    }
}

impl StreamError {
    pub fn to_api_error(&self) -> ApiError {
        let code = match self {
            StreamError::Decrypt(_) => "e2ee_decryption_failed",
            StreamError::Malformed(_) => "upstream_malformed",
            StreamError::Upstream(_) => "upstream_error",
            StreamError::Truncated => "upstream_stream_truncated",
        };
        ApiError::upstream(502, code, self.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Stream { include_usage: bool },
    Aggregate,
}

#[derive(Default)]
struct Choice {
    content: String,
    reasoning: String,
    finish_reason: Option<String>,
}

pub struct Transformer {
    key: Arc<crate::keys::ClientKey>,
    model: String,
    mode: Mode,
    parser: SseParser,
    id: Option<String>,
    created: i64,
    done: bool,
    finished: bool,
    choices: Vec<Choice>,
    usage: Option<Value>,
    pub chunks: u64,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn open(key: &KeyPair, field: Option<String>) -> Result<Option<String>, StreamError> {
    match field {
        Some(text) if !text.is_empty() => key
            .decrypt_str(&text)
            .map(Some)
            .map_err(StreamError::Decrypt),
        other => Ok(other),
    }
}

impl Transformer {
    pub fn new(key: Arc<crate::keys::ClientKey>, model: String, mode: Mode) -> Self {
        Transformer {
            key,
            model,
            mode,
            parser: SseParser::new(),
            id: None,
            created: now_unix(),
            done: false,
            finished: false,
            choices: Vec::new(),
            usage: None,
            chunks: 0,
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Feeds upstream bytes; OpenAI SSE for complete events is appended to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut BytesMut) -> Result<(), StreamError> {
        let mut parser = std::mem::take(&mut self.parser);
        let result = parser.push(input, |ev| self.event(ev.data, out));
        self.parser = parser;
        result
    }

    /// Upstream ended. Checks the stream completed; in aggregate mode writes the completion.
    pub fn finish(&mut self, out: &mut BytesMut) -> Result<(), StreamError> {
        let mut parser = std::mem::take(&mut self.parser);
        let tail = parser.finish(|ev| self.event(ev.data, out));
        // A cut inside the last event is a truncation, whatever that fragment looks like.
        if !(self.done || self.finished) {
            return Err(StreamError::Truncated);
        }
        tail?;
        match self.mode {
            Mode::Stream { .. } => out.extend_from_slice(b"data: [DONE]\n\n"),
            Mode::Aggregate => self.write_completion(out),
        }
        Ok(())
    }

    fn event(&mut self, data: &str, out: &mut BytesMut) -> Result<(), StreamError> {
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        if data.is_empty() || self.done {
            return Ok(());
        }
        let chunk: ChatChunk =
            serde_json::from_str(data).map_err(|e| StreamError::Malformed(e.to_string()))?;
        if let Some(err) = chunk.error {
            return Err(StreamError::Upstream(crate::venice::error_message(
                err.to_string().as_bytes(),
            )));
        }
        self.chunks += 1;
        if self.id.is_none() {
            self.id = Some(
                chunk
                    .id
                    .clone()
                    .unwrap_or_else(|| format!("chatcmpl-{:032x}", rand::random::<u128>())),
            );
            if let Some(c) = chunk.created {
                self.created = c;
            }
        }
        // Decrypt everything first: nothing from a chunk is emitted unless all of it is sound.
        let mut opened = Vec::with_capacity(chunk.choices.len());
        for c in chunk.choices {
            let content = open(&self.key.pair, c.delta.content)?;
            let reasoning = open(&self.key.pair, c.delta.reasoning_content)?;
            self.finished |= c.finish_reason.is_some();
            opened.push((c.index, c.delta.role, content, reasoning, c.finish_reason));
        }
        match self.mode {
            Mode::Stream { include_usage } => {
                let usage = chunk.usage.as_ref().filter(|_| include_usage);
                if opened.is_empty() && usage.is_none() {
                    return Ok(());
                }
                let choices = opened
                    .iter()
                    .map(
                        |(index, role, content, reasoning, finish)| out::ChunkChoice {
                            index: *index,
                            delta: out::Delta {
                                role: role.as_deref(),
                                content: content.as_deref(),
                                reasoning_content: reasoning.as_deref(),
                            },
                            logprobs: None,
                            finish_reason: finish.as_deref(),
                        },
                    )
                    .collect();
                let id = self.id.as_deref().unwrap_or_default();
                let event = out::Chunk {
                    id,
                    object: CHUNK_OBJECT,
                    created: self.created,
                    model: &self.model,
                    choices,
                    usage,
                };
                write_event(out, &event);
            }
            Mode::Aggregate => {
                for (index, _, content, reasoning, finish) in opened {
                    let i = index as usize;
                    if i >= 16 {
                        return Err(StreamError::Malformed(format!("choice index {index}")));
                    }
                    if self.choices.len() <= i {
                        self.choices.resize_with(i + 1, Choice::default);
                    }
                    let c = &mut self.choices[i];
                    c.content.push_str(content.as_deref().unwrap_or_default());
                    c.reasoning
                        .push_str(reasoning.as_deref().unwrap_or_default());
                    if finish.is_some() {
                        c.finish_reason = finish;
                    }
                }
                if chunk.usage.is_some() {
                    self.usage = chunk.usage;
                }
            }
        }
        Ok(())
    }

    fn write_completion(&mut self, out: &mut BytesMut) {
        if self.choices.is_empty() {
            self.choices.push(Choice::default());
        }
        let choices = self
            .choices
            .iter()
            .enumerate()
            .map(|(i, c)| out::CompletionChoice {
                index: i as u32,
                message: out::Message {
                    role: "assistant",
                    content: Some(c.content.as_str()),
                    reasoning_content: Some(c.reasoning.as_str()).filter(|r| !r.is_empty()),
                    refusal: None,
                },
                logprobs: None,
                finish_reason: c.finish_reason.as_deref().unwrap_or("stop"),
            })
            .collect();
        let completion = out::Completion {
            id: self.id.as_deref().unwrap_or("chatcmpl-empty"),
            object: COMPLETION_OBJECT,
            created: self.created,
            model: &self.model,
            choices,
            usage: self.usage.as_ref(),
        };
        let mut writer = BytesMutWriter(out);
        serde_json::to_writer(&mut writer, &completion).expect("completion serializes");
    }
}

struct BytesMutWriter<'a>(&'a mut BytesMut);

impl std::io::Write for BytesMutWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn write_event(out: &mut BytesMut, value: &impl serde::Serialize) {
    out.extend_from_slice(b"data: ");
    serde_json::to_writer(BytesMutWriter(out), value).expect("chunk serializes");
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;
    use crate::keys::ClientKey;
    use serde_json::json;

    fn key() -> Arc<ClientKey> {
        Arc::new(ClientKey {
            pair: KeyPair::generate(),
            created: std::time::Instant::now(),
        })
    }

    fn upstream(key: &ClientKey, parts: &[(&str, &str)], usage: bool) -> Vec<u8> {
        let enc = |t: &str| codec::encrypt(&key.pair.public_key(), t.as_bytes());
        let mut s = String::new();
        let mut push = |v: Value| s.push_str(&format!("data: {v}\n\n"));
        push(
            json!({"id": "chatcmpl-1", "created": 5, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
        );
        for (field, text) in parts {
            push(
                json!({"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {*field: enc(text)}}]}),
            );
        }
        push(
            json!({"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        );
        if usage {
            push(
                json!({"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}),
            );
        }
        s.push_str("data: [DONE]\n\n");
        s.into_bytes()
    }

    fn run(t: &mut Transformer, input: &[u8], split: usize) -> Result<String, StreamError> {
        let mut out = BytesMut::new();
        for piece in input.chunks(split.max(1)) {
            t.push(piece, &mut out)?;
        }
        t.finish(&mut out)?;
        Ok(String::from_utf8(out.to_vec()).unwrap())
    }

    fn events(text: &str) -> Vec<Value> {
        text.split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    }

    #[test]
    fn streams_decrypted_chunks() {
        let k = key();
        let input = upstream(
            &k,
            &[
                ("reasoning_content", "hmm"),
                ("content", "Hel"),
                ("content", "lo"),
            ],
            true,
        );
        for split in [1, 7, 100, input.len()] {
            let mut t = Transformer::new(
                k.clone(),
                "e2ee-m".into(),
                Mode::Stream {
                    include_usage: false,
                },
            );
            let text = run(&mut t, &input, split).unwrap();
            assert!(text.ends_with("data: [DONE]\n\n"));
            let evs = events(&text);
            assert_eq!(evs.len(), 5, "usage chunk dropped when not asked");
            assert_eq!(evs[0]["object"], "chat.completion.chunk");
            assert_eq!(evs[0]["model"], "e2ee-m");
            assert_eq!(evs[0]["choices"][0]["delta"]["role"], "assistant");
            assert_eq!(evs[1]["choices"][0]["delta"]["reasoning_content"], "hmm");
            assert_eq!(evs[2]["choices"][0]["delta"]["content"], "Hel");
            assert_eq!(evs[4]["choices"][0]["finish_reason"], "stop");
        }
        let mut t = Transformer::new(
            k.clone(),
            "e2ee-m".into(),
            Mode::Stream {
                include_usage: true,
            },
        );
        let evs = events(&run(&mut t, &input, 13).unwrap());
        assert_eq!(evs.last().unwrap()["usage"]["total_tokens"], 5);
        assert_eq!(evs.last().unwrap()["choices"], json!([]));
    }

    #[test]
    fn aggregates_one_completion() {
        let k = key();
        let input = upstream(
            &k,
            &[
                ("reasoning_content", "think"),
                ("content", "Hel"),
                ("content", "lo"),
            ],
            true,
        );
        let mut t = Transformer::new(k, "e2ee-m".into(), Mode::Aggregate);
        let v: Value = serde_json::from_str(&run(&mut t, &input, 5).unwrap()).unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["id"], "chatcmpl-1");
        assert_eq!(v["created"], 5);
        assert_eq!(v["choices"][0]["message"]["content"], "Hello");
        assert_eq!(v["choices"][0]["message"]["reasoning_content"], "think");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["usage"]["completion_tokens"], 2);
    }

    #[test]
    fn plaintext_and_tampering_fail_closed() {
        let k = key();
        let plain =
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hello in clear\"}}]}\n\n";
        let mut t = Transformer::new(
            k.clone(),
            "m".into(),
            Mode::Stream {
                include_usage: false,
            },
        );
        let mut out = BytesMut::new();
        assert!(matches!(
            t.push(plain, &mut out),
            Err(StreamError::Decrypt(_))
        ));
        assert!(out.is_empty(), "nothing of the bad chunk is emitted");

        let mut packed = codec::encrypt(&k.pair.public_key(), b"hi").into_bytes();
        let n = packed.len() - 3;
        packed[n] = if packed[n] == b'a' { b'b' } else { b'a' };
        let tampered = format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
            String::from_utf8(packed).unwrap()
        );
        let mut t = Transformer::new(k.clone(), "m".into(), Mode::Aggregate);
        assert_eq!(
            t.push(tampered.as_bytes(), &mut out),
            Err(StreamError::Decrypt(CodecError::Authentication))
        );

        // Encrypted to someone else.
        let other = codec::encrypt(&KeyPair::generate().public_key(), b"hi");
        let foreign = format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"reasoning_content\":\"{other}\"}}}}]}}\n\n");
        let mut t = Transformer::new(k, "m".into(), Mode::Aggregate);
        assert!(t.push(foreign.as_bytes(), &mut out).is_err());
    }

    #[test]
    fn truncation_and_upstream_errors_are_reported() {
        let k = key();
        let input = upstream(&k, &[("content", "partial")], false);
        let cut = &input[..input.len() / 2];
        let mut t = Transformer::new(
            k.clone(),
            "m".into(),
            Mode::Stream {
                include_usage: false,
            },
        );
        assert_eq!(run(&mut t, cut, 9), Err(StreamError::Truncated));
        let mut t = Transformer::new(k, "m".into(), Mode::Aggregate);
        let err = run(
            &mut t,
            b"data: {\"error\":{\"message\":\"overloaded\"}}\n\n",
            4,
        )
        .unwrap_err();
        assert_eq!(err, StreamError::Upstream("overloaded".into()));
    }
}
