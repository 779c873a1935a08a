//! The official OpenAI Python SDK against the real `demo` binary, and driving a full agent
//! loop with tool calls through an in-process server.

use crate::harness::{pytest, sim, Demo, Proxy};

fn sdk_env(base_url: String) -> Vec<(&'static str, String)> {
    vec![
        ("OPENAI_BASE_URL", base_url),
        ("OPENAI_API_KEY", "any".into()),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_python_sdk_against_demo() {
    let demo = Demo::start(&[]).await;
    let env = sdk_env(format!("{}/v1", demo.base));
    tokio::task::spawn_blocking(move || pytest("tests/sdk/test_openai_python.py", &env))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_python_sdk_agent_loop_with_tools() {
    let p = Proxy::start(sim().await, crate::harness::with_glm_46_family).await;
    let mut env = sdk_env(p.base.clone());
    env.push(("SIM_URL", format!("http://{}", p.sim.addr)));
    tokio::task::spawn_blocking(move || pytest("tests/sdk/test_agent_loop.py", &env))
        .await
        .unwrap();
    // Every loop (7 families, streaming and not): a call, then the final answer after the
    // tool result, marked as the family's template marks it.
    let rec = p.sim.record();
    assert_eq!(rec.chats.len(), 28);
    for answer in rec.chats.iter().skip(1).step_by(2) {
        assert!(
            answer.decrypted.iter().any(|m| m.contains("temp_c")
                && ["<tool_response>", "<|tool_response>", "<tool_result>"]
                    .iter()
                    .any(|mark| m.contains(mark))),
            "{:?}",
            answer.decrypted
        );
    }
}

/// The demo binary plus the variables the conformance suites read.
fn demo_env(demo: &Demo) -> Vec<(&'static str, String)> {
    let mut env = sdk_env(format!("{}/v1", demo.base));
    env.push(("SIM_URL", demo.sim_base.clone()));
    env
}

/// Runs a pytest suite against a fresh `demo`; it must pass.
async fn pytest_against_demo(file: &'static str) {
    let demo = Demo::start(&[]).await;
    let env = demo_env(&demo);
    tokio::task::spawn_blocking(move || pytest(file, &env))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_python_sdk_conformance() {
    pytest_against_demo("tests/sdk/test_conformance.py").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_sdk_and_langchain_conformance() {
    pytest_against_demo("tests/sdk/test_agents_langchain.py").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pydantic_ai_chat_and_responses_models_with_a_tool() {
    pytest_against_demo("tests/sdk/test_pydantic_ai.py").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_python_sdk_over_the_messages_api() {
    pytest_against_demo("tests/sdk/test_anthropic.py").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_node_sdk_conformance() {
    let demo = Demo::start(&[]).await;
    let env = demo_env(&demo);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .args(["--test", "conformance.test.mjs"])
            .current_dir(dir)
            .envs(env)
            .output()
            .expect("node runs (scripts/setup installs the Node SDK)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node conformance failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");
}
