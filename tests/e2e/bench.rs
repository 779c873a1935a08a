//! The benchmark upstream (`sim --bench`) and the load generator behind `bench`: the replayed
//! answer decrypts through the proxy like any other, requests are still checked, and the load
//! generator counts what clients receive both through the proxy and straight from Venice.

use crate::harness::*;
use serde_json::json;
use std::time::Duration;
use venice_e2ee_tools::bench::load::{run, Figures, Load, Target};
use venice_e2ee_tools::sim::{Pacing, SimOptions, Simulator};

async fn bench_sim(tokens: usize) -> Simulator {
    Simulator::start(SimOptions {
        api_key: SIM_KEY.into(),
        bench_reply_tokens: Some(tokens),
        ..SimOptions::default()
    })
    .await
    .unwrap()
}

fn load(clients: usize, stream: bool) -> Load {
    Load {
        clients,
        stream,
        messages: 3,
        message_chars: 50,
        model: MODEL.into(),
        warmup: Duration::from_millis(200),
        duration: Duration::from_millis(800),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_replayed_answer_decrypts_through_the_proxy_every_time() {
    let p = Proxy::start(bench_sim(5).await, |_| {}).await;
    for _ in 0..3 {
        let (events, broken) = sse_events(p.post(&chat("anything", true)).await).await;
        assert!(!broken);
        assert_eq!(events.last().unwrap(), "[DONE]");
        assert_eq!(content_of(&events), " The enclave answers every question");
        let r: serde_json::Value = p.post(&chat("anything", false)).await.json().await.unwrap();
        assert_eq!(
            r["choices"][0]["message"]["content"],
            " The enclave answers every question"
        );
        assert_eq!(r["usage"]["completion_tokens"], 5);
    }
    assert!(
        p.sim.record().chats.is_empty(),
        "a benchmark keeps no records"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_benchmark_upstream_still_refuses_plaintext() {
    let sim = bench_sim(5).await;
    let model_key = sim.model_public_key(MODEL).unwrap();
    let client = venice_e2ee_proxy::e2ee::codec::KeyPair::generate();
    let r = reqwest::Client::new()
        .post(format!("{}/chat/completions", sim.base_url()))
        .bearer_auth(SIM_KEY)
        .header("X-Venice-TEE-Client-Pub-Key", client.public_hex())
        .header("X-Venice-TEE-Model-Pub-Key", model_key)
        .header("X-Venice-TEE-Signing-Algo", "ecdsa")
        .json(&json!({"model": MODEL, "stream": true,
                      "messages": [{"role": "user", "content": "plain text"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_load_generator_counts_every_chunk_through_the_proxy_and_straight() {
    let p = Proxy::start(bench_sim(7).await, |_| {}).await;
    for stream in [true, false] {
        let f = run(
            &Target::OpenAi {
                base: p.base.clone(),
            },
            &load(3, stream),
            |_| {},
        )
        .await
        .unwrap();
        assert!(f.requests > 3, "{f:?}");
        assert_eq!(f.errors, 0, "{f:?}");
        assert_whole_answers_but_the_edges(&f, 7, 3);
        assert!(f.ttft_ms.p50 > 0.0 && f.ttft_ms.p50 <= f.total_ms.p50);
    }
    let direct = Target::Venice {
        base: p.sim.base_url(),
        api_key: SIM_KEY.into(),
    };
    let f = run(&direct, &load(3, true), |_| {}).await.unwrap();
    assert!(f.requests > 3 && f.errors == 0, "{f:?}");
    assert_whole_answers_but_the_edges(&f, 7, 3);
    // A wrong key: every request is an error, and the report says why.
    let wrong = Target::Venice {
        base: p.sim.base_url(),
        api_key: "wrong".into(),
    };
    let err = run(&wrong, &load(1, true), |_| {}).await.unwrap_err();
    assert!(err.contains("attestation"), "{err}");
}

/// Chunks are counted where they arrive and requests where they end, so each client has at
/// most one answer cut by each edge of the window: one begun before it, one still running.
fn assert_whole_answers_but_the_edges(f: &Figures, tokens: u64, clients: u64) {
    let (low, high) = (
        tokens * f.requests.saturating_sub(clients),
        tokens * (f.requests + clients),
    );
    assert!((low..=high).contains(&f.chunks), "{f:?}");
}

/// An answer longer than the window still counts the chunks the window saw: through the
/// proxy, 4 clients at 10 tokens/s receive 40 chunks/s, though no answer (1.4 s) begins and
/// ends inside the 1 s window. (Counting only such answers, as `bench` once did, counted none
/// here, and paced runs reported too few chunks for the CPU the window measured.)
#[tokio::test(flavor = "multi_thread")]
async fn chunks_of_answers_longer_than_the_window_are_counted() {
    let p = Proxy::start(bench_sim(15).await, |_| {}).await;
    p.sim.set_pacing(Pacing {
        ttft: Duration::ZERO,
        tokens_per_second: 10.0,
    });
    let load = Load {
        warmup: Duration::from_millis(700),
        duration: Duration::from_secs(1),
        ..load(4, true)
    };
    let f = run(
        &Target::OpenAi {
            base: p.base.clone(),
        },
        &load,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(f.errors, 0, "{f:?}");
    assert!((30.0..=44.0).contains(&f.chunks_per_s), "{f:?}");
}

/// `bench --compare --relay` as a user runs it: the upstream, the proxy and the relay as child
/// processes, the same load straight, through the proxy and through the relay, in two rounds
/// taking turns, CPU and memory from /proc, JSON out.
#[test]
fn bench_compare_runs_every_phase_and_measures_the_proxy_and_the_relay() {
    let out = std::process::Command::new(tools_bin())
        .args([
            "bench",
            "--compare",
            "--relay",
            "--json",
            "--clients",
            "4",
            "--warmup",
            "500ms",
            "--duration",
            "1500ms",
            "--reply-tokens",
            "20",
            "--rounds",
            "2",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rounds"], 2, "{v}");
    let phases = v["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 3, "{v}");
    for p in phases {
        let f = &p["figures"];
        assert_eq!(f["errors"], 0, "{p}");
        assert!(f["chunks"].as_u64().unwrap() >= 2 * 20, "{p}");
    }
    // Both metered processes were measured in each round, so ratios can be paired.
    for p in &phases[1..] {
        let rounds = p["cpu_us_per_chunk_by_round"].as_array().unwrap();
        assert_eq!(rounds.len(), 2, "{p}");
        assert!(rounds.iter().all(|r| r.as_f64().unwrap() > 0.0), "{p}");
    }
    let proxy = &phases[1]["proxy"];
    assert!(proxy["cpu_seconds"].as_f64().unwrap() > 0.0, "{proxy}");
    assert!(proxy["peak_rss_mib"].as_f64().unwrap() > 1.0, "{proxy}");
    // Every answer reaches its client, so the proxy made at least one write per answer.
    let writes = proxy["writes_per_chunk"].as_f64().unwrap();
    assert!(writes >= 1.0 / 20.0, "{proxy}");
    let bare_us = v["bare_decryption_us"].as_f64().unwrap();
    assert!(bare_us > 0.0);
    // The relay spends a bare decryption on every chunk it relays, and more besides.
    let relay = &phases[2]["proxy"];
    let relay_us = relay["cpu_s_per_1000_chunks"].as_f64().unwrap() * 1e3;
    assert!(relay_us > 0.8 * bare_us, "{relay} against {bare_us} µs");
}
