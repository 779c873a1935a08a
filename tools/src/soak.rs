//! Soak: the proxy and the simulated Venice in one process, under moderate closed-loop load
//! (streaming and not) with faults injected at random by the simulator, for a set duration.
//! It samples the process's resident memory and open file descriptors, and checks at the end
//! that both stayed flat after warm-up, that every error a client saw was an injected fault,
//! and that the proxy's metrics counted every one of them.

use crate::sim::{SimOptions, Simulator};
use pingora::server::RunArgs;
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use venice_e2ee_proxy::config::Config;
use venice_e2ee_proxy::metrics::METRICS;
use venice_e2ee_proxy::server::Stop;

pub struct SoakOptions {
    pub duration: Duration,
    pub clients: usize,
    /// Share of chats the simulator spoils (0–1).
    pub fault_rate: f64,
}

#[derive(Debug, Serialize)]
pub struct SoakReport {
    pub seconds: u64,
    pub requests: u64,
    pub answered: u64,
    /// Errors clients saw (JSON errors, SSE error events, cut streams).
    pub client_errors: u64,
    /// Faults the simulator injected.
    pub injected: u64,
    /// Errors the proxy's metrics counted: non-200 chat statuses and failed streams.
    pub counted: u64,
    /// Resident set (KiB) just after warm-up and at the end.
    pub rss_after_warmup_kib: u64,
    pub rss_end_kib: u64,
    pub rss_max_kib: u64,
    /// Open file descriptors just after warm-up and at the end.
    pub fds_after_warmup: u64,
    pub fds_end: u64,
    /// Why the run is not a pass; empty when it is.
    pub problems: Vec<String>,
}

fn proc_status(field: &str) -> u64 {
    crate::procfs::status_kib("self", field)
}

fn open_fds() -> u64 {
    crate::procfs::open_fds("self")
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// Errors the metrics counted: chat answers with an error status, and streams ended by an
/// error event.
fn counted_errors() -> u64 {
    let text = String::from_utf8(METRICS.render()).unwrap_or_default();
    let failed_streams = sum(&text, "venice_e2ee_proxy_stream_failures_total", |_| true);
    let error_statuses = sum(&text, "venice_e2ee_proxy_requests_total", |labels| {
        labels.contains("route=\"chat_completions\"") && !labels.contains("status=\"200\"")
    });
    failed_streams + error_statuses
}

/// Sum of a counter's samples whose labels pass `keep`.
fn sum(text: &str, name: &str, keep: impl Fn(&str) -> bool) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| keep(l))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

pub fn run(opts: SoakOptions) -> Result<SoakReport, String> {
    let sim_rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let sim = sim_rt
        .block_on(Simulator::start(SimOptions::default()))
        .map_err(|e| e.to_string())?;
    sim.script(|s| {
        s.random_fault_rate = opts.fault_rate;
        s.skip_chat_records = true;
    });
    let mut config = Config::default();
    config.server.listen = format!("127.0.0.1:{}", free_port()?)
        .parse()
        .map_err(|e| format!("{e}"))?;
    config.server.admin_listen = None;
    sim.configure(&mut config).map_err(|e| e.to_string())?;
    config.venice.idle_timeout = Duration::from_secs(5);
    // Every soak message is new, so the ciphertext cache grows to its size: kept small (and
    // in use) so that the flat-memory check below still sees a leak of a few MiB.
    config.encryption.cache_size = 2 << 20;
    config.venice.first_byte_timeout = Duration::from_secs(5);
    let base = format!("http://{}/v1", config.server.listen);
    let mut conf =
        venice_e2ee_proxy::server::pingora_conf(None, &config).map_err(|e| e.to_string())?;
    conf.grace_period_seconds = Some(0);
    conf.graceful_shutdown_timeout_seconds = Some(0);
    let written = crate::sim::written_roots(&config);
    let (server, _state) =
        venice_e2ee_proxy::server::build(config, conf).map_err(|e| e.to_string())?;
    for path in written {
        let _ = std::fs::remove_file(path);
    }
    let stop = Arc::new(tokio::sync::Notify::new());
    let signal = Stop(stop.clone());
    let proxy = std::thread::spawn(move || {
        server.run(RunArgs {
            shutdown_signal: Box::new(signal),
        })
    });

    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let report = rt.block_on(drive(&base, &opts));
    // A permit is kept if the server is not waiting yet, so the join cannot hang.
    stop.notify_one();
    let _ = proxy.join();
    let mut report = report?;
    report.injected = sim.record().random_faults as u64;
    report.counted = counted_errors();
    let p = &mut report.problems;
    if report.client_errors != report.injected {
        p.push(format!(
            "clients saw {} errors but {} faults were injected",
            report.client_errors, report.injected
        ));
    }
    if report.counted != report.injected {
        p.push(format!(
            "metrics counted {} errors but {} faults were injected",
            report.counted, report.injected
        ));
    }
    // Flat: the end within 10 % (or 8 MiB) of just after warm-up.
    let allowed = (report.rss_after_warmup_kib / 10).max(8 * 1024);
    if report.rss_end_kib > report.rss_after_warmup_kib + allowed {
        p.push(format!(
            "resident memory grew from {} KiB to {} KiB after warm-up",
            report.rss_after_warmup_kib, report.rss_end_kib
        ));
    }
    if report.fds_end > report.fds_after_warmup + 2 * opts.clients as u64 + 16 {
        p.push(format!(
            "open file descriptors grew from {} to {}",
            report.fds_after_warmup, report.fds_end
        ));
    }
    Ok(report)
}

/// One client's outcome for one request; a failure says what the client saw.
enum Outcome {
    Answered,
    Failed(&'static str),
}

async fn one(http: &reqwest::Client, base: &str, stream: bool, n: u64) -> Result<Outcome, String> {
    let words = format!("soak request {n} with several words in it");
    let body = json!({"model": "e2ee-qwen3-6-35b-a3b", "stream": stream,
        "messages": [{"role": "user", "content": words}]});
    let r = http
        .post(format!("{base}/chat/completions"))
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    if r.status() != 200 {
        let _ = r.bytes().await;
        return Ok(Outcome::Failed("a JSON error"));
    }
    let Ok(bytes) = r.bytes().await else {
        return Ok(Outcome::Failed("a cut stream"));
    };
    let text = String::from_utf8_lossy(&bytes);
    if stream {
        let ended = text.trim_end().ends_with("data: [DONE]");
        return Ok(if ended && !text.contains("\"error\"") {
            Outcome::Answered
        } else {
            Outcome::Failed("a stream ended by an error event")
        });
    }
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    if v["choices"][0]["message"]["content"] == words {
        Ok(Outcome::Answered)
    } else {
        Err(format!("a whole answer with the wrong content: {v}"))
    }
}

/// Waits until the proxy's listener answers.
async fn wait_for(http: &reqwest::Client, base: &str) -> Result<(), String> {
    let health = format!("{}/healthz", base.trim_end_matches("/v1"));
    for _ in 0..200 {
        if http.get(&health).send().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("the proxy did not start ({health})"))
}

async fn drive(base: &str, opts: &SoakOptions) -> Result<SoakReport, String> {
    let warmup = (opts.duration / 5).min(Duration::from_secs(60));
    let (requests, answered, failed) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    wait_for(&http, base).await?;
    let started = Instant::now();
    let deadline = started + opts.duration;
    let mut tasks = Vec::new();
    for c in 0..opts.clients {
        let (http, base) = (http.clone(), base.to_string());
        let (requests, answered, failed) = (requests.clone(), answered.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            let mut previous = "none";
            while Instant::now() < deadline {
                n += 1;
                requests.fetch_add(1, Ordering::Relaxed);
                let stream = (n + c as u64) % 2 == 0;
                let outcome = one(&http, &base, stream, n).await.map_err(|e| {
                    format!("client {c}, request {n} (stream {stream}, after {previous}): {e}")
                })?;
                previous = match outcome {
                    Outcome::Answered => {
                        answered.fetch_add(1, Ordering::Relaxed);
                        if stream {
                            "a streamed answer"
                        } else {
                            "a whole answer"
                        }
                    }
                    Outcome::Failed(kind) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        kind
                    }
                };
            }
            Ok::<(), String>(())
        }));
    }
    tokio::time::sleep(warmup).await;
    let (rss_after_warmup_kib, fds_after_warmup) = (proc_status("VmRSS:"), open_fds());
    let mut rss_max_kib = rss_after_warmup_kib;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss_max_kib = rss_max_kib.max(proc_status("VmRSS:"));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    // Let connections settle before the last sample.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(SoakReport {
        seconds: started.elapsed().as_secs(),
        requests: requests.load(Ordering::Relaxed),
        answered: answered.load(Ordering::Relaxed),
        client_errors: failed.load(Ordering::Relaxed),
        injected: 0,
        counted: 0,
        rss_after_warmup_kib,
        rss_end_kib: proc_status("VmRSS:"),
        rss_max_kib,
        fds_after_warmup,
        fds_end: open_fds(),
        problems: Vec::new(),
    })
}
