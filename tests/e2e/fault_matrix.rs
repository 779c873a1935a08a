//! The fault matrix: every simulated fault × streaming / non-streaming / tools buffered /
//! tools streamed, observed through the real server. Each cell is what the client sees
//! (status, code, and whether it got a JSON error, an SSE error event after some chunks, or
//! the answer). Invariants are asserted on every cell; the whole table must equal the one in
//! `docs/FAULTS.md` (`UPDATE_SNAPSHOTS=1` rewrites it), so the document cannot drift.

use crate::harness::*;
use serde_json::{json, Value};
use std::time::Duration;
use venice_e2ee_proxy::config::{Config, StreamValidation};
use venice_e2ee_tools::sim::rekor::RekorFault;
use venice_e2ee_tools::sim::{AttestationFault, ChatFault, Simulator};

const MODES: [&str; 4] = [
    "streaming",
    "non-streaming",
    "tools buffered",
    "tools streamed",
];
/// The reply every fault spoils; its words come one per chunk.
const REPLY: &str = "alpha bravo charlie delta echo";

fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}])
}

fn body(mode: &str) -> Value {
    let mut b = json!({"model": MODEL, "stream": mode != "non-streaming",
        "messages": [{"role": "user", "content": REPLY}]});
    if mode.starts_with("tools") {
        b["tools"] = tools();
    }
    b
}

/// What one request showed the client, in one table cell.
/// `racy`: the most chunks that may reach the client before the error event when that number
/// depends on timing (an upstream reset can overtake chunks already decrypted).
async fn observe(
    p: &Proxy,
    mode: &str,
    plaintext_probe: Option<&str>,
    racy: Option<usize>,
) -> String {
    let mut r = p.post(&body(mode)).await;
    let status = r.status().as_u16();
    let json_type = r.headers()["content-type"] == "application/json";
    let mut bytes = Vec::new();
    let mut cut = false;
    loop {
        match r.chunk().await {
            Ok(Some(c)) => bytes.extend_from_slice(&c),
            Ok(None) => break,
            Err(_) => {
                cut = true;
                break;
            }
        }
    }
    assert!(
        !(cut && mode == "non-streaming"),
        "a non-streaming client never sees a cut connection"
    );
    let cut = if cut { ", then connection cut" } else { "" };
    let text = String::from_utf8_lossy(&bytes).to_string();
    if let Some(probe) = plaintext_probe {
        assert!(
            !text.contains(probe),
            "plaintext `{probe}` reached the client: {text}"
        );
    }
    if json_type {
        let v: Value = serde_json::from_str(&text).unwrap();
        if status == 200 {
            assert_eq!(v["choices"][0]["message"]["content"], REPLY);
            return "200, answer".into();
        }
        let e = &v["error"];
        assert!(e["message"].is_string() && e["type"].is_string(), "{v}");
        return format!("{status} `{}` (JSON)", e["code"].as_str().unwrap());
    }
    assert_ne!(mode, "non-streaming", "non-streaming answers are JSON");
    let events: Vec<&str> = text
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data:").map(str::trim))
        .collect();
    let words = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter(|e| {
            e.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .is_some_and(|c| !c.trim().is_empty())
        })
        .count();
    match events.last() {
        Some(&"[DONE]") => {
            assert!(!events.iter().any(|e| e.contains("\"error\"")));
            format!("{status}, answer + [DONE]")
        }
        Some(last) => {
            let v: Value = serde_json::from_str(last).unwrap();
            let code = v["error"]["code"]
                .as_str()
                .expect("a stream ends with [DONE] or an error event");
            assert!(!events.contains(&"[DONE]"));
            let words = match racy {
                Some(most) => {
                    assert!(words <= most, "{words} chunks before the failure");
                    format!("up to {most}")
                }
                None => words.to_string(),
            };
            format!("{status}, {words} chunks then SSE error `{code}`{cut}")
        }
        None => format!("{status}, nothing{cut}"),
    }
}

async fn start(sim: Simulator, f: impl FnOnce(&mut Config)) -> Proxy {
    Proxy::start(sim, |c| {
        c.venice.first_byte_timeout = Duration::from_millis(700);
        c.venice.idle_timeout = Duration::from_millis(700);
        c.tools.max_retries = 0;
        f(c)
    })
    .await
}

/// One row: the fault under each mode. "Tools buffered" runs on a proxy that validates
/// tool answers whole before streaming them.
async fn row(
    name: &str,
    plain: &Proxy,
    buffered: &Proxy,
    probe: Option<&str>,
    arm: &dyn Fn(&Proxy),
) -> String {
    let racy = name.starts_with("drop after").then_some(2);
    let mut cells = Vec::new();
    for mode in MODES {
        let p = if mode == "tools buffered" {
            buffered
        } else {
            plain
        };
        arm(p);
        cells.push(observe(p, mode, probe, racy).await);
    }
    format!("| {name} | {} |", cells.join(" | "))
}

/// A row measured on fresh proxies (nothing attested or cached yet).
async fn fresh_row(name: &str, arm: &dyn Fn(&Proxy)) -> String {
    let plain = start(sim().await, |_| {}).await;
    let buffered = start(sim().await, buffered_config).await;
    row(name, &plain, &buffered, None, arm).await
}

fn buffered_config(c: &mut Config) {
    c.tools.stream_validation = StreamValidation::Buffer;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fault_matrix_matches_its_document() {
    let mut rows = Vec::new();
    // Faults on the chat call: one pair of proxies, attested once.
    let plain = start(sim().await, |_| {}).await;
    let buffered = start(sim().await, buffered_config).await;
    let status = |s: u16, m: &str| ChatFault::Status {
        status: s,
        message: m.into(),
        retry_after: (s == 429).then(|| "3".into()),
    };
    let stall = |after| ChatFault::Stall {
        after_chunks: after,
        duration: Duration::from_secs(2),
    };
    let chat_faults: Vec<(String, ChatFault, Option<&str>)> = vec![
        (
            "upstream 400 (context too long)".into(),
            status(400, "context length exceeded"),
            None,
        ),
        (
            "upstream 400 (E2EE field refused)".into(),
            status(400, "Failed to decrypt field"),
            None,
        ),
        (
            "upstream 401".into(),
            status(401, "Authentication failed"),
            None,
        ),
        ("upstream 403".into(), status(403, "Forbidden"), None),
        ("upstream 404".into(), status(404, "Model not found"), None),
        (
            "upstream 429".into(),
            status(429, "Rate limit exceeded"),
            None,
        ),
        ("upstream 500".into(), status(500, "Internal error"), None),
        ("upstream 502".into(), status(502, "Bad gateway"), None),
        ("upstream 503".into(), status(503, "Overloaded"), None),
        ("upstream 504".into(), status(504, "Gateway timeout"), None),
        (
            "tampered chunk (first)".into(),
            ChatFault::Tamper { at_chunk: 0 },
            None,
        ),
        (
            "tampered chunk (third)".into(),
            ChatFault::Tamper { at_chunk: 2 },
            None,
        ),
        (
            "plaintext downgrade (first)".into(),
            ChatFault::Plaintext { at_chunk: 0 },
            Some("alpha"),
        ),
        (
            "plaintext downgrade (third)".into(),
            ChatFault::Plaintext { at_chunk: 2 },
            Some("charlie"),
        ),
        (
            "drop before the first chunk".into(),
            ChatFault::Drop { after_chunks: 0 },
            None,
        ),
        (
            "drop after two chunks".into(),
            ChatFault::Drop { after_chunks: 2 },
            None,
        ),
        ("stall before the headers".into(), stall(None), None),
        ("stall after two chunks".into(), stall(Some(2)), None),
        (
            "upstream error event after two chunks".into(),
            ChatFault::StreamError {
                after_chunks: 2,
                message: "overloaded".into(),
            },
            None,
        ),
    ];
    for (name, fault, probe) in chat_faults {
        let arm = |p: &Proxy| p.sim.set_chat_fault(Some(fault.clone()));
        rows.push(row(&name, &plain, &buffered, probe, &arm).await);
    }
    plain.sim.set_chat_fault(None);
    buffered.sim.set_chat_fault(None);
    rows.push(row("none (baseline)", &plain, &buffered, None, &|_| {}).await);

    // The model's key rotates between attestation and chat.
    let rotate = |p: &Proxy| {
        p.sim.rotate_key(MODEL);
    };
    rows.push(
        row(
            "model key rotated after attestation",
            &plain,
            &buffered,
            None,
            &rotate,
        )
        .await,
    );

    // Attestation faults: fresh proxies, so nothing is cached.
    for fault in [
        AttestationFault::WrongNonce,
        AttestationFault::WrongModel,
        AttestationFault::DebugBit,
        AttestationFault::KeyNotBound,
        AttestationFault::Unverified,
        AttestationFault::ServerError,
        AttestationFault::BadEventLog,
        AttestationFault::BadCompose,
        AttestationFault::GpuNonce,
        AttestationFault::GpuSignature,
        AttestationFault::BadQuoteSignature,
    ] {
        let arm = |p: &Proxy| p.sim.set_attestation_fault(Some(fault));
        rows.push(fresh_row(&format!("attestation: {fault:?}"), &arm).await);
    }

    // Sigstore: the images' provenance (fresh proxies: no verified digest cached).
    for fault in [
        RekorFault::MissingEntry,
        RekorFault::AlteredEntry,
        RekorFault::BrokenProof,
        RekorFault::WrongIdentity,
        RekorFault::Down,
    ] {
        let arm = |p: &Proxy| p.sim.set_rekor_fault(Some(fault));
        rows.push(fresh_row(&format!("Rekor: {fault:?}"), &arm).await);
    }

    // Collateral and NRAS services down, and an upstream whose name does not resolve.
    type Outage = (&'static str, fn(&mut Config));
    let outages: [Outage; 3] = [
        ("Intel PCS down (no cached collateral)", |c| {
            c.attestation.pcs_url = "http://127.0.0.1:9/pcs".into();
        }),
        ("NVIDIA NRAS down (NRAS enforced)", |c| {
            c.attestation.nras = true;
            c.attestation.nras_url = "http://127.0.0.1:9/nras".into();
        }),
        ("DNS failure for the Venice host", |c| {
            c.venice.base_url = "https://venice.invalid/api/v1".into();
        }),
    ];
    for (name, f) in outages {
        let plain = start(sim().await, f).await;
        let buffered = start(sim().await, |c| {
            buffered_config(c);
            f(c)
        })
        .await;
        rows.push(row(name, &plain, &buffered, None, &|_| {}).await);
    }

    let table = format!(
        "| fault | {} |\n|---|---|---|---|---|\n{}\n",
        MODES.join(" | "),
        rows.join("\n")
    );
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/FAULTS.md");
    let doc = std::fs::read_to_string(path).unwrap_or_default();
    const BEGIN: &str = "<!-- fault matrix: generated by tests/e2e/fault_matrix.rs -->\n";
    const END: &str = "<!-- end of fault matrix -->";
    let (head, rest) = doc
        .split_once(BEGIN)
        .expect("docs/FAULTS.md has the matrix markers");
    let (_, tail) = rest
        .split_once(END)
        .expect("docs/FAULTS.md has the end marker");
    let expected = format!("{head}{BEGIN}{table}{END}{tail}");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, &expected).unwrap();
        return;
    }
    assert_eq!(
        doc, expected,
        "the fault matrix changed (UPDATE_SNAPSHOTS=1 rewrites docs/FAULTS.md)"
    );
}
