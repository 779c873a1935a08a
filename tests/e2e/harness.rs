//! A real Pingora server on an ephemeral loopback port, wired to a simulated Venice over
//! HTTP(S), for tests that assert on what clients see.

use pingora::server::RunArgs;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use venice_e2ee_proxy::config::Config;
use venice_e2ee_proxy::server;
use venice_e2ee_proxy::state::AppState;
use venice_e2ee_tools::sim::{SimOptions, Simulator};

pub const MODEL: &str = "e2ee-qwen3-6-35b-a3b";

/// Venice serves no GLM-4.5/4.6 over E2EE any more: tests of that family's format give one of
/// its current GLM models that family.
pub const GLM_46_AS: &str = "e2ee-glm-5-1";

pub fn with_glm_46_family(c: &mut Config) {
    c.tools = serde_yaml::from_str(&format!("families: {{{GLM_46_AS}: glm}}")).unwrap();
}
pub const SIM_KEY: &str = "test-upstream-key";

pub struct Proxy {
    pub base: String,
    pub sim: Simulator,
    pub state: Arc<AppState>,
    pub http: reqwest::Client,
    stop: Arc<Notify>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The tools crate's binary (`demo`, `bench`, …), built on first use: a package's tests are
/// given only their own package's binaries, and this one belongs next to them.
pub fn tools_bin() -> &'static std::path::Path {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_BIN_EXE_venice-e2ee-proxy"))
            .parent()
            .unwrap();
        let profile = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--locked", "-p", "venice-e2ee-tools"])
            .args(["--bin", "venice-e2ee-tools", "--profile", profile])
            .arg("--target-dir")
            .arg(dir.parent().unwrap())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build -p venice-e2ee-tools failed");
        dir.join("venice-e2ee-tools")
    })
}

/// A port for a proxy listener to bind later. Taken below the kernel's ephemeral range
/// (32768–60999), where the simulators' and clients' port-0 sockets land, and never handed
/// out twice in this run: a port the kernel gave back could otherwise go to a simulator
/// before the proxy binds it, and a test would talk to the wrong server.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        20_000 + (std::process::id() % 10_000) as u16,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    loop {
        let port = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(port < 32_768, "the e2e suite ran out of ports");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub async fn sim() -> Simulator {
    Simulator::start(SimOptions {
        api_key: SIM_KEY.into(),
        ..SimOptions::default()
    })
    .await
    .unwrap()
}

/// Test defaults: short timeouts so fault tests finish quickly.
pub fn config_for(sim: &Simulator) -> Config {
    let mut c = Config::default();
    c.server.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    c.server.admin_listen = Some(format!("127.0.0.1:{}", free_port()).parse().unwrap());
    sim.configure(&mut c).unwrap();
    c.venice.first_byte_timeout = Duration::from_secs(2);
    c.venice.idle_timeout = Duration::from_secs(2);
    c.venice.connect_timeout = Duration::from_secs(2);
    c.venice.request_timeout = Duration::from_secs(5);
    // Fault tests switch attestation faults on and off between requests: every request may
    // fetch (the backoff has tests of its own).
    c.attestation.fetch_retry.retries = 0;
    c.attestation.fetch_retry.backoff = Duration::ZERO;
    c
}

impl Proxy {
    pub async fn start(sim: Simulator, tweak: impl FnOnce(&mut Config)) -> Proxy {
        let mut config = config_for(&sim);
        tweak(&mut config);
        Self::start_with(sim, config).await
    }

    pub async fn start_with(sim: Simulator, config: Config) -> Proxy {
        let listen = config.server.listen;
        let admin = config.server.admin_listen;
        let mut conf = server::pingora_conf(None, &config).unwrap();
        conf.grace_period_seconds = Some(0);
        conf.graceful_shutdown_timeout_seconds = Some(0);
        conf.threads = 2;
        let written = venice_e2ee_tools::sim::written_roots(&config);
        let (server, state) = server::build(config, conf).unwrap();
        // Read at build: the temporary directory keeps nothing of each test.
        for path in written {
            let _ = std::fs::remove_file(path);
        }
        let stop = Arc::new(Notify::new());
        let signal = server::Stop(stop.clone());
        let thread = std::thread::spawn(move || {
            server.run(RunArgs {
                shutdown_signal: Box::new(signal),
            })
        });
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let base = format!("http://{listen}/v1");
        let proxy = Proxy {
            base,
            sim,
            state,
            http,
            stop,
            thread: Some(thread),
        };
        // Pingora starts each service on its own thread: the admin listener may come up after
        // the proxy's.
        let admin_up = || async {
            match admin {
                Some(addr) => tokio::net::TcpStream::connect(addr).await.is_ok(),
                None => true,
            }
        };
        for _ in 0..200 {
            if proxy.http.get(proxy.url("/healthz")).send().await.is_ok() && admin_up().await {
                return proxy;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("proxy did not start on {listen}");
    }

    /// A path on the proxy; `/v1/...` paths are given without the `/v1`.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("/healthz") || path.starts_with("/readyz") {
            self.base.trim_end_matches("/v1").to_string() + path
        } else {
            format!("{}{path}", self.base)
        }
    }

    pub async fn post(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url("/chat/completions"))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_raw(&self, body: Vec<u8>) -> reqwest::Response {
        self.http
            .post(self.url("/chat/completions"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn chat(content: &str, stream: bool) -> Value {
    serde_json::json!({
        "model": MODEL,
        "stream": stream,
        "messages": [{"role": "user", "content": content}],
    })
}

/// Reads a whole SSE body and returns its data payloads (parsed JSON, or the string
/// `[DONE]`), plus whether reading ended in a transport error.
pub async fn sse_events(mut r: reqwest::Response) -> (Vec<Value>, bool) {
    let mut text = Vec::new();
    let mut broken = false;
    loop {
        match r.chunk().await {
            Ok(Some(c)) => text.extend_from_slice(&c),
            Ok(None) => break,
            Err(_) => {
                broken = true;
                break;
            }
        }
    }
    let text = String::from_utf8(text).unwrap();
    let events = text
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data:"))
        .map(|d| {
            let d = d.trim();
            serde_json::from_str(d).unwrap_or(Value::String(d.to_string()))
        })
        .collect();
    (events, broken)
}

/// Each attestation fault refuses chat (streamed and not) with a 503 naming `code`, sends
/// nothing to the enclave, and the model is usable again once the fault is gone.
pub async fn attestation_faults_fail_closed(
    p: &Proxy,
    cases: &[(venice_e2ee_tools::sim::AttestationFault, &str)],
) {
    for (fault, code) in cases {
        p.sim.set_attestation_fault(Some(*fault));
        for stream in [true, false] {
            let r = p.post(&chat("must not leave", stream)).await;
            assert_eq!(r.status(), 503, "{fault:?}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], *code, "{fault:?}: {v}");
            assert_eq!(v["error"]["type"], "attestation_error");
        }
    }
    assert!(
        p.sim.record().chats.is_empty(),
        "nothing was sent to an enclave that did not verify"
    );
    p.sim.set_attestation_fault(None);
    assert_eq!(p.post(&chat("now it may", false)).await.status(), 200);
}

/// A Responses or Messages stream: `event: …` / `data: …` pairs as the data objects, each
/// event's name checked against its data's `type`.
pub async fn named_events(r: reqwest::Response) -> Vec<Value> {
    let text = r.text().await.unwrap();
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let (head, data) = e.split_once("\ndata: ").expect("event and data lines");
            let v: Value = serde_json::from_str(data).unwrap();
            assert_eq!(head, format!("event: {}", v["type"].as_str().unwrap()));
            v
        })
        .collect()
}

/// The client public key each recorded chat was answered under.
pub fn client_keys(rec: &venice_e2ee_tools::sim::Record) -> Vec<&str> {
    rec.chats
        .iter()
        .map(|c| c.header("x-venice-tee-client-pub-key").unwrap())
        .collect()
}

/// None of `secrets` appears in what Venice received (headers or body) for any chat.
pub fn never_upstream(rec: &venice_e2ee_tools::sim::Record, secrets: &[&str]) {
    for c in &rec.chats {
        let seen = format!("{:?}{}", c.headers, c.body);
        for s in secrets {
            assert!(!seen.contains(s), "`{s}` crossed to Venice: {seen}");
        }
    }
}

/// The session an answer names (`x-venice-e2ee-session`), its body read to the end.
pub async fn echoed_session(r: reqwest::Response) -> Option<String> {
    assert_eq!(r.status(), 200);
    let id = r
        .headers()
        .get("x-venice-e2ee-session")
        .map(|v| v.to_str().unwrap().to_string());
    r.bytes().await.unwrap();
    id
}

/// The check named `name` in an attestation report.
pub fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report}"))
}

/// Concatenated `delta.content` of chat chunks.
pub fn content_of(events: &[Value]) -> String {
    delta_text(events, "content")
}

/// Concatenated `delta.reasoning_content` of chat chunks.
pub fn reasoning_of(events: &[Value]) -> String {
    delta_text(events, "reasoning_content")
}

fn delta_text(events: &[Value], field: &str) -> String {
    let pointer = format!("/choices/0/delta/{field}");
    events
        .iter()
        .filter_map(|e| e.pointer(&pointer).and_then(Value::as_str))
        .collect()
}

/// The real `demo` binary on its own loopback ports; killed on drop unless it has exited.
pub struct Demo {
    child: Option<std::process::Child>,
    /// Kept open: the demo prints after its first line, and a closed pipe would kill it.
    _stdout: std::io::BufReader<std::process::ChildStdout>,
    /// `http://127.0.0.1:PORT` of the proxy.
    pub base: String,
    /// `http://127.0.0.1:PORT` of its simulated Venice (for `/_sim/…` control).
    pub sim_base: String,
}

impl Demo {
    /// Starts `demo` with `args` and waits until `/readyz` answers 200.
    pub async fn start(args: &[&str]) -> Demo {
        Self::start_with(
            args,
            &[("RUST_LOG", "warn".into())],
            std::process::Stdio::inherit(),
        )
        .await
    }

    /// `start`, with extra environment and the process's stderr (its log) sent to `stderr`.
    pub async fn start_with(
        args: &[&str],
        env: &[(&str, String)],
        stderr: std::process::Stdio,
    ) -> Demo {
        use std::io::{BufRead, BufReader};
        let port = free_port();
        let mut child = std::process::Command::new(tools_bin())
            .arg("demo")
            .args(args)
            .env(
                "VENICE_E2EE_PROXY__SERVER__LISTEN",
                format!("127.0.0.1:{port}"),
            )
            .env(
                "VENICE_E2EE_PROXY__SERVER__ADMIN_LISTEN",
                format!("127.0.0.1:{}", free_port()),
            )
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("demo starts");
        // First line: "venice-e2ee-proxy demo: simulated Venice at http://…/api/v1".
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let sim_base = first
            .trim()
            .rsplit(' ')
            .next()
            .unwrap()
            .trim_end_matches("/api/v1")
            .to_string();
        let demo = Demo {
            child: Some(child),
            _stdout: stdout,
            base: format!("http://127.0.0.1:{port}"),
            sim_base,
        };
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        for _ in 0..200 {
            if http
                .get(format!("{}/readyz", demo.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return demo;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("demo did not become ready");
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Waits for the process to exit by itself.
    pub fn wait(mut self) -> std::process::ExitStatus {
        self.child.take().expect("running").wait().unwrap()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs one pytest file (path relative to the crate) with `env`; fails with its output.
pub fn pytest(file: &str, env: &[(&str, String)]) {
    let script = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", &script])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("python3 runs (scripts/setup installs the test packages)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{file} failed (scripts/setup installs its packages):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");
}
