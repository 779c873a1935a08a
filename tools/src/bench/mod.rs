//! `venice-e2ee-proxy bench`: load against any OpenAI base URL (the proxy or another), or with
//! `--compare` the same load straight against the benchmark upstream (`sim --bench`) and
//! through this proxy in one run, each figure reported as a ratio: the overhead the proxy adds.
//! The proxy and the upstream run as child processes, optionally pinned to CPUs, so `/proc`
//! gives each one's CPU time and peak memory.

pub mod load;
pub mod relay;

use crate::procfs;
use load::{Figures, Load, Target};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A process measured during a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    pub cpu_seconds: f64,
    /// CPU seconds per 1,000 answer chunks (none when no chunk arrived in the window).
    pub cpu_s_per_1000_chunks: Option<f64>,
    /// Write system calls per answer chunk (to clients and upstream): how well the process
    /// coalesces chunks that arrive together into one write.
    pub writes_per_chunk: Option<f64>,
    pub peak_rss_mib: f64,
}

/// A process's CPU seconds and write system calls, so far or over the window.
#[derive(Clone, Copy, Default)]
struct Counters {
    cpu: f64,
    writes: u64,
}

/// Samples a process's counters when the measured window opens and closes.
struct Meter {
    pid: String,
    at_open: Counters,
    spent: Counters,
}

impl Meter {
    fn new(pid: u32) -> Self {
        Meter {
            pid: pid.to_string(),
            at_open: Counters::default(),
            spent: Counters::default(),
        }
    }

    fn mark(&mut self, opening: bool) {
        let now = Counters {
            cpu: procfs::cpu_seconds(&self.pid).unwrap_or(0.0),
            writes: procfs::write_syscalls(&self.pid).unwrap_or(0),
        };
        if opening {
            procfs::reset_peak_rss(&self.pid);
            self.at_open = now;
        } else {
            self.spent = Counters {
                cpu: now.cpu - self.at_open.cpu,
                writes: now.writes.saturating_sub(self.at_open.writes),
            };
        }
    }

    fn usage(&self, chunks: u64) -> Usage {
        let Counters { cpu, writes } = self.spent;
        Usage {
            cpu_seconds: cpu,
            cpu_s_per_1000_chunks: (chunks > 0).then(|| cpu / (chunks as f64 / 1000.0)),
            writes_per_chunk: (chunks > 0).then(|| writes as f64 / chunks as f64),
            peak_rss_mib: procfs::status_kib(&self.pid, "VmHWM:") as f64 / 1024.0,
        }
    }
}

/// Load against one target, measuring the process `pid` (the one serving it) if given.
pub async fn measure(target: &Target, load: &Load, pid: Option<u32>) -> Result<Comparison, String> {
    let name = match target {
        Target::OpenAi { .. } => "OpenAI target",
        Target::Venice { .. } => "Venice target",
    };
    Ok(Comparison {
        clients: load.clients,
        stream: load.stream,
        messages: load.messages,
        reply_tokens: 0,
        bare_decryption_us: bare_decryption_us(),
        rounds: 1,
        phases: vec![phase(name, target, load, pid, None).await?],
    })
}

pub struct CompareOptions {
    pub load: Load,
    /// Tokens per answer, time to first token, tokens per second of the upstream.
    pub reply_tokens: usize,
    pub ttft: Duration,
    pub tokens_per_second: f64,
    /// `taskset` CPU lists for the proxy and for the upstream.
    pub proxy_cpus: Option<String>,
    pub upstream_cpus: Option<String>,
    /// Another OpenAI proxy for Venice to run the same load through (its binary; it takes a
    /// TOML config path and `VENICE_E2EE_PROXY__…` overrides, as crates.io
    /// `venice-e2ee-proxy` 0.1.4 does).
    pub other: Option<PathBuf>,
    /// The proxy binary to measure (default: this one), e.g. a build with another curve
    /// backend.
    pub proxy_bin: Option<PathBuf>,
    /// Also run the load through `relay` (Pingora relaying the encrypted stream with one bare
    /// decryption per chunk): the floor of this proxy's cost per chunk.
    pub relay: bool,
    /// How many times the phases run, in turn; each figure is the median over the rounds.
    pub rounds: usize,
}

#[derive(Debug, Serialize)]
pub struct Phase {
    pub name: String,
    pub figures: Figures,
    /// The process behind the base URL (the proxy), when there is one.
    pub proxy: Option<Usage>,
    /// The benchmark upstream, when this run started it.
    pub upstream: Option<Usage>,
    /// The proxy's CPU µs per chunk in each round (NaN: no chunk in that window), so ratios
    /// between phases can be paired by round; empty without a metered proxy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpu_us_per_chunk_by_round: Vec<f64>,
}

/// The median of `values`, which it sorts (NaN when there are none).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

impl Phase {
    /// One phase from its rounds: counts add up, rates and percentiles are medians, peak
    /// memory the highest.
    fn of_rounds(rounds: Vec<Phase>) -> Phase {
        let med =
            |get: &dyn Fn(&Phase) -> f64| median(&mut rounds.iter().map(get).collect::<Vec<_>>());
        let pct = |get: &dyn Fn(&Figures) -> load::Percentiles| load::Percentiles {
            p50: med(&|p| get(&p.figures).p50),
            p90: med(&|p| get(&p.figures).p90),
            p99: med(&|p| get(&p.figures).p99),
        };
        let figures = Figures {
            requests: rounds.iter().map(|p| p.figures.requests).sum(),
            errors: rounds.iter().map(|p| p.figures.errors).sum(),
            chunks: rounds.iter().map(|p| p.figures.chunks).sum(),
            seconds: rounds.iter().map(|p| p.figures.seconds).sum(),
            requests_per_s: med(&|p| p.figures.requests_per_s),
            chunks_per_s: med(&|p| p.figures.chunks_per_s),
            ttft_ms: pct(&|f| f.ttft_ms),
            total_ms: pct(&|f| f.total_ms),
            first_error: rounds.iter().find_map(|p| p.figures.first_error.clone()),
        };
        let usage = |get: &dyn Fn(&Phase) -> Option<&Usage>| {
            let all: Vec<&Usage> = rounds.iter().filter_map(get).collect();
            let per = |f: &dyn Fn(&Usage) -> Option<f64>| {
                let mut v: Vec<f64> = all.iter().filter_map(|u| f(u)).collect();
                (!v.is_empty()).then(|| median(&mut v))
            };
            (!all.is_empty()).then(|| Usage {
                cpu_seconds: all.iter().map(|u| u.cpu_seconds).sum(),
                cpu_s_per_1000_chunks: per(&|u| u.cpu_s_per_1000_chunks),
                writes_per_chunk: per(&|u| u.writes_per_chunk),
                peak_rss_mib: all.iter().map(|u| u.peak_rss_mib).fold(0.0, f64::max),
            })
        };
        Phase {
            name: rounds[0].name.clone(),
            proxy: usage(&|p| p.proxy.as_ref()),
            upstream: usage(&|p| p.upstream.as_ref()),
            cpu_us_per_chunk_by_round: rounds
                .iter()
                .flat_map(|p| p.cpu_us_per_chunk_by_round.iter().copied())
                .collect(),
            figures,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Comparison {
    pub clients: usize,
    pub stream: bool,
    pub messages: usize,
    /// Tokens per answer of the upstream this run started (0: not started here).
    pub reply_tokens: usize,
    /// One bare chunk decryption on the codec's backend, measured in this run (µs).
    pub bare_decryption_us: f64,
    /// How many times each phase ran (in turn with the others); its figures are medians.
    pub rounds: usize,
    pub phases: Vec<Phase>,
}

/// A child process that is killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(
    cpus: Option<&str>,
    program: &Path,
    args: &[&str],
    env: &[(&str, String)],
) -> Result<Running, String> {
    let mut cmd = match cpus {
        Some(list) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(list).arg(program);
            c
        }
        None => Command::new(program),
    };
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    // Settings meant for this process must not configure the child.
    for (k, _) in std::env::vars() {
        if k.starts_with("VENICE_E2EE_PROXY__") {
            cmd.env_remove(k);
        }
    }
    cmd.spawn()
        .map(Running)
        .map_err(|e| format!("cannot start {}: {e}", program.display()))
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

async fn wait_ok(url: &str, bearer: &str, what: &str) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if http
            .get(url)
            .bearer_auth(bearer)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("{what} did not become ready at {url}"))
}

/// One bare chunk decryption on the shipped backend (µs), the floor of the proxy's per-chunk
/// cost: the median of 10 batches, so a batch that shared its core does not move it.
fn bare_decryption_us() -> f64 {
    let key = venice_e2ee_proxy::e2ee::codec::KeyPair::generate();
    let packed = venice_e2ee_proxy::e2ee::codec::encrypt(&key.recipient(), b" token");
    let n = 200;
    let mut batches: Vec<f64> = (0..10)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                std::hint::black_box(key.decrypt(std::hint::black_box(&packed)).ok());
            }
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        })
        .collect();
    batches.sort_by(f64::total_cmp);
    batches[batches.len() / 2]
}

/// Runs the comparison: the load straight against `sim --bench`, then through this proxy
/// (and through the relay and `other`, if asked for), all in one run.
pub async fn compare(opts: &CompareOptions) -> Result<Comparison, String> {
    // Measured before any process of the run starts and again after all have stopped; the
    // lower counts. This VM sometimes runs a whole measurement slow (26 → 42 µs between
    // consecutive runs), and a slow baseline would flatter every ratio taken against it.
    let bare_at_start = bare_decryption_us();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // The product's binary, built next to this one unless another is named.
    let proxy_bin = match &opts.proxy_bin {
        Some(p) => p.clone(),
        None => exe.with_file_name("venice-e2ee-proxy"),
    };
    if !proxy_bin.exists() {
        return Err(format!(
            "no proxy binary at {} (cargo build --release -p venice-e2ee-proxy, or give --proxy-bin)",
            proxy_bin.display()
        ));
    }
    let dir = std::env::temp_dir().join(format!("venice-e2ee-proxy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let config = dir.join("proxy.yaml");
    let (sim_port, proxy_port, admin_port) = (free_port()?, free_port()?, free_port()?);
    let sim_listen = format!("127.0.0.1:{sim_port}");
    let ttft = format!("{}ms", opts.ttft.as_millis());
    let upstream = spawn(
        opts.upstream_cpus.as_deref(),
        &exe,
        &[
            "sim",
            "--bench",
            "--listen",
            &sim_listen,
            "--reply-tokens",
            &opts.reply_tokens.to_string(),
            "--ttft",
            &ttft,
            "--tokens-per-second",
            &opts.tokens_per_second.to_string(),
            "--proxy-config",
            &config.to_string_lossy(),
        ],
        &[],
    )?;
    let sim_base = format!("http://{sim_listen}/api/v1");
    wait_ok(
        &format!("{sim_base}/models"),
        "sim-key",
        "the benchmark upstream",
    )
    .await?;
    let proxy_env = vec![
        ("VENICE_API_KEY", "sim-key".to_string()),
        (
            "VENICE_E2EE_PROXY__SERVER__LISTEN",
            format!("127.0.0.1:{proxy_port}"),
        ),
        (
            "VENICE_E2EE_PROXY__SERVER__ADMIN_LISTEN",
            format!("127.0.0.1:{admin_port}"),
        ),
        (
            "VENICE_E2EE_PROXY__SERVER__MAX_CONCURRENT_CHATS",
            "1000000".to_string(),
        ),
        (
            "VENICE_E2EE_PROXY__SERVER__MAX_CONNECTIONS",
            "1000000".to_string(),
        ),
        (
            "VENICE_E2EE_PROXY__ATTESTATION__PREWARM",
            format!("[{}]", opts.load.model),
        ),
        ("RUST_LOG", "warn".to_string()),
    ];
    let proxy = spawn(
        opts.proxy_cpus.as_deref(),
        &proxy_bin,
        &["serve", "-c", &config.to_string_lossy()],
        &proxy_env,
    )?;
    wait_ok(
        &format!("http://127.0.0.1:{admin_port}/readyz"),
        "",
        "the proxy",
    )
    .await?;

    // Every process is started before the first phase, so rounds can take turns between
    // them: on a noisy machine a slow spell then touches each phase alike.
    let upstream_pid = Some(upstream.0.id());
    let mut running = vec![proxy];
    let mut targets = vec![
        (
            "direct (sim --bench)".to_string(),
            Target::Venice {
                base: sim_base.clone(),
                api_key: "sim-key".into(),
            },
            None,
        ),
        (
            "through this proxy".to_string(),
            Target::OpenAi {
                base: format!("http://127.0.0.1:{proxy_port}/v1"),
            },
            Some(running[0].0.id()),
        ),
    ];

    if opts.relay {
        let port = free_port()?;
        let relay = spawn(
            opts.proxy_cpus.as_deref(),
            &exe,
            &[
                "relay",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--upstream",
                &sim_listen,
            ],
            &[],
        )?;
        let base = format!("http://127.0.0.1:{port}/api/v1");
        wait_ok(&format!("{base}/models"), "sim-key", "the relay").await?;
        targets.push((
            "Pingora relay + decryption".to_string(),
            Target::Venice {
                base,
                api_key: "sim-key".into(),
            },
            Some(relay.0.id()),
        ));
        running.push(relay);
    }

    if let Some(other) = &opts.other {
        let port = free_port()?;
        let toml = dir.join("other.toml");
        std::fs::write(
            &toml,
            format!(
                "[server]\nhost = \"127.0.0.1\"\nport = {port}\n\n[logging]\nlevel = \"warn\"\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        let env = vec![
            ("VENICE_E2EE_PROXY__VENICE__BASE_URL", sim_base.clone()),
            ("VENICE_E2EE_PROXY__VENICE__API_KEY", "sim-key".to_string()),
        ];
        let process = spawn(
            opts.proxy_cpus.as_deref(),
            other,
            &[&toml.to_string_lossy()],
            &env,
        )?;
        let base = format!("http://127.0.0.1:{port}/v1");
        wait_ok(&format!("{base}/models"), "", "the other proxy").await?;
        let name = format!(
            "through {}",
            other
                .file_name()
                .map_or("other".into(), |n| n.to_string_lossy())
        );
        targets.push((name, Target::OpenAi { base }, Some(process.0.id())));
        running.push(process);
    }

    let rounds = opts.rounds.max(1);
    let mut by_phase: Vec<Vec<Phase>> = targets.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for ((name, target, pid), done) in targets.iter().zip(&mut by_phase) {
            done.push(phase(name, target, &opts.load, *pid, upstream_pid).await?);
        }
    }
    drop(running);
    drop(upstream);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Comparison {
        clients: opts.load.clients,
        stream: opts.load.stream,
        messages: opts.load.messages,
        reply_tokens: opts.reply_tokens,
        bare_decryption_us: bare_at_start.min(bare_decryption_us()),
        rounds,
        phases: by_phase.into_iter().map(Phase::of_rounds).collect(),
    })
}

/// One load run, metering the process behind the URL and the upstream, when known.
async fn phase(
    name: &str,
    target: &Target,
    load: &Load,
    proxy_pid: Option<u32>,
    upstream_pid: Option<u32>,
) -> Result<Phase, String> {
    let mut up = upstream_pid.map(Meter::new);
    let mut proxy = proxy_pid.map(Meter::new);
    let figures = load::run(target, load, |opening| {
        for m in up.iter_mut().chain(proxy.iter_mut()) {
            m.mark(opening);
        }
    })
    .await?;
    let proxy = proxy.map(|p| p.usage(figures.chunks));
    Ok(Phase {
        name: name.into(),
        cpu_us_per_chunk_by_round: proxy
            .iter()
            .map(|u| u.cpu_s_per_1000_chunks.map_or(f64::NAN, |s| s * 1e3))
            .collect(),
        proxy,
        upstream: up.map(|u| u.usage(figures.chunks)),
        figures,
    })
}

/// CPU seconds per 1,000 chunks of a metered process; NaN (shown as `n/a`) when no chunk
/// arrived in the window.
fn cpu_per_1000(usage: Option<&Usage>) -> f64 {
    usage
        .and_then(|u| u.cpu_s_per_1000_chunks)
        .unwrap_or(f64::NAN)
}

/// One table row; a NaN value (a figure with nothing to divide by) shows as `n/a`.
fn row(out: &mut String, label: &str, values: &[f64], ratio_of: Option<(usize, usize)>) {
    use std::fmt::Write;
    let _ = write!(out, "{label:<30}");
    for v in values {
        if v.is_nan() {
            let _ = write!(out, " {:>14}", "n/a");
        } else {
            let _ = write!(out, " {v:>14.3}");
        }
    }
    if let Some((a, b)) = ratio_of.filter(|_| values.len() > 1) {
        let r = values[a] / values[b];
        if r.is_finite() {
            let _ = write!(out, "   ×{r:.2}");
        }
    }
    out.push('\n');
}

/// The comparison as a table: one column per phase, the last column the proxy's figure over
/// the direct one (and over the other proxy's, when there is one).
pub fn render(c: &Comparison) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} clients, {}, {} messages/request{}; bare chunk decryption {:.1} µs{}",
        c.clients,
        if c.stream {
            "streaming"
        } else {
            "not streaming"
        },
        c.messages,
        // Only a run that started the upstream knows its answers' length.
        match c.reply_tokens {
            0 => String::new(),
            n => format!(", {n} tokens/answer"),
        },
        c.bare_decryption_us,
        match c.rounds {
            1 => String::new(),
            n => format!("; medians of {n} rounds"),
        }
    );
    let _ = write!(out, "{:<30}", "");
    for p in &c.phases {
        let _ = write!(out, " {:>14}", p.name.chars().take(14).collect::<String>());
    }
    out.push_str("   ratio (proxy / first)\n");
    let f = |get: &dyn Fn(&Phase) -> f64| c.phases.iter().map(get).collect::<Vec<_>>();
    let ratio = Some((1, 0));
    type Figure = fn(&Figures) -> f64;
    let figures: [(&str, Figure); 8] = [
        ("requests/s", |f| f.requests_per_s),
        ("chunks/s", |f| f.chunks_per_s),
        ("TTFT p50 ms", |f| f.ttft_ms.p50),
        ("TTFT p90 ms", |f| f.ttft_ms.p90),
        ("TTFT p99 ms", |f| f.ttft_ms.p99),
        ("total p50 ms", |f| f.total_ms.p50),
        ("total p90 ms", |f| f.total_ms.p90),
        ("total p99 ms", |f| f.total_ms.p99),
    ];
    for (label, get) in figures {
        row(&mut out, label, &f(&|p| get(&p.figures)), ratio);
    }
    row(&mut out, "errors", &f(&|p| p.figures.errors as f64), None);
    if c.phases.iter().all(|p| p.upstream.is_some()) {
        let up = |p: &Phase| cpu_per_1000(p.upstream.as_ref());
        row(&mut out, "upstream CPU s/1000 chunks", &f(&up), ratio);
    }
    let proxies: Vec<&Phase> = c.phases.iter().filter(|p| p.proxy.is_some()).collect();
    if !proxies.is_empty() {
        let _ = writeln!(
            out,
            "\nproxies (CPU and memory of the process behind the URL):"
        );
        for p in &proxies {
            let u = p.proxy.as_ref().expect("filtered");
            let per_chunk = match (u.cpu_s_per_1000_chunks, u.writes_per_chunk) {
                (Some(cpu), Some(writes)) => {
                    let us = cpu * 1e3;
                    format!(
                        "{us:>8.1} µs/chunk (×{:.2} bare decryption, {writes:.2} writes/chunk)",
                        us / c.bare_decryption_us
                    )
                }
                _ => "n/a (no chunk arrived in the window)".to_string(),
            };
            let _ = writeln!(
                out,
                "  {:<28} CPU {per_chunk}  peak RSS {:>7.1} MiB",
                p.name, u.peak_rss_mib
            );
        }
        for other in proxies.iter().skip(1) {
            let (ours, theirs) = (
                &proxies[0].cpu_us_per_chunk_by_round,
                &other.cpu_us_per_chunk_by_round,
            );
            // A round where either had no chunk in its window has no ratio.
            let mut by_round: Vec<f64> = ours
                .iter()
                .zip(theirs)
                .map(|(a, b)| a / b)
                .filter(|r| r.is_finite())
                .collect();
            let r = median(&mut by_round);
            if !r.is_finite() {
                continue;
            }
            let _ = write!(out, "  CPU per chunk, this proxy / {}: ×{r:.2}", other.name);
            if let [lo, .., hi] = by_round[..] {
                let _ = write!(out, " (median of {}: ×{lo:.2}–×{hi:.2})", by_round.len());
            }
            out.push('\n');
        }
    }
    if c.phases.len() > 1 {
        let (d, p) = (&c.phases[0].figures, &c.phases[1].figures);
        let _ = writeln!(
            out,
            "added TTFT: p50 {:+.2} ms, p99 {:+.2} ms",
            p.ttft_ms.p50 - d.ttft_ms.p50,
            p.ttft_ms.p99 - d.ttft_ms.p99
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(name: &str, chunks: u64, proxy_cpu: Option<f64>) -> Phase {
        Phase {
            name: name.into(),
            figures: Figures {
                chunks,
                ..Figures::default()
            },
            proxy: Some(Usage {
                cpu_seconds: 1.0,
                cpu_s_per_1000_chunks: proxy_cpu,
                writes_per_chunk: proxy_cpu.map(|_| 0.25),
                peak_rss_mib: 20.0,
            }),
            upstream: None,
            cpu_us_per_chunk_by_round: vec![proxy_cpu.map_or(f64::NAN, |s| s * 1e3)],
        }
    }

    fn comparison(phases: Vec<Phase>) -> Comparison {
        Comparison {
            clients: 4,
            stream: true,
            messages: 1,
            reply_tokens: 0,
            bare_decryption_us: 25.0,
            rounds: 1,
            phases,
        }
    }

    #[test]
    fn a_window_without_answers_shows_no_cpu_per_chunk() {
        let meter = Meter::new(std::process::id());
        assert_eq!(meter.usage(0).cpu_s_per_1000_chunks, None);
        assert!(meter.usage(10).cpu_s_per_1000_chunks.is_some());

        let table = render(&comparison(vec![
            phase("through this proxy", 0, None),
            phase("through other", 100, Some(0.05)),
        ]));
        assert!(
            table.contains("n/a (no chunk arrived in the window)"),
            "{table}"
        );
        assert!(!table.contains("NaN") && !table.contains("inf"), "{table}");
        assert!(!table.contains("CPU per chunk, this proxy /"), "{table}");
        assert!(!table.contains("tokens/answer"), "{table}");
    }

    #[test]
    fn cpu_per_chunk_is_reported_against_bare_decryption_the_relay_and_the_other_proxy() {
        let table = render(&comparison(vec![
            phase("through this proxy", 100, Some(0.0325)),
            phase("Pingora relay + decryption", 100, Some(0.0320)),
            phase("through other", 100, Some(0.05)),
        ]));
        assert!(
            table.contains("32.5 µs/chunk (×1.30 bare decryption, 0.25 writes/chunk)"),
            "{table}"
        );
        assert!(
            table.contains("this proxy / Pingora relay + decryption: ×1.02"),
            "{table}"
        );
        assert!(
            table.contains("this proxy / through other: ×0.65"),
            "{table}"
        );
    }

    #[test]
    fn rounds_give_medians_and_ratios_paired_by_round() {
        assert!(median(&mut []).is_nan());
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);

        let rounds = |name: &str, cpu_ms: &[Option<f64>]| {
            Phase::of_rounds(
                cpu_ms
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let mut p = phase(name, 100 * c.is_some() as u64, c.map(|c| c / 1e3));
                        p.figures.ttft_ms.p50 = i as f64;
                        p.proxy.as_mut().unwrap().peak_rss_mib = 10.0 + i as f64;
                        p
                    })
                    .collect(),
            )
        };
        // The proxy's slow round is the other's too: paired, the ratios are 0.6, 0.5 and
        // (a round without chunks for the proxy) none; the medians alone would say 0.8.
        let ours = rounds("through this proxy", &[Some(30.0), Some(50.0), None]);
        let other = rounds("through other", &[Some(50.0), Some(100.0), Some(40.0)]);
        assert_eq!(ours.figures.chunks, 200);
        assert_eq!(ours.figures.ttft_ms.p50, 1.0);
        let usage = ours.proxy.as_ref().unwrap();
        assert_eq!(usage.cpu_seconds, 3.0);
        assert_eq!(usage.peak_rss_mib, 12.0);
        assert_eq!(usage.cpu_s_per_1000_chunks, Some(0.04));
        assert_eq!(ours.cpu_us_per_chunk_by_round.len(), 3);

        let mut c = comparison(vec![ours, other]);
        c.rounds = 3;
        let table = render(&c);
        assert!(table.contains("medians of 3 rounds"), "{table}");
        assert!(
            table.contains("this proxy / through other: ×0.55 (median of 2: ×0.50–×0.60)"),
            "{table}"
        );
    }
}
