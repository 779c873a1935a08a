//! Venice's model churn (issue 42): it schedules retirements in its model list and retires
//! models monthly. Prewarm selects from what it lists (`listed`, a pattern, or an id read
//! through the aliases); a retirement is read, logged, counted and shown; an id it no longer
//! lists fails loudly; an alias points a retired id at its successor.

use crate::harness::*;
use serde_json::{json, Value};
use std::time::Duration;

const RETIRED: &str = "e2ee-qwen3-6-27b";
const REMOVES_AT: &str = "2027-01-05T13:00:00.000Z";

async fn admin_json(p: &Proxy, path: &str) -> Value {
    let url = format!(
        "http://{}{path}",
        p.state.config.server.admin_listen.unwrap()
    );
    p.http.get(url).send().await.unwrap().json().await.unwrap()
}

async fn metrics(p: &Proxy) -> String {
    let url = format!(
        "http://{}/metrics",
        p.state.config.server.admin_listen.unwrap()
    );
    p.http.get(url).send().await.unwrap().text().await.unwrap()
}

/// Polls `/readyz` until `done` holds of (status, body), or fails with the last answer.
async fn until_ready(p: &Proxy, done: impl Fn(u16, &Value) -> bool) -> Value {
    let mut last = (0, Value::Null);
    for _ in 0..200 {
        last = p.get("/readyz").await;
        if done(last.0, &last.1) {
            return last.1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("readiness never settled: {last:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn prewarm_follows_what_venice_lists_and_retirements_are_shown() {
    let s = sim().await;
    s.script(|sc| {
        sc.deprecations.insert(
            MODEL.into(),
            json!({"autoRemap": false, "date": REMOVES_AT, "removesAt": REMOVES_AT}),
        );
    });
    let p = Proxy::start(s, |c| {
        c.attestation.prewarm = vec!["e2ee-qwen*".into()];
        c.venice.models_ttl = Duration::from_millis(200);
    })
    .await;
    until_ready(&p, |s, _| s == 200).await;

    // The pattern selected every Qwen model listed, and each was attested.
    let status = admin_json(&p, "/status.json").await;
    let selects: Vec<&str> = status["prewarm"][0]["selects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(
        selects.contains(&MODEL) && selects.len() >= 2,
        "{selects:?}"
    );
    assert!(selects.iter().all(|m| m.starts_with("e2ee-qwen")));

    // Venice's scheduled retirement: in /v1/models, the status, the metrics.
    let (_, model) = p.get(&format!("/models/{MODEL}")).await;
    assert_eq!(model["deprecation"]["removes_at"], REMOVES_AT);
    assert_eq!(model["deprecation"]["auto_remap"], false);
    assert_eq!(
        status["retiring"],
        json!([{"model": MODEL, "removes_at": REMOVES_AT, "auto_remap": false}])
    );
    let m = status["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == MODEL)
        .unwrap();
    assert_eq!(m["retires_at"], REMOVES_AT);
    let text = metrics(&p).await;
    assert!(
        text.contains(&format!(
            "venice_e2ee_proxy_model_retires_at_seconds{{model=\"{MODEL}\"}} 1799154000"
        )),
        "{text}"
    );
    // Tool calls work with every model here: the proxy emulates them.
    let (_, glm) = p.get("/models/e2ee-glm-5-1").await;
    assert_eq!(glm["capabilities"]["supportsFunctionCalling"], true);

    // Venice retires it: the pattern still holds (another Qwen model verified), the
    // retired model's requests are a 404 before anything is sent.
    p.sim.script(|sc| sc.retired.push(MODEL.into()));
    let mut gone = false;
    for _ in 0..100 {
        let status = admin_json(&p, "/status.json").await;
        let selects = status["prewarm"][0]["selects"].as_array().unwrap().clone();
        if !selects.is_empty() && !selects.contains(&json!(MODEL)) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the pattern no longer selects the retired model");
    let (status, v) = p.get("/readyz").await;
    assert_eq!((status, v["status"].as_str()), (200, Some("ready")), "{v}");
    let r = p.post(&chat("still there?", false)).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retired_id_fails_loudly_and_an_alias_points_it_at_its_successor() {
    // Prewarm naming an id Venice no longer lists: not ready, saying which entry.
    let p = Proxy::start(sim().await, |c| {
        c.attestation.prewarm = vec![RETIRED.into()];
    })
    .await;
    let v = until_ready(&p, |s, v| {
        s == 503 && v["not_listed_by_venice"] == json!([RETIRED])
    })
    .await;
    assert_eq!(v["waiting_for_attestation"], json!([RETIRED]));
    let status = admin_json(&p, "/status.json").await;
    assert_eq!(
        status["prewarm"],
        json!([{"entry": RETIRED, "selects": []}])
    );
    assert!(p
        .sim
        .record()
        .attestations
        .iter()
        .all(|(m, _)| m != RETIRED));
    drop(p);

    // An alias points it at its successor: ready, and clients naming it are served.
    let p = Proxy::start(sim().await, |c| {
        c.attestation.prewarm = vec![RETIRED.into()];
        c.models.aliases.insert(RETIRED.into(), MODEL.into());
    })
    .await;
    until_ready(&p, |s, _| s == 200).await;
    let mut body = chat("hello successor", false);
    body["model"] = json!(RETIRED);
    let r = p.post(&body).await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    // A chat completion names the model that served it.
    assert_eq!(answer["model"], MODEL);
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "hello successor"
    );
}
