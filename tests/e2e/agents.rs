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

/// Queues the simulated model's replies (the demo's simulator, over its control endpoint),
/// each for `MODEL` only: agents' side requests on other models do not take them.
async fn script(demo: &Demo, replies: &[&str]) {
    script_for(demo, MODEL, replies).await
}

/// Queues replies for `model` only.
async fn script_for(demo: &Demo, model: &str, replies: &[&str]) {
    let replies: Vec<Value> = replies
        .iter()
        .map(|r| json!({"content": r, "model": model}))
        .collect();
    let r = reqwest::Client::new()
        .post(format!("{}/_sim/script", demo.sim_base))
        .json(&json!({"replies": replies}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// An agent's file-writing tool called in Qwen3.5's trained syntax: `proxied` into `path`.
fn write_call(tool: &str, path_parameter: &str, path: &Path) -> String {
    format!(
        "<tool_call>\n<function={tool}>\n<parameter={path_parameter}>\n{}\n</parameter>\n<parameter=content>\nproxied\n</parameter>\n</function>\n</tool_call>",
        path.display()
    )
}

/// The agent ran its write tool (`proxied` in `target`) and printed the model's final answer.
fn assert_wrote(target: &Path, stdout: &str, stderr: &str) {
    assert_eq!(
        std::fs::read_to_string(target).unwrap_or_default().trim(),
        "proxied",
        "the tool ran: {stdout}\n{stderr}"
    );
    assert!(stdout.contains("Wrote hello.txt."), "{stdout}");
}

/// What the demo's simulated Venice received.
async fn sim_record(demo: &Demo) -> Value {
    let r = reqwest::get(format!("{}/_sim/record", demo.sim_base)).await;
    r.unwrap().json().await.unwrap()
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
    let (stdout, stderr) = run_agent(
        "codex",
        &[
            "exec",
            "--skip-git-repo-check",
            "-s",
            "workspace-write",
            "Create hello.txt containing proxied",
        ],
        &work,
        &home,
        &[],
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(work.join("hello.txt")).unwrap_or_default(),
        "proxied\n",
        "the tool ran: {stdout}\n{stderr}"
    );
    assert!(stdout.contains("Created hello.txt."), "{stdout}");
    // Both turns went through the sidecar, encrypted; the second carried the tool's result.
    let record = sim_record(&demo).await;
    let chats = record["chats"].as_array().unwrap();
    assert_eq!(chats.len(), 2, "{record}");
    let second = chats[1]["decrypted"].to_string();
    assert!(second.contains("tool_response"), "{second}");
    let _ = std::fs::remove_dir_all(&home);
    let _ = std::fs::remove_dir_all(&work);
}

/// Runs an installed agent in `work` with `home` as its HOME; it must exit 0.
async fn run_agent(
    name: &str,
    args: &[&str],
    work: &Path,
    home: &Path,
    env: &[(&str, String)],
) -> (String, String) {
    let out = tokio::process::Command::new(agent_bin(name))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(work)
        // Agents read their project directory from PWD (opencode refuses paths outside it).
        .env("PWD", work)
        .env("HOME", home)
        .env("SIDECAR_KEY", "unused")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_AUTH_TOKEN")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{name} runs (scripts/setup installs tests/agents): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{name} failed:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn opencode_runs_a_tool_loop_through_chat_completions() {
    let demo = Demo::start(&[]).await;
    // opencode's own `write` tool, called in Qwen3.5's trained syntax.
    opencode_loop(
        &demo,
        MODEL,
        &|path| write_call("write", "filePath", path),
        "tool_response",
    )
    .await;
}

/// The same loop on today's Gemma 4 and DeepSeek V4 E2EE models, each answering in its own
/// trained syntax and getting the result back where its template puts it.
#[tokio::test(flavor = "multi_thread")]
async fn opencode_runs_tool_loops_on_gemma_and_deepseek_models() {
    let demo = Demo::start(&[]).await;
    let q = "<|\"|>";
    opencode_loop(
        &demo,
        "e2ee-gemma-4-31b",
        &|path| {
            format!(
                "<|tool_call>call:write{{content:{q}proxied{q},filePath:{q}{}{q}}}<tool_call|>",
                path.display()
            )
        },
        "<|tool_response>response:write{value:",
    )
    .await;
    opencode_loop(
        &demo,
        "e2ee-deepseek-v4-flash",
        &|path| {
            format!(
                "I'll write it.\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"write\">\n<｜DSML｜parameter name=\"filePath\" string=\"true\">{}</｜DSML｜parameter>\n<｜DSML｜parameter name=\"content\" string=\"true\">proxied</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>",
                path.display()
            )
        },
        "<tool_result>",
    )
    .await;
}

/// `opencode run` with `model` (through `@ai-sdk/openai-compatible`, Chat Completions, a
/// small model for its title request): the model calls `write` as `call` renders it, the
/// result goes back (its turn holding `result_mark`), and the agent prints the answer.
async fn opencode_loop(
    demo: &Demo,
    model: &str,
    call: &dyn Fn(&Path) -> String,
    result_mark: &str,
) {
    let home = temp_dir("opencode-home");
    let work = temp_dir("opencode-work");
    let config = home.join(".config/opencode");
    std::fs::create_dir_all(&config).unwrap();
    let provider = json!({
        "$schema": "https://opencode.ai/config.json",
        "provider": {"venice": {
            "npm": "@ai-sdk/openai-compatible",
            "name": "Venice E2EE sidecar",
            "options": {"baseURL": format!("{}/v1", demo.base), "apiKey": "unused"},
            "models": {
                model: {"name": "E2EE model", "tool_call": true},
                "e2ee-glm-5-1": {"name": "GLM 5.1 (E2EE)", "tool_call": true}
            }
        }},
        "model": format!("venice/{model}"),
        "small_model": "venice/e2ee-glm-5-1"
    });
    std::fs::write(config.join("opencode.json"), provider.to_string()).unwrap();
    let target = work.join("hello.txt");
    let call = call(&target);
    let before = sim_record(demo).await["chats"].as_array().unwrap().len();
    script_for(demo, model, &[&call, "Wrote hello.txt."]).await;
    let (stdout, stderr) = run_agent(
        "opencode",
        &["run", "Create hello.txt containing proxied"],
        &work,
        &home,
        &[],
    )
    .await;
    assert_wrote(&target, &stdout, &stderr);
    let record = sim_record(demo).await;
    let main_turns: Vec<&Value> = record["chats"].as_array().unwrap()[before..]
        .iter()
        .filter(|c| c["body"]["model"] == model)
        .collect();
    assert_eq!(
        main_turns.len(),
        2,
        "{model}: the call, then the answer: {record}"
    );
    assert_eq!(main_turns[0]["body"]["stream"], true);
    let second = main_turns[1]["decrypted"].as_array().unwrap();
    assert!(
        second
            .iter()
            .any(|m| m.as_str().is_some_and(|m| m.contains(result_mark))),
        "{model}: {second:?}"
    );
    let _ = std::fs::remove_dir_all(&home);
    let _ = std::fs::remove_dir_all(&work);
}

/// Runs a `node --test` suite in tests/agents against the demo; it must pass whole.
async fn node_suite(file: &str) -> String {
    let demo = Demo::start(&[]).await;
    let out = tokio::process::Command::new("node")
        .args(["--test", "--test-concurrency=1", file])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/agents"))
        .env("PROXY_BASE_URL", format!("{}/v1", demo.base))
        .env("SIM_BASE_URL", &demo.sim_base)
        .env("MODEL", MODEL)
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs (scripts/setup installs tests/agents)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{file} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_sdks_run_tool_loops_streaming_and_not() {
    // The Vercel AI SDK (Responses and Chat, and openai-compatible), the OpenAI Agents SDK for
    // JS and LangChain JS: one tool loop each.
    let stdout = node_suite("sdks.test.mjs").await;
    assert!(stdout.contains("# pass 8"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_typescript_sdk_over_the_messages_api() {
    let stdout = node_suite("anthropic.test.mjs").await;
    assert!(stdout.contains("# pass 5"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn claude_code_writes_a_file_through_the_messages_api() {
    // The demo aliases `claude-*` to its model, so Claude Code runs with its own model names.
    let demo = Demo::start(&[]).await;
    let home = temp_dir("claude-home");
    let work = temp_dir("claude-work");
    let target = work.join("hello.txt");
    // Claude Code's own `Write` tool.
    let call = format!(
        "I'll create it.\n{}",
        write_call("Write", "file_path", &target)
    );
    script(&demo, &[&call, "Wrote hello.txt."]).await;
    let (stdout, stderr) = run_agent(
        "claude",
        &[
            "-p",
            "Create hello.txt containing proxied",
            "--allowedTools",
            "Write",
        ],
        &work,
        &home,
        &[
            ("ANTHROPIC_BASE_URL", demo.base.clone()),
            ("ANTHROPIC_API_KEY", "unused".into()),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".into()),
        ],
    )
    .await;
    assert_wrote(&target, &stdout, &stderr);
    let record = sim_record(&demo).await;
    let chats = record["chats"].as_array().unwrap();
    assert_eq!(chats.len(), 2, "the call, then the answer: {record}");
    assert_eq!(chats[0]["body"]["stream"], true);
    let second = chats[1]["decrypted"].to_string();
    assert!(
        second.contains("tool_response") && second.contains("File created"),
        "{second}"
    );
    let _ = std::fs::remove_dir_all(&home);
    let _ = std::fs::remove_dir_all(&work);
}
