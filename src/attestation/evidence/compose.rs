//! The app compose MRCONFIGID binds, read as what the CVM runs: dstack's manifest (its
//! `allowed_envs`, `pre_launch_script`, its other settings) and the docker compose file in
//! it, parsed as YAML (anchors and `<<:` merge keys applied), each service kept as written
//! so that a workload policy can compare it with what someone reviewed.
//!
//! Interpolation: a variable listed in `allowed_envs` is set by the deployer through
//! encrypted environment variables nothing measures. Any other variable is not the deployer's,
//! but it is not known to be unset either: the shell that runs `docker compose` has some
//! (`SHLVL`, `PWD`, …). So a value that names a variable is not a measurement of what runs;
//! `AppCompose::uncertain` lists what this reader cannot read with certainty at all.

use serde::Serialize;
use serde_json::Value;
use serde_yaml::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};

/// A compose value as docker compose resolves it when no variable outside `allowed_envs` is
/// set (what runs if the deployer sets nothing and the shell sets none of its variables).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Setting {
    pub(crate) value: String,
    /// Variables in `allowed_envs` the value depends on: while any is named, the value is the
    /// deployer's choice, not a measurement.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) deployer_vars: Vec<String>,
    /// Variables outside `allowed_envs` the value depends on (set or not by whatever runs
    /// docker compose).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) other_vars: Vec<String>,
}

impl Setting {
    /// The value, when it names no variable at all.
    pub(crate) fn measured(&self) -> Option<&str> {
        (self.deployer_vars.is_empty() && self.other_vars.is_empty()).then_some(self.value.as_str())
    }
}

/// Service keys that change neither the program a container runs nor what it can reach
/// of the CVM: a workload may change them without a review. Every other key is compared.
pub(crate) const ORDINARY_SERVICE_KEYS: [&str; 25] = [
    "restart",
    "logging",
    "labels",
    "annotations",
    "container_name",
    "healthcheck",
    "depends_on",
    "stop_grace_period",
    "stop_signal",
    "ports",
    "expose",
    "hostname",
    "domainname",
    "mem_limit",
    "mem_reservation",
    "memswap_limit",
    "cpus",
    "cpu_shares",
    "cpu_quota",
    "cpu_period",
    "cpuset",
    "shm_size",
    "ulimits",
    "oom_score_adj",
    "attach",
];

/// Manifest keys that change nothing the workload runs or exposes; every other one is
/// compared (`runner`, the key provider, `secure_time`, `public_logs`, …).
pub(crate) const ORDINARY_MANIFEST_KEYS: [&str; 10] = [
    "manifest_version",
    "name",
    "features",
    "public_sysinfo",
    "public_tcbinfo",
    "gateway_enabled",
    "tproxy_enabled",
    "no_instance_id",
    "storage_fs",
    "swap_size",
];

/// Environment variables every runtime reads as code or as where code comes from: a
/// service sets them only as reviewed, whatever image it runs.
const CODE_ENV: [&str; 30] = [
    "PATH",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONUSERBASE",
    "NODE_OPTIONS",
    "NODE_PATH",
    "PERL5OPT",
    "PERL5LIB",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    "BASH_ENV",
    "ENV",
    "PROMPT_COMMAND",
    "GCONV_PATH",
    "DOTNET_STARTUP_HOOKS",
    "RUSTC_WRAPPER",
    "RUSTC",
    "RUSTFLAGS",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
    "GIT_CONFIG_GLOBAL",
];

/// Whether `key` is read as code by any program (the dynamic loader's `LD_*`, interpreters'
/// search paths and startup hooks, toolchains' wrappers).
pub(crate) fn code_class_env(key: &str) -> bool {
    key.starts_with("LD_") || key.starts_with("DYLD_") || CODE_ENV.contains(&key)
}

/// One compose service as written.
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
    /// Every key but the ordinary ones and `environment`, as written (merge keys applied).
    #[serde(skip)]
    pub(crate) fields: BTreeMap<String, Yaml>,
    /// `environment`, each value as written (`- KEY` passed through reads as `${KEY}`).
    #[serde(skip)]
    pub(crate) environment: BTreeMap<String, String>,
}

impl Service {
    /// An environment value as docker compose resolves it.
    pub(crate) fn setting(&self, key: &str, allowed: &BTreeSet<String>) -> Option<Setting> {
        self.environment.get(key).map(|v| interpolate(v, allowed))
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct AppCompose {
    /// Variables the deployer may set, unmeasured (dstack's encrypted environment).
    pub(crate) allowed_envs: BTreeSet<String>,
    /// sha256 of the script dstack runs before the compose starts (it can change anything).
    pub(crate) pre_launch_script_sha256: Option<String>,
    pub(crate) services: Vec<Service>,
    /// The manifest's settings but the compose file, `allowed_envs` and the script.
    #[serde(skip)]
    pub(crate) manifest: BTreeMap<String, Value>,
    /// The compose file's top-level `volumes`, `configs`, `secrets` and `networks`, as written.
    #[serde(skip)]
    pub(crate) definitions: BTreeMap<String, Yaml>,
    /// What this reader cannot read with certainty (a YAML tag, `extends`, an interpolation
    /// docker compose would refuse, …): a workload that has any is refused whatever the
    /// policy says.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) uncertain: Vec<String>,
}

/// Top-level sections that define what services mount or join.
const DEFINITIONS: [&str; 4] = ["volumes", "configs", "secrets", "networks"];

/// At most this many uncertainties are named (the first one already refuses).
const MAX_UNCERTAIN: usize = 20;

impl AppCompose {
    /// Reads an app compose (dstack's JSON manifest around a docker compose file).
    pub(crate) fn parse(app_compose: &str) -> Result<AppCompose, String> {
        let manifest: Value = serde_json::from_str(app_compose)
            .map_err(|e| format!("the app compose is not JSON: {e}"))?;
        let manifest = manifest
            .as_object()
            .ok_or("the app compose is not a JSON object")?;
        let mut uncertain = Vec::new();
        let allowed_envs: BTreeSet<String> = match manifest.get("allowed_envs") {
            None | Some(Value::Null) => BTreeSet::new(),
            Some(Value::Array(names)) => names
                .iter()
                .filter_map(|n| {
                    let name = n.as_str();
                    if name.is_none() {
                        uncertain.push(format!("allowed_envs holds {n}, not a name"));
                    }
                    name.map(str::to_string)
                })
                .collect(),
            Some(other) => return Err(format!("allowed_envs is {other}, not a list")),
        };
        let pre_launch_script_sha256 = match manifest.get("pre_launch_script") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => {
                use sha2::{Digest, Sha256};
                Some(hex::encode(Sha256::digest(s.as_bytes())))
            }
            Some(other) => return Err(format!("pre_launch_script is {other}, not text")),
        };
        let file = manifest
            .get("docker_compose_file")
            .and_then(Value::as_str)
            .ok_or("the app compose has no docker_compose_file")?;
        let mut doc: Yaml = serde_yaml::from_str(file)
            .map_err(|e| format!("the docker compose file is not YAML: {e}"))?;
        doc.apply_merge()
            .map_err(|e| format!("the docker compose file's merge keys: {e}"))?;
        let top = doc
            .as_mapping()
            .ok_or("the docker compose file is not a mapping")?;
        certain(&doc, "", &mut uncertain);
        let mut definitions = BTreeMap::new();
        let mut services = Vec::new();
        for (key, value) in top {
            let key = scalar(key).unwrap_or_default();
            match key.as_str() {
                "services" => {
                    let map = value
                        .as_mapping()
                        .ok_or("the docker compose file's services are not a mapping")?;
                    for (name, svc) in map {
                        let name = scalar(name).ok_or("a service name is not text")?;
                        services.push(service(name, svc, &allowed_envs, &mut uncertain)?);
                    }
                }
                k if DEFINITIONS.contains(&k) => {
                    definitions.insert(key, value.clone());
                }
                "name" | "version" => {}
                k if k.starts_with("x-") => {}
                "include" => uncertain.push(
                    "the compose file includes other files (include:), which are not measured"
                        .into(),
                ),
                other => uncertain.push(format!(
                    "top-level key `{other}` is not one this reader knows"
                )),
            }
        }
        if services.is_empty() {
            return Err("the docker compose file has no services".into());
        }
        uncertain.truncate(MAX_UNCERTAIN);
        let manifest = manifest
            .iter()
            .filter(|(k, _)| {
                !["docker_compose_file", "allowed_envs", "pre_launch_script"].contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(AppCompose {
            allowed_envs,
            pre_launch_script_sha256,
            services,
            manifest,
            definitions,
            uncertain,
        })
    }

    pub(crate) fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
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

/// Names what in `v` this reader cannot read as docker compose would: YAML tags (compose's
/// `!reset` / `!override`), keys that are not text or that hold a `$`, and interpolations
/// docker compose refuses.
fn certain(v: &Yaml, path: &str, out: &mut Vec<String>) {
    if out.len() >= MAX_UNCERTAIN {
        return;
    }
    let at = |p: &str| {
        if p.is_empty() {
            "the top level".into()
        } else {
            format!("`{p}`")
        }
    };
    match v {
        Yaml::String(s) => {
            if let Err(e) = variables(s) {
                out.push(format!("{}: {e}", at(path)));
            }
        }
        Yaml::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                certain(item, &format!("{path}[{i}]"), out);
            }
        }
        Yaml::Mapping(map) => {
            for (k, value) in map {
                match scalar(k) {
                    Some(k) if k.contains('$') => {
                        out.push(format!("{}: key `{k}` holds a `$`", at(path)))
                    }
                    Some(k) => {
                        let sub = if path.is_empty() { k } else { format!("{path}.{k}") };
                        certain(value, &sub, out);
                    }
                    None => out.push(format!("{}: a key that is not text", at(path))),
                }
            }
        }
        Yaml::Tagged(t) => out.push(format!(
            "{}: YAML tag {} (compose's !reset/!override or another), which this reader does not apply",
            at(path),
            t.tag
        )),
        Yaml::Null | Yaml::Bool(_) | Yaml::Number(_) => {}
    }
}

fn service(
    name: String,
    svc: &Yaml,
    allowed: &BTreeSet<String>,
    uncertain: &mut Vec<String>,
) -> Result<Service, String> {
    let map = svc
        .as_mapping()
        .ok_or_else(|| format!("service `{name}` is not a mapping"))?;
    let mut environment = BTreeMap::new();
    let mut set = |k: String, v: String, uncertain: &mut Vec<String>| {
        let k = k.trim().to_string();
        if environment.insert(k.clone(), v).is_some() {
            uncertain.push(format!(
                "service `{name}` sets environment `{k}` twice (which one wins is not certain)"
            ));
        }
    };
    match svc.get("environment") {
        None | Some(Yaml::Null) => {}
        Some(Yaml::Sequence(items)) => {
            for item in items {
                let Some(item) = scalar(item) else {
                    uncertain.push(format!(
                        "service `{name}`: an environment entry is not text"
                    ));
                    continue;
                };
                match item.split_once('=') {
                    Some((k, v)) => set(k.to_string(), v.to_string(), uncertain),
                    // `- KEY`: passed through from the environment compose runs in.
                    None => set(item.clone(), format!("${{{}}}", item.trim()), uncertain),
                }
            }
        }
        Some(Yaml::Mapping(entries)) => {
            for (k, v) in entries {
                let Some(k) = scalar(k) else { continue };
                let v = match v {
                    Yaml::Null => format!("${{{k}}}"),
                    v => match scalar(v) {
                        Some(v) => v,
                        None => {
                            uncertain.push(format!(
                                "service `{name}`: environment `{k}` is not a scalar"
                            ));
                            continue;
                        }
                    },
                };
                set(k, v, uncertain);
            }
        }
        Some(_) => uncertain.push(format!(
            "service `{name}`: environment is neither a list nor a mapping"
        )),
    }
    let mut fields = BTreeMap::new();
    for (k, v) in map {
        let Some(k) = scalar(k) else { continue };
        if k == "extends" {
            uncertain.push(format!(
                "service `{name}` extends another definition (extends:), which this reader does not resolve"
            ));
        }
        if k != "environment" && !ORDINARY_SERVICE_KEYS.contains(&k.as_str()) {
            fields.insert(k, v.clone());
        }
    }
    let present = |k: &str| svc.get(k).is_some_and(|v| !v.is_null());
    Ok(Service {
        image: svc
            .get("image")
            .and_then(scalar)
            .map(|i| interpolate(&i, allowed)),
        build: present("build"),
        overrides: ["entrypoint", "command", "env_file"]
            .into_iter()
            .filter(|k| present(k))
            .collect(),
        name,
        fields,
        environment,
    })
}

/// The variables a compose value names (in defaults too), or why docker compose would refuse
/// it: an unterminated `${`, a name that is no name, a modifier it does not know.
pub(crate) fn variables(text: &str) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    scan(text, &mut out)?;
    Ok(out)
}

fn scan(text: &str, out: &mut BTreeSet<String>) -> Result<(), String> {
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end =
                closing_brace(inner).ok_or_else(|| format!("unterminated `${{` in `{text}`"))?;
            let (name, _, word) = split_braced(&inner[..end]).ok_or_else(|| {
                format!(
                    "`${{{}}}` is not an interpolation docker compose accepts",
                    &inner[..end]
                )
            })?;
            out.insert(name.to_string());
            scan(word, out)?;
            rest = &inner[end + 1..];
        } else {
            let len = name_len(after);
            if len == 0 {
                return Err(format!(
                    "a `$` not followed by a variable name in `{text}` (docker compose refuses it; `$$` is a literal `$`)"
                ));
            }
            out.insert(after[..len].to_string());
            rest = &after[len..];
        }
    }
    Ok(())
}

/// The length of the variable name `s` starts with (`[A-Za-z_][A-Za-z0-9_]*`), 0 if none.
fn name_len(s: &str) -> usize {
    match s.as_bytes().first() {
        Some(b) if b.is_ascii_alphabetic() || *b == b'_' => s
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count(),
        _ => 0,
    }
}

/// `NAME`, `NAME:-word`, `NAME-word`, `NAME:?word`, `NAME?word`, `NAME:+word`, `NAME+word`.
fn split_braced(inner: &str) -> Option<(&str, &'static str, &str)> {
    let len = name_len(inner);
    if len == 0 {
        return None;
    }
    let (name, rest) = inner.split_at(len);
    if rest.is_empty() {
        return Some((name, "", ""));
    }
    [":-", ":?", ":+", "-", "?", "+"]
        .iter()
        .find_map(|o| rest.strip_prefix(o).map(|w| (name, *o, w)))
}

/// Docker compose's interpolation (`$$`, `$VAR`, `${VAR}`, and the `-`, `?`, `+` forms with
/// or without `:`, nested in their words), resolving every variable as unset and naming
/// those the value depends on. Only for values `variables` accepts.
pub(crate) fn interpolate(text: &str, allowed: &BTreeSet<String>) -> Setting {
    let mut out = Setting {
        value: String::with_capacity(text.len()),
        deployer_vars: Vec::new(),
        other_vars: Vec::new(),
    };
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.value.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.value.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let Some((end, (name, op, word))) =
                closing_brace(inner).and_then(|e| Some((e, split_braced(&inner[..e])?)))
            else {
                out.value.push_str(&rest[at..]);
                return out;
            };
            note(name, allowed, &mut out);
            // Unset: the default for `-` forms, nothing otherwise.
            if matches!(op, ":-" | "-") {
                let w = interpolate(word, allowed);
                out.value.push_str(&w.value);
                out.deployer_vars.extend(w.deployer_vars);
                out.other_vars.extend(w.other_vars);
            }
            rest = &inner[end + 1..];
        } else {
            let len = name_len(after);
            if len == 0 {
                out.value.push('$');
                rest = after;
            } else {
                note(&after[..len], allowed, &mut out);
                rest = &after[len..];
            }
        }
    }
    out.value.push_str(rest);
    out
}

fn note(name: &str, allowed: &BTreeSet<String>, out: &mut Setting) {
    let list = if allowed.contains(name) {
        &mut out.deployer_vars
    } else {
        &mut out.other_vars
    };
    if !list.iter().any(|v| v == name) {
        list.push(name.to_string());
    }
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

/// Every variable named by the strings in `v` (interpolation applies to values, not keys).
pub(crate) fn variables_in(v: &Yaml) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut walk = vec![v];
    while let Some(v) = walk.pop() {
        match v {
            Yaml::String(s) => out.extend(variables(s).unwrap_or_default()),
            Yaml::Sequence(items) => walk.extend(items),
            Yaml::Mapping(map) => walk.extend(map.values()),
            Yaml::Tagged(t) => walk.push(&t.value),
            _ => {}
        }
    }
    out
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
                .filter_map(|k| service.setting(k, &self.allowed_envs))
                .filter_map(|s| s.measured().map(str::to_string));
            for value in values {
                for host in value.split(|c: char| c.is_whitespace() || c == ',') {
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
        let deployer = allowed(&["IMG", "B"]);
        let s = interpolate("${IMG:-repo/app@sha256:ab}", &deployer);
        assert_eq!(s.value, "repo/app@sha256:ab");
        assert_eq!(s.deployer_vars, ["IMG"]);
        assert_eq!(s.measured(), None);
        let s = interpolate("${A:-${B:-x}}", &deployer);
        assert_eq!(
            (s.deployer_vars, s.other_vars),
            (vec!["B".into()], vec!["A".into()])
        );
        assert_eq!(interpolate("lit", &deployer).measured(), Some("lit"));
        // A variable nobody lists is no measurement either: the shell may set it.
        let s = interpolate("${SHLVL:+other/image}${SHLVL:-pinned@sha256:ab}", &none);
        assert_eq!(s.value, "pinned@sha256:ab");
        assert_eq!(s.other_vars, ["SHLVL"]);
        assert_eq!(s.measured(), None);
    }

    #[test]
    fn what_docker_compose_refuses_is_not_read() {
        let names = |t: &str| variables(t).map(|v| v.into_iter().collect::<Vec<_>>());
        assert_eq!(names("a $$b ${C:-${D}} $E_1").unwrap(), ["C", "D", "E_1"]);
        for bad in [
            "${A",
            "$1",
            "trailing $",
            "${A/x/y}",
            "${:-x}",
            "${1A}",
            "$-",
        ] {
            assert!(variables(bad).is_err(), "{bad}");
        }
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
        let yaml = "x-base: &base\n  image: repo/base@sha256:aa\n  environment:\n    - GIT_REPO=https://github.com/o/r.git\nservices:\n  one:\n    <<: *base\n    entrypoint: /bin/sh\n    restart: always\n  two:\n    build: .\n  three:\n    image: ${IMG:-repo/x@sha256:bb}\n    command: [run]\n    env_file: .env\n";
        let c = app(
            yaml,
            json!({"allowed_envs": ["IMG"], "pre_launch_script": "echo hi"}),
        );
        let by = |n: &str| c.service(n).unwrap();
        assert_eq!(
            by("one").image.as_ref().unwrap().value,
            "repo/base@sha256:aa"
        );
        assert_eq!(by("one").overrides, ["entrypoint"]);
        // What is compared: everything but the ordinary keys and the environment.
        assert_eq!(
            by("one").fields.keys().collect::<Vec<_>>(),
            ["entrypoint", "image"]
        );
        assert!(by("two").build);
        assert_eq!(by("three").overrides, ["command", "env_file"]);
        assert_eq!(by("three").image.as_ref().unwrap().deployer_vars, ["IMG"]);
        assert!(c.pre_launch_script_sha256.is_some());
        // The merged-in environment is the service's own.
        assert_eq!(
            by("one").environment["GIT_REPO"],
            "https://github.com/o/r.git"
        );
        assert_eq!(c.manifest["runner"], "docker-compose");
        assert!(c.uncertain.is_empty(), "{:?}", c.uncertain);
    }

    #[test]
    fn environments_in_both_forms() {
        let list = app(
            "services:\n  launcher:\n    environment:\n      - GIT_REPO=https://github.com/o/r.git\n      - PLAIN\n",
            json!({"allowed_envs": ["PLAIN"]}),
        );
        let s = &list.services[0];
        assert_eq!(s.environment["PLAIN"], "${PLAIN}");
        assert_eq!(
            s.setting("PLAIN", &list.allowed_envs)
                .unwrap()
                .deployer_vars,
            ["PLAIN"]
        );
        let map = app(
            "services:\n  launcher:\n    environment:\n      GIT_REV: ${REV}\n      N: 3\n      PASS:\n",
            json!({"allowed_envs": ["REV"]}),
        );
        let s = &map.services[0];
        assert_eq!(s.environment["N"], "3");
        assert_eq!(s.environment["PASS"], "${PASS}");
        assert_eq!(s.environment["GIT_REV"], "${REV}");
    }

    #[test]
    fn what_cannot_be_read_with_certainty_is_named() {
        let uncertain = |yaml: &str| app(yaml, json!({})).uncertain;
        for (yaml, says) in [
            ("services:\n  a:\n    image: !reset null\n", "YAML tag"),
            (
                "services:\n  a:\n    extends: {file: other.yaml, service: b}\n",
                "extends",
            ),
            (
                "include:\n  - other.yaml\nservices:\n  a:\n    image: x\n",
                "include",
            ),
            ("services:\n  a:\n    image: ${IMG\n", "unterminated"),
            ("services:\n  a:\n    command: echo $1\n", "not followed"),
            (
                "services:\n  a:\n    environment:\n      - A=1\n      - A=2\n",
                "twice",
            ),
            (
                "services:\n  a:\n    labels:\n      ${X}: y\n",
                "holds a `$`",
            ),
            ("secretz: {}\nservices:\n  a:\n    image: x\n", "secretz"),
        ] {
            let u = uncertain(yaml);
            assert!(u.iter().any(|w| w.contains(says)), "{yaml}: {u:?}");
        }
        // Duplicate keys are a YAML error: not read at all.
        assert!(AppCompose::parse(
            &json!({"docker_compose_file": "services:\n  a:\n    image: x\n    image: y\n"})
                .to_string()
        )
        .is_err());
    }

    #[test]
    fn the_real_capture_compose_reads_with_certainty() {
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
        assert!(c.uncertain.is_empty(), "{:?}", c.uncertain);
        assert_eq!(c.services.len(), 4);
        assert!(c.services.iter().all(|s| !s.build));
        let certbot = c.service("certbot").unwrap();
        assert!(certbot.overrides.contains(&"entrypoint"));
        assert!(certbot.fields.contains_key("volumes"));
        assert!(!certbot.fields.contains_key("restart"));
        assert!(c.definitions.contains_key("configs"));
    }

    #[test]
    fn not_a_compose() {
        assert!(AppCompose::parse("not json").is_err());
        assert!(AppCompose::parse(r#"{"docker_compose_file": "a: [1"}"#).is_err());
        assert!(AppCompose::parse(r#"{"docker_compose_file": "volumes: {}"}"#).is_err());
        assert!(AppCompose::parse(r#"{"runner": "bash"}"#).is_err());
        assert!(AppCompose::parse(r#"{"docker_compose_file": "services: {}"}"#).is_err());
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
