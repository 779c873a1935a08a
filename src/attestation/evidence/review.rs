//! The workload policy: a measured compose is trusted only as far as it is one someone
//! reviewed (`attestation.workloads`). A measurement says which bytes were loaded, never that
//! they are benign, so nothing a compose *says* (a repository's name in a setting, a claim)
//! makes it trusted, and what this reader cannot read with certainty is refused whatever the
//! policy says.

use super::compose::{self, code_class_env, AppCompose, Service};
use super::source::normalize_repo;
use crate::attestation::provenance::policy::parse_image;
pub(crate) use crate::config::attestation::{ReviewedGateway, ReviewedService, ReviewedWorkload};
use serde::Serialize;
use serde_yaml::Value as Yaml;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// The verdict on one measured workload.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WorkloadReview {
    /// What an operator accepts (`POST /admin/workloads/accept?digest=`): sha256 over the
    /// compose hash and the measured OS image.
    pub(crate) digest: String,
    pub(crate) compose_hash: String,
    /// The OS image hash RTMR3 measures, when it does.
    pub(crate) os_image_hash: Option<String>,
    /// `reviewed`, `unreviewed` (no reviewed workload matches: `differences` say how it
    /// differs from the closest), or `refused` (not readable with certainty: `refusals`).
    pub(crate) status: ReviewStatus,
    /// The reviewed workload it matches, and where that was reviewed from.
    pub(crate) workload: Option<String>,
    pub(crate) reviewed_from: Option<String>,
    /// Refusals no policy can lift.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) refusals: Vec<String>,
    /// The reviewed workload it is closest to, and every way it differs from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) closest: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) differences: Vec<String>,
    /// What the review accepted that a measurement does not fix (deployer variables in
    /// reviewed fields, values set at runtime, digests not reviewed, any OS image).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) unmeasured: Vec<String>,
    /// The routing gateway, from the reviewed workload only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) gateway: Option<ReviewedGateway>,
    /// Policy lines (YAML, one `attestation.extra_workloads` entry) that would accept this
    /// workload: to be reviewed line by line before use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) policy_lines: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ReviewStatus {
    Reviewed,
    Unreviewed,
    Refused,
}

/// The digest an operator accepts: over the compose and the OS image, as measured.
pub(crate) fn workload_digest(compose_hash: &str, os_image_hash: Option<&str>) -> String {
    hex::encode(Sha256::digest(format!(
        "dstack-workload:{compose_hash}:{}",
        os_image_hash.unwrap_or("-")
    )))
}

/// Reviews `compose` (hashing to `compose_hash`, on the OS image RTMR3 measures, if it does)
/// against every reviewed workload.
pub(crate) fn review(
    compose: &AppCompose,
    compose_hash: &str,
    os_image_hash: Option<&str>,
    policy: &[ReviewedWorkload],
) -> WorkloadReview {
    let mut out = WorkloadReview {
        digest: workload_digest(compose_hash, os_image_hash),
        compose_hash: compose_hash.to_string(),
        os_image_hash: os_image_hash.map(str::to_string),
        status: ReviewStatus::Unreviewed,
        workload: None,
        reviewed_from: None,
        refusals: compose.uncertain.clone(),
        closest: None,
        differences: Vec::new(),
        unmeasured: Vec::new(),
        gateway: None,
        policy_lines: None,
    };
    let judged: Vec<(&ReviewedWorkload, Judgement)> = policy
        .iter()
        .map(|w| (w, judge(w, compose, compose_hash, os_image_hash)))
        .collect();
    let accepted = judged
        .iter()
        .find(|(_, j)| j.differences.is_empty() && j.unknown_vars.is_empty());
    if let (Some((w, j)), true) = (accepted, out.refusals.is_empty()) {
        out.status = ReviewStatus::Reviewed;
        out.workload = Some(w.name.clone());
        out.reviewed_from = Some(w.source.clone());
        out.unmeasured = j.unmeasured.clone();
        out.gateway = w.gateway.clone();
        return out;
    }
    let closest = judged
        .iter()
        .min_by_key(|(_, j)| j.differences.len() + j.unknown_vars.len());
    out.refusals
        .extend(unknown_vars(compose, closest.map(|(w, _)| *w)));
    if let Some((w, j)) = closest {
        out.closest = Some(w.name.clone());
        out.differences = j.differences.clone();
    }
    if out.refusals.is_empty() {
        out.policy_lines = Some(policy_lines(
            compose,
            &out.digest,
            os_image_hash,
            closest.map(|(w, _)| *w),
        ));
    } else {
        out.status = ReviewStatus::Refused;
    }
    out
}

struct Judgement {
    differences: Vec<String>,
    /// Variables outside `allowed_envs` (and the workload's `runtime_vars`) in a
    /// security-relevant value.
    unknown_vars: Vec<String>,
    unmeasured: Vec<String>,
}

fn judge(
    w: &ReviewedWorkload,
    c: &AppCompose,
    compose_hash: &str,
    os_image_hash: Option<&str>,
) -> Judgement {
    let mut j = Judgement {
        differences: Vec::new(),
        unknown_vars: unknown_vars(c, Some(w)),
        unmeasured: Vec::new(),
    };
    let pinned = w.compose_hashes.iter().any(|h| {
        h.trim_start_matches("0x")
            .eq_ignore_ascii_case(compose_hash)
    });
    if !pinned {
        if w.services.is_empty() {
            j.differences.push(format!(
                "compose {compose_hash} is not one of its compose_hashes"
            ));
        } else {
            compare(w, c, &mut j.differences);
        }
    }
    if let Some(g) = &w.gateway {
        let named = c.service(&g.service).is_some_and(|s| {
            !s.fields.contains_key("entrypoint") && names_source(s, &c.definitions, g)
        });
        if !named {
            j.differences.push(format!(
                "its gateway service `{}` does not build {}@{} here (or overrides its entrypoint)",
                g.service, g.repository, g.commit
            ));
        }
    }
    match os_image_hash {
        _ if w.os_images.is_empty() => j
            .unmeasured
            .push("any OS image is accepted (os_images is empty)".into()),
        Some(h) if w.os_images.iter().any(|o| o.eq_ignore_ascii_case(h)) => {}
        Some(h) => j
            .differences
            .push(format!("OS image {h} (measured) is not one of its os_images")),
        None => j.differences.push(
            "the OS image is not measured (no os-image-hash event in RTMR3), so it is none of its os_images".into(),
        ),
    }
    if j.differences.is_empty() {
        j.unmeasured.extend(unmeasured(w, c, pinned));
    }
    j
}

/// Every way `c` differs from what `w` reviewed, in its structural form.
fn compare(w: &ReviewedWorkload, c: &AppCompose, out: &mut Vec<String>) {
    let manifest_keys: BTreeSet<&String> = w
        .manifest
        .keys()
        .chain(
            c.manifest
                .keys()
                .filter(|k| !compose::ORDINARY_MANIFEST_KEYS.contains(&k.as_str())),
        )
        .collect();
    for k in manifest_keys {
        let (reviewed, runs) = (w.manifest.get(k), c.manifest.get(k));
        if reviewed != runs {
            out.push(format!(
                "manifest `{k}`: reviewed {}, runs {}",
                shown_json(reviewed),
                shown_json(runs)
            ));
        }
    }
    let extra: Vec<&str> = c
        .allowed_envs
        .iter()
        .filter(|v| !w.allowed_envs.contains(v))
        .map(String::as_str)
        .collect();
    if !extra.is_empty() {
        out.push(format!(
            "allowed_envs adds {} (the deployer may set them, unmeasured)",
            extra.join(", ")
        ));
    }
    if let Some(h) = &c.pre_launch_script_sha256 {
        if !w
            .pre_launch_scripts
            .iter()
            .any(|r| r.eq_ignore_ascii_case(h))
        {
            out.push(format!(
                "pre_launch_script sha256 {h} is not reviewed (it runs as root before the compose)"
            ));
        }
    }
    for s in &c.services {
        if !w.services.contains_key(&s.name) {
            out.push(format!("service `{}` is not reviewed", s.name));
        }
    }
    for (name, reviewed) in &w.services {
        match c.service(name) {
            None => out.push(format!(
                "service `{name}` is reviewed but not in the compose"
            )),
            Some(s) => compare_service(name, reviewed, s, out),
        }
    }
    let kinds: BTreeSet<&String> = w.definitions.keys().chain(c.definitions.keys()).collect();
    for kind in kinds {
        let (reviewed, runs) = (w.definitions.get(kind), c.definitions.get(kind));
        if !same_yaml(reviewed, runs) {
            out.push(format!(
                "top-level `{kind}`: reviewed {}, runs {}",
                shown(reviewed),
                shown(runs)
            ));
        }
    }
}

fn compare_service(name: &str, w: &ReviewedService, s: &Service, out: &mut Vec<String>) {
    let image = s.fields.get("image");
    if !image_matches(&w.image, image) {
        out.push(format!(
            "service `{name}` image: reviewed {}, runs {}",
            w.image,
            shown(image)
        ));
    }
    let keys: BTreeSet<&String> = w
        .fields
        .keys()
        .chain(s.fields.keys().filter(|k| *k != "image"))
        .collect();
    for k in keys {
        let (reviewed, runs) = (w.fields.get(k), s.fields.get(k));
        if !same_yaml(reviewed, runs) {
            out.push(format!(
                "service `{name}` `{k}`: reviewed {}, runs {}",
                shown(reviewed),
                shown(runs)
            ));
        }
    }
    for (k, v) in &w.code_env {
        let runs = s.environment.get(k);
        if runs != Some(v) {
            out.push(format!(
                "service `{name}` environment `{k}` (read as code): reviewed {v}, runs {}",
                runs.map_or("nothing".to_string(), |r| r.clone())
            ));
        }
    }
    for (k, v) in &s.environment {
        if code_class_env(k) && !w.code_env.contains_key(k) {
            out.push(format!(
                "service `{name}` sets environment `{k}` (read as code) to {v}, which is not reviewed"
            ));
        }
    }
}

/// YAML equality, absent and null alike.
fn same_yaml(a: Option<&Yaml>, b: Option<&Yaml>) -> bool {
    let a = a.filter(|v| !v.is_null());
    let b = b.filter(|v| !v.is_null());
    a == b
}

/// A reviewed image accepts the compose's `image:` as written, or, for `repo@sha256:*`, any
/// digest of that repository (and tag, if the pattern names one) written without variables.
fn image_matches(reviewed: &str, runs: Option<&Yaml>) -> bool {
    let Some(runs) = runs.and_then(Yaml::as_str) else {
        return false;
    };
    if reviewed == runs {
        return true;
    }
    let Some(pattern) = reviewed.strip_suffix("@sha256:*") else {
        return false;
    };
    if runs.contains('$') {
        return false;
    }
    let Some((name, digest)) = runs.split_once("@sha256:") else {
        return false;
    };
    let pinned = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
    let tag = |n: &str| -> Option<String> {
        let last = n.rsplit('/').next().unwrap_or(n);
        last.split_once(':').map(|(_, t)| t.to_string())
    };
    pinned
        && parse_image(pattern).repository == parse_image(name).repository
        && tag(pattern).is_none_or(|t| tag(name).as_deref() == Some(t.as_str()))
}

/// One security-relevant value of a compose: a service's compared key (its image among
/// them), an environment value of a service, or a top-level definition.
struct SecurityValue<'a> {
    what: String,
    /// For an environment value: its service and key (it counts only where read as code).
    env: Option<(&'a str, &'a str)>,
    value: Yaml,
}

fn security_values(c: &AppCompose) -> Vec<SecurityValue<'_>> {
    let mut out = Vec::new();
    for s in &c.services {
        for (k, v) in &s.fields {
            out.push(SecurityValue {
                what: format!("service `{}` `{k}`", s.name),
                env: None,
                value: v.clone(),
            });
        }
        for (k, v) in &s.environment {
            out.push(SecurityValue {
                what: format!("service `{}` environment `{k}`", s.name),
                env: Some((s.name.as_str(), k.as_str())),
                value: Yaml::String(v.clone()),
            });
        }
    }
    for (kind, v) in &c.definitions {
        out.push(SecurityValue {
            what: format!("top-level `{kind}`"),
            env: None,
            value: v.clone(),
        });
    }
    out
}

/// Whether an environment value of `service` is read as code: any runtime's code variables,
/// and those the reviewed workload lists for that service.
fn read_as_code(w: Option<&ReviewedWorkload>, service: &str, key: &str) -> bool {
    code_class_env(key)
        || w.and_then(|w| w.services.get(service))
            .is_some_and(|s| s.code_env.contains_key(key))
}

/// The security-relevant values of `c` under workload `w` (environment values only where
/// read as code).
fn relevant<'a>(c: &'a AppCompose, w: Option<&ReviewedWorkload>) -> Vec<SecurityValue<'a>> {
    security_values(c)
        .into_iter()
        .filter(|v| v.env.is_none_or(|(svc, key)| read_as_code(w, svc, key)))
        .collect()
}

/// Variables outside `allowed_envs` (and `w`'s `runtime_vars`) that a security-relevant value
/// names: no measurement says what they hold in the CVM.
fn unknown_vars(c: &AppCompose, w: Option<&ReviewedWorkload>) -> Vec<String> {
    let runtime = |n: &String| w.is_some_and(|w| w.runtime_vars.contains_key(n));
    let mut out = Vec::new();
    for v in relevant(c, w) {
        let unknown: Vec<String> = compose::variables_in(&v.value)
            .into_iter()
            .filter(|n| !c.allowed_envs.contains(n) && !runtime(n))
            .map(|n| format!("${{{n}}}"))
            .collect();
        if !unknown.is_empty() {
            out.push(format!(
                "{} names {}, outside allowed_envs: what it holds in the CVM is not measured (the shell that runs docker compose sets variables of its own)",
                v.what,
                unknown.join(", ")
            ));
        }
    }
    out
}

/// What an accepted workload leaves unmeasured, said with the verdict.
fn unmeasured(w: &ReviewedWorkload, c: &AppCompose, pinned: bool) -> Vec<String> {
    let mut out = Vec::new();
    for v in relevant(c, Some(w)) {
        let vars = compose::variables_in(&v.value);
        let deployer: Vec<&str> = vars
            .iter()
            .filter(|n| c.allowed_envs.contains(*n))
            .map(String::as_str)
            .collect();
        if !deployer.is_empty() {
            out.push(format!(
                "{} takes {} from the deployer (reviewed)",
                v.what,
                deployer.join(", ")
            ));
        }
        for n in vars.iter().filter(|n| w.runtime_vars.contains_key(*n)) {
            out.push(format!(
                "{} is set at runtime by service `{}` (${{{n}}}), not measured",
                v.what, w.runtime_vars[n]
            ));
        }
    }
    if !pinned {
        for (name, s) in &w.services {
            if let Some(repo) = s.image.strip_suffix("@sha256:*") {
                out.push(format!(
                    "service `{name}` may run any digest of {repo}: its publisher is trusted (the provenance rule for it decides)"
                ));
            }
        }
    }
    out
}

fn shown(v: Option<&Yaml>) -> String {
    match v.filter(|v| !v.is_null()) {
        None => "nothing".into(),
        Some(v) => {
            let text = serde_json::to_string(v).unwrap_or_else(|_| format!("{v:?}"));
            clip(text)
        }
    }
}

fn shown_json(v: Option<&serde_json::Value>) -> String {
    v.map_or("nothing".into(), |v| clip(v.to_string()))
}

fn clip(mut text: String) -> String {
    const MAX: usize = 240;
    if text.len() > MAX {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// The reviewed form of `c`, ready to be reviewed and added to `attestation.extra_workloads`:
/// every security-relevant part as it runs; the gateway kept from the closest reviewed
/// workload only where the same service still names the same repository and commit.
pub(crate) fn reviewed_form(
    c: &AppCompose,
    digest: &str,
    os_image_hash: Option<&str>,
    closest: Option<&ReviewedWorkload>,
) -> ReviewedWorkload {
    let code_keys = |svc: &str| -> BTreeSet<String> {
        closest
            .and_then(|w| w.services.get(svc))
            .map(|s| s.code_env.keys().cloned().collect())
            .unwrap_or_default()
    };
    let services = c
        .services
        .iter()
        .map(|s| {
            let keep = code_keys(&s.name);
            let reviewed = ReviewedService {
                image: s
                    .fields
                    .get("image")
                    .and_then(Yaml::as_str)
                    .unwrap_or_default()
                    .to_string(),
                code_env: s
                    .environment
                    .iter()
                    .filter(|(k, _)| code_class_env(k) || keep.contains(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                fields: s
                    .fields
                    .iter()
                    .filter(|(k, _)| *k != "image")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            };
            (s.name.clone(), reviewed)
        })
        .collect();
    let gateway = closest.and_then(|w| w.gateway.clone()).filter(|g| {
        c.service(&g.service)
            .is_some_and(|s| names_source(s, &c.definitions, g))
    });
    let runtime_vars = closest
        .map(|w| w.runtime_vars.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, svc)| c.service(svc).is_some())
        .collect();
    ReviewedWorkload {
        name: format!("workload-{}", &digest[..12]),
        source: "generated by venice-e2ee-proxy from the measured compose: review every line before adding it".into(),
        compose_hashes: Vec::new(),
        os_images: os_image_hash.map(str::to_string).into_iter().collect(),
        pre_launch_scripts: c.pre_launch_script_sha256.clone().into_iter().collect(),
        allowed_envs: c.allowed_envs.iter().cloned().collect(),
        runtime_vars,
        gateway,
        manifest: c
            .manifest
            .iter()
            .filter(|(k, _)| !compose::ORDINARY_MANIFEST_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        services,
        definitions: c.definitions.clone(),
    }
}

fn policy_lines(
    c: &AppCompose,
    digest: &str,
    os_image_hash: Option<&str>,
    closest: Option<&ReviewedWorkload>,
) -> String {
    let form = reviewed_form(c, digest, os_image_hash, closest);
    serde_yaml::to_string(&vec![form]).unwrap_or_default()
}

/// Whether a service names the gateway's repository and commit in what it is given to run:
/// its environment, its command and entrypoint, or a config it mounts.
pub(crate) fn names_source(
    s: &Service,
    definitions: &BTreeMap<String, Yaml>,
    g: &ReviewedGateway,
) -> bool {
    let mut texts: Vec<String> = s.environment.values().cloned().collect();
    for key in ["command", "entrypoint"] {
        if let Some(v) = s.fields.get(key) {
            texts.push(serde_json::to_string(v).unwrap_or_default());
        }
    }
    texts.extend(mounted_configs(&s.fields, definitions));
    texts_name_source(&texts, g)
}

/// The contents of the configs a service's `configs:` mounts.
pub(crate) fn mounted_configs(
    fields: &BTreeMap<String, Yaml>,
    definitions: &BTreeMap<String, Yaml>,
) -> Vec<String> {
    let mounts = fields.get("configs").and_then(Yaml::as_sequence);
    mounts
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str().or_else(|| m.get("source")?.as_str()))
        .filter_map(|name| {
            definitions
                .get("configs")?
                .get(name)?
                .get("content")?
                .as_str()
        })
        .map(str::to_string)
        .collect()
}

pub(crate) fn texts_name_source(texts: &[String], g: &ReviewedGateway) -> bool {
    let commit = g.commit.to_ascii_lowercase();
    let repo = normalize_repo(&g.repository);
    let words = || {
        texts.iter().flat_map(|t| {
            t.split(|c: char| c.is_whitespace() || matches!(c, '=' | '"' | '\'' | ',' | '[' | ']'))
        })
    };
    repo.is_some()
        && words().any(|w| w.eq_ignore_ascii_case(&commit))
        && words().any(|w| normalize_repo(w) == repo)
}

/// Checks a policy as loaded: what it says must be checkable, and what it names must exist.
/// Errors name the workload and the field.
pub(crate) fn validate(policy: &[ReviewedWorkload]) -> Result<(), String> {
    let hex64 = |h: &String| {
        let h = h.trim_start_matches("0x");
        h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
    };
    let mut names = BTreeSet::new();
    for w in policy {
        let bad = |what: String| Err(format!("workload `{}`: {what}", w.name));
        if !names.insert(w.name.as_str()) {
            return bad("the name is used twice".into());
        }
        if w.source.trim().is_empty() {
            return bad("source: say where it was reviewed from".into());
        }
        if w.services.is_empty() && w.compose_hashes.is_empty() {
            return bad(
                "it names neither services nor compose_hashes: it would accept nothing".into(),
            );
        }
        for (field, list) in [
            ("compose_hashes", &w.compose_hashes),
            ("os_images", &w.os_images),
            ("pre_launch_scripts", &w.pre_launch_scripts),
        ] {
            if let Some(h) = list.iter().find(|h| !hex64(h)) {
                return bad(format!("{field}: `{h}` is not a sha256 (64 hex)"));
            }
        }
        for (name, s) in &w.services {
            if s.image.trim().is_empty() {
                return bad(format!("service `{name}`: no image"));
            }
            if let Some(k) = s.fields.keys().find(|k| {
                *k == "environment" || compose::ORDINARY_SERVICE_KEYS.contains(&k.as_str())
            }) {
                return bad(format!(
                    "service `{name}`: `{k}` is never compared (ordinary settings may change; environment values read as code go under code_env)"
                ));
            }
        }
        for (var, svc) in &w.runtime_vars {
            if !w.services.contains_key(svc) {
                return bad(format!(
                    "runtime_vars: `{var}` is set by service `{svc}`, which it does not review"
                ));
            }
        }
        if let Some(g) = &w.gateway {
            let commit_ok = matches!(g.commit.len(), 40 | 64)
                && g.commit.bytes().all(|b| b.is_ascii_hexdigit());
            if !commit_ok {
                return bad(format!(
                    "gateway.commit `{}` is not a full commit hash",
                    g.commit
                ));
            }
            if normalize_repo(&g.repository).is_none() {
                return bad(format!(
                    "gateway.repository `{}` is not an https repository URL",
                    g.repository
                ));
            }
            if let Some(s) = w.services.get(&g.service) {
                if s.fields.contains_key("entrypoint") {
                    return bad(format!(
                        "gateway service `{}` overrides its entrypoint",
                        g.service
                    ));
                }
                let mut texts: Vec<String> = s.code_env.values().cloned().collect();
                for key in ["command", "entrypoint"] {
                    if let Some(v) = s.fields.get(key) {
                        texts.push(serde_json::to_string(v).unwrap_or_default());
                    }
                }
                texts.extend(mounted_configs(&s.fields, &w.definitions));
                if !texts_name_source(&texts, g) {
                    return bad(format!(
                        "gateway service `{}` names {}@{} in none of its code_env, command or mounted configs",
                        g.service, g.repository, g.commit
                    ));
                }
            } else if !w.services.is_empty() {
                return bad(format!(
                    "gateway service `{}` is not one of its services",
                    g.service
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "review_tests.rs"]
mod tests;
