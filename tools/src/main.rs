//! The tools' command line: `demo` (the sidecar against a built-in simulated Venice), `sim`
//! (the simulated Venice alone), `bench`, `relay` (the benchmark's floor) and `soak`.

#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use venice_e2ee_proxy::config::{self, Config};
use venice_e2ee_proxy::server;

#[derive(Parser)]
#[command(
    version,
    about = "The simulated Venice, the keyless demo, benchmarks and the soak for venice-e2ee-proxy"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The proxy's own settings, for `demo`.
#[derive(clap::Args, Clone)]
struct ServeArgs {
    /// Proxy configuration (YAML).
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// Pingora server settings (YAML): threads, grace period.
    #[arg(long = "pingora-conf")]
    pingora_conf: Option<PathBuf>,
}

/// The simulated upstream's answers: length and pace.
#[derive(clap::Args)]
struct Answers {
    /// Tokens (one encrypted chunk each) in a `--bench` answer.
    #[arg(long, default_value_t = 100)]
    reply_tokens: usize,
    /// Time to first token, e.g. 200ms (0: none).
    #[arg(long, default_value = "0s")]
    ttft: String,
    /// Tokens per second after the first (0: as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    tokens_per_second: f64,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Start `sim --bench` and the proxy, and compare the load through the proxy with the
    /// same load straight against the upstream.
    #[arg(long)]
    compare: bool,
    /// OpenAI base URL to load (without --compare), e.g. http://127.0.0.1:8080/v1.
    #[arg(long)]
    url: Option<String>,
    /// The process serving --url, for CPU per 1,000 chunks and peak RSS from /proc.
    #[arg(long)]
    pid: Option<u32>,
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Non-streaming requests (streaming is the default).
    #[arg(long)]
    no_stream: bool,
    #[arg(long, default_value_t = 1)]
    messages: usize,
    /// Characters per message.
    #[arg(long, default_value_t = 200)]
    message_chars: usize,
    #[arg(long, default_value = "e2ee-qwen3-6-35b-a3b")]
    model: String,
    #[arg(long, default_value = "3s")]
    warmup: String,
    #[arg(long, default_value = "10s")]
    duration: String,
    /// --compare: the upstream's answers.
    #[command(flatten)]
    answers: Answers,
    /// --compare: `taskset` CPU lists for the proxy and for the upstream (and the load).
    #[arg(long)]
    proxy_cpus: Option<String>,
    #[arg(long)]
    upstream_cpus: Option<String>,
    /// --compare: another Venice proxy's binary to run the same load through (crates.io
    /// venice-e2ee-proxy 0.1.4's interface: a TOML config path, VENICE_E2EE_PROXY__ overrides).
    #[arg(long)]
    other: Option<PathBuf>,
    /// --compare: the proxy binary to measure (default: `venice-e2ee-proxy` next to this
    /// one), e.g. a build with
    /// `--no-default-features` (the k256 backend).
    #[arg(long)]
    proxy_bin: Option<PathBuf>,
    /// --compare: also run the load (speaking E2EE) through Pingora relaying the encrypted
    /// stream with one bare decryption per chunk: the floor of this proxy's cost per chunk.
    #[arg(long)]
    relay: bool,
    /// --compare: run the phases this many times, taking turns, and report medians (ratios
    /// paired by round), so a slow spell of a noisy machine touches every phase alike.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sidecar against a built-in simulated Venice: no API key needed.
    Demo {
        /// How the simulated Venice frames its attestations: dstack, aci (an ACI gateway
        /// with receipts, its quote binding the keyset), or venice (= aci_address_bound: as
        /// Venice serves its gateways, the address bound, the keyset anchored by the
        /// gateway's own quote, bodies re-wrapped, a second hop behind it).
        #[arg(long, default_value = "dstack")]
        layout: String,
        /// How the simulated model answers: echo (the last user message) or agent (asked to
        /// create a file while tools are offered, a Qwen model calls the tool that writes it).
        #[arg(long, value_enum, default_value = "echo")]
        responder: ResponderArg,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Run the simulated Venice alone.
    Sim {
        #[arg(long, default_value = "127.0.0.1:7000")]
        listen: SocketAddr,
        #[arg(long, default_value = "sim-key")]
        api_key: String,
        /// Benchmark upstream: a fixed answer, encrypted once per client key and replayed, so
        /// the upstream costs next to nothing (messages are checked for form, not decrypted).
        #[arg(long)]
        bench: bool,
        #[command(flatten)]
        answers: Answers,
        /// Write a proxy configuration for this simulator here (trusting its test PKIs; run
        /// it with `serve -c PATH` and `VENICE_API_KEY=<api-key>`).
        #[arg(long)]
        proxy_config: Option<PathBuf>,
    },
    /// Closed-loop load against an OpenAI base URL (`--url`), or `--compare`: the same load
    /// straight against `sim --bench` and through this proxy, as ratios.
    Bench(BenchArgs),
    /// The benchmark's floor: Pingora relaying to `--upstream` with one bare decryption per
    /// chunk (`bench --compare --relay` starts it).
    #[command(hide = true)]
    Relay {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        upstream: SocketAddr,
    },
    /// Soak the proxy and the simulated Venice in this process: load with injected faults;
    /// checks memory and file descriptors stay flat and every error is an injected one.
    Soak {
        /// How long, e.g. 2m or 30m.
        #[arg(long, default_value = "2m")]
        duration: String,
        /// Concurrent clients (closed loop, streaming and not).
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Share of chats the simulator spoils.
        #[arg(long, default_value_t = 0.1)]
        fault_rate: f64,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ResponderArg {
    Echo,
    Agent,
}

fn main() {
    venice_e2ee_proxy::logging::init();
    let result = match Cli::parse().command {
        Command::Demo {
            layout,
            responder,
            serve,
        } => load(&serve).and_then(|config| {
            venice_e2ee_proxy::logging::set_json(
                config.logging.format == venice_e2ee_proxy::config::LogFormat::Json,
            );
            let responder = match responder {
                ResponderArg::Echo => venice_e2ee_tools::sim::responder::Responder::Echo,
                ResponderArg::Agent => venice_e2ee_tools::sim::responder::Responder::Agent,
            };
            venice_e2ee_tools::demo::demo(config, serve.pingora_conf.as_deref(), &layout, responder)
        }),
        Command::Sim {
            listen,
            api_key,
            bench,
            answers,
            proxy_config,
        } => config::units::parse_duration(&answers.ttft).and_then(|ttft| {
            let pacing = venice_e2ee_tools::sim::Pacing {
                ttft,
                tokens_per_second: answers.tokens_per_second,
            };
            venice_e2ee_tools::demo::sim(
                listen,
                api_key,
                bench.then_some(answers.reply_tokens),
                pacing,
                proxy_config,
            )
        }),
        Command::Bench(args) => bench(args),
        Command::Relay { listen, upstream } => {
            venice_e2ee_tools::bench::relay::run(listen, upstream)
        }
        Command::Soak {
            duration,
            clients,
            fault_rate,
        } => soak(&duration, clients, fault_rate),
    };
    if let Err(message) = result {
        eprintln!("venice-e2ee-tools: {message}");
        std::process::exit(2);
    }
}

fn load(args: &ServeArgs) -> Result<Config, String> {
    config::load(args.config.as_deref()).map_err(|e| e.to_string())
}

fn bench(a: BenchArgs) -> Result<(), String> {
    use venice_e2ee_tools::bench::{self, load};
    let parse = config::units::parse_duration;
    let load = load::Load {
        clients: a.clients,
        stream: !a.no_stream,
        messages: a.messages,
        message_chars: a.message_chars,
        model: a.model,
        warmup: parse(&a.warmup)?,
        duration: parse(&a.duration)?,
    };
    server::raise_fd_limit();
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let result = rt.block_on(async {
        if a.compare {
            bench::compare(&bench::CompareOptions {
                load,
                reply_tokens: a.answers.reply_tokens,
                ttft: parse(&a.answers.ttft)?,
                tokens_per_second: a.answers.tokens_per_second,
                proxy_cpus: a.proxy_cpus,
                upstream_cpus: a.upstream_cpus,
                other: a.other,
                proxy_bin: a.proxy_bin,
                relay: a.relay,
                rounds: a.rounds,
            })
            .await
        } else {
            let base = a.url.ok_or("give --url or --compare")?;
            bench::measure(&load::Target::OpenAi { base }, &load, a.pid).await
        }
    })?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&result).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", bench::render(&result));
    }
    Ok(())
}

fn soak(duration: &str, clients: usize, fault_rate: f64) -> Result<(), String> {
    let duration = config::units::parse_duration(duration)?;
    let report = venice_e2ee_tools::soak::run(venice_e2ee_tools::soak::SoakOptions {
        duration,
        clients,
        fault_rate,
    })?;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
    );
    if report.problems.is_empty() {
        Ok(())
    } else {
        Err(format!("soak failed: {}", report.problems.join("; ")))
    }
}
