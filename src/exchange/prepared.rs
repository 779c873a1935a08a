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
