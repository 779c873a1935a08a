//! Command line: `serve` (default), `check-config`, `verify`. The simulated Venice, the demo,
//! the load generator and the soak are the tools crate's (`cargo run -p venice-e2ee-tools`).

#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use venice_e2ee_proxy::attestation::evidence::{capture, report};
use venice_e2ee_proxy::attestation::verifier;
use venice_e2ee_proxy::config::{self, Config};
use venice_e2ee_proxy::server;

#[derive(Parser)]
#[command(
    version,
    about = "OpenAI-compatible sidecar for Venice.ai end-to-end-encrypted models"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(clap::Args, Clone)]
struct ServeArgs {
    /// Proxy configuration (YAML).
    #[arg(short = 'c', long = "config", global = true)]
    config: Option<PathBuf>,
    /// Pingora server settings (YAML): threads, grace period.
    #[arg(long = "pingora-conf", global = true)]
    pingora_conf: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sidecar against Venice (the default).
    Serve,
    /// Load and validate the configuration, print it (without secrets), and exit.
    CheckConfig,
    /// Verify an attestation fully and print the report.
    Verify {
        /// Verify a saved capture directory (manifest.json, the attestation response and Intel
        /// collateral) at its capture time, with no network.
        #[arg(long)]
        offline: Option<PathBuf>,
        /// Verify a live model once, with a fresh nonce and Intel collateral from PCS.
        #[arg(long)]
        model: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Ask a running sidecar whether traffic is protected, from its admin listener's
    /// /status.json (with the admin token from VENICE_E2EE_PROXY__SERVER__ADMIN_TOKEN when
    /// set). Exits 0 when ready and every model is protected, 1 otherwise, 2 when the
    /// sidecar cannot be asked.
    Status {
        /// The admin listener's base URL [default: from the configuration's
        /// server.admin_listen].
        #[arg(long)]
        admin: Option<String>,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A Kubernetes exec probe: exits 0 when the running sidecar's /healthz or /readyz
    /// answers 200 (for an admin listener kept on loopback), 1 otherwise, 2 when it cannot
    /// be asked.
    Probe {
        #[arg(value_enum)]
        probe: ProbeKind,
        /// The admin listener's base URL [default: from the configuration].
        #[arg(long)]
        admin: Option<String>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ProbeKind {
    Healthz,
    Readyz,
}

fn main() {
    venice_e2ee_proxy::logging::init();
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.serve),
        Command::CheckConfig => check_config(&cli.serve),
        Command::Verify {
            offline,
            model,
            json,
        } => verify(&cli.serve, offline, model, json),
        Command::Probe { probe, admin } => {
            let path = match probe {
                ProbeKind::Healthz => "healthz",
                ProbeKind::Readyz => "readyz",
            };
            match load(&cli.serve).and_then(|config| {
                tokio::runtime::Runtime::new()
                    .map_err(|e| e.to_string())?
                    .block_on(server::status::probe(&config, admin.as_deref(), path))
            }) {
                Ok(true) => Ok(()),
                Ok(false) => std::process::exit(1),
                Err(e) => Err(e),
            }
        }
        Command::Status { admin, json } => match status(&cli.serve, admin, json) {
            Ok(true) => Ok(()),
            Ok(false) => std::process::exit(1),
            Err(e) => Err(e),
        },
    };
    if let Err(message) = result {
        eprintln!("venice-e2ee-proxy: {message}");
        std::process::exit(2);
    }
}

fn load(args: &ServeArgs) -> Result<Config, String> {
    config::load(args.config.as_deref()).map_err(|e| e.to_string())
}

fn serve(args: &ServeArgs) -> Result<(), String> {
    let config = load(args)?;
    venice_e2ee_proxy::logging::set_json(
        config.logging.format == venice_e2ee_proxy::config::LogFormat::Json,
    );
    if config.venice.api_key.is_empty() {
        return Err(
            "no Venice API key: set VENICE_API_KEY (or run the tools crate's `demo` to try it without one)".into(),
        );
    }
    log::info!(
        "listening on http://{}/v1, upstream {}",
        config.server.listen,
        config.venice.base_url
    );
    server::run(config, args.pingora_conf.as_deref()).map_err(|e| e.to_string())
}

/// Prints the configuration as loaded; fails (as `serve` would) without a Venice key.
fn check_config(args: &ServeArgs) -> Result<(), String> {
    let config = load(args)?;
    print!("{}", config.describe()?);
    if config.venice.api_key.is_empty() {
        return Err("no Venice API key: serve would refuse to start (set VENICE_API_KEY)".into());
    }
    Ok(())
}

fn verify(
    args: &ServeArgs,
    offline: Option<PathBuf>,
    model: Option<String>,
    json: bool,
) -> Result<(), String> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let r = match (offline, model) {
        (Some(dir), _) => {
            let capture = capture::load(&dir).map_err(|e| e.to_string())?;
            rt.block_on(capture::verify(&capture))
                .map_err(|e| e.to_string())?
        }
        (None, Some(model)) => rt
            .block_on(verifier::verify_live(&load(args)?, &model))
            .map_err(|e| e.to_string())?,
        (None, None) => return Err("give --offline DIR or --model M".into()),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", report::render_text(&r));
    }
    if r.verified {
        Ok(())
    } else {
        Err("attestation NOT verified".into())
    }
}

/// Whether the sidecar is ready with every model protected; an error when it cannot be asked.
fn status(args: &ServeArgs, admin: Option<String>, json: bool) -> Result<bool, String> {
    let config = load(args)?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let snap = rt.block_on(server::status::fetch(&config, admin.as_deref()))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&snap).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", server::status::render_text(&snap));
    }
    Ok(server::status::all_protected(&snap))
}
