//! Real coding agents, unmodified, through the `demo` binary: each runs a tool loop (the
//! simulated model calls a tool in its trained syntax, the agent runs it, the result goes
//! back encrypted, the model answers) and exits 0. Installed by `scripts/setup`.

use crate::harness::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn agent_bin(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/agents/node_modules/.bin")
        .join(name)
}

/// Queues the simulated model's replies (the demo's simulator, over its control endpoint).
async fn script(demo: &Demo, replies: &[&str]) {
    let replies: Vec<Value> = replies.iter().map(|r| json!({"content": r})).collect();
    let r = reqwest::Client::new()
        .post(format!("{}/_sim/script", demo.sim_base))
        .json(&json!({"replies": replies}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn temp_dir(what: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "venice-e2ee-proxy-{what}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test(flavor = "multi_thread")]
async fn codex_cli_runs_a_tool_loop_with_its_default_tools() {
    let demo = Demo::start(&[]).await;
    // Codex's own home (config, sessions) and a working directory to change.
    let home = temp_dir("codex-home");
    let work = temp_dir("codex-work");
    std::fs::create_dir_all(home.join(".codex")).unwrap();
    std::fs::write(
        home.join(".codex/config.toml"),
        format!(
            "model = \"{MODEL}\"\nmodel_provider = \"venice\"\n\n[model_providers.venice]\nname = \"Venice E2EE sidecar\"\nbase_url = \"{}/v1\"\nwire_api = \"responses\"\nenv_key = \"SIDECAR_KEY\"\n",
            demo.base
        ),
    )
    .unwrap();
    // Qwen3.5's trained call syntax, calling Codex's own `exec_command` tool.
    script(
        &demo,
        &[
            "I'll create the file.\n<tool_call>\n<function=exec_command>\n<parameter=cmd>\necho proxied > hello.txt\n</parameter>\n</function>\n</tool_call>",
            "Created hello.txt.",
        ],
    )
    .await;
    let out = tokio::process::Command::new(agent_bin("codex"))
        .args(["exec", "--skip-git-repo-check", "-s", "workspace-write"])
        .arg("Create hello.txt containing proxied")
        .current_dir(&work)
        .env("HOME", &home)
        .env("SIDECAR_KEY", "unused")
        .env_remove("OPENAI_API_KEY")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("codex runs (scripts/setup installs tests/agents)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "codex failed:\n{stdout}\n{stderr}");
    assert_eq!(
        std::fs::read_to_string(work.join("hello.txt")).unwrap_or_default(),
        "proxied\n",
        "the tool ran: {stdout}\n{stderr}"
    );
    assert!(stdout.contains("Created hello.txt."), "{stdout}");
    // Both turns went through the sidecar, encrypted; the second carried the tool's result.
    let record: Value = reqwest::get(format!("{}/_sim/record", demo.sim_base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let chats = record["chats"].as_array().unwrap();
    assert_eq!(chats.len(), 2, "{record}");
    let second = chats[1]["decrypted"].to_string();
    assert!(second.contains("tool_response"), "{second}");
    let _ = std::fs::remove_dir_all(&home);
    let _ = std::fs::remove_dir_all(&work);
}
