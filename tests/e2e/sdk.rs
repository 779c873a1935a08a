//! The official OpenAI Python SDK against the real `demo` binary, and driving a full agent
//! loop with tool calls through an in-process server.

use crate::harness::{free_port, sim, Proxy};
use std::process::{Command, Stdio};
use std::time::Duration;

struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs one pytest file against `base_url`; fails with pytest's output.
fn pytest(file: &str, base_url: &str, env: &[(&str, String)]) {
    let script = format!("{}/tests/sdk/{file}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", &script])
        .env("OPENAI_BASE_URL", base_url)
        .env("OPENAI_API_KEY", "any")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("python3 runs (install with scripts/setup)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{file} failed (scripts/setup installs `openai` and `pytest`):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_python_sdk_against_demo() {
    let port = free_port();
    let demo = Demo(
        Command::new(env!("CARGO_BIN_EXE_venice-e2ee-proxy"))
            .arg("demo")
            .env(
                "VENICE_E2EE_PROXY__SERVER__LISTEN",
                format!("127.0.0.1:{port}"),
            )
            .env(
                "VENICE_E2EE_PROXY__SERVER__ADMIN_LISTEN",
                format!("127.0.0.1:{}", free_port()),
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("demo starts"),
    );
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
        {
            if r.status() == 200 {
                ready = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "demo became ready");
    let base = format!("http://127.0.0.1:{port}/v1");
    tokio::task::spawn_blocking(move || pytest("test_openai_python.py", &base, &[]))
        .await
        .unwrap();
    drop(demo);
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_python_sdk_agent_loop_with_tools() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let base = p.base.clone();
    let sim_url = format!("http://{}", p.sim.addr);
    tokio::task::spawn_blocking(move || {
        pytest("test_agent_loop.py", &base, &[("SIM_URL", sim_url)])
    })
    .await
    .unwrap();
    // Both loops: a call, then the final answer after the tool result.
    let rec = p.sim.record();
    assert_eq!(rec.chats.len(), 4);
    assert!(rec.chats[1]
        .decrypted
        .iter()
        .any(|m| m.contains("<tool_response>") && m.contains("\"temp_c\": 18")));
}
