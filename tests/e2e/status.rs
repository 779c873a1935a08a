//! "Is my traffic protected right now?" (issue 41): the claims header on each answer, the
//! status page and its JSON, the `status` subcommand's exit status, the drift watch and the
//! metrics an alert needs, against the simulated Venice changing under the proxy; and the
//! page in a real browser (Debian's headless chromium).

use crate::harness::*;
use serde_json::Value;
use std::process::Command;
use venice_e2ee_tools::sim::evidence::model_manifest;
use venice_e2ee_tools::sim::AttestationFault;

fn admin(p: &Proxy) -> String {
    format!("http://{}", p.state.config.server.admin_listen.unwrap())
}

async fn text(p: &Proxy, path: &str) -> String {
    let r = p
        .http
        .get(format!("{}{path}", admin(p)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

async fn status(p: &Proxy) -> Value {
    serde_json::from_str(&text(p, "/status.json").await).unwrap()
}

/// `venice-e2ee-proxy status` against `admin`: (exit code, stdout).
fn cli(admin: &str, json: bool) -> (i32, String) {
    cli_with(admin, json, None)
}

/// `cli`, with the admin token in the environment.
fn cli_with(admin: &str, json: bool, token: Option<&str>) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_venice-e2ee-proxy"));
    cmd.args(["status", "--admin", admin])
        .env("RUST_LOG", "off")
        .env_remove("VENICE_E2EE_PROXY__SERVER__ADMIN_TOKEN");
    if let Some(t) = token {
        cmd.env("VENICE_E2EE_PROXY__SERVER__ADMIN_TOKEN", t);
    }
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The sum of a metric's samples whose labels include every one of `labels`.
fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_says_what_protects_traffic_and_what_changed() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let model = format!("model=\"{MODEL}\"");

    // Before any request the model is waiting, and the CLI says so with exit status 1.
    let before = status(&p).await;
    assert!(before["models"].as_array().unwrap().is_empty(), "{before}");
    assert_eq!(cli(&admin(&p), false).0, 1);

    // Each answer carries what was proven for it.
    let r = p.post(&chat("hello", false)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-venice-e2ee-claims"],
        "tee=test-root; gpu=verified; workload=reviewed; upstream=n/a; receipt=n/a"
    );
    let address = r.headers()["x-venice-e2ee-signing-address"]
        .to_str()
        .unwrap()
        .to_string();

    // Verified under the simulator's roots: encrypted, but not "protected".
    let snap = status(&p).await;
    let m = &snap["models"][0];
    assert_eq!(
        (m["model"].as_str(), m["verdict"].as_str()),
        (Some(MODEL), Some("relaxed")),
        "{m}"
    );
    let why = m["why"].as_str().unwrap();
    assert!(
        why.contains(&address) && why.contains("trust relaxation"),
        "{why}"
    );
    assert_eq!(m["workload"]["status"], "reviewed");
    let hops: Vec<&str> = m["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hop"].as_str().unwrap())
        .collect();
    assert_eq!(hops, ["you → Venice", "Venice → attested CVM", "→ GPUs"]);
    assert!(snap["trust"]["relaxed"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r.as_str().unwrap().contains("Intel root replaced")));
    let (code, out) = cli(&admin(&p), false);
    assert_eq!(code, 1, "relaxed trust is not protected: {out}");
    assert!(
        out.contains(MODEL) && out.contains("RELAXED") && out.contains("RELAXED: Intel root"),
        "{out}"
    );
    let (_, json) = cli(&admin(&p), true);
    assert_eq!(
        serde_json::from_str::<Value>(&json).unwrap()["models"][0]["verdict"],
        "relaxed"
    );
    let metrics = text(&p, "/metrics").await;
    assert_eq!(
        metric(&metrics, "venice_e2ee_proxy_model_verified", &[&model]),
        1.0
    );
    assert!(
        metric(
            &metrics,
            "venice_e2ee_proxy_model_verified_at_seconds",
            &[&model]
        ) > 1.7e9
    );
    // A count of relaxations, set by each proxy in this process at its start.
    assert!(metric(&metrics, "venice_e2ee_proxy_trust_relaxed", &[]) >= 1.0);
    assert_eq!(
        metric(&metrics, "venice_e2ee_proxy_build_info", &["version=\""]),
        1.0
    );
    assert!(
        metric(&metrics, "process_resident_memory_bytes", &[]) > 1e6,
        "{metrics}"
    );
    assert_eq!(metric(&metrics, "venice_e2ee_proxy_ready", &[]), 1.0);

    // Metrics are the process's: other tests count too, so compare before and after.
    let drifts = |m: &str| {
        metric(
            m,
            "venice_e2ee_proxy_drift_events_total",
            &[&model, "what=\"compose\""],
        )
    };
    let drifted_before = drifts(&metrics);
    // Venice changes an ordinary setting of the compose under the proxy: the review still
    // accepts it, and the change is logged, counted and shown.
    let mut changed = model_manifest();
    changed.docker_compose_file = changed.docker_compose_file.replacen(
        "  model:\n",
        "  model:\n    environment:\n      - CHANGED=1\n",
        1,
    );
    p.sim.script(|sc| sc.workload = Some(changed));
    p.state.attestations.cached(MODEL).unwrap().invalidate();
    assert_eq!(p.post(&chat("after the change", false)).await.status(), 200);
    let snap = status(&p).await;
    let drift = &snap["drift"][0];
    assert_eq!(
        (drift["model"].as_str(), drift["what"].as_str()),
        (Some(MODEL), Some("compose")),
        "{snap}"
    );
    assert_ne!(drift["before"], drift["after"]);
    assert_eq!(snap["models"][0]["workload"]["status"], "reviewed");
    let metrics = text(&p, "/metrics").await;
    assert!(drifts(&metrics) > drifted_before, "{metrics}");

    // Venice serves what does not verify: refused, with the check that refused it.
    p.sim
        .set_attestation_fault(Some(AttestationFault::WrongNonce));
    p.state.attestations.cached(MODEL).unwrap().invalidate();
    assert_eq!(p.post(&chat("refused", false)).await.status(), 503);
    let snap = status(&p).await;
    let m = &snap["models"][0];
    assert_eq!(m["verdict"], "refused", "{m}");
    assert!(
        m["last_error"]["code"]
            .as_str()
            .unwrap()
            .starts_with("attestation_"),
        "{m}"
    );
    let metrics = text(&p, "/metrics").await;
    assert_eq!(
        metric(&metrics, "venice_e2ee_proxy_model_verified", &[&model]),
        0.0
    );
    assert!(
        metric(
            &metrics,
            "venice_e2ee_proxy_attestation_refusals_total",
            &[&model]
        ) >= 1.0
    );
    let (code, out) = cli(&admin(&p), false);
    assert_eq!(code, 1);
    assert!(out.contains("REFUSED"), "{out}");
    // Nothing of a prompt is on the page.
    let page = text(&p, "/status").await;
    assert!(!page.contains("hello") && !page.contains("after the change"));
}

/// With an admin token the status asks for it like the admin actions (a browser gets a Basic
/// prompt); a foreign Host is refused whatever the token.
#[tokio::test(flavor = "multi_thread")]
async fn the_status_asks_for_the_admin_token_when_one_is_set() {
    let p = Proxy::start(sim().await, |c| {
        c.server.admin_token = Some(venice_e2ee_proxy::config::Secret::new("admin-secret"));
    })
    .await;
    let base = admin(&p);
    for path in ["/status", "/status.json"] {
        let url = format!("{base}{path}");
        let r = p.http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic "));
        let wrong = p
            .http
            .get(&url)
            .basic_auth("x", Some("nope"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        let basic = p
            .http
            .get(&url)
            .basic_auth("any", Some("admin-secret"))
            .send()
            .await
            .unwrap();
        assert_eq!(basic.status(), 200, "{path}");
        let bearer = p
            .http
            .get(&url)
            .bearer_auth("admin-secret")
            .send()
            .await
            .unwrap();
        assert_eq!(bearer.status(), 200, "{path}");
        let foreign = p
            .http
            .get(&url)
            .header("host", "attacker.example")
            .bearer_auth("admin-secret")
            .send()
            .await
            .unwrap();
        assert_eq!(foreign.status(), 403, "{path}");
    }
    assert_eq!(cli_with(&base, false, None).0, 2, "no token, no answer");
    let (code, out) = cli_with(&base, false, Some("admin-secret"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no model attested yet"), "{out}");
}

#[test]
fn the_status_command_says_when_it_cannot_ask() {
    let (code, _) = cli(&format!("http://127.0.0.1:{}", free_port()), false);
    assert_eq!(code, 2);
}

/// The page as a person sees it: Debian's chromium, headless, reads it from the admin
/// listener; the text it renders names the model, its verdict and the trust posture, and the
/// page runs no script and loads nothing else.
#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_renders_in_a_browser() {
    let p = Proxy::start(sim().await, |_| {}).await;
    assert_eq!(p.post(&chat("hello", false)).await.status(), 200);
    let url = format!("{}/status", admin(&p));
    let r = p.http.get(&url).send().await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let profile = std::env::temp_dir().join(format!("venice-e2ee-status-{}", std::process::id()));
    std::fs::create_dir_all(&profile).unwrap();
    let shot = profile.join("status.png");
    let chromium = |extra: &[&str]| {
        let out = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
            ])
            .args([
                "--no-first-run",
                "--disable-background-networking",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(["--window-size=1280,1100", "--virtual-time-budget=2000"])
            .args(extra)
            .arg(&url)
            .output()
            .expect("chromium (scripts/setup installs Debian's chromium package)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dom = chromium(&["--dump-dom"]);
    for want in [
        MODEL,
        "RELAXED",
        "Trust posture",
        "you → Venice",
        "simulated-model",
        "Recent changes",
    ] {
        assert!(dom.contains(want), "{want} not rendered: {dom}");
    }
    assert!(!dom.contains("<script"));
    chromium(&[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a screenshot of the page"
    );
}

/// `venice-e2ee-proxy probe` (the sidecar overlay's exec probes): 0 on a 200, 1 otherwise
/// (printing why), 2 when the admin listener cannot be asked.
#[tokio::test(flavor = "multi_thread")]
async fn the_probe_command_answers_as_the_probes_do() {
    let p = Proxy::start(sim().await, |c| {
        c.attestation.prewarm = vec![MODEL.into()];
    })
    .await;
    let probe = |what: &str, admin: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_venice-e2ee-proxy"))
            .args(["probe", what, "--admin", admin])
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let base = admin(&p);
    assert_eq!(probe("healthz", &base).0, 0);
    let mut ready = probe("readyz", &base);
    for _ in 0..100 {
        if ready.0 == 0 {
            break;
        }
        assert_eq!(ready.0, 1, "not ready yet, and says why: {}", ready.1);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        ready = probe("readyz", &base);
    }
    assert_eq!(ready.0, 0, "{}", ready.1);
    // Venice refuses every attestation from now on: not ready, saying why.
    p.sim
        .set_attestation_fault(Some(AttestationFault::WrongNonce));
    p.state.attestations.cached(MODEL).unwrap().invalidate();
    let mut not_ready = probe("readyz", &base);
    for _ in 0..100 {
        if not_ready.0 == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        not_ready = probe("readyz", &base);
    }
    assert_eq!(not_ready.0, 1);
    assert!(not_ready.1.contains("not_ready"), "{}", not_ready.1);
    let gone = format!("http://127.0.0.1:{}", free_port());
    assert_eq!(probe("readyz", &gone).0, 2);
}
