//! The keyless demo (the sidecar against a simulated Venice in the same process) and the
//! simulated Venice on its own.

use crate::sim::{SimOptions, Simulator};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use venice_e2ee_proxy::config::Config;
use venice_e2ee_proxy::server;

/// Starts the simulator on its own runtime thread and returns it.
fn start_sim(opts: SimOptions) -> Result<Simulator, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("simulated-venice".into())
        .spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            rt.block_on(async move {
                let started = Simulator::start(opts).await;
                let ok = started.is_ok();
                let _ = tx.send(started);
                if ok {
                    std::future::pending::<()>().await;
                }
            });
        })
        .map_err(|e| e.to_string())?;
    rx.recv()
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// The sidecar with `config`, against a simulated Venice started in this process in
/// `layout`: the keyless demo.
pub fn demo(
    mut config: Config,
    pingora_conf: Option<&Path>,
    layout: &str,
    responder: crate::sim::responder::Responder,
) -> Result<(), String> {
    let layout: crate::sim::aci::Layout =
        serde_json::from_value(serde_json::Value::String(layout.into())).map_err(|_| {
            format!("--layout {layout}: expected dstack, aci, aci_address_bound or venice")
        })?;
    let key = "sim-demo-key";
    let sim = start_sim(SimOptions {
        api_key: key.into(),
        ..SimOptions::default()
    })?;
    sim.set_attestation_layout(layout);
    sim.script(|s| s.responder = responder);
    sim.configure(&mut config).map_err(|e| e.to_string())?;
    // A Qwen model with tool calling from the simulated catalog (which follows Venice's).
    let model = crate::sim::MODELS
        .iter()
        .find(|m| m.e2ee && m.kind == "text" && m.function_calling && m.id.contains("qwen"))
        .map(|m| m.id)
        .ok_or("the simulated catalog lists no Qwen model with tool calling")?;
    if config.attestation.prewarm.is_empty() {
        config.attestation.prewarm = vec![model.into()];
    }
    // Claude Code asks for Claude models by name: here they are all the demo's model.
    if config.models.aliases.is_empty() {
        config
            .models
            .aliases
            .insert("claude-*".into(), model.into());
    }
    let base = format!("http://{}/v1", config.server.listen);
    println!(
        "venice-e2ee-proxy demo: simulated Venice at {}",
        sim.base_url()
    );
    println!("OpenAI base URL: {base}  (any API key)");
    println!("Try:");
    println!(
        "  curl -sN {base}/chat/completions -H 'Content-Type: application/json' \\\n    -d '{{\"model\":\"{model}\",\"stream\":true,\"messages\":[{{\"role\":\"user\",\"content\":\"Hello through the enclave\"}}]}}'"
    );
    println!(
        "Claude Code: ANTHROPIC_BASE_URL=http://{} ANTHROPIC_API_KEY=any claude",
        config.server.listen
    );
    let written = crate::sim::written_roots(&config);
    let (server, state) = server::prepare(config, pingora_conf).map_err(|e| e.to_string())?;
    // The simulated roots are read: nothing is left behind in the temporary directory.
    for path in written {
        let _ = std::fs::remove_file(path);
    }
    server::serve(server, state)
}

/// The simulated Venice alone on `listen` until Ctrl-C; with `proxy_config`, a proxy
/// configuration trusting its test PKIs is written there first.
pub fn sim(
    listen: SocketAddr,
    api_key: String,
    bench_reply_tokens: Option<usize>,
    pacing: crate::sim::Pacing,
    proxy_config: Option<PathBuf>,
) -> Result<(), String> {
    server::raise_fd_limit();
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let sim = Simulator::start(SimOptions {
            api_key,
            listen,
            tls: false,
            bench_reply_tokens,
        })
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        sim.set_pacing(pacing);
        if let Some(path) = proxy_config {
            let mut config = Config::default();
            sim.configure(&mut config).map_err(|e| e.to_string())?;
            let yaml = serde_yaml::to_string(&config).map_err(|e| e.to_string())?;
            std::fs::write(&path, yaml).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        println!(
            "simulated Venice{} at {}",
            if bench_reply_tokens.is_some() {
                " (benchmark upstream)"
            } else {
                ""
            },
            sim.base_url()
        );
        tokio::signal::ctrl_c().await.map_err(|e| e.to_string())
    })
}
