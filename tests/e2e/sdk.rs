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
    let p = Proxy::start(sim().await, |_| {}).await;
    let mut env = sdk_env(p.base.clone());
    env.push(("SIM_URL", format!("http://{}", p.sim.addr)));
    tokio::task::spawn_blocking(move || pytest("tests/sdk/test_agent_loop.py", &env))
        .await
        .unwrap();
    // Every loop (5 families, streaming and not): a call, then the final answer after the
    // tool result.
    let rec = p.sim.record();
    assert_eq!(rec.chats.len(), 20);
    for answer in rec.chats.iter().skip(1).step_by(2) {
        assert!(answer
            .decrypted
            .iter()
            .any(|m| m.contains("<tool_response>") && m.contains("temp_c")));
    }
}
