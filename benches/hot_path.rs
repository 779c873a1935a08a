//! Hot-path benchmarks, reported as ratios against a baseline measured in the same run.
//!
//! - per streamed chunk: the whole transformation (SSE parsing, JSON, decryption, OpenAI
//!   chunk output) against the protocol's floor, one bare field decryption;
//! - per request message: building the encrypted Venice body against bare field encryption;
//! - through the real server: a streamed answer via the proxy against the same stream read
//!   straight from the simulated Venice.
//!
//! Run: `cargo bench --bench hot_path`.

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use venice_e2ee_proxy::api::completions::parse;
use venice_e2ee_proxy::api::completions::writer::ChatWriter;
use venice_e2ee_proxy::api::messages::writer::MessagesWriter;
use venice_e2ee_proxy::api::responses::translate::translate;
use venice_e2ee_proxy::api::responses::writer::ResponsesWriter;
use venice_e2ee_proxy::chat::answer::{self, Mode, Transformer};
use venice_e2ee_proxy::chat::answer_writer::AnswerWriter;
use venice_e2ee_proxy::chat::structured::OutputFormat;
use venice_e2ee_proxy::chat::tool_calls::defs::ToolSet;
use venice_e2ee_proxy::chat::tool_calls::emulate::ToolStream;
use venice_e2ee_proxy::e2ee::codec::{self, KeyPair};
use venice_e2ee_proxy::e2ee::keys::ClientKey;

/// Median time per iteration of the baseline and the measured code, their rounds
/// interleaved so that machine noise (frequency, neighbours) falls on both alike.
fn time_pair(
    rounds: usize,
    iters: usize,
    mut baseline: impl FnMut(),
    mut measured: impl FnMut(),
) -> (Duration, Duration) {
    for _ in 0..iters / 4 + 1 {
        baseline();
        measured();
    }
    let round = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        t.elapsed() / iters as u32
    };
    let (mut b, mut m): (Vec<Duration>, Vec<Duration>) = (0..rounds)
        .map(|_| (round(&mut baseline), round(&mut measured)))
        .unzip();
    b.sort();
    m.sort();
    (b[rounds / 2], m[rounds / 2])
}

fn report(name: &str, measured: Duration, baseline: Duration, target: f64) {
    let ratio = measured.as_secs_f64() / baseline.as_secs_f64();
    let verdict = if ratio <= target { "within" } else { "OVER" };
    println!(
        "{name:<44} {:>9.1} µs vs baseline {:>9.1} µs  ratio {ratio:>5.2}  ({verdict} target {target:.2})",
        measured.as_secs_f64() * 1e6,
        baseline.as_secs_f64() * 1e6,
    );
}

/// A transformer for one kind of stream, with or without emulated tools.
fn transformer(key: &Arc<ClientKey>, with_tools: bool) -> Transformer {
    let chat = ChatWriter::new(
        "e2ee-model".into(),
        Mode::Stream {
            include_usage: false,
        },
    );
    transformer_for(key, Box::new(chat), with_tools)
}

/// The same for a client of another dialect.
fn transformer_for(
    key: &Arc<ClientKey>,
    writer: Box<dyn AnswerWriter>,
    with_tools: bool,
) -> Transformer {
    let tools = with_tools.then(|| {
        let defs = json!([{"type": "function", "function": {"name": "f"}}]);
        let set = ToolSet::parse(defs, Value::Null, Value::Null)
            .unwrap()
            .unwrap();
        ToolStream::new(Arc::new(set))
    });
    Transformer::streaming(key.clone(), writer, tools)
}

fn per_chunk() {
    let key = Arc::new(ClientKey {
        pair: KeyPair::generate(),
        created: Instant::now(),
    });
    let packed = codec::encrypt(&key.pair.recipient(), b" token");
    let event = format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": {"content": packed}, "finish_reason": null}]})
    );
    let json_piece = codec::encrypt(&key.pair.recipient(), br#"{"name": "ab"#);
    let json_event = event.replace(&packed, &json_piece);
    // A fresh output per piece, as the proxy hands each one to Pingora.
    let push = |t: &mut Transformer, event: &str| {
        let mut out = answer::output_for(event.as_bytes());
        t.push(event.as_bytes(), &mut out).unwrap();
        std::hint::black_box(out);
    };
    let mut plain = transformer(&key, false);
    chunk_pair(
        "stream chunk transform vs one decryption",
        1.25,
        || {
            std::hint::black_box(key.pair.decrypt(std::hint::black_box(&packed)).unwrap());
        },
        || push(&mut plain, &event),
    );

    // An ACI model's chunk is also hashed as received, for its receipt (what
    // `receipt_checks::Tap::update` does: one SHA-256 pass over the raw bytes).
    let mut receipt_hash = <sha2::Sha256 as sha2::Digest>::new();
    let mut hashed = transformer(&key, false);
    chunk_pair(
        "chunk transform with its receipt hash vs without",
        1.05,
        || push(&mut plain, &event),
        || {
            sha2::Digest::update(&mut receipt_hash, event.as_bytes());
            push(&mut hashed, &event)
        },
    );

    // The same chunk with emulated tools: text passes through the tool-call parser.
    let mut with_tools = transformer(&key, true);
    chunk_pair(
        "chunk transform with tool parsing vs without",
        1.10,
        || push(&mut plain, &event),
        || push(&mut with_tools, &event),
    );

    // Inside a call being held (issue 33): each chunk of its arguments is read and kept until
    // the call closes; what that costs per chunk, against text passing the same parser.
    let mut held = transformer(&key, true);
    let opening = codec::encrypt(
        &key.pair.recipient(),
        br#"<tool_call>{"name": "f", "arguments": {"x": ""#,
    );
    push(&mut held, &event.replace(&packed, &opening));
    chunk_pair(
        "chunk inside a held call vs text (tools)",
        1.10,
        || push(&mut with_tools, &event),
        || push(&mut held, &event),
    );
    held_call_latency(&key);

    // The edge dialects on the one chat path: the Responses and Messages APIs' event writers, and a
    // structured output whose JSON is followed as it streams (its chunks carry pieces of a
    // JSON object, so the structured filter has real work).
    let translated = translate(
        br#"{"model": "e2ee-model", "input": "hi", "store": false}"#,
        None,
    )
    .unwrap();
    let mut responses = transformer_for(
        &key,
        Box::new(ResponsesWriter::new(Arc::new(translated.1), None)),
        false,
    );
    chunk_pair(
        "chunk transform as Responses events vs chat",
        1.10,
        || push(&mut plain, &event),
        || push(&mut responses, &event),
    );
    let messages_meta = venice_e2ee_proxy::api::messages::translate::translate(
        br#"{"model": "claude-x", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}"#,
    )
    .unwrap()
    .1;
    let mut messages = transformer_for(
        &key,
        Box::new(MessagesWriter::new(Arc::new(messages_meta))),
        false,
    );
    chunk_pair(
        "chunk transform as Messages events vs chat",
        1.10,
        || push(&mut plain, &event),
        || push(&mut messages, &event),
    );
    let format = OutputFormat::parse(
        &json!({"type": "json_schema", "json_schema": {"name": "p", "schema": {
            "type": "object", "properties": {"name": {"type": "string"}}}}}),
        "response_format",
    )
    .unwrap()
    .map(Arc::new);
    let mut structured = transformer(&key, false).with_format(format);
    let mut plain_json = transformer(&key, false);
    chunk_pair(
        "chunk with structured output vs without",
        1.10,
        || push(&mut plain_json, &json_event),
        || push(&mut structured, &json_event),
    );
}

/// How long a held call keeps its first delta back: the chunks from its first token to the
/// delta (the call's length; at a model's pace, that many token intervals), and the time the
/// proxy itself adds when the closing chunk arrives.
fn held_call_latency(key: &Arc<ClientKey>) {
    let call = r#"<tool_call>{"name": "f", "arguments": {"path": "src/main.rs", "content": "fn main() { println!(\"hello\"); }"}}</tool_call>"#;
    let pieces: Vec<String> = call
        .as_bytes()
        .chunks(4)
        .map(|c| {
            let packed = codec::encrypt(&key.pair.recipient(), c);
            format!(
                "data: {}\n\n",
                json!({"id": "c", "choices": [{"index": 0, "delta": {"content": packed}}]})
            )
        })
        .collect();
    let mut t = transformer(key, true);
    let mut first_delta = None;
    let mut last = Duration::ZERO;
    for (i, p) in pieces.iter().enumerate() {
        let mut out = answer::output_for(p.as_bytes());
        let at = Instant::now();
        t.push(p.as_bytes(), &mut out).unwrap();
        last = at.elapsed();
        if first_delta.is_none() && std::str::from_utf8(&out).unwrap().contains("tool_calls") {
            first_delta = Some(i + 1);
        }
    }
    let n = first_delta.expect("the call is shown once it closes");
    println!(
        "{:<44} {n} chunks from its first token (its length; at 50 tokens/s {:.2} s), closing chunk {:.1} µs",
        "held call: first delta after",
        n as f64 / 50.0,
        last.as_secs_f64() * 1e6
    );
}

/// One per-chunk comparison: timed in interleaved rounds, reported as a ratio.
fn chunk_pair(name: &str, target: f64, baseline: impl FnMut(), measured: impl FnMut()) {
    let (baseline, measured) = time_pair(21, 300, baseline, measured);
    report(name, measured, baseline, target);
}

/// The two curve backends side by side: a chunk's decryption (parse the ephemeral key, ECDH,
/// HKDF, AES-GCM) and a message's encryption (key generation, ECDH, …). The ratio is the
/// chosen backend against k256; the shipped default must be the faster.
#[cfg(feature = "libsecp256k1")]
fn curves() {
    use codec::curve::{Curve, Libsecp, K256};
    fn pair<C: Curve>() -> (C::Secret, C::Public) {
        let s = C::random_secret();
        let p = C::parse_public(&C::public_of(&s)).unwrap();
        (s, p)
    }
    let (ks, kp) = pair::<K256>();
    let (ls, lp) = pair::<Libsecp>();
    let k_packed = codec::encrypt_to::<K256>(&kp, b" token");
    let l_packed = codec::encrypt_to::<Libsecp>(&lp, b" token");
    let (k, l) = time_pair(
        21,
        300,
        || {
            std::hint::black_box(codec::decrypt_as::<K256>(&ks, &k_packed).unwrap());
        },
        || {
            std::hint::black_box(codec::decrypt_as::<Libsecp>(&ls, &l_packed).unwrap());
        },
    );
    report("chunk decryption: libsecp256k1 vs k256", l, k, 1.0 / 1.2);
    let (k, l) = time_pair(
        21,
        300,
        || {
            std::hint::black_box(codec::encrypt_to::<K256>(&kp, b" a message"));
        },
        || {
            std::hint::black_box(codec::encrypt_to::<Libsecp>(&lp, b" a message"));
        },
    );
    report("message encryption: libsecp256k1 vs k256", l, k, 1.0 / 1.2);
}

/// Agents' long histories: a 200-message request sealed (cache cold, spread across cores)
/// against the same 200 encryptions one after another, and the next turn (the same history
/// plus one message, cache warm) against the first. Targets: ≤ 20 ms and ≤ 2 ms wall.
fn history() {
    use venice_e2ee_proxy::e2ee::sealing::Sealer;
    let model = KeyPair::generate();
    let to = model.recipient();
    let text = "an agent's turn: a tool result or a reply of a few hundred characters. ".repeat(4);
    let messages: Vec<Value> = (0..201)
        .map(|i| json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": format!("{i} {text}")}))
        .collect();
    let first = parse::parse(
        &serde_json::to_vec(&json!({"model": "m", "messages": &messages[..200]})).unwrap(),
    )
    .unwrap();
    let next = parse::parse(
        &serde_json::to_vec(&json!({"model": "m", "messages": &messages[..]})).unwrap(),
    )
    .unwrap();
    let (sequential, cold) = time_pair(
        5,
        3,
        || {
            for m in &messages[..200] {
                std::hint::black_box(codec::encrypt(
                    &to,
                    m["content"].as_str().unwrap().as_bytes(),
                ));
            }
        },
        || {
            std::hint::black_box(first.encrypted_body_with(&Sealer::new(64 << 20), &to, b"", &[]));
        },
    );
    report(
        "200-message request (cold) vs sequential encryptions",
        cold,
        sequential,
        1.0,
    );
    println!(
        "    200-message request: {:.1} ms wall (target ≤ 20 ms)",
        cold.as_secs_f64() * 1e3
    );
    let warm = Sealer::new(64 << 20);
    std::hint::black_box(first.encrypted_body_with(&warm, &to, b"", &[]));
    let (cold, warm_turn) = time_pair(
        5,
        3,
        || {
            std::hint::black_box(first.encrypted_body_with(&Sealer::new(64 << 20), &to, b"", &[]));
        },
        || {
            std::hint::black_box(next.encrypted_body_with(&warm, &to, b"", &[]));
        },
    );
    report(
        "next turn (cache warm) vs first turn (cold)",
        warm_turn,
        cold,
        0.1,
    );
    println!(
        "    next turn: {:.2} ms wall (target ≤ 2 ms)",
        warm_turn.as_secs_f64() * 1e3
    );
}

fn per_message() {
    let model = KeyPair::generate();
    let text = "a user message of ordinary length, about one line of text ".repeat(4);
    let messages: Vec<_> = (0..32)
        .map(|_| json!({"role": "user", "content": text}))
        .collect();
    let body = serde_json::to_vec(&json!({"model": "m", "messages": messages})).unwrap();
    let key = model.recipient();
    let (baseline, measured) = time_pair(
        9,
        20,
        || {
            for _ in 0..32 {
                std::hint::black_box(codec::encrypt(&key, text.as_bytes()));
            }
        },
        || {
            let req = parse::parse(&body).unwrap();
            std::hint::black_box(req.encrypted_body(&key));
        },
    );
    report(
        "request parse+encrypt (32 msgs) vs encryptions",
        measured,
        baseline,
        1.3,
    );
}

/// Reads a whole streamed answer and counts its events; a benchmark of a failing request
/// would measure nothing.
async fn read_all(req: reqwest::RequestBuilder) -> usize {
    let mut r = req.send().await.unwrap();
    assert_eq!(r.status(), 200, "benchmark request failed");
    let mut body = Vec::new();
    while let Some(c) = r.chunk().await.unwrap() {
        body.extend_from_slice(&c);
    }
    assert!(body.ends_with(b"data: [DONE]\n\n"), "incomplete stream");
    body.windows(6).filter(|w| w == b"data: ").count()
}

/// CPU time of the whole process, every thread: the proxy, the simulator and the client
/// share it, so the difference between two ways of reading the same answer is what the
/// proxy added.
fn process_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Median time of one bare chunk decryption (ECDH, HKDF, AES-GCM), the per-chunk floor.
fn one_decryption() -> Duration {
    let pair = KeyPair::generate();
    let packed = codec::encrypt(&pair.recipient(), b" token");
    let decrypt = || {
        std::hint::black_box(pair.decrypt(std::hint::black_box(&packed)).unwrap());
    };
    time_pair(21, 300, decrypt, decrypt).0
}

/// Wall and CPU of `rounds` reads of `a` and of `b`, interleaved: medians of the wall
/// times, CPU per event summed over all rounds.
async fn read_pair<A, B, FA, FB>(rounds: usize, a: A, b: B) -> [(Duration, Duration); 2]
where
    A: Fn() -> FA,
    B: Fn() -> FB,
    FA: std::future::Future<Output = usize>,
    FB: std::future::Future<Output = usize>,
{
    let mut wall = [Vec::new(), Vec::new()];
    let mut cpu = [Duration::ZERO; 2];
    let mut events = [0u32; 2];
    for _ in 0..rounds {
        for side in 0..2 {
            let (t, c) = (Instant::now(), process_cpu());
            events[side] += if side == 0 { a().await } else { b().await } as u32;
            cpu[side] += process_cpu() - c;
            wall[side].push(t.elapsed());
        }
    }
    [0, 1].map(|side| {
        wall[side].sort();
        (wall[side][rounds / 2], cpu[side] / events[side].max(1))
    })
}

fn through_server() {
    use venice_e2ee_proxy::config::Config;
    use venice_e2ee_tools::sim::{SimOptions, Simulator};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt
        .block_on(Simulator::start(SimOptions::default()))
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = Config::default();
    config.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
    sim.configure(&mut config).unwrap();
    config.server.admin_listen = None;
    let mut conf = venice_e2ee_proxy::server::pingora_conf(None, &config).unwrap();
    conf.grace_period_seconds = Some(0);
    let (server, _) = venice_e2ee_proxy::server::build(config, conf).unwrap();
    std::thread::spawn(move || server.run_forever());
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let words = "token ".repeat(200);
    let proxy_body = json!({"model": "e2ee-qwen3-6-35b-a3b", "stream": true, "messages": [{"role": "user", "content": words}]});
    rt.block_on(async {
        for _ in 0..100 {
            if http.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Direct baseline: the simulator's own stream (same reply, same encryption work on
        // its side), requested with a prepared encrypted body.
        let model_key = codec::parse_public_key(&sim.model_public_key("e2ee-qwen3-6-35b-a3b").unwrap()).unwrap();
        let client = KeyPair::generate();
        let direct_body = json!({"model": "e2ee-qwen3-6-35b-a3b", "stream": true,
            "messages": [{"role": "user", "content": codec::encrypt(&codec::Recipient::new(&model_key), words.as_bytes())}]});
        let direct = || {
            http.post(format!("{}/chat/completions", sim.base_url()))
                .bearer_auth("sim-key")
                .header("X-Venice-TEE-Client-Pub-Key", client.public_hex())
                .header("X-Venice-TEE-Model-Pub-Key", codec::public_key_hex(&model_key))
                .header("X-Venice-TEE-Signing-Algo", "ecdsa")
                .json(&direct_body)
        };
        let via = || http.post(format!("http://127.0.0.1:{port}/v1/chat/completions")).json(&proxy_body);
        read_all(via()).await; // attest + warm up
        let decryption = one_decryption();
        let [(direct_wall, direct_cpu), (via_wall, via_cpu)] =
            read_pair(11, || read_all(direct()), || read_all(via())).await;
        report("200-chunk stream via proxy vs direct from sim", via_wall, direct_wall, 2.5);
        // End to end: what the proxy spends per chunk (HTTP in and out, SSE framing, decryption,
        // re-encoding) against the one decryption no proxy can avoid.
        report(
            "proxy CPU per chunk vs one decryption",
            via_cpu.saturating_sub(direct_cpu),
            decryption,
            3.0,
        );

        // A stream with tools is relayed by the proxy itself (its calls held and corrected):
        // the same 200 chunks that way against Pingora's proxying of the same answer.
        let mut tools_body = proxy_body.clone();
        tools_body["tools"] = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
        let relayed = || http.post(format!("http://127.0.0.1:{port}/v1/chat/completions")).json(&tools_body);
        read_all(relayed()).await;
        let [(proxied_wall, _), (relay_wall, relay_cpu)] =
            read_pair(11, || read_all(via()), || read_all(relayed())).await;
        report("200-chunk tool stream relayed vs proxied", relay_wall, proxied_wall, 1.5);
        // Against the same plain request straight to the simulator: this also counts what the
        // simulator (in this process) does differently for the tool-bearing request.
        report(
            "relayed CPU per chunk vs one decryption",
            relay_cpu.saturating_sub(direct_cpu),
            decryption,
            3.5,
        );

        // Memory: resident set with many slow streams in flight against the same process
        // idle (the simulator shares the process, so this is an upper bound for the proxy).
        sim.set_pacing(venice_e2ee_tools::sim::Pacing { ttft: Duration::ZERO, tokens_per_second: 20.0 });
        let slow = json!({"model": "e2ee-qwen3-6-35b-a3b", "stream": true,
            "messages": [{"role": "user", "content": "token ".repeat(60)}]});
        let idle = rss_kib();
        let streams: Vec<_> = (0..STREAMS)
            .map(|_| tokio::spawn(read_all(http.post(format!("http://127.0.0.1:{port}/v1/chat/completions")).json(&slow))))
            .collect();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let busy = rss_kib();
        for s in streams {
            s.await.unwrap();
        }
        let ratio = busy as f64 / idle as f64;
        println!(
            "{:<44} {:>9} KiB vs idle {:>9} KiB      ratio {ratio:>5.2}  ({} target 2.00; ≈ {} KiB per stream)",
            format!("RSS with {STREAMS} streams in flight"),
            busy,
            idle,
            if ratio <= 2.0 { "within" } else { "OVER" },
            busy.saturating_sub(idle) / STREAMS as u64,
        );
    });
}

const STREAMS: usize = 64;

/// This process's resident set size, from /proc.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Agent sessions under a flood of fresh ids: memory stays bounded by `max_sessions`
/// (least recently used evicted). Resident set after 10,000 sessions, then after 100,000
/// more fresh ids, against the process before the first.
fn sessions() {
    use venice_e2ee_proxy::agent_sessions::Sessions;
    use venice_e2ee_proxy::config::SessionsSection;
    let cap = 10_000;
    let s = Sessions::new(SessionsSection {
        max_sessions: cap,
        ..SessionsSection::default()
    });
    let before = rss_kib();
    for i in 0..cap {
        s.key(0, &format!("agent-{i}"));
    }
    let full = rss_kib();
    let start = Instant::now();
    for i in 0..100_000 {
        s.key(0, &format!("flood-{i}"));
    }
    let per_id = start.elapsed() / 100_000;
    let flooded = rss_kib();
    assert_eq!(s.len(), cap);
    let ratio = flooded.saturating_sub(before) as f64 / full.saturating_sub(before).max(1) as f64;
    println!(
        "{:<44} {:>9} KiB vs at cap {:>9} KiB   ratio {ratio:>5.2}  ({} target 1.10; {} sessions held, {:.1} µs per fresh id incl. key generation)",
        "sessions: RSS growth after 100k fresh ids",
        flooded.saturating_sub(before),
        full.saturating_sub(before),
        if ratio <= 1.1 { "within" } else { "OVER" },
        s.len(),
        per_id.as_secs_f64() * 1e6,
    );
}

fn main() {
    // `cargo bench` passes --bench; any other argument filters by name.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let run = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    #[cfg(feature = "libsecp256k1")]
    if run("curves") {
        curves();
    }
    if run("chunk") {
        per_chunk();
    }
    if run("request") {
        per_message();
    }
    if run("history") {
        history();
    }
    if run("server") {
        through_server();
    }
    if run("sessions") {
        sessions();
    }
}
