//! The closed-loop load generator: N concurrent clients, each sending its next request as soon
//! as the last one ended, for a set time after a warm-up. Against the proxy it speaks OpenAI;
//! straight against the simulated Venice it speaks Venice's E2EE protocol (messages encrypted
//! to the model key, the TEE headers) and reads the encrypted stream without decrypting it.

use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use venice_e2ee_proxy::e2ee::codec::{self, KeyPair, Recipient};
use venice_e2ee_proxy::venice::{HEADER_CLIENT_PUB_KEY, HEADER_MODEL_PUB_KEY, HEADER_SIGNING_ALGO};

#[derive(Debug, Clone)]
pub enum Target {
    /// An OpenAI-compatible base URL (`…/v1`): the proxy, or anything like it.
    OpenAi { base: String },
    /// Venice's API (the simulated one), spoken directly with E2EE.
    Venice { base: String, api_key: String },
}

#[derive(Debug, Clone)]
pub struct Load {
    pub clients: usize,
    pub stream: bool,
    /// Messages per request (alternating user/assistant, ending with a user message).
    pub messages: usize,
    /// Characters per message.
    pub message_chars: usize,
    pub model: String,
    /// Clients start spread over it; nothing in it is measured.
    pub warmup: Duration,
    pub duration: Duration,
}

/// What one run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    /// Requests that ended in the measured window, and how many of them failed.
    pub requests: u64,
    pub errors: u64,
    /// Answer chunks received in the window (streams) or answered in it
    /// (`usage.completion_tokens`), whenever their request began.
    pub chunks: u64,
    pub seconds: f64,
    pub requests_per_s: f64,
    pub chunks_per_s: f64,
    pub ttft_ms: Percentiles,
    pub total_ms: Percentiles,
    /// The first error seen, to say what went wrong.
    pub first_error: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

impl Percentiles {
    fn of(mut samples: Vec<f64>) -> Self {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
        }
    }
}

#[derive(Default)]
struct Samples {
    requests: u64,
    errors: u64,
    chunks: u64,
    ttft_ms: Vec<f64>,
    total_ms: Vec<f64>,
    first_error: Option<String>,
}

impl Samples {
    fn merge(&mut self, other: Samples) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.chunks += other.chunks;
        self.ttft_ms.extend(other.ttft_ms);
        self.total_ms.extend(other.total_ms);
        self.first_error = self.first_error.take().or(other.first_error);
    }
}

/// One prepared request: the body and headers every request of a run sends.
struct Prepared {
    url: String,
    headers: reqwest::header::HeaderMap,
    body: bytes::Bytes,
}

fn conversation(load: &Load) -> Vec<(&'static str, String)> {
    let text: String = "lorem ipsum dolor sit amet "
        .chars()
        .cycle()
        .take(load.message_chars.max(1))
        .collect();
    let n = load.messages.max(1);
    (0..n)
        .map(|i| {
            let role = if (n - 1 - i) % 2 == 0 {
                "user"
            } else {
                "assistant"
            };
            (role, format!("{i}: {text}"))
        })
        .collect()
}

async fn prepare(http: &reqwest::Client, target: &Target, load: &Load) -> Result<Prepared, String> {
    let messages = conversation(load);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("content-type", "application/json".parse().expect("valid"));
    match target {
        Target::OpenAi { base } => {
            let body = json!({
                "model": load.model,
                "stream": load.stream,
                "messages": messages.iter().map(|(r, t)| json!({"role": r, "content": t})).collect::<Vec<_>>(),
            });
            Ok(Prepared {
                url: format!("{}/chat/completions", base.trim_end_matches('/')),
                headers,
                body: serde_json::to_vec(&body).expect("JSON").into(),
            })
        }
        Target::Venice { base, api_key } => {
            let base = base.trim_end_matches('/');
            // The model key, unverified: this is the baseline client, not the proxy.
            let nonce = hex::encode(rand::random::<[u8; 32]>());
            let att: Value = http
                .get(format!("{base}/tee/attestation"))
                .query(&[("model", load.model.as_str()), ("nonce", &nonce)])
                .bearer_auth(api_key)
                .send()
                .await
                .map_err(|e| format!("attestation: {e}"))?
                .json()
                .await
                .map_err(|e| format!("attestation: {e}"))?;
            let key_text = att["signing_key"]
                .as_str()
                .or_else(|| att["signing_public_key"].as_str())
                .ok_or("attestation: no signing key")?;
            let model_key = codec::parse_public_key(key_text).map_err(|e| e.to_string())?;
            let to = Recipient::new(&model_key);
            let client = KeyPair::generate();
            let body = json!({
                "model": load.model,
                "stream": true,
                "stream_options": {"include_usage": true},
                "messages": messages.iter()
                    .map(|(r, t)| json!({"role": r, "content": codec::encrypt(&to, t.as_bytes())}))
                    .collect::<Vec<_>>(),
                "venice_parameters": {"enable_e2ee": true, "include_venice_system_prompt": false, "enable_web_search": "off"},
            });
            let h = |v: &str| v.parse().map_err(|_| "bad header value".to_string());
            headers.insert("authorization", h(&format!("Bearer {api_key}"))?);
            headers.insert(HEADER_CLIENT_PUB_KEY, h(client.public_hex())?);
            headers.insert(HEADER_MODEL_PUB_KEY, h(&codec::public_key_hex(&model_key))?);
            headers.insert(HEADER_SIGNING_ALGO, h("ecdsa")?);
            Ok(Prepared {
                url: format!("{base}/chat/completions"),
                headers,
                body: serde_json::to_vec(&body).expect("JSON").into(),
            })
        }
    }
}

/// Counts SSE events that carry non-empty `content` (an answer chunk, encrypted or not) in a
/// stream read in pieces; `carry` keeps a piece's tail that may begin a pattern the next piece
/// ends. A piece that ends between events (nearly all) leaves nothing to carry, and the next
/// one is scanned where it lies: the relay's floor (`relay.rs`) counts with this too.
#[derive(Default)]
pub(crate) struct ChunkCounter {
    carry: Vec<u8>,
}

const CONTENT: &[u8] = b"\"content\":\"";

impl ChunkCounter {
    pub(crate) fn count(&mut self, piece: &[u8]) -> u64 {
        if self.carry.is_empty() {
            let (n, keep) = scan(piece);
            self.carry.extend_from_slice(&piece[keep..]);
            n
        } else {
            self.carry.extend_from_slice(piece);
            let (n, keep) = scan(&self.carry);
            self.carry.drain(..keep);
            n
        }
    }
}

/// Non-empty contents in `buf`, and where its undecided tail begins: a pattern with nothing
/// after it yet, or a suffix that could be the start of one.
fn scan(buf: &[u8]) -> (u64, usize) {
    let mut n = 0;
    let mut decided = 0;
    for at in memchr::memmem::find_iter(buf, CONTENT) {
        let Some(&next) = buf.get(at + CONTENT.len()) else {
            return (n, at);
        };
        n += u64::from(next != b'"');
        decided = at + CONTENT.len();
    }
    let tail = buf.len().saturating_sub(CONTENT.len() - 1).max(decided);
    let keep = (tail..buf.len())
        .find(|&from| CONTENT.starts_with(&buf[from..]))
        .unwrap_or(buf.len());
    (n, keep)
}

/// The measured window. What happens in it counts, whenever its request began: a long
/// (paced) answer straddles the window's edges, and counting only answers that fit inside
/// would count fewer chunks than the CPU time measured over the window pays for.
#[derive(Clone, Copy)]
struct Window {
    open: Instant,
    close: Instant,
}

impl Window {
    fn holds(&self, t: Instant) -> bool {
        (self.open..self.close).contains(&t)
    }
}

/// One request: (time to first chunk, total), or why it failed. Chunks received inside
/// `window` are added to `in_window`.
async fn one(
    http: &reqwest::Client,
    p: &Prepared,
    stream: bool,
    window: Window,
    in_window: &mut u64,
) -> Result<(Duration, Duration), String> {
    let started = Instant::now();
    let mut resp = http
        .post(&p.url)
        .headers(p.headers.clone())
        .body(p.body.clone())
        .send()
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        return Err(format!(
            "status {status}: {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    if !stream {
        let v: Value = resp.json().await.map_err(|e| format!("body: {e}"))?;
        if v["choices"][0]["message"].is_null() {
            return Err(format!("no answer: {v}"));
        }
        if window.holds(Instant::now()) {
            *in_window += v["usage"]["completion_tokens"].as_u64().unwrap_or(0);
        }
        let t = started.elapsed();
        return Ok((t, t));
    }
    let mut counter = ChunkCounter::default();
    let mut first = None;
    let mut tail = Vec::new();
    while let Some(piece) = resp.chunk().await.map_err(|e| format!("stream: {e}"))? {
        let n = counter.count(&piece);
        if n > 0 {
            first.get_or_insert_with(|| started.elapsed());
            if window.holds(Instant::now()) {
                *in_window += n;
            }
        }
        tail.clear();
        tail.extend_from_slice(&piece[piece.len().saturating_sub(64)..]);
    }
    let text = String::from_utf8_lossy(&tail);
    if !text.contains("[DONE]") {
        return Err(format!("stream ended without [DONE]: …{text}"));
    }
    let total = started.elapsed();
    Ok((first.unwrap_or(total), total))
}

/// Runs `load` against `target`; `during` is called once when the measured window opens and
/// once when it closes (the caller samples CPU there).
pub async fn run(
    target: &Target,
    load: &Load,
    mut during: impl FnMut(bool),
) -> Result<Figures, String> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(load.clients)
        .build()
        .map_err(|e| e.to_string())?;
    let prepared = Arc::new(prepare(&http, target, load).await?);
    let start = Instant::now();
    let window = Window {
        open: start + load.warmup,
        close: start + load.warmup + load.duration,
    };
    let tasks: Vec<_> = (0..load.clients)
        .map(|i| {
            let (http, p, stream) = (http.clone(), prepared.clone(), load.stream);
            // Clients start spread over the warm-up: thousands of connects at once would
            // overflow the listener's accept queue.
            let start_at = start + load.warmup.mul_f64(i as f64 / load.clients as f64);
            tokio::spawn(async move {
                tokio::time::sleep_until(start_at.into()).await;
                let mut s = Samples::default();
                loop {
                    let began = Instant::now();
                    if began >= window.close {
                        return s;
                    }
                    let result = one(&http, &p, stream, window, &mut s.chunks).await;
                    // A request counts where it ends; its latencies only if it also began
                    // in the window (not in the warm-up).
                    if !window.holds(Instant::now()) {
                        continue;
                    }
                    s.requests += 1;
                    match result {
                        Ok((ttft, total)) => {
                            if window.holds(began) {
                                s.ttft_ms.push(ttft.as_secs_f64() * 1e3);
                                s.total_ms.push(total.as_secs_f64() * 1e3);
                            }
                        }
                        Err(e) => {
                            s.errors += 1;
                            s.first_error.get_or_insert(e);
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep_until(window.open.into()).await;
    during(true);
    tokio::time::sleep_until(window.close.into()).await;
    during(false);
    let mut all = Samples::default();
    for t in tasks {
        all.merge(t.await.map_err(|e| e.to_string())?);
    }
    let seconds = load.duration.as_secs_f64();
    Ok(Figures {
        requests: all.requests,
        errors: all.errors,
        chunks: all.chunks,
        seconds,
        requests_per_s: all.requests as f64 / seconds,
        chunks_per_s: all.chunks as f64 / seconds,
        ttft_ms: Percentiles::of(all.ttft_ms),
        total_ms: Percentiles::of(all.total_ms),
        first_error: all.first_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_counted_however_the_stream_is_split() {
        let stream = br#"data: {"delta":{"role":"assistant","content":""}}

data: {"delta":{"content":" a"}}

data: {"delta":{"content":"0a1b"}}

data: {"delta":{},"finish_reason":"stop"}

data: [DONE]

"#;
        for cut in 0..stream.len() {
            for cut2 in cut..stream.len() {
                let mut c = ChunkCounter::default();
                let n = c.count(&stream[..cut])
                    + c.count(&stream[cut..cut2])
                    + c.count(&stream[cut2..]);
                assert_eq!(n, 2, "cut at {cut}/{cut2}");
            }
        }
        let mut c = ChunkCounter::default();
        let n: u64 = stream
            .iter()
            .map(|b| c.count(std::slice::from_ref(b)))
            .sum();
        assert_eq!(n, 2, "a byte at a time");
        // An occurrence overlapping the one before it (they share a quote) is not another.
        let mut c = ChunkCounter::default();
        assert_eq!(c.count(br#"{"content":"content":"x"}"#), 1);
    }

    #[test]
    fn percentiles_pick_ranks() {
        let p = Percentiles::of((1..=100).map(f64::from).collect());
        assert_eq!((p.p50, p.p90, p.p99), (51.0, 90.0, 99.0));
    }

    #[test]
    fn conversations_end_with_the_user() {
        let load = Load {
            clients: 1,
            stream: true,
            messages: 4,
            message_chars: 10,
            model: "m".into(),
            warmup: Duration::ZERO,
            duration: Duration::ZERO,
        };
        let c = conversation(&load);
        assert_eq!(c.len(), 4);
        assert_eq!(c[3].0, "user");
        assert_eq!(c[2].0, "assistant");
    }
}
