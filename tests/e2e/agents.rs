//! Real coding agents, unmodified, through the `demo` binary. The simulated model walks each
//! through tasks in its trained tool-call syntax (one write; a read, then a write; a first
//! call that is invalid, then a valid one); the agent runs its own tools, the results go back
//! encrypted, and the agent prints the model's answer and exits 0. Installed by
//! `scripts/setup` (npm packages in tests/agents, Python agents in tests/agents/.venv).

use crate::harness::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// What every task asks of the agent.
const PROMPT: &str = "Create hello.txt containing proxied";
/// The model's last answer in every task; the agent prints it.
const ANSWER: &str = "Wrote hello.txt.";
/// What notes.txt holds: the read-then-write task's second turn must carry it.
const NOTES: &str = "secret-word";

fn node_bin(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/agents/node_modules/.bin")
        .join(name)
}

fn venv_bin(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/agents/.venv/bin")
        .join(name)
}

/// A model family's trained call syntax: how the scripted model writes a call, and what marks
/// a tool's result in the turn after it (the chat template's rendering, as the sidecar sends it).
struct Family {
    model: &'static str,
    call: fn(tool: &str, arguments: &[(&str, &str)]) -> String,
    result_mark: &'static str,
}

/// Qwen3's XML calls (`MODEL`'s family).
const QWEN: Family = Family {
    model: MODEL,
    call: |tool, arguments| {
        let parameters: String = arguments
            .iter()
            .map(|(k, v)| format!("<parameter={k}>\n{v}\n</parameter>\n"))
            .collect();
        format!("<tool_call>\n<function={tool}>\n{parameters}</function>\n</tool_call>")
    },
    result_mark: "<tool_response>",
};

/// Gemma 4's calls, strings quoted with `<|"|>`.
const GEMMA: Family = Family {
    model: "e2ee-gemma-4-26b-a4b-uncensored-p",
    call: |tool, arguments| {
        let q = "<|\"|>";
        let arguments: Vec<String> = arguments
            .iter()
            .map(|(k, v)| format!("{k}:{q}{v}{q}"))
            .collect();
        format!(
            "<|tool_call>call:{tool}{{{}}}<tool_call|>",
            arguments.join(",")
        )
    },
    result_mark: "<|tool_response>response:",
};

/// DeepSeek V4's DSML calls.
const DEEPSEEK: Family = Family {
    model: "e2ee-deepseek-v4-flash",
    call: |tool, arguments| {
        let parameters: String = arguments
            .iter()
            .map(|(k, v)| {
                format!("<｜DSML｜parameter name=\"{k}\" string=\"true\">{v}</｜DSML｜parameter>\n")
            })
            .collect();
        format!("I'll do it.\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"{tool}\">\n{parameters}</｜DSML｜invoke>\n</｜DSML｜tool_calls>")
    },
    result_mark: "<tool_result>",
};

/// The agent's own tools the model calls.
enum Tools {
    /// File tools: its read tool, its path parameter and how it takes the path; its write
    /// tool, path and content parameters.
    Files {
        read: (&'static str, &'static str, fn(&str) -> String),
        write: (&'static str, &'static str, &'static str),
    },
    /// One shell tool and its command parameter (Codex's `exec_command`).
    Shell(&'static str, &'static str),
}

impl Tools {
    fn read(&self, family: &Family, notes: &Path) -> String {
        let notes = notes.display().to_string();
        match self {
            Tools::Files { read, .. } => (family.call)(read.0, &[(read.1, &read.2(&notes))]),
            Tools::Shell(tool, command) => {
                (family.call)(tool, &[(command, &format!("cat {notes}"))])
            }
        }
    }

    /// A call writing `proxied` into `target`; without its required content (or command) when
    /// `valid` is false.
    fn write(&self, family: &Family, target: &Path, valid: bool) -> String {
        let target = target.display().to_string();
        match self {
            Tools::Files { write, .. } if valid => {
                (family.call)(write.0, &[(write.1, &target), (write.2, "proxied")])
            }
            Tools::Files { write, .. } => (family.call)(write.0, &[(write.1, &target)]),
            Tools::Shell(tool, command) if valid => {
                (family.call)(tool, &[(command, &format!("echo proxied > {target}"))])
            }
            Tools::Shell(tool, _) => (family.call)(tool, &[]),
        }
    }
}

/// The command-line arguments and environment of one run.
type Invocation = (Vec<String>, Vec<(&'static str, String)>);

/// A path as a read tool's parameter: itself, or a list of one file (Cline's `files`).
fn as_is(path: &str) -> String {
    path.to_string()
}

fn one_file(path: &str) -> String {
    json!([{ "path": path }]).to_string()
}

/// An agent as a user runs it.
struct Agent {
    name: &'static str,
    bin: PathBuf,
    tools: Tools,
    /// Writes the agent's configuration for `model` behind the demo at `base` into `home`;
    /// gives the arguments and environment that run `PROMPT`.
    setup: fn(home: &Path, base: &str, model: &str) -> Invocation,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Task {
    /// Write hello.txt.
    OneTool,
    /// Read notes.txt, then write hello.txt.
    ReadThenWrite,
    /// A write missing its required argument, then a valid one: the sidecar corrects the first
    /// inside the stream, so the agent sees only the valid call.
    Recover,
}

const TASKS: [Task; 3] = [Task::OneTool, Task::ReadThenWrite, Task::Recover];

/// Runs `task` with `agent` on `family`'s model through `demo` and checks what the agent did
/// and what the simulated Venice received.
async fn run_task(demo: &Demo, agent: &Agent, family: &Family, task: Task) {
    let what = format!("{} {task:?} on {}", agent.name, family.model);
    let home = temp_dir("agent-home");
    let work = temp_dir("agent-work");
    let target = work.join("hello.txt");
    let notes = work.join("notes.txt");
    std::fs::write(&notes, format!("{NOTES}\n")).unwrap();
    let mut replies = match task {
        Task::OneTool => vec![agent.tools.write(family, &target, true)],
        Task::ReadThenWrite => vec![
            agent.tools.read(family, &notes),
            agent.tools.write(family, &target, true),
        ],
        Task::Recover => vec![
            agent.tools.write(family, &target, false),
            agent.tools.write(family, &target, true),
        ],
    };
    replies.push(ANSWER.into());
    let before = sim_record(demo).await["chats"].as_array().unwrap().len();
    script(demo, family.model, &replies).await;
    let (args, env) = (agent.setup)(&home, &demo.base, family.model);
    let (stdout, stderr) = run_agent(&agent.bin, &args, &work, &home, &env).await;
    assert_eq!(
        std::fs::read_to_string(&target).unwrap_or_default().trim(),
        "proxied",
        "{what}: the tool ran: {stdout}\n{stderr}"
    );
    assert!(stdout.contains(ANSWER), "{what}: {stdout}\n{stderr}");

    // The model's turns (agents' side requests on other models aside), all streamed.
    let record = sim_record(demo).await;
    let turns: Vec<String> = record["chats"].as_array().unwrap()[before..]
        .iter()
        .filter(|c| c["body"]["model"] == family.model)
        .inspect(|c| assert_eq!(c["body"]["stream"], true, "{what}: {c}"))
        .map(|c| c["decrypted"].to_string())
        .collect();
    assert_eq!(
        turns.len(),
        replies.len(),
        "{what}: one turn per reply: {record}"
    );
    let last = turns.last().unwrap();
    assert!(
        last.contains(family.result_mark),
        "{what}: the result went back: {last}"
    );
    match task {
        Task::OneTool => {}
        Task::ReadThenWrite => assert!(turns[1].contains(NOTES), "{what}: {}", turns[1]),
        Task::Recover => {
            // The second turn is the sidecar's correction, not the agent's: the agent's next
            // turn follows the valid call and holds no trace of the invalid one.
            assert!(
                turns[1].contains("invalid tool call"),
                "{what}: {}",
                turns[1]
            );
            assert!(
                !turns[2].contains("invalid tool call"),
                "{what}: {}",
                turns[2]
            );
        }
    }
    let _ = std::fs::remove_dir_all(&home);
    let _ = std::fs::remove_dir_all(&work);
}

/// Every task with `agent` on Qwen3.6 through one demo.
async fn run_tasks(agent: &Agent, tasks: &[Task]) {
    let demo = Demo::start(&[]).await;
    for &task in tasks {
        run_task(&demo, agent, &QWEN, task).await;
    }
}

/// Queues the simulated model's replies (the demo's simulator, over its control endpoint),
/// each for `model` only: agents' side requests on other models do not take them.
async fn script(demo: &Demo, model: &str, replies: &[String]) {
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

/// Runs an installed agent in `work` with `home` as its HOME; it must exit 0.
async fn run_agent(
    bin: &Path,
    args: &[String],
    work: &Path,
    home: &Path,
    env: &[(&str, String)],
) -> (String, String) {
    let out = tokio::process::Command::new(bin)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(work)
        // Agents read their project directory from PWD (opencode refuses paths outside it).
        .env("PWD", work)
        .env("HOME", home)
        .env("SIDECAR_KEY", "unused")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ANTHROPIC_AUTH_TOKEN")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{} runs (scripts/setup installs it): {e}", bin.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{} failed:\n{stdout}\n{stderr}",
        bin.display()
    );
    (stdout, stderr)
}

fn write_config(home: &Path, file: &str, contents: &str) {
    let path = home.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// Codex CLI over the Responses API, with its default tools (the shell).
fn codex() -> Agent {
    Agent {
        name: "Codex CLI",
        bin: node_bin("codex"),
        tools: Tools::Shell("exec_command", "cmd"),
        setup: |home, base, model| {
            write_config(
                home,
                ".codex/config.toml",
                &format!("model = \"{model}\"\nmodel_provider = \"venice\"\n\n[model_providers.venice]\nname = \"Venice E2EE sidecar\"\nbase_url = \"{base}/v1\"\nwire_api = \"responses\"\nenv_key = \"SIDECAR_KEY\"\n"),
            );
            let args = [
                "exec",
                "--skip-git-repo-check",
                "-s",
                "workspace-write",
                PROMPT,
            ];
            (strings(&args), vec![])
        },
    }
}

/// opencode through `@ai-sdk/openai-compatible` (Chat Completions), with a small model for
/// its title request.
fn opencode() -> Agent {
    Agent {
        name: "opencode",
        bin: node_bin("opencode"),
        tools: Tools::Files {
            read: ("read", "filePath", as_is),
            write: ("write", "filePath", "content"),
        },
        setup: |home, base, model| {
            let config = json!({
                "$schema": "https://opencode.ai/config.json",
                "provider": {"venice": {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "Venice E2EE sidecar",
                    "options": {"baseURL": format!("{base}/v1"), "apiKey": "unused"},
                    "models": {
                        model: {"name": "E2EE model", "tool_call": true},
                        "e2ee-glm-5-1": {"name": "GLM 5.1 (E2EE)", "tool_call": true}
                    }
                }},
                "model": format!("venice/{model}"),
                "small_model": "venice/e2ee-glm-5-1"
            });
            write_config(home, ".config/opencode/opencode.json", &config.to_string());
            (strings(&["run", PROMPT]), vec![])
        },
    }
}

/// Claude Code over the Messages API; the demo aliases `claude-*` to its model, so it runs
/// with its own model names.
fn claude_code() -> Agent {
    Agent {
        name: "Claude Code",
        bin: node_bin("claude"),
        tools: Tools::Files {
            read: ("Read", "file_path", as_is),
            write: ("Write", "file_path", "content"),
        },
        setup: |_, base, _| {
            let env = vec![
                ("ANTHROPIC_BASE_URL", base.to_string()),
                ("ANTHROPIC_API_KEY", "unused".into()),
                ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".into()),
            ];
            (
                strings(&["-p", PROMPT, "--allowedTools", "Read,Write"]),
                env,
            )
        },
    }
}

/// pi over `api` (`openai-completions` or `anthropic-messages`), from `~/.pi/agent/models.json`.
fn pi(api: &'static str) -> Agent {
    fn setup(home: &Path, base: &str, model: &str, api: &str) -> Vec<String> {
        let base = match api {
            "anthropic-messages" => base.to_string(),
            _ => format!("{base}/v1"),
        };
        let models = json!({"providers": {"venice": {
            "baseUrl": base, "api": api, "apiKey": "unused",
            "compat": {"supportsDeveloperRole": false},
            "models": [{"id": model, "name": "E2EE model", "reasoning": true}]
        }}});
        write_config(home, ".pi/agent/models.json", &models.to_string());
        strings(&["--model", &format!("venice/{model}"), "-p", PROMPT])
    }
    let tools = Tools::Files {
        read: ("read", "path", as_is),
        write: ("write", "path", "content"),
    };
    match api {
        "anthropic-messages" => Agent {
            name: "pi (Messages)",
            bin: node_bin("pi"),
            tools,
            setup: |home, base, model| (setup(home, base, model, "anthropic-messages"), vec![]),
        },
        _ => Agent {
            name: "pi (Chat Completions)",
            bin: node_bin("pi"),
            tools,
            setup: |home, base, model| (setup(home, base, model, "openai-completions"), vec![]),
        },
    }
}

/// Hermes Agent's one-shot mode, a custom endpoint in `~/.hermes/config.yaml`.
fn hermes() -> Agent {
    Agent {
        name: "Hermes Agent",
        bin: venv_bin("hermes"),
        tools: Tools::Files {
            read: ("read_file", "path", as_is),
            write: ("write_file", "path", "content"),
        },
        setup: |home, base, model| {
            write_config(
                home,
                ".hermes/config.yaml",
                &format!("model:\n  provider: custom\n  default: {model}\n  base_url: {base}/v1\n  api_key: unused\n"),
            );
            (strings(&["-z", PROMPT, "--yolo"]), vec![])
        },
    }
}

/// Qwen Code with its OpenAI-compatible auth on the command line.
fn qwen_code() -> Agent {
    Agent {
        name: "Qwen Code",
        bin: node_bin("qwen"),
        tools: Tools::Files {
            read: ("read_file", "file_path", as_is),
            write: ("write_file", "file_path", "content"),
        },
        setup: |_, base, model| {
            let args = [
                "--auth-type",
                "openai",
                "--openai-base-url",
                &format!("{base}/v1"),
                "--openai-api-key",
                "unused",
                "-m",
                model,
                "--yolo",
                PROMPT,
            ];
            (
                strings(&args),
                vec![("QWEN_CODE_SUPPRESS_YOLO_WARNING", "1".into())],
            )
        },
    }
}

/// Cline CLI, its OpenAI-compatible provider set with `cline auth`.
fn cline() -> Agent {
    Agent {
        name: "Cline CLI",
        bin: node_bin("cline"),
        tools: Tools::Files {
            read: ("read_files", "files", one_file),
            write: ("editor", "path", "new_text"),
        },
        setup: |home, base, model| {
            let base = format!("{base}/v1");
            let auth = [
                "auth", "-p", "openai", "-k", "unused", "-m", model, "-b", &base,
            ];
            let out = std::process::Command::new(node_bin("cline"))
                .args(auth)
                .env("HOME", home)
                .stdin(std::process::Stdio::null())
                .output()
                .expect("cline runs (scripts/setup installs it)");
            assert!(out.status.success(), "cline auth: {out:?}");
            (strings(&["-t", "100", PROMPT]), vec![])
        },
    }
}

/// Continue CLI headless with its write tools (`--auto`), from `~/.continue/config.yaml`.
fn continue_cli() -> Agent {
    Agent {
        name: "Continue CLI",
        bin: node_bin("cn"),
        tools: Tools::Files {
            read: ("Read", "filepath", as_is),
            write: ("Write", "filepath", "content"),
        },
        setup: |home, base, model| {
            let config = home.join(".continue/config.yaml");
            write_config(
                home,
                ".continue/config.yaml",
                &format!("name: Venice E2EE sidecar\nversion: 1.0.0\nschema: v1\nmodels:\n  - name: E2EE model\n    provider: openai\n    model: {model}\n    apiBase: {base}/v1\n    apiKey: unused\n    roles: [chat, edit, apply]\n    capabilities: [tool_use]\n"),
            );
            let config = config.display().to_string();
            (
                strings(&["--config", &config, "--auto", "-p", PROMPT]),
                vec![],
            )
        },
    }
}

/// `demo --responder agent`, as the README shows a newcomer: nothing scripted, Codex CLI
/// asked to create a file, the simulated Qwen model calls the shell tool Codex offers, Codex
/// runs it, and the model says it is done.
#[tokio::test(flavor = "multi_thread")]
async fn the_agent_demo_creates_a_file_unscripted() {
    let demo = Demo::start(&["--responder", "agent"]).await;
    let (home, work) = (temp_dir("agent-home"), temp_dir("agent-work"));
    let (args, env) = (codex().setup)(&home, &demo.base, MODEL);
    let (stdout, stderr) = run_agent(&codex().bin, &args, &work, &home, &env).await;
    assert_eq!(
        std::fs::read_to_string(work.join("hello.txt"))
            .unwrap_or_default()
            .trim(),
        "proxied",
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("Done"), "{stdout}\n{stderr}");
    let _ = std::fs::remove_dir_all(&home);
    let _ = std::fs::remove_dir_all(&work);
}

#[tokio::test(flavor = "multi_thread")]
async fn codex_cli_runs_tool_loops_and_survives_an_invalid_call() {
    run_tasks(&codex(), &[Task::OneTool, Task::Recover]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn opencode_runs_tool_loops_and_survives_an_invalid_call() {
    run_tasks(&opencode(), &[Task::OneTool, Task::Recover]).await;
}

/// The same loop on today's Gemma 4 and DeepSeek V4 E2EE models, each answering in its own
/// trained syntax and getting the result back where its template puts it.
#[tokio::test(flavor = "multi_thread")]
async fn opencode_runs_tool_loops_on_gemma_and_deepseek_models() {
    let demo = Demo::start(&[]).await;
    for family in [&GEMMA, &DEEPSEEK] {
        run_task(&demo, &opencode(), family, Task::OneTool).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn claude_code_runs_tool_loops_and_survives_an_invalid_call() {
    run_tasks(&claude_code(), &[Task::OneTool, Task::Recover]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pi_runs_tool_loops_over_chat_completions() {
    run_tasks(&pi("openai-completions"), &TASKS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pi_runs_tool_loops_over_the_messages_api() {
    run_tasks(&pi("anthropic-messages"), &TASKS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hermes_agent_runs_tool_loops_and_survives_an_invalid_call() {
    run_tasks(&hermes(), &TASKS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn qwen_code_runs_tool_loops_and_survives_an_invalid_call() {
    run_tasks(&qwen_code(), &TASKS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cline_cli_runs_tool_loops_and_survives_an_invalid_call() {
    run_tasks(&cline(), &TASKS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn continue_cli_runs_tool_loops_and_survives_an_invalid_call() {
    run_tasks(&continue_cli(), &TASKS).await;
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
