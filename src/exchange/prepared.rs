//! A chat request ready to go upstream: sealed, its key attested, and the way its answer
//! takes to the client with what that way needs.

use crate::api::Dialect;
use crate::attestation::cache::Entry;
use crate::budget::{Budget, Held};
use crate::chat::answer::Mode;
use crate::chat::answer_writer::AnswerWriter;
use crate::chat::request::ChatRequest;
use crate::chat::sealed::Scope;
use crate::chat::stop::Stops;
use crate::chat::structured::OutputFormat;
use crate::chat::tool_calls::defs::ToolSet;
use crate::config::StreamValidation;
use crate::e2ee::keys::ClientKey;
use bytes::Bytes;
use std::sync::Arc;

/// A chat request ready to go upstream.
pub(crate) struct Prepared {
    /// The encrypted Venice body, swapped in by `request_body_filter`.
    pub(crate) body: Bytes,
    pub(crate) client_key: Arc<ClientKey>,
    pub(crate) attested: Arc<Entry>,
    pub(crate) model: String,
    pub(crate) mode: Mode,
    /// How the answer reaches the client, with what that way needs.
    pub(crate) path: AnswerPath,
    /// The client's stop sequences, applied to the decrypted answer.
    pub(crate) stops: Option<Arc<Stops>>,
    /// The agent session id, echoed to the client (never sent upstream).
    pub(crate) session: Option<String>,
    /// Whose ciphertexts this request may reuse (retries seal with it too).
    pub(crate) scope: Scope,
    /// The client's dialect, with what its answer echoes.
    pub(crate) dialect: Arc<dyn Dialect>,
    /// What was proven for this answer (`x-venice-e2ee-claims`, see `attestation::claims`).
    pub(crate) claims: String,
    /// The request's id, for its log lines.
    pub(crate) request_id: String,
    /// The memory budget, and what this request holds of it (its body read and sealed).
    pub(crate) budget: Arc<Budget>,
    pub(crate) _held: Held,
}

/// Which of the three ways an answer takes to the client. Where an answer may be asked for
/// again with a correction, the request is kept; a stream follows its structured output
/// (`format`) as it passes and validates it at the end.
pub(crate) enum AnswerPath {
    /// Pingora proxies Venice's stream, decrypted as it passes (no tools).
    Proxied { format: Option<Arc<OutputFormat>> },
    /// Read whole first (`exchange::read_whole`): every non-streaming answer, and streams under
    /// `tools.stream_validation: buffer`.
    ReadWhole {
        request: ChatRequest,
        /// The tools offered (none under `tool_choice: none`).
        tools: Option<Arc<ToolSet>>,
    },
    /// A stream with tools, relayed here (`relay`): each call held until whole and valid,
    /// an invalid one corrected inside the stream.
    Relayed {
        request: ChatRequest,
        tools: Arc<ToolSet>,
        format: Option<Arc<OutputFormat>>,
    },
}

impl AnswerPath {
    /// The way `req`'s answer takes. Non-streaming answers are read whole before the client
    /// sees a header, so a failure at any point (a drop, a tampered chunk) is still an error
    /// in the client's dialect, never a cut connection; so are checked streams under
    /// `tools.stream_validation: buffer`. Other streams with tools are relayed here, so that
    /// a call can be corrected; the rest go through Pingora. Tools under `tool_choice: none`
    /// are not offered: that answer is plain text.
    pub(crate) fn choose(req: ChatRequest, mode: Mode, validation: StreamValidation) -> Self {
        let tools = req.tools.clone().filter(|t| t.offered().next().is_some());
        let checked = tools.is_some() || req.format.is_some();
        let read_whole =
            mode == Mode::Aggregate || (checked && validation == StreamValidation::Buffer);
        match tools {
            _ if read_whole => AnswerPath::ReadWhole {
                tools,
                request: req,
            },
            Some(tools) => AnswerPath::Relayed {
                format: req.format.clone(),
                tools,
                request: req,
            },
            None => AnswerPath::Proxied {
                format: req.format.clone(),
            },
        }
    }
}

impl Prepared {
    /// The headers of an answer encrypted to `attested`, whichever way it takes: the key's
    /// address, the claims, the attestation's age, the session, tools left out, and every
    /// trust relaxation (never silent).
    pub(crate) fn answer_headers(&self, attested: &Entry) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("x-venice-e2ee-signing-address", attested.key.address_hex()),
            ("x-venice-e2ee-claims", self.claims.clone()),
            (
                "x-venice-e2ee-attestation-age",
                attested.age().as_secs().to_string(),
            ),
        ];
        if let Some(id) = &self.session {
            headers.push(("x-venice-e2ee-session", id.clone()));
        }
        let omitted = self.dialect.omitted_tools();
        if !omitted.is_empty() {
            headers.push(("x-venice-e2ee-tools-omitted", omitted.join(", ")));
        }
        let warnings = &attested.report.trust_overrides;
        if !warnings.is_empty() {
            let text: String = warnings
                .join("; ")
                .chars()
                .map(|c| {
                    if c.is_ascii_graphic() || c == ' ' {
                        c
                    } else {
                        '?'
                    }
                })
                .collect();
            headers.push(("x-venice-e2ee-trust-warning", text));
        }
        headers
    }

    /// A reservation for one answer's held text.
    pub(crate) fn hold(&self) -> Held {
        self.budget.hold()
    }

    /// A writer for one answer, in the client's dialect.
    pub(crate) fn writer(&self) -> Box<dyn AnswerWriter> {
        self.dialect.writer(&self.model, self.mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::tool_calls::defs::{ToolChoice, ToolSpec};

    fn request(tools: Option<ToolChoice>, format: bool) -> ChatRequest {
        let mut req = ChatRequest::new("m".into(), Vec::new());
        req.tools = tools.map(|choice| {
            let spec = ToolSpec {
                name: "get_weather".into(),
                description: None,
                parameters: None,
            };
            Arc::new(ToolSet::new(vec![spec], choice, true).unwrap().unwrap())
        });
        req.format = format.then(|| Arc::new(OutputFormat::json_object()));
        req
    }

    fn way(req: ChatRequest, stream: bool, validation: StreamValidation) -> &'static str {
        let mode = match stream {
            true => Mode::Stream {
                include_usage: false,
            },
            false => Mode::Aggregate,
        };
        match AnswerPath::choose(req, mode, validation) {
            AnswerPath::Proxied { .. } => "proxied",
            AnswerPath::ReadWhole { .. } => "read whole",
            AnswerPath::Relayed { .. } => "relayed",
        }
    }

    #[test]
    fn each_answer_takes_its_way() {
        use StreamValidation::{Buffer, Hold};
        let auto = Some(ToolChoice::Auto);
        let none = Some(ToolChoice::None);
        for validation in [Buffer, Hold] {
            assert_eq!(way(request(None, false), false, validation), "read whole");
            assert_eq!(
                way(request(auto.clone(), false), false, validation),
                "read whole"
            );
            assert_eq!(way(request(None, false), true, validation), "proxied");
            // Tools not offered (`tool_choice: none`) leave a plain stream.
            assert_eq!(
                way(request(none.clone(), false), true, validation),
                "proxied"
            );
        }
        assert_eq!(way(request(auto.clone(), false), true, Hold), "relayed");
        assert_eq!(way(request(auto, false), true, Buffer), "read whole");
        assert_eq!(way(request(None, true), true, Buffer), "read whole");
        assert_eq!(way(request(None, true), true, Hold), "proxied");
    }

    #[test]
    fn a_relayed_or_read_whole_answer_holds_the_offered_tools() {
        let req = request(Some(ToolChoice::Auto), false);
        let stream = Mode::Stream {
            include_usage: false,
        };
        let AnswerPath::Relayed { tools, .. } =
            AnswerPath::choose(req, stream, StreamValidation::Hold)
        else {
            panic!("a stream with tools is relayed");
        };
        assert_eq!(tools.tools[0].name, "get_weather");
        let req = request(Some(ToolChoice::None), false);
        let AnswerPath::ReadWhole { tools, .. } =
            AnswerPath::choose(req, Mode::Aggregate, StreamValidation::Hold)
        else {
            panic!("an answer not streamed is read whole");
        };
        assert!(tools.is_none(), "tool_choice none offers no tools");
    }
}
