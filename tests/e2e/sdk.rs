//! The official OpenAI Python SDK against the real `demo` binary.

use crate::harness::free_port;
use std::process::{Command, Stdio};
use std::time::Duration;

struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sdk/test_openai_python.py"
    );
    let out = Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", script])
        .env("OPENAI_BASE_URL", format!("http://127.0.0.1:{port}/v1"))
        .env("OPENAI_API_KEY", "any")
        .output()
        .expect("python3 runs (install with scripts/setup)");
    drop(demo);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "OpenAI Python SDK tests failed (scripts/setup installs `openai` and `pytest`):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");
}
