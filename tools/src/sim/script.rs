//! What the simulated Venice will say and do next: scripted replies, pacing, faults; and
//! the record of what it received, so tests can prove what crossed the wire.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::VecDeque;
use std::time::Duration;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reply {
    pub content: String,
    #[serde(default)]
    pub reasoning: Option<String>,
    /// Only a request for this model takes this reply (agents send side requests, e.g. a
    /// title on a small model, that must not take the main turn's scripted answer).
    #[serde(default)]
    pub model: Option<String>,
}

/// Streaming pace: time to first token and tokens per second (0 = as fast as possible).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Pacing {
    #[serde(default, with = "venice_e2ee_proxy::config::units::duration")]
    pub ttft: Duration,
    #[serde(default)]
    pub tokens_per_second: f64,
}

/// Faults on `POST /chat/completions`. Chunk positions count content-bearing chunks from 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChatFault {
    Status {
        status: u16,
        message: String,
        #[serde(default)]
        retry_after: Option<String>,
    },
    /// Flip a byte of the ciphertext in this chunk.
    Tamper { at_chunk: usize },
    /// Send this chunk's content in clear, as a downgrade would.
    Plaintext { at_chunk: usize },
    /// Abort the connection after this many chunks.
    Drop { after_chunks: usize },
    /// Go silent after this many chunks (`None`: before the response headers).
    Stall {
        after_chunks: Option<usize>,
        #[serde(with = "venice_e2ee_proxy::config::units::duration")]
        duration: Duration,
    },
    /// Report an error inside the stream after this many chunks.
    StreamError {
        after_chunks: usize,
        message: String,
    },
    /// Answer encrypted to the previous chat's client key: a hostile gateway handing one
    /// client another's answer.
    AnswerToPreviousClient,
}

/// Faults on `GET /tee/attestation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttestationFault {
    WrongNonce,
    WrongModel,
    DebugBit,
    KeyNotBound,
    Unverified,
    ServerError,
    /// An event-log entry that does not replay to the quote's RTMRs.
    BadEventLog,
    /// An app compose that MRCONFIGID does not bind.
    BadCompose,
    /// GPU evidence signed over another nonce.
    GpuNonce,
    /// GPU evidence changed after signing.
    GpuSignature,
    /// A quote changed after the attestation key signed it.
    BadQuoteSignature,
    /// ACI: the quote binds the statement for another nonce.
    WrongStatement,
    /// ACI: the keyset lists another E2EE key than the one the envelope names.
    KeyNotInKeyset,
    /// ACI: the keyset expired a minute ago.
    ExpiredKeyset,
    /// ACI: the restated keyset digest is not the keyset's.
    KeysetDigestMismatch,
    /// ACI: the restated report_data differs from the quote's.
    RestatedReportData,
    /// ACI: the source provenance names a commit the compose does not build.
    UnmeasuredSource,
    /// The unsigned fields of a gateway on a workload that is none: no GPU evidence,
    /// `vm_config.num_gpus: 0`, and a source claim naming an image its compose pins.
    GatewayClaimedOnly,
    /// An attestation of 9 MiB (padding in an unread field): a sender that is not Venice.
    Oversized,
    /// The enclave states it serves another upstream model than the one asked for.
    SubstitutedModel,
}

/// Faults of the ACI gateway's own attestation (`/v1/aci/attestation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnchorFault {
    /// A genuine quote of another workload (another RTMR1, another MRTD).
    OtherWorkload,
    /// Its quote binds another keyset than the one Venice serves.
    OtherKeyset,
    /// The statement binds another nonce (a replayed report).
    WrongNonce,
    /// 503.
    Unavailable,
}

/// What GPU evidence the ACI gateway serves: its upstream's, relayed (as Venice's `aci/1`
/// answers carry it), the empty placeholder, or none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AciGpu {
    #[default]
    Relayed,
    Placeholder,
    Absent,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Script {
    /// Consumed in order; when empty the simulator echoes the last user message.
    #[serde(default)]
    pub replies: VecDeque<Reply>,
    #[serde(default)]
    pub pacing: Pacing,
    #[serde(default)]
    pub chat_fault: Option<ChatFault>,
    #[serde(default)]
    pub attestation_fault: Option<AttestationFault>,
    #[serde(default)]
    pub aci_gpu: AciGpu,
    /// Framings the attestation is served in (benign drift a verifier must accept).
    #[serde(default)]
    pub attestation_drift: Vec<super::drift::Drift>,
    /// With no `chat_fault` set, this share of chats (0–1) gets a random fault (tampering,
    /// plaintext, a drop, an upstream error event, a 500), counted in the record.
    #[serde(default)]
    pub random_fault_rate: f64,
    /// Count chats but keep no record of each (long soak runs).
    #[serde(default)]
    pub skip_chat_records: bool,
    /// What the simulated Rekor spoils.
    #[serde(default)]
    pub rekor_fault: Option<super::rekor::RekorFault>,
    /// How attestations are framed and bound (dstack, or `aci/1` with receipts).
    #[serde(default)]
    pub attestation_layout: super::aci::Layout,
    /// What receipts spoil (ACI layouts).
    #[serde(default)]
    pub receipt_fault: Option<super::aci::ReceiptFault>,
    /// The shapes of the ACI gateway's artifacts: as the gateway Venice runs serves them
    /// (default), or as the spec at HEAD gives them.
    #[serde(default)]
    pub aci_forms: super::aci::Forms,
    /// Answers carry no `x-receipt-id` (a hop that does not pass it on): receipts are then
    /// looked up by the answer's id.
    #[serde(default)]
    pub hide_receipt_id: bool,
    /// What receipts' hashes cover (Venice re-wraps bodies unless told otherwise).
    #[serde(default)]
    pub receipt_bodies: super::aci::ReceiptBodies,
    /// What the ACI gateway's own attestation endpoint spoils.
    #[serde(default)]
    pub anchor_fault: Option<AnchorFault>,
    /// The app compose the attested CVM runs (the model's in the dstack layout, the gateway's
    /// in the ACI layouts), in place of the simulator's own: a hostile Venice may serve any.
    #[serde(default)]
    pub workload: Option<super::evidence::Manifest>,
    /// ACI keysets served from now on expire this many seconds after each attestation (a
    /// gateway rotating its keyset epoch); unset, they last a week.
    #[serde(default)]
    pub keyset_lifetime_secs: Option<u64>,
    /// Scheduled retirements, served as each model's `model_spec.deprecation` (as Venice's
    /// list does: `date`, `removesAt`, `autoRemap`).
    #[serde(default)]
    pub deprecations: std::collections::BTreeMap<String, Value>,
    /// Models Venice no longer lists (retired since).
    #[serde(default)]
    pub retired: Vec<String>,
    /// How an unscripted request is answered: `echo` (the last user message) or `agent` (a
    /// small deterministic tool-calling model, see `responder.rs`).
    #[serde(default)]
    pub responder: super::responder::Responder,
}

impl ChatFault {
    /// A random fault a client must see as an error, for soak runs.
    pub fn random() -> ChatFault {
        let at = rand::random::<u8>() as usize % 3;
        match rand::random::<u8>() % 5 {
            0 => ChatFault::Tamper { at_chunk: at },
            1 => ChatFault::Plaintext { at_chunk: at },
            2 => ChatFault::Drop { after_chunks: at },
            3 => ChatFault::StreamError {
                after_chunks: at,
                message: "overloaded".into(),
            },
            _ => ChatFault::Status {
                status: 500,
                message: "internal error".into(),
                retry_after: None,
            },
        }
    }
}

/// One request that reached `POST /chat/completions`, whatever the outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ChatRecord {
    pub http_version: String,
    /// Lower-case header names; `authorization` is recorded only as present/absent.
    pub headers: Vec<(String, String)>,
    /// The body exactly as received (parsed), ciphertext and all.
    pub body: Value,
    /// What the simulated enclave decrypted, in message order (empty when rejected).
    pub decrypted: Vec<String>,
    /// The status it answered with.
    pub status: u16,
}

impl ChatRecord {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Record {
    pub chats: Vec<ChatRecord>,
    /// `(model, nonce)` of every attestation request.
    pub attestations: Vec<(String, String)>,
    /// Faults injected at random (`Script::random_fault_rate`).
    pub random_faults: usize,
    /// Chats answered (recorded or not).
    pub chats_answered: usize,
    pub model_lists: usize,
    /// Requests to the simulated Rekor.
    pub rekor_requests: usize,
    /// Every request to a simulated third party (Intel PCS, NVIDIA NRAS, Rekor), as received:
    /// what a third party learns of the proxy.
    pub third_party: Vec<ThirdPartyRequest>,
}

/// One request to a simulated third party.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ThirdPartyRequest {
    pub path: String,
    /// Every header as received, name and value.
    pub headers: Vec<(String, String)>,
}
