//! The app compose MRCONFIGID binds, read as what the CVM runs: dstack's manifest (its
//! `allowed_envs`, `pre_launch_script`) and the docker compose file in it, parsed as YAML
//! (anchors and `<<:` merge keys applied) and interpolated the way docker compose does in the
//! CVM. A variable listed in `allowed_envs` is set by the deployer through encrypted
//! environment variables that nothing measures, so a value that depends on one is not
//! measured; any other variable is unset there, so its `${VAR:-default}` is the default.

use serde::Serialize;
use serde_json::Value;
use serde_yaml::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};

/// A compose value as docker compose resolves it in the CVM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Setting {
    /// The value with every variable the deployer cannot set resolved, and those the deployer
    /// can set replaced by their defaults (what runs if the deployer sets nothing).
    pub(crate) value: String,
    /// Variables in `allowed_envs` the value depends on: while any is named, the value is the
    /// deployer's choice, not a measurement.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) deployer_vars: Vec<String>,
}

impl Setting {
    pub(crate) fn measured(&self) -> Option<&str> {
        self.deployer_vars.is_empty().then_some(self.value.as_str())
    }
}

/// One compose service, as far as what it runs is concerned.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Service {
    pub(crate) name: String,
    pub(crate) image: Option<Setting>,
    /// Built from a Dockerfile at deploy time (`build:`): no image digest covers it.
    pub(crate) build: bool,
    /// Keys that change what the image runs or with what (`entrypoint`, `command`,
    /// `env_file`), reported.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) overrides: Vec<&'static str>,
    /// `environment` entries and the `KEY=VALUE` lines of the configs it mounts.
    #[serde(skip)]
    pub(crate) settings: BTreeMap<String, Setting>,
    /// The words of its `command` and `entrypoint` (`--flag=value` split at `=`).
    #[serde(skip)]
    pub(crate) args: Vec<Setting>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct AppCompose {
    /// Variables the deployer may set, unmeasured (dstack's encrypted environment).
    pub(crate) allowed_envs: BTreeSet<String>,
    /// sha256 of the script dstack runs before the compose starts (it can change anything).
    pub(crate) pre_launch_script_sha256: Option<String>,
    pub(crate) services: Vec<Service>,
}

impl AppCompose {
    /// Reads an app compose (dstack's JSON manifest around a docker compose file).
    pub(crate) fn parse(app_compose: &str) -> Result<AppCompose, String> {
        let manifest: Value = serde_json::from_str(app_compose)
            .map_err(|e| format!("the app compose is not JSON: {e}"))?;
        let allowed_envs: BTreeSet<String> = manifest
            .get("allowed_envs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        let pre_launch_script_sha256 = manifest
            .get("pre_launch_script")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                use sha2::{Digest, Sha256};
                hex::encode(Sha256::digest(s.as_bytes()))
            });
        let file = manifest
            .get("docker_compose_file")
            .and_then(Value::as_str)
            .ok_or("the app compose has no docker_compose_file")?;
        let mut doc: Yaml = serde_yaml::from_str(file)
            .map_err(|e| format!("the docker compose file is not YAML: {e}"))?;
        doc.apply_merge()
            .map_err(|e| format!("the docker compose file's merge keys: {e}"))?;
        let configs = doc.get("configs").and_then(Yaml::as_mapping);
        let mut services = Vec::new();
        for (name, svc) in doc
            .get("services")
            .and_then(Yaml::as_mapping)
            .ok_or("the docker compose file has no services")?
        {
            let name = scalar(name).ok_or("a service name is not text")?;
            services.push(service(name, svc, configs, &allowed_envs));
        }
        Ok(AppCompose {
            allowed_envs,
            pre_launch_script_sha256,
            services,
        })
    }
}

fn scalar(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn service(
    name: String,
    svc: &Yaml,
    configs: Option<&serde_yaml::Mapping>,
    allowed: &BTreeSet<String>,
) -> Service {
    let mut settings = BTreeMap::new();
    match svc.get("environment") {
        Some(Yaml::Sequence(items)) => {
            for item in items.iter().filter_map(scalar) {
                let (k, v) = match item.split_once('=') {
                    Some((k, v)) => (k.to_string(), interpolate(v, allowed)),
                    // `- KEY`: passed through from the environment compose runs in.
                    None => (item.clone(), passed_through(&item, allowed)),
                };
                settings.insert(k.trim().to_string(), v);
            }
        }
        Some(Yaml::Mapping(map)) => {
            for (k, v) in map {
                let Some(k) = scalar(k) else { continue };
                let v = match scalar(v) {
                    Some(v) => interpolate(&v, allowed),
                    None => passed_through(&k, allowed),
                };
                settings.insert(k, v);
            }
        }
        _ => {}
    }
    // Configs mounted into the service: their `KEY=VALUE` lines (a launcher's pin file).
    for mount in svc
        .get("configs")
        .and_then(Yaml::as_sequence)
        .into_iter()
        .flatten()
    {
        let source = scalar(mount).or_else(|| mount.get("source").and_then(scalar));
        let content = source
            .and_then(|s| configs?.get(s.as_str()))
            .and_then(|c| c.get("content"))
            .and_then(scalar);
        for line in content.iter().flat_map(|c| c.lines()) {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                settings
                    .entry(k.trim().to_string())
                    .or_insert_with(|| interpolate(v.trim(), allowed));
            }
        }
    }
    let mut args = Vec::new();
    for key in ["entrypoint", "command"] {
        let words: Vec<String> = match svc.get(key) {
            Some(Yaml::Sequence(items)) => items.iter().filter_map(scalar).collect(),
            Some(v) => scalar(v)
                .map(|s| s.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        for word in words {
            let value = word.split_once('=').map_or(word.as_str(), |(_, v)| v);
            args.push(interpolate(value, allowed));
        }
    }
    let present = |k: &str| svc.get(k).is_some_and(|v| !v.is_null());
    Service {
        name,
        image: svc
            .get("image")
            .and_then(scalar)
            .map(|i| interpolate(&i, allowed)),
        build: present("build"),
        overrides: ["entrypoint", "command", "env_file"]
            .into_iter()
            .filter(|k| present(k))
            .collect(),
        settings,
        args,
    }
}

/// `- KEY` or `KEY:` with no value: the variable's value in the environment compose runs in.
fn passed_through(name: &str, allowed: &BTreeSet<String>) -> Setting {
    interpolate(&format!("${{{name}}}"), allowed)
}

/// Docker compose's interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`,
/// `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`, nested
/// in defaults. Variables outside `allowed` are unset in the CVM.
pub(crate) fn interpolate(text: &str, allowed: &BTreeSet<String>) -> Setting {
    let mut out = Setting {
        value: String::with_capacity(text.len()),
        deployer_vars: Vec::new(),
    };
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.value.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.value.push('$');
            rest = tail;
        } else if let Some(inner_start) = after.strip_prefix('{') {
            let Some(end) = closing_brace(inner_start) else {
                // Unterminated: compose refuses the file; kept as text.
                out.value.push_str(&rest[at..]);
                return out;
            };
            expand(&inner_start[..end], allowed, &mut out);
            rest = &inner_start[end + 1..];
        } else {
            let len = after
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            if len == 0 || after.as_bytes()[0].is_ascii_digit() {
                out.value.push('$');
                rest = after;
            } else {
                expand(&after[..len], allowed, &mut out);
                rest = &after[len..];
            }
        }
    }
    out.value.push_str(rest);
    out
}

/// The index of the `}` closing a `${`, counting nested ones.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// One `${…}` body: the variable, its operator, and its word.
fn expand(inner: &str, allowed: &BTreeSet<String>, out: &mut Setting) {
    let name_len = inner
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    let (name, op) = inner.split_at(name_len);
    let (op, word) = [":-", ":?", ":+", "-", "?", "+"]
        .iter()
        .find_map(|o| op.strip_prefix(o).map(|w| (*o, w)))
        .unwrap_or(("", ""));
    let word = || interpolate(word, allowed);
    let deployer = allowed.contains(name);
    if deployer {
        out.deployer_vars.push(name.to_string());
    }
    // What runs when the variable is unset: the default, or nothing.
    let unset = match op {
        ":-" | "-" => Some(word()),
        _ => None,
    };
    if let Some(w) = unset {
        out.value.push_str(&w.value);
        out.deployer_vars.extend(w.deployer_vars);
    }
}

impl AppCompose {
    /// The hosts a dstack-ingress service serves (`DOMAIN`, `DOMAINS`: one or several, split
    /// at whitespace or commas), measured values only: what the deployer sets names nothing.
    /// Wildcards and anything that is not a host name (with an optional port) are left out.
    pub(crate) fn ingress_hosts(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let ingresses = self.services.iter().filter(|s| {
            s.image
                .as_ref()
                .and_then(Setting::measured)
                .is_some_and(|i| i.contains("dstack-ingress"))
        });
        for service in ingresses {
            let values = ["DOMAIN", "DOMAINS"]
                .iter()
                .filter_map(|k| service.settings.get(*k).and_then(Setting::measured));
            for host in values.flat_map(|v| v.split(|c: char| c.is_whitespace() || c == ',')) {
                let host = host.trim().to_ascii_lowercase();
                let plausible = !host.is_empty()
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
                if plausible && !out.contains(&host) {
                    out.push(host);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn allowed(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn interpolation_as_docker_compose_does_it() {
        let none = allowed(&[]);
        let i = |t: &str| interpolate(t, &none).value;
        assert_eq!(i("plain"), "plain");
        assert_eq!(i("cost $$5"), "cost $5");
        assert_eq!(i("${IMG:-repo/app@sha256:ab}"), "repo/app@sha256:ab");
        assert_eq!(i("${IMG-repo/app}"), "repo/app");
        assert_eq!(i("${IMG}"), "");
        assert_eq!(i("a-$IMG-b"), "a--b");
        assert_eq!(i("${IMG:+x}y"), "y");
        assert_eq!(i("${A:-${B:-deep}}"), "deep");
        assert_eq!(i("$1 and $"), "$1 and $");
        let deployer = allowed(&["IMG", "B"]);
        let s = interpolate("${IMG:-repo/app@sha256:ab}", &deployer);
        assert_eq!(s.value, "repo/app@sha256:ab");
        assert_eq!(s.deployer_vars, ["IMG"]);
        assert_eq!(s.measured(), None);
        let s = interpolate("${A:-${B:-x}}", &deployer);
        assert_eq!(s.deployer_vars, ["B"]);
        assert_eq!(interpolate("lit", &deployer).measured(), Some("lit"));
    }

    fn app(yaml: &str, extra: Value) -> AppCompose {
        let mut m =
            json!({"manifest_version": 2, "runner": "docker-compose", "docker_compose_file": yaml});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        AppCompose::parse(&m.to_string()).unwrap()
    }

    #[test]
    fn merge_keys_builds_and_overrides() {
        let yaml = "x-base: &base\n  image: repo/base@sha256:aa\n  environment:\n    - GIT_REPO=https://github.com/o/r.git\nservices:\n  one:\n    <<: *base\n    entrypoint: /bin/sh\n  two:\n    build: .\n  three:\n    image: ${IMG:-repo/x@sha256:bb}\n    command: [run]\n    env_file: .env\n";
        let c = app(
            yaml,
            json!({"allowed_envs": ["IMG"], "pre_launch_script": "echo hi"}),
        );
        let by = |n: &str| c.services.iter().find(|s| s.name == n).unwrap();
        assert_eq!(
            by("one").image.as_ref().unwrap().value,
            "repo/base@sha256:aa"
        );
        assert_eq!(by("one").overrides, ["entrypoint"]);
        assert!(by("two").build);
        assert_eq!(by("three").overrides, ["command", "env_file"]);
        assert_eq!(by("three").image.as_ref().unwrap().deployer_vars, ["IMG"]);
        assert!(c.pre_launch_script_sha256.is_some());
        // The merged-in environment is the service's own.
        assert_eq!(
            by("one").settings["GIT_REPO"].value,
            "https://github.com/o/r.git"
        );
        assert_eq!(by("three").args.len(), 1);
    }

    #[test]
    fn settings_from_environments_and_mounted_configs() {
        let list = app(
            "services:\n  launcher:\n    environment:\n      - GIT_REPO=https://github.com/o/r.git\n      - PLAIN\n",
            json!({"allowed_envs": ["PLAIN"]}),
        );
        let s = &list.services[0].settings;
        assert_eq!(s["GIT_REPO"].measured(), Some("https://github.com/o/r.git"));
        assert_eq!(s["PLAIN"].deployer_vars, ["PLAIN"]);
        let map = app(
            "services:\n  launcher:\n    environment:\n      GIT_REV: ${REV}\n      N: 3\n",
            json!({"allowed_envs": ["REV"]}),
        );
        let s = &map.services[0].settings;
        assert_eq!(s["GIT_REV"].deployer_vars, ["REV"]);
        assert_eq!(s["N"].measured(), Some("3"));
        // dstack git-launcher: a config file mounted into the service, interpolated too.
        let git_launcher = app(
            "services:\n  gw:\n    configs:\n      - source: pin\n        target: /etc/pin.conf\n      - other\nconfigs:\n  pin:\n    content: |\n      # pinned\n      REPO_URL=https://github.com/o/r.git\n      COMMIT_SHA=${C:?set it}\n  other:\n    content: \"X=1\"\n",
            json!({"allowed_envs": ["C"]}),
        );
        let s = &git_launcher.services[0].settings;
        assert_eq!(s["REPO_URL"].measured(), Some("https://github.com/o/r.git"));
        assert_eq!(s["COMMIT_SHA"].deployer_vars, ["C"]);
        assert_eq!(s["X"].measured(), Some("1"));
        assert!(!s.contains_key("# pinned"));
    }

    #[test]
    fn the_real_capture_compose_reads() {
        let body = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/capture/0001_api.venice.ai_api_v1_tee_attestation.body"
        ))
        .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        let quote =
            crate::attestation::quote::decode_quote_text(v["intel_quote"].as_str().unwrap())
                .unwrap();
        let report = crate::attestation::quote::parse(&quote).unwrap();
        let (text, _) = super::super::workload::describe(&v["info"], &report).unwrap();
        let c = AppCompose::parse(&text).unwrap();
        assert!(c.services.len() >= 4, "{:?}", c.services);
        assert!(c.services.iter().all(|s| !s.build));
        assert!(c
            .services
            .iter()
            .any(|s| s.name == "certbot" && s.overrides.contains(&"entrypoint")));
    }

    #[test]
    fn not_a_compose() {
        assert!(AppCompose::parse("not json").is_err());
        assert!(AppCompose::parse(r#"{"docker_compose_file": "a: [1"}"#).is_err());
        assert!(AppCompose::parse(r#"{"docker_compose_file": "volumes: {}"}"#).is_err());
        assert!(AppCompose::parse(r#"{"runner": "bash"}"#).is_err());
    }

    #[test]
    fn ingress_hosts_are_the_measured_domains_of_dstack_ingress() {
        let yaml = "services:\n  ingress:\n    image: dstacktee/dstack-ingress@sha256:aa\n    environment:\n      DOMAIN: tee.example.com\n      DOMAINS: |\n        api.example.com\n        *.wild.example.com, chat.example.com:8443\n  other:\n    image: ${ING:-dstacktee/dstack-ingress@sha256:bb}\n    environment:\n      - DOMAIN=evil.example.com\n  app:\n    image: repo/app@sha256:cc\n    environment:\n      - DOMAIN=app.example.com\n";
        let c = app(yaml, json!({"allowed_envs": ["ING"]}));
        assert_eq!(
            c.ingress_hosts(),
            [
                "tee.example.com",
                "api.example.com",
                "chat.example.com:8443"
            ]
        );
        // A domain the deployer sets is not a measurement.
        let yaml = "services:\n  ingress:\n    image: dstacktee/dstack-ingress@sha256:aa\n    environment:\n      - DOMAIN=${DOMAIN}\n";
        assert!(app(yaml, json!({"allowed_envs": ["DOMAIN"]}))
            .ingress_hosts()
            .is_empty());
    }
}
