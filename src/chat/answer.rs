//! The answer pipeline: Venice's encrypted SSE, decrypted chunk by chunk, through the
//! client's stop sequences, the tool-call parser and the structured output, to the client's
//! dialect writer (one event out per chunk in), or collected whole. Every non-empty `content`
//! / `reasoning_content` must decrypt under the client key; anything else (plaintext,
//! tampering) stops the stream.

use crate::chat::answer_writer::{AnswerWriter, Shown};
use crate::chat::stop::{StopScanner, Stops};
use crate::chat::structured::{JsonStream, OutputFormat};
use crate::chat::tool_calls::emulate::{Call, CallDelta, OnInvalid, Piece, ToolStream};
use crate::chat::tool_calls::error::ToolCallError;
use crate::e2ee::codec::{CodecError, KeyPair};
use crate::e2ee::sse::SseParser;
use crate::error::ApiError;
use crate::venice::{ChatChunk, Text};
use bytes::{Bytes, BytesMut};
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// A text field that is not ciphertext for our key: tampering or a plaintext downgrade.
    #[error("upstream sent a field that does not decrypt ({0}); stream stopped")]
    Decrypt(CodecError),
    #[error("upstream sent a malformed chunk: {0}")]
    Malformed(String),
    /// Venice reported an error inside the stream.
    #[error("upstream error: {0}")]
    Upstream(String),
    /// The stream ended before `[DONE]` or a finish reason.
    #[error("upstream stream ended before completion")]
    Truncated,
    /// The model's tool call failed validation after the stream began.
    #[error("the model produced an invalid tool call: {0}")]
    ToolCall(ToolCallError),
    /// The streamed answer is not the structured output asked for.
    #[error("the model produced no valid structured output: {0}")]
    Structured(String),
    /// Holding more of the answer would go past the proxy's memory budget.
    #[error(transparent)]
    Budget(#[from] crate::budget::Exhausted),
}

/// A stream that failed after it began: Venice's fault or the model's, a 502 naming which.
impl From<&StreamError> for ApiError {
    fn from(e: &StreamError) -> Self {
        if let StreamError::Budget(b) = e {
            return ApiError::from(*b);
        }
        let code = match e {
            StreamError::Budget(_) => unreachable!("answered above"),
            StreamError::Decrypt(_) => "e2ee_decryption_failed",
            StreamError::Malformed(_) => "upstream_malformed",
            StreamError::Upstream(_) => "upstream_error",
            StreamError::Truncated => "upstream_stream_truncated",
            StreamError::ToolCall(_) => ToolCallError::CODE,
            StreamError::Structured(_) => "structured_output_invalid",
        };
        ApiError::upstream(502, code, e.to_string())
    }
}

/// The largest answer read whole (content and reasoning): far above any model's output
/// limit, so only a sender that is not a model reaches it.
pub(crate) const MAX_ANSWER: usize = 32 << 20;

/// What any stream may keep of an event split across reads without counting against the
/// memory budget: a real event is a few hundred bytes (the per-stream working set in
/// docs/OPERATIONS.md includes it).
const EVENT_ALLOWANCE: usize = 16 << 10;

/// How the client asked for the answer: streamed (with the usage chunk or not), or whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Stream { include_usage: bool },
    Aggregate,
}

/// A whole decrypted answer (aggregate mode).
#[derive(Debug, Default)]
pub struct Answer {
    pub(crate) id: String,
    pub(crate) created: i64,
    pub(crate) content: String,
    pub(crate) reasoning: String,
    pub(crate) finish_reason: Option<String>,
    /// The stop sequence that ended the answer, when upstream named one.
    pub(crate) stop_sequence: Option<String>,
    pub(crate) usage: Option<Value>,
}

impl Answer {
    /// The finish reason a client sees once the answer's tool calls are read from it.
    pub(crate) fn finish_with(&self, calls: &[Call]) -> &str {
        if calls.is_empty() {
            self.finish_reason.as_deref().unwrap_or("stop")
        } else {
            "tool_calls"
        }
    }
}

pub struct Transformer {
    key: Arc<crate::e2ee::keys::ClientKey>,
    parser: SseParser,
    tools: Option<ToolStream>,
    /// Structured output asked for: only the JSON is streamed, and it is validated at the end.
    format: Option<(Arc<OutputFormat>, JsonStream)>,
    /// A stream is written in the client's dialect; without a writer the answer is read
    /// whole (`finish_answer`).
    writer: Option<Box<dyn AnswerWriter>>,
    /// The client's stop sequences, applied here (they never leave the pod).
    stop: Option<StopScanner>,
    /// A stop sequence ended the answer: everything after is dropped, upstream may go.
    stopped: bool,
    /// With tools, what this attempt's model wrote (decrypted content): a correction quotes
    /// it back.
    said: String,
    done: bool,
    finished: bool,
    answer: Answer,
    /// What the answer's held text takes of the proxy's memory budget.
    held: crate::budget::Held,
    pub(crate) chunks: u64,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn open(key: &KeyPair, field: Option<Text<'_>>) -> Result<Option<String>, StreamError> {
    match field {
        Some(Text(text)) if !text.is_empty() => key
            .decrypt_str(&text)
            .map(Some)
            .map_err(StreamError::Decrypt),
        other => Ok(other.map(|Text(text)| text.into_owned())),
    }
}

impl Transformer {
    /// A stream, written by the client's dialect `writer`; `tools`: emulated tool calls to
    /// read out of streamed content.
    pub fn streaming(
        key: Arc<crate::e2ee::keys::ClientKey>,
        writer: Box<dyn AnswerWriter>,
        tools: Option<ToolStream>,
    ) -> Self {
        Self::new(key, Some(writer), tools)
    }

    /// An answer read whole (`finish_answer`), judged and rendered once complete.
    pub fn collecting(key: Arc<crate::e2ee::keys::ClientKey>) -> Self {
        Self::new(key, None, None)
    }

    fn new(
        key: Arc<crate::e2ee::keys::ClientKey>,
        writer: Option<Box<dyn AnswerWriter>>,
        tools: Option<ToolStream>,
    ) -> Self {
        Transformer {
            key,
            parser: SseParser::new(),
            tools,
            format: None,
            writer,
            stop: None,
            stopped: false,
            said: String::new(),
            done: false,
            finished: false,
            answer: Answer {
                created: now_unix(),
                ..Answer::default()
            },
            held: crate::budget::Held::unbounded(),
            chunks: 0,
        }
    }

    /// Holds the answer's text against the proxy's memory budget (`budget::Held`).
    pub(crate) fn with_budget(mut self, held: crate::budget::Held) -> Self {
        self.held = held;
        self
    }

    /// Bytes held so far: the answer read whole, what a tool stream keeps to quote back, a
    /// structured output collected, an event split across reads.
    fn holding(&self) -> usize {
        self.said.len()
            + self.answer.content.len()
            + self.answer.reasoning.len()
            + self.format.as_ref().map_or(0, |(_, j)| j.collected.len())
            + self.parser.kept().saturating_sub(EVENT_ALLOWANCE)
    }

    /// Streams only the JSON of the answer and validates it against `format` at the end.
    pub fn with_format(mut self, format: Option<Arc<OutputFormat>>) -> Self {
        self.format = format.map(|f| (f, JsonStream::default()));
        self
    }

    /// Ends the answer at the first of these stop sequences.
    pub fn with_stops(mut self, stops: Option<Arc<Stops>>) -> Self {
        self.stop = stops.map(StopScanner::new);
        self
    }

    /// A stop sequence ended the answer: what upstream still sends is not needed.
    pub(crate) fn stopped(&self) -> bool {
        self.stopped
    }

    /// What this attempt's model wrote so far (with tools).
    pub(crate) fn said(&self) -> &str {
        &self.said
    }

    /// Another attempt at the same answer (after a correction): the client's stream goes
    /// on over a new upstream answer: the same id and writer, calls numbered on, invalid
    /// calls handled as `on_invalid` says.
    pub(crate) fn restart(&mut self, on_invalid: OnInvalid) {
        self.parser = SseParser::new();
        self.tools = self.tools.as_ref().map(|t| t.restart(on_invalid));
        if let Some(s) = self.stop.as_mut() {
            s.reset();
        }
        self.said.clear();
        self.done = false;
        self.finished = false;
    }

    /// The answer's id (Venice's, or one made up when its chunks carried none).
    pub(crate) fn answer_id(&self) -> &str {
        &self.answer.id
    }

    /// The event that ends a failed stream: one SSE error event, or the dialect's own.
    pub(crate) fn error_event(&mut self, err: &ApiError) -> Bytes {
        crate::metrics::METRICS
            .stream_failures
            .with_label_values(&[err.code.as_ref()])
            .inc();
        let mut out = BytesMut::new();
        match self.writer.as_mut() {
            Some(w) => w.failed(&mut out, err),
            None => out.extend_from_slice(&err.sse_event()),
        }
        out.freeze()
    }

    /// Feeds upstream bytes; OpenAI SSE for complete events is appended to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut BytesMut) -> Result<(), StreamError> {
        let mut parser = std::mem::take(&mut self.parser);
        let result = parser.push(input, |ev| self.event(ev.data, out));
        let oversized = parser.oversized();
        self.parser = parser;
        result?;
        if oversized {
            return Err(StreamError::Malformed(format!(
                "an SSE event grew past {} bytes",
                crate::e2ee::sse::MAX_EVENT
            )));
        }
        // An event split across reads is held too.
        self.held.cover(self.holding())?;
        Ok(())
    }

    /// Stream mode, upstream ended: checks the stream completed and ends it (`[DONE]`, or
    /// `response.completed`). Aggregate mode reads the whole answer with `finish_answer`.
    pub fn finish(&mut self, out: &mut BytesMut) -> Result<(), StreamError> {
        debug_assert!(self.writer.is_some(), "a stream has a writer");
        if self.stopped {
            // The stop sequence already ended the stream.
            return Ok(());
        }
        self.end_of_input(out)?;
        self.write_end(out);
        Ok(())
    }

    /// The stream's last events, in the client's dialect.
    fn write_end(&mut self, out: &mut BytesMut) {
        if let Some(w) = self.writer.as_mut() {
            w.end(out);
        }
    }

    /// Aggregate mode: the whole answer, once upstream has ended.
    pub fn finish_answer(&mut self) -> Result<Answer, StreamError> {
        self.end_of_input(&mut BytesMut::new())?;
        Ok(std::mem::take(&mut self.answer))
    }

    fn end_of_input(&mut self, out: &mut BytesMut) -> Result<(), StreamError> {
        let mut parser = std::mem::take(&mut self.parser);
        let tail = parser.finish(|ev| self.event(ev.data, out));
        // A cut inside the last event is a truncation, whatever that fragment looks like.
        if !(self.done || self.finished) {
            return Err(StreamError::Truncated);
        }
        tail
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
        if self.answer.id.is_empty() {
            self.answer.id = chunk
                .id
                .map(|Text(id)| id.into_owned())
                .unwrap_or_else(|| format!("chatcmpl-{:032x}", rand::random::<u128>()));
            self.answer.created = chunk.created.unwrap_or(self.answer.created);
        }
        // Only one choice is ever requested (`n` must be 1).
        if let Some(c) = chunk.choices.iter().find(|c| c.index != 0) {
            return Err(StreamError::Malformed(format!(
                "unexpected choice index {}",
                c.index
            )));
        }
        let choice = chunk.choices.into_iter().next();
        // Decrypt everything first: nothing from a chunk is emitted unless all of it is sound.
        let (role, content, reasoning, finish, stop_reason) = match choice {
            Some(c) => (
                c.delta.role,
                open(&self.key.pair, c.delta.content)?,
                open(&self.key.pair, c.delta.reasoning_content)?,
                c.finish_reason,
                c.stop_reason,
            ),
            None => (None, None, None, None, None),
        };
        self.finished |= finish.is_some();
        if let Some(Value::String(s)) = stop_reason {
            self.answer.stop_sequence = Some(s);
        }
        if let (Some(_), Some(text)) = (&self.tools, content.as_deref()) {
            self.said.push_str(text);
            if self.said.len() > MAX_ANSWER {
                return Err(StreamError::Malformed(format!(
                    "the answer grew past {MAX_ANSWER} bytes"
                )));
            }
            self.held.cover(self.holding())?;
        }
        let (content, finish) = self.through_stops(content, finish);
        if self.writer.is_none() {
            return self.collect(content, reasoning, finish, chunk.usage);
        }
        let Passed {
            content,
            reasoning,
            calls,
            finish,
        } = self.through_tools(content, reasoning, finish)?;
        if let Some(w) = self.writer.as_mut() {
            let shown = Shown {
                id: &self.answer.id,
                created: self.answer.created,
                role: role.as_deref(),
                content: content.as_deref(),
                reasoning: reasoning.as_deref(),
                calls: &calls,
                finish: finish.as_deref(),
                stop_sequence: self.answer.stop_sequence.as_deref(),
                usage: chunk.usage.as_ref(),
            };
            w.show(out, &shown);
        }
        if self.stopped {
            self.write_end(out);
        }
        Ok(())
    }

    /// Read whole: a chunk's pieces are collected here, judged once the answer is complete.
    fn collect(
        &mut self,
        content: Option<String>,
        reasoning: Option<String>,
        finish: Option<String>,
        usage: Option<Value>,
    ) -> Result<(), StreamError> {
        self.answer
            .content
            .push_str(content.as_deref().unwrap_or_default());
        self.answer
            .reasoning
            .push_str(reasoning.as_deref().unwrap_or_default());
        if self.answer.content.len() + self.answer.reasoning.len() > MAX_ANSWER {
            return Err(StreamError::Malformed(format!(
                "the answer grew past {MAX_ANSWER} bytes"
            )));
        }
        self.held.cover(self.holding())?;
        if finish.is_some() {
            self.answer.finish_reason = finish;
        }
        if usage.is_some() {
            self.answer.usage = usage;
        }
        Ok(())
    }

    /// The content as the client's stop sequences let it through: cut at the first one (the
    /// answer then finishes with `stop`), text that may start one held back until it is
    /// known, and released when the answer ends otherwise.
    fn through_stops(
        &mut self,
        content: Option<String>,
        finish: Option<String>,
    ) -> (Option<String>, Option<String>) {
        let Some(scanner) = self.stop.as_mut() else {
            return (content, finish);
        };
        let (mut shown, hit) = match content.as_deref() {
            Some(text) => scanner.push(text),
            None => (String::new(), None),
        };
        match hit {
            Some(seq) => {
                self.answer.stop_sequence = Some(seq);
                self.stopped = true;
                self.done = true;
                return (Some(shown), Some("stop".into()));
            }
            None if finish.is_some() => shown.push_str(&scanner.flush()),
            None => {}
        }
        // An empty upstream string stays one; held-back text is simply absent.
        let content = (!shown.is_empty() || content.as_deref() == Some("")).then_some(shown);
        (content, finish)
    }

    /// With emulated tools, content becomes text and call deltas, reasoning is held back
    /// from a possible call on, and the finish reason becomes `tool_calls` when the answer
    /// called one. With a structured output, only its JSON is shown, validated at the end.
    fn through_tools(
        &mut self,
        content: Option<String>,
        reasoning: Option<String>,
        finish: Option<String>,
    ) -> Result<Passed, StreamError> {
        if self.tools.is_none() && self.format.is_none() {
            return Ok(Passed {
                content,
                reasoning,
                calls: Vec::new(),
                finish,
            });
        }
        // An empty upstream string stays an empty string; held-back text is simply absent.
        let (empty_content, empty_reasoning) = (
            content.as_deref() == Some(""),
            reasoning.as_deref() == Some(""),
        );
        let mut finish = finish;
        let (mut piece, shown_reasoning, called) = match self.tools.as_mut() {
            Some(tools) => {
                let mut piece = match content.as_deref() {
                    Some(text) => tools.push(text).map_err(StreamError::ToolCall)?,
                    None => Piece::default(),
                };
                let mut shown = match reasoning.as_deref() {
                    Some(text) => tools.push_reasoning(text),
                    None => String::new(),
                };
                if finish.is_some() {
                    let last = tools.finish().map_err(StreamError::ToolCall)?;
                    piece.text.push_str(&last.text);
                    piece.calls.extend(last.calls);
                    shown.push_str(&last.reasoning);
                    if tools.called() {
                        finish = Some("tool_calls".into());
                    }
                }
                (piece, shown, tools.called())
            }
            None => (
                Piece {
                    text: content.unwrap_or_default(),
                    ..Piece::default()
                },
                reasoning.unwrap_or_default(),
                false,
            ),
        };
        if let Some((format, json)) = self.format.as_mut() {
            piece.text = json.push(&piece.text);
            let holding = json.collected.len() + self.said.len();
            self.held.cover(holding)?;
            if finish.is_some() && !called {
                format
                    .extract(&json.collected)
                    .map_err(StreamError::Structured)?;
            }
        }
        let keep =
            |shown: String, was_empty: bool| (!shown.is_empty() || was_empty).then_some(shown);
        Ok(Passed {
            content: keep(std::mem::take(&mut piece.text), empty_content),
            reasoning: keep(shown_reasoning, empty_reasoning),
            calls: piece.calls,
            finish,
        })
    }
}

/// What one upstream chunk shows the client once tool calls are read out of it.
struct Passed {
    content: Option<String>,
    reasoning: Option<String>,
    calls: Vec<CallDelta>,
    finish: Option<String>,
}

/// An output buffer for what `input` will produce, sized so that it rarely grows: an OpenAI
/// chunk is smaller than the encrypted Venice chunk it comes from (hex doubles the text), and
/// the margin covers an event completed by a small last piece. Grown from empty, serde's
/// writes reallocated it six or seven times per chunk (~1 % of the proxy's CPU).
pub fn output_for(input: &[u8]) -> BytesMut {
    BytesMut::with_capacity(input.len() + 256)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::completions::writer::ChatWriter;
    use crate::chat::answer_writer::{AnswerWriter, Judged};
    use crate::e2ee::codec;
    use crate::e2ee::keys::ClientKey;
    use serde_json::json;

    fn key() -> Arc<ClientKey> {
        Arc::new(ClientKey {
            pair: KeyPair::generate(),
            created: std::time::Instant::now(),
        })
    }

    /// A plain streaming transformer (no usage, no tools).
    fn streaming(k: &Arc<ClientKey>) -> Transformer {
        Transformer::streaming(
            k.clone(),
            Box::new(ChatWriter::new(
                "m".into(),
                Mode::Stream {
                    include_usage: false,
                },
            )),
            None,
        )
    }

    fn upstream(key: &ClientKey, parts: &[(&str, &str)], usage: bool) -> Vec<u8> {
        let enc = |t: &str| codec::encrypt(&key.pair.recipient(), t.as_bytes());
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

    /// Aggregate mode: the whole answer from `input` fed in `split`-byte pieces.
    fn aggregate(t: &mut Transformer, input: &[u8], split: usize) -> Result<Answer, StreamError> {
        let mut out = BytesMut::new();
        for piece in input.chunks(split.max(1)) {
            t.push(piece, &mut out)?;
        }
        t.finish_answer()
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
            let mut t = Transformer::streaming(
                k.clone(),
                Box::new(ChatWriter::new(
                    "e2ee-m".into(),
                    Mode::Stream {
                        include_usage: false,
                    },
                )),
                None,
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
        let mut t = Transformer::streaming(
            k.clone(),
            Box::new(ChatWriter::new(
                "e2ee-m".into(),
                Mode::Stream {
                    include_usage: true,
                },
            )),
            None,
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
        let mut t = Transformer::collecting(k);
        let answer = aggregate(&mut t, &input, 5).unwrap();
        let judged = Judged {
            answer: &answer,
            content: Some(&answer.content),
            calls: &[],
        };
        let mut w = ChatWriter::new("e2ee-m".into(), Mode::Aggregate);
        let v: Value = serde_json::from_slice(&w.judged(&judged, false)).unwrap();
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
        let mut t = streaming(&k);
        let mut out = BytesMut::new();
        assert!(matches!(
            t.push(plain, &mut out),
            Err(StreamError::Decrypt(_))
        ));
        assert!(out.is_empty(), "nothing of the bad chunk is emitted");

        let mut packed = codec::encrypt(&k.pair.recipient(), b"hi").into_bytes();
        let n = packed.len() - 3;
        packed[n] = if packed[n] == b'a' { b'b' } else { b'a' };
        let tampered = format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
            String::from_utf8(packed).unwrap()
        );
        let mut t = Transformer::collecting(k.clone());
        assert_eq!(
            t.push(tampered.as_bytes(), &mut out),
            Err(StreamError::Decrypt(CodecError::Authentication))
        );

        // Encrypted to someone else.
        let other = codec::encrypt(&KeyPair::generate().recipient(), b"hi");
        let foreign = format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"reasoning_content\":\"{other}\"}}}}]}}\n\n");
        let mut t = Transformer::collecting(k);
        assert!(t.push(foreign.as_bytes(), &mut out).is_err());
    }

    /// Text is borrowed from the event, but JSON escapes in it (legal, if unusual) are undone.
    #[test]
    fn escaped_ciphertext_and_id_are_read() {
        let k = key();
        let packed = codec::encrypt(&k.pair.recipient(), b"esc");
        // `\u0030` is `0`; escape every `0` of the hex and one character of the id.
        let escaped = packed.replace('0', "\\u0030");
        let input = format!(
            "data: {{\"id\":\"chat\\u0063mpl-9\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{escaped}\"}},\"finish_reason\":\"stop\"}}]}}\n\ndata: [DONE]\n\n"
        );
        let mut t = streaming(&k);
        let evs = events(&run(&mut t, input.as_bytes(), 11).unwrap());
        assert_eq!(evs[0]["id"], "chatcmpl-9");
        assert_eq!(evs[0]["choices"][0]["delta"]["content"], "esc");
    }

    #[test]
    fn truncation_and_upstream_errors_are_reported() {
        let k = key();
        let input = upstream(&k, &[("content", "partial")], false);
        let cut = &input[..input.len() / 2];
        let mut t = streaming(&k);
        assert_eq!(run(&mut t, cut, 9), Err(StreamError::Truncated));
        let mut t = Transformer::collecting(k);
        let err = aggregate(
            &mut t,
            b"data: {\"error\":{\"message\":\"overloaded\"}}\n\n",
            4,
        )
        .unwrap_err();
        assert_eq!(err, StreamError::Upstream("overloaded".into()));
    }

    /// The client's stop sequences end the answer in the proxy: split across chunks and
    /// across reads, streamed (the stream ends at once with `[DONE]`) and whole; held-back
    /// text that turns out to be no stop is released.
    #[test]
    fn stop_sequences_end_the_answer_here() {
        let k = key();
        let stops = || Stops::new(vec!["STOP".into()]);
        let input = upstream(
            &k,
            &[
                ("content", "one ST"),
                ("content", "OP two"),
                ("content", "three"),
            ],
            true,
        );
        for split in [1, 7, 4096] {
            let mut t = Transformer::streaming(
                k.clone(),
                Box::new(ChatWriter::new(
                    "m".into(),
                    Mode::Stream {
                        include_usage: true,
                    },
                )),
                None,
            )
            .with_stops(stops());
            let mut out = BytesMut::new();
            for piece in input.chunks(split) {
                t.push(piece, &mut out).unwrap();
            }
            assert!(t.stopped());
            let text = String::from_utf8(out.to_vec()).unwrap();
            assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
            assert_eq!(text.matches("[DONE]").count(), 1);
            t.finish(&mut out).unwrap();
            assert_eq!(
                String::from_utf8(out.to_vec()).unwrap(),
                text,
                "nothing after"
            );
            let evs = events(&text);
            let shown: String = evs
                .iter()
                .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
                .collect();
            assert_eq!(shown, "one ");
            assert_eq!(evs.last().unwrap()["choices"][0]["finish_reason"], "stop");
        }
        let mut t = Transformer::collecting(k.clone()).with_stops(stops());
        let a = aggregate(&mut t, &input, 5).unwrap();
        assert_eq!(
            (a.content.as_str(), a.finish_reason.as_deref()),
            ("one ", Some("stop"))
        );
        assert_eq!(a.stop_sequence.as_deref(), Some("STOP"));
        // "ST" then "OP" that is no stop: released whole.
        let no_stop = upstream(&k, &[("content", "a ST"), ("content", "AR")], false);
        let mut t = streaming(&k).with_stops(stops());
        let evs = events(&run(&mut t, &no_stop, 3).unwrap());
        let shown: String = evs
            .iter()
            .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(shown, "a STAR");
        assert!(!t.stopped());
    }

    /// A sender that is not a model cannot make the proxy hold an endless event or answer.
    #[test]
    fn endless_events_and_answers_are_refused() {
        let k = key();
        let mut t = streaming(&k);
        let mut out = BytesMut::new();
        t.push(
            b"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"",
            &mut out,
        )
        .unwrap();
        let filler = vec![b'0'; 1 << 20];
        let e = t.push(&filler, &mut out).unwrap_err();
        assert!(matches!(e, StreamError::Malformed(m) if m.contains("SSE event")));
        // An answer read whole, in events of half a megabyte each, past MAX_ANSWER.
        let mut t = Transformer::collecting(k.clone());
        let text = "z".repeat(480 << 10);
        let enc = codec::encrypt(&k.pair.recipient(), text.as_bytes());
        let event = format!(
            "data: {}\n\n",
            json!({"id": "c", "choices": [{"index": 0, "delta": {"content": enc}}]})
        );
        let mut failed = None;
        for _ in 0..(MAX_ANSWER / text.len() + 2) {
            if let Err(e) = t.push(event.as_bytes(), &mut out) {
                failed = Some(e);
                break;
            }
        }
        assert!(matches!(failed, Some(StreamError::Malformed(m)) if m.contains("answer grew")));
    }
}
