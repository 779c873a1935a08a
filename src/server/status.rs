//! "Is my traffic protected right now?", answered on the admin listener: `GET /status` (a page
//! for people: plain HTML, inline style, no script, no external asset) and `GET /status.json`
//! (the same, for `venice-e2ee-proxy status` and for machines). Per model one verdict line
//! (protected; relaxed: verified only under test roots or with failing checks not enforced;
//! refused; waiting; and why), then the chain hop by hop with what was verified,
//! by whom, when, and what stays unproven; the workload and its review; recent receipts; the
//! trust posture; what changed lately. Nothing secret or from a prompt is on it: models,
//! verdicts, digests, times.

use crate::attestation::evidence::report::{Report, Status};
use crate::attestation::evidence::review::ReviewStatus;
use crate::logging::rfc3339 as iso;
use crate::state::AppState;
use serde_json::{json, Value};

/// The status of every model attested, tried or prewarmed, and the proxy's posture.
pub(crate) fn snapshot(state: &AppState) -> Value {
    let now = crate::attestation::unix_now();
    let mut models = state.attestations.models_tried();
    for m in state.prewarm.load().iter().flat_map(|s| &s.models) {
        if !models.contains(m) {
            models.push(m.clone());
        }
    }
    models.sort();
    let retiring = state.retiring.load();
    let verifier = state.attestations.verifier();
    let cfg = &state.config.attestation;
    json!({
        "generated_at": iso(now),
        "version": env!("CARGO_PKG_VERSION"),
        "ready": match state.ready() {
            Ok(()) => json!({"ready": true}),
            Err(why) => json!({"ready": false, "why": why["why"]}),
        },
        "trust": {
            "relaxed": verifier.trust_overrides(),
            "report_only": cfg.report_only,
            "workload_policy": cfg.workload_policy,
            "receipts": cfg.receipts.mode,
            "reviewed_workloads": verifier.workloads().iter()
                .map(|w| json!({"name": w.name, "source": w.source}))
                .collect::<Vec<_>>(),
        },
        "models": models.iter().map(|m| model(state, m)).collect::<Vec<_>>(),
        "prewarm": state.prewarm.load().iter().map(|s| json!({
            "entry": s.entry, "selects": s.models,
        })).collect::<Vec<_>>(),
        "retiring": retiring.iter().map(|(m, d)| json!({
            "model": m, "removes_at": d.removes_at, "auto_remap": d.auto_remap,
        })).collect::<Vec<_>>(),
        "drift": state.drift.recent().iter().rev().map(|e| json!({
            "at": iso(e.at), "model": e.model, "what": e.what,
            "before": e.before, "after": e.after,
        })).collect::<Vec<_>>(),
    })
}

fn model(state: &AppState, model: &str) -> Value {
    let entry = state.attestations.cached(model);
    let error = state.attestations.last_error(model);
    let refusal = entry
        .as_ref()
        .and_then(|e| state.receipts.refusal(model, e));
    let (verdict, why) = match (&entry, &error, &refusal) {
        (Some(_), _, Some(r)) => ("refused", format!("a receipt refuses it: {r}")),
        (Some(e), _, None) => {
            let encrypted = format!(
                "every message is encrypted to key {}, verified {} s ago",
                e.key.address_hex(),
                e.age().as_secs()
            );
            // Verified under test roots or with failing checks not enforced is not protected.
            let mut waived: Vec<String> = e
                .report
                .checks
                .iter()
                .filter(|c| !c.enforced && c.status == Status::Fail)
                .map(|c| format!("{} failed, not enforced", c.name))
                .collect();
            if !e.report.trust_overrides.is_empty() {
                waived.push(format!(
                    "{} trust relaxation(s) in force (see the trust posture)",
                    e.report.trust_overrides.len()
                ));
            }
            if waived.is_empty() {
                ("protected", encrypted)
            } else {
                ("relaxed", format!("{encrypted}, but {}", waived.join("; ")))
            }
        }
        (None, Some((_, e)), _) => ("refused", format!("{} ({})", e.message, e.check.code())),
        (None, None, _) => (
            "waiting",
            "not attested yet: attested at start-up when prewarmed, else on first use".into(),
        ),
    };
    let report = entry.as_ref().map(|e| e.report.clone()).or_else(|| {
        state
            .attestations
            .last_failed_report(model)
            .map(|r| (*r).clone())
    });
    let last = state.receipts.last(model);
    json!({
        "model": model,
        "verdict": verdict,
        "why": why,
        "retires_at": state.retiring.load().get(model).map(|d| d.removes_at.clone()),
        "verified_at": entry.as_ref().map(|e| iso(e.verified_unix)),
        "signing_address": entry.as_ref().map(|e| e.key.address_hex()),
        "last_error": error.map(|(at, e)| json!({"code": e.check.code(), "message": e.message, "at": iso(at)})),
        "claims": entry.as_ref().map(|e| crate::attestation::claims::summary(&e.report, last.as_deref())),
        "hops": report.as_ref().map(|r| hops(r, last.as_deref())).unwrap_or_default(),
        "workload": report.as_ref().and_then(|r| r.review.as_ref()).map(|w| json!({
            "status": w.status,
            "workload": w.workload,
            "reviewed_from": w.reviewed_from,
            "digest": w.digest,
            "closest": w.closest,
            "differences": w.differences,
            "refusals": w.refusals,
            "unmeasured": w.unmeasured,
        })),
        "receipts": state.receipts.recent(model).iter().rev().map(|o| json!({
            "at": iso(o.at), "result": o.result, "receipt_id": o.receipt_id, "request_id": o.request_id,
            "route": o.route, "detail": o.detail,
            "upstream": o.sessions.iter().filter_map(|s| s.upstream_check.as_ref())
                .map(|c| c.result).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The chain you → Venice → attested CVM → upstream → GPUs, what covers each hop, by whom,
/// and what stays open.
fn hops(r: &Report, last: Option<&crate::attestation::receipt_checks::Outcome>) -> Vec<Value> {
    let status = |name: &str| {
        r.checks
            .iter()
            .find(|c| c.name == name)
            .map_or("-".to_string(), |c| {
                serde_json::to_value(c.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            })
    };
    let at = iso(r.verified_at);
    let gateway = r.gateway.is_some();
    let mut out = vec![
        json!({"hop": "you → Venice", "verified": "only ciphertext and the model id cross it (every message encrypted to the attested key)",
            "by": "the proxy, per request", "when": "every request", "unproven": "Venice sees timing, sizes, the model and the fields left in clear"}),
        json!({"hop": if gateway { "Venice → gateway CVM" } else { "Venice → attested CVM" },
            "verified": format!("TDX quote {} (TCB {}), REPORTDATA binds the key and our nonce ({}), event log {}, compose {}, workload {}, images {}",
                status("tdx_quote_signature"),
                r.tcb.as_ref().map_or("-", |t| t.status.as_str()),
                status("envelope"), status("rtmr_replay"), status("mr_config_id"),
                status("workload_policy"), status("sigstore_provenance")),
            "by": "the proxy", "when": at,
            "unproven": r.review.as_ref().map(|w| w.unmeasured.join("; ")).filter(|u| !u.is_empty())
                .unwrap_or_else(|| "what the workload does beyond what was reviewed".into())}),
    ];
    if r.aci.is_some() {
        let check = last.and_then(|o| o.sessions.iter().find_map(|s| s.upstream_check.as_ref()));
        out.push(json!({"hop": "gateway → upstream",
            "verified": match (last, check) {
                (Some(o), Some(c)) => format!("last receipt {} ({}); the upstream's own report: {}", o.result,
                    o.route.as_deref().unwrap_or("-"), c.result),
                (Some(o), None) => format!("last receipt {}", o.result),
                _ => "no receipt checked yet".into(),
            },
            "by": "the gateway before forwarding; the proxy after the answer", "when": last.map(|o| iso(o.at)),
            "unproven": check.map(|c| c.facts.unproven.join("; ")).filter(|u| !u.is_empty())
                .unwrap_or_else(|| "the upstream list is runtime state; the report's freshness".into())}));
    }
    out.push(json!({"hop": "→ GPUs",
        "verified": match r.gpu_evidence {
            "attested_cvm" => format!("{} GPUs of the attested CVM: chains, SPDM signatures, our nonce", r.gpus),
            "relayed" => format!("{} GPUs' evidence relayed by the gateway: our nonce, not bound to any CVM", r.gpus),
            _ if gateway => "none served: the gateway holds no GPU".into(),
            _ => "none".into(),
        },
        "by": "the proxy", "when": at,
        "unproven": "the serving software and the weights"}));
    out
}

/// HTML-escapes text for the page.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#1b1f24}\
h1{font-size:1.5em}h2{font-size:1.2em;margin:0}section{border:1px solid #d0d7de;border-radius:6px;padding:1em;margin:1em 0}\
.verdict{font-weight:700;padding:.1em .5em;border-radius:4px;margin-left:.5em}\
.protected .verdict{background:#dafbe1;color:#116329}.refused .verdict{background:#ffebe9;color:#a40e26}\
.waiting .verdict,.relaxed .verdict{background:#fff8c5;color:#7d4e00}table{border-collapse:collapse;width:100%;margin:.6em 0}\
th,td{border:1px solid #d0d7de;padding:.3em .5em;text-align:left;vertical-align:top}th{background:#f6f8fa}\
.why{margin:.4em 0}code{font-size:.9em}.warn{color:#a40e26}";

/// The page for `snap` (from `snapshot`).
pub(crate) fn html(snap: &Value) -> String {
    let mut out = String::new();
    out.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>venice-e2ee-proxy status</title><style>");
    out.push_str(STYLE);
    out.push_str("</style></head><body><h1>venice-e2ee-proxy status</h1>");
    let ready = &snap["ready"];
    out.push_str(&format!(
        "<p id=\"ready\">{} · version {} · {}</p>",
        if ready["ready"] == true {
            "Ready".to_string()
        } else {
            format!(
                "<span class=\"warn\">Not ready</span>: {}",
                esc(&text(&ready["why"]))
            )
        },
        esc(&text(&snap["version"])),
        esc(&text(&snap["generated_at"]))
    ));
    let models = snap["models"].as_array().cloned().unwrap_or_default();
    if models.is_empty() {
        out.push_str("<p>No model has been attested yet: models are attested at start-up when prewarmed, else on first use.</p>");
    }
    for m in &models {
        model_section(&mut out, m);
    }
    trust_section(&mut out, snap);
    retiring_section(&mut out, snap);
    out.push_str("<section id=\"drift\"><h2>Recent changes</h2>");
    match snap["drift"].as_array().filter(|d| !d.is_empty()) {
        None => out.push_str("<p>None seen since start-up.</p>"),
        Some(events) => table(
            &mut out,
            None,
            &[
                ("when", "at"),
                ("model", "model"),
                ("what", "what"),
                ("before", "before"),
                ("after", "after"),
            ],
            events,
        ),
    }
    out.push_str("</section></body></html>");
    out
}

/// A table of `rows`, one column per (heading, field).
fn table(out: &mut String, class: Option<&str>, columns: &[(&str, &str)], rows: &[Value]) {
    match class {
        Some(c) => out.push_str(&format!("<table class=\"{c}\"><tr>")),
        None => out.push_str("<table><tr>"),
    }
    for (heading, _) in columns {
        out.push_str(&format!("<th>{heading}</th>"));
    }
    out.push_str("</tr>");
    for row in rows {
        out.push_str("<tr>");
        for (_, field) in columns {
            out.push_str(&format!("<td>{}</td>", esc(&text(&row[*field]))));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// One model: its verdict and why, retirement, claims, hops, workload and receipts.
fn model_section(out: &mut String, m: &Value) {
    let verdict = text(&m["verdict"]);
    out.push_str(&format!(
        "<section class=\"model {v}\" id=\"model-{id}\"><h2>{id}<span class=\"verdict\">{V}</span></h2><p class=\"why\">{why}</p>",
        v = esc(&verdict),
        id = esc(&text(&m["model"])),
        V = esc(&verdict.to_uppercase()),
        why = esc(&text(&m["why"]))
    ));
    if let Some(at) = m["retires_at"].as_str() {
        out.push_str(&format!(
            "<p class=\"warn\">Venice retires this model at {}: point clients at a successor, or an alias under models.aliases.</p>",
            esc(at)
        ));
    }
    if let Some(claims) = m["claims"].as_str() {
        out.push_str(&format!(
            "<p>Claims on each answer: <code>{}</code></p>",
            esc(claims)
        ));
    }
    if let Some(hops) = m["hops"].as_array().filter(|h| !h.is_empty()) {
        table(
            out,
            Some("chain"),
            &[
                ("hop", "hop"),
                ("verified", "verified"),
                ("by", "by"),
                ("when", "when"),
                ("not proven", "unproven"),
            ],
            hops,
        );
    }
    let w = &m["workload"];
    if !w.is_null() {
        let reviewed = w["status"] == json!(ReviewStatus::Reviewed);
        out.push_str(&format!(
            "<p class=\"workload\">Workload <code>{}</code>: {}</p>",
            esc(&text(&w["digest"])),
            if reviewed {
                format!(
                    "reviewed as <b>{}</b> ({})",
                    esc(&text(&w["workload"])),
                    esc(&text(&w["reviewed_from"]))
                )
            } else {
                format!(
                    "<span class=\"warn\">not reviewed</span>; closest reviewed workload {}: {}",
                    esc(&text(&w["closest"])),
                    esc(&w["differences"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .chain(w["refusals"].as_array().into_iter().flatten())
                        .map(text)
                        .collect::<Vec<_>>()
                        .join("; "))
                )
            }
        ));
    }
    if let Some(receipts) = m["receipts"].as_array().filter(|r| !r.is_empty()) {
        table(
            out,
            Some("receipts"),
            &[
                ("receipt", "receipt_id"),
                ("request", "request_id"),
                ("checked", "at"),
                ("result", "result"),
                ("route", "route"),
                ("upstream", "upstream"),
            ],
            receipts,
        );
    }
    out.push_str("</section>");
}

/// What is trusted: roots and relaxations, the policies, and prewarm entries that match nothing.
fn trust_section(out: &mut String, snap: &Value) {
    let trust = &snap["trust"];
    out.push_str("<section id=\"trust\"><h2>Trust posture</h2><ul>");
    let relaxed = trust["relaxed"].as_array().cloned().unwrap_or_default();
    if relaxed.is_empty() {
        out.push_str(
            "<li>Intel's, NVIDIA's and Sigstore's pinned roots; every check enforced</li>",
        );
    }
    for r in &relaxed {
        out.push_str(&format!(
            "<li class=\"warn\">relaxed: {}</li>",
            esc(&text(r))
        ));
    }
    out.push_str(&format!(
        "<li>workload policy: {}; receipts: {}; reviewed workloads: {}</li></ul></section>",
        esc(&text(&trust["workload_policy"])),
        esc(&text(&trust["receipts"])),
        esc(&trust["reviewed_workloads"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| text(&w["name"]))
            .collect::<Vec<_>>()
            .join(", "))
    ));
    let unmatched: Vec<String> = snap["prewarm"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["selects"].as_array().is_some_and(Vec::is_empty))
        .map(|p| text(&p["entry"]))
        .collect();
    if !unmatched.is_empty() {
        out.push_str(&format!(
            "<p class=\"warn\" id=\"unmatched\">attestation.prewarm selects nothing Venice lists for: {}</p>",
            esc(&unmatched.join(", "))
        ));
    }
}

/// Venice's scheduled retirements, when it lists any.
fn retiring_section(out: &mut String, snap: &Value) {
    let Some(retiring) = snap["retiring"].as_array().filter(|r| !r.is_empty()) else {
        return;
    };
    out.push_str("<section id=\"retiring\"><h2>Venice's scheduled retirements</h2><ul>");
    for r in retiring {
        out.push_str(&format!(
            "<li>{} at {}{}</li>",
            esc(&text(&r["model"])),
            esc(&text(&r["removes_at"])),
            if r["auto_remap"] == true {
                " (its id then routes to a successor)"
            } else {
                " (no automatic remap)"
            }
        ));
    }
    out.push_str("</ul></section>");
}

/// The admin listener's base URL: `admin` when given, else the one `config` names (an
/// unspecified address asked on loopback).
fn admin_base(config: &crate::config::Config, admin: Option<&str>) -> Result<String, String> {
    if let Some(url) = admin {
        return Ok(url.trim_end_matches('/').to_string());
    }
    let mut addr = config
        .server
        .admin_listen
        .ok_or("server.admin_listen is off: give --admin URL")?;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok(format!("http://{addr}"))
}

/// GET `path` on a running proxy's admin listener, with the admin token `config` holds.
async fn get(
    config: &crate::config::Config,
    admin: Option<&str>,
    path: &str,
    timeout: std::time::Duration,
) -> Result<reqwest::Response, String> {
    let url = format!("{}{path}", admin_base(config, admin)?);
    let ask = async {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .build()?;
        let mut get = client.get(&url);
        if let Some(token) = &config.server.admin_token {
            get = get.bearer_auth(token.expose());
        }
        get.send().await
    };
    ask.await.map_err(|e| format!("cannot read {url}: {e}"))
}

/// A running proxy's `/status.json`, from `admin` (a base URL) or else the admin listener
/// `config` names.
pub async fn fetch(config: &crate::config::Config, admin: Option<&str>) -> Result<Value, String> {
    let r = get(
        config,
        admin,
        "/status.json",
        std::time::Duration::from_secs(10),
    )
    .await?;
    let r = r.error_for_status().map_err(|e| e.to_string())?;
    r.json().await.map_err(|e| e.to_string())
}

/// Whether a running proxy's `/healthz` or `/readyz` (`probe`) answers 200: an exec probe
/// for pods whose admin listener stays on loopback. Not ready prints its answer.
pub async fn probe(
    config: &crate::config::Config,
    admin: Option<&str>,
    probe: &str,
) -> Result<bool, String> {
    let r = get(
        config,
        admin,
        &format!("/{probe}"),
        std::time::Duration::from_secs(3),
    )
    .await?;
    let ok = r.status() == 200;
    if !ok {
        println!("{}", r.text().await.unwrap_or_default());
    }
    Ok(ok)
}

/// Whether the proxy is ready and holds at least one model, every one protected: the exit
/// status of `venice-e2ee-proxy status` (none attested yet is not "protected").
pub fn all_protected(snap: &Value) -> bool {
    let models = snap["models"].as_array();
    snap["ready"]["ready"] == true
        && models.is_some_and(|m| !m.is_empty() && m.iter().all(|m| m["verdict"] == "protected"))
}

/// `snap` for a terminal: one line per model, then the posture and what changed.
pub fn render_text(snap: &Value) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let ready = &snap["ready"];
    let _ = writeln!(
        out,
        "{} (version {}, {})",
        if ready["ready"] == true {
            "ready".to_string()
        } else {
            format!("NOT READY: {}", text(&ready["why"]))
        },
        text(&snap["version"]),
        text(&snap["generated_at"])
    );
    let models = snap["models"].as_array().cloned().unwrap_or_default();
    if models.is_empty() {
        out.push_str("no model attested yet (prewarmed models at start-up, others on first use)\n");
    }
    let width = models
        .iter()
        .map(|m| text(&m["model"]).len())
        .max()
        .unwrap_or(0);
    for m in &models {
        let _ = writeln!(
            out,
            "{:width$}  {:9}  {}",
            text(&m["model"]),
            text(&m["verdict"]).to_uppercase(),
            text(&m["why"])
        );
        if let Some(w) = m["workload"].as_object() {
            let _ = writeln!(
                out,
                "{:width$}  workload {} {}",
                "",
                text(&w["status"]),
                text(if w["workload"].is_null() {
                    &w["closest"]
                } else {
                    &w["workload"]
                })
            );
        }
    }
    for p in snap["prewarm"].as_array().into_iter().flatten() {
        if p["selects"].as_array().is_some_and(Vec::is_empty) {
            let _ = writeln!(
                out,
                "PREWARM {} selects nothing Venice lists",
                text(&p["entry"])
            );
        }
    }
    for r in snap["retiring"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "RETIRING: {} at {}",
            text(&r["model"]),
            text(&r["removes_at"])
        );
    }
    let trust = &snap["trust"];
    for r in trust["relaxed"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "RELAXED: {}", text(r));
    }
    let _ = writeln!(
        out,
        "workload policy {}, receipts {}",
        text(&trust["workload_policy"]),
        text(&trust["receipts"])
    );
    for e in snap["drift"].as_array().into_iter().flatten().take(5) {
        let _ = writeln!(
            out,
            "changed {} {}: {} {} -> {}",
            text(&e["at"]),
            text(&e["model"]),
            text(&e["what"]),
            text(&e["before"]),
            text(&e["after"])
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_what_it_shows() {
        let snap = json!({"ready": {"ready": false, "why": "<script>x</script>"}, "version": "1",
            "generated_at": "t", "models": [{"model": "m<1>", "verdict": "refused", "why": "a & b",
            "hops": [], "workload": null, "receipts": []}],
            "trust": {"roots": [], "relaxed": ["\"q\""], "reviewed_workloads": []}, "drift": []});
        let page = html(&snap);
        assert!(!page.contains("<script>"));
        assert!(
            page.contains("&lt;script&gt;")
                && page.contains("m&lt;1&gt;")
                && page.contains("a &amp; b")
        );
        assert!(page.contains("REFUSED") && page.contains("&quot;q&quot;"));
        assert!(
            !page.contains("src=") && !page.contains("href="),
            "no external asset"
        );
    }

    #[test]
    fn the_exit_status_needs_every_model_protected_and_readiness() {
        let snap = |ready: bool, verdicts: &[&str]| {
            json!({"ready": {"ready": ready}, "models": verdicts.iter()
                .map(|v| json!({"model": "m", "verdict": v, "why": "w"})).collect::<Vec<_>>(),
                "trust": {}, "drift": []})
        };
        assert!(all_protected(&snap(true, &["protected", "protected"])));
        assert!(!all_protected(&snap(true, &["protected", "refused"])));
        assert!(!all_protected(&snap(true, &["waiting"])));
        assert!(!all_protected(&snap(false, &["protected"])));
        assert!(!all_protected(&snap(true, &[])));
        let text = render_text(&snap(false, &["refused"]));
        assert!(
            text.starts_with("NOT READY") && text.contains("m  REFUSED    w"),
            "{text}"
        );
    }
}
