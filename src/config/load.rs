//! File + environment → `Config`. The YAML is read into a tree, environment overrides are
//! written into that tree, and only then is it deserialized, so every field has one parser
//! and every error names its field.

use super::{Config, Secret};
use serde_yaml::{Mapping, Value};
use std::path::Path;

pub const ENV_PREFIX: &str = "VENICE_E2EE_PROXY__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Io(String),
    #[error("config field `{field}`: {message}")]
    Invalid { field: String, message: String },
}

/// Loads `path` (or the defaults when `None`) and applies the process environment.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| ConfigError::Io(format!("cannot read {}: {e}", p.display())))?,
        None => String::new(),
    };
    load_from_str(&text, std::env::vars())
}

pub fn load_from_str(
    yaml: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let mut tree = file_tree(yaml)?;
    let from_env = apply_env(&mut tree, env)?;
    let mut config: Config = serde_path_to_error::deserialize(tree)
        .map_err(|e| {
            let field = e.path().to_string();
            ConfigError::Invalid {
                field,
                message: e.into_inner().to_string(),
            }
        })
        .map_err(|e| from_env.name_source(e))?;
    if let Some(key) = &from_env.api_key {
        config.venice.api_key = Secret::new(key.trim());
    }
    if let Some(token) = from_env
        .admin_token
        .as_deref()
        .filter(|t| !t.trim().is_empty())
    {
        config.server.admin_token = Some(Secret::new(token.trim()));
    }
    read_auth_tokens_file(&mut config)?;
    config.validate().map_err(|e| from_env.name_source(e))?;
    Ok(config)
}

/// The file's settings as a tree; secrets are refused there, they come from the environment.
fn file_tree(yaml: &str) -> Result<Value, ConfigError> {
    let tree: Value = if yaml.trim().is_empty() {
        Value::Null
    } else {
        serde_yaml::from_str(yaml).map_err(|e| ConfigError::Invalid {
            field: "<file>".into(),
            message: e.to_string(),
        })?
    };
    let tree = if tree.is_null() {
        Value::Mapping(Mapping::new())
    } else {
        tree
    };
    if lookup(&tree, &["venice", "api_key"]).is_some_and(|v| !v.is_null()) {
        return Err(ConfigError::Invalid {
            field: "venice.api_key".into(),
            message: "must not be in a config file; set VENICE_API_KEY".into(),
        });
    }
    if lookup(&tree, &["server", "admin_token"]).is_some_and(|v| !v.is_null()) {
        return Err(ConfigError::Invalid {
            field: "server.admin_token".into(),
            message: format!("must not be in a config file; set {ENV_PREFIX}SERVER__ADMIN_TOKEN"),
        });
    }
    Ok(tree)
}

/// What the environment set: the secrets, kept out of the tree, and which variable set
/// which field, so an error says where its value came from.
struct FromEnv {
    api_key: Option<String>,
    admin_token: Option<String>,
    fields: Vec<(String, String)>,
}

impl FromEnv {
    fn name_source(&self, e: ConfigError) -> ConfigError {
        match e {
            ConfigError::Invalid { field, message } => {
                let var = self
                    .fields
                    .iter()
                    .find(|(path, _)| field == *path || field.starts_with(&format!("{path}.")));
                let message = match var {
                    Some((_, name)) => format!("{message} (set by {name})"),
                    None => message,
                };
                ConfigError::Invalid { field, message }
            }
            other => other,
        }
    }
}

/// Writes each `VENICE_E2EE_PROXY__A__B` variable into the tree at `a.b`.
fn apply_env(
    tree: &mut Value,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<FromEnv, ConfigError> {
    let mut found = FromEnv {
        api_key: None,
        admin_token: None,
        fields: Vec::new(),
    };
    for (name, value) in env {
        if name == "VENICE_API_KEY" {
            found.api_key.get_or_insert(value);
            continue;
        }
        let Some(path) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let path: Vec<String> = path.split("__").map(|s| s.to_ascii_lowercase()).collect();
        if path == ["venice", "api_key"] {
            found.api_key = Some(value);
            continue;
        }
        if path == ["server", "admin_token"] {
            found.admin_token = Some(value);
            continue;
        }
        set(tree, &path, &value).map_err(|message| ConfigError::Invalid {
            field: path.join("."),
            message: format!("{message} (set by {name})"),
        })?;
        found.fields.push((path.join("."), name));
    }
    Ok(found)
}

/// Adds the tokens of `server.auth_tokens_file`, one per line; a file without one is an error.
fn read_auth_tokens_file(config: &mut Config) -> Result<(), ConfigError> {
    let Some(path) = config.server.auth_tokens_file.clone() else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Invalid {
        field: "server.auth_tokens_file".into(),
        message: format!("{}: {e}", path.display()),
    })?;
    let tokens: Vec<Secret> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(Secret::new)
        .collect();
    if tokens.is_empty() {
        return Err(ConfigError::Invalid {
            field: "server.auth_tokens_file".into(),
            message: format!("{} holds no token", path.display()),
        });
    }
    config.server.auth_tokens.extend(tokens);
    Ok(())
}

fn lookup<'a>(tree: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(tree, |node, key| node.get(*key))
}

/// Writes an environment value into the tree. The value is read as YAML so `true`, `30s`,
/// `[a, b]` and numbers mean what they would in the file.
fn set(tree: &mut Value, path: &[String], raw: &str) -> Result<(), String> {
    let value: Value = serde_yaml::from_str(raw).unwrap_or_else(|_| Value::String(raw.into()));
    let mut node = tree;
    for (i, key) in path.iter().enumerate() {
        let map = node
            .as_mapping_mut()
            .ok_or_else(|| "overrides a value that is not a section".to_string())?;
        let key = Value::String(key.clone());
        if i + 1 == path.len() {
            map.insert(key, value);
            return Ok(());
        }
        node = map
            .entry(key)
            .or_insert_with(|| Value::Mapping(Mapping::new()));
    }
    Err("empty override name".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_safe() {
        let c = load_from_str("", env(&[])).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.venice.base_url, "https://api.venice.ai/api/v1");
        assert!(!c.attestation.allow_debug);
        assert!(c.venice.api_key.is_empty());
    }

    #[test]
    fn the_shipped_config_parses() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/proxy.yaml"))
            .unwrap();
        load_from_str(&text, env(&[])).unwrap();
    }

    #[test]
    fn env_overrides_any_field() {
        let c = load_from_str(
            "venice:\n  idle_timeout: 5s\n",
            env(&[
                (
                    "VENICE_E2EE_PROXY__VENICE__BASE_URL",
                    "http://127.0.0.1:9999/api/v1",
                ),
                (
                    "VENICE_E2EE_PROXY__ATTESTATION__PREWARM",
                    "[e2ee-a, e2ee-b]",
                ),
                ("VENICE_E2EE_PROXY__ATTESTATION__MAX_AGE", "20m"),
                ("VENICE_API_KEY", "sk-test"),
            ]),
        )
        .unwrap();
        assert_eq!(c.venice.base_url, "http://127.0.0.1:9999/api/v1");
        assert_eq!(c.venice.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.attestation.prewarm, vec!["e2ee-a", "e2ee-b"]);
        assert_eq!(c.attestation.max_age, Duration::from_secs(1200));
        assert_eq!(c.venice.api_key.expose(), "sk-test");
        assert_eq!(format!("{:?}", c.venice.api_key), "<redacted>");
    }

    #[test]
    fn errors_name_the_field() {
        let e = load_from_str("server:\n  listen: nowhere\n", env(&[])).unwrap_err();
        assert!(e.to_string().contains("server.listen"), "{e}");
        let e = load_from_str("venice:\n  idle_timeout: 3 weeks\n", env(&[])).unwrap_err();
        assert!(e.to_string().contains("venice.idle_timeout"), "{e}");
        let e = load_from_str("venice:\n  colour: red\n", env(&[])).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        let e = load_from_str("venice:\n  api_key: sk-live\n", env(&[])).unwrap_err();
        assert!(e.to_string().contains("venice.api_key"), "{e}");
        let e = load_from_str("venice:\n  base_url: http://example.com/api/v1\n", env(&[]))
            .unwrap_err();
        assert!(e.to_string().contains("venice.base_url"), "{e}");
        let e = load_from_str(
            "",
            env(&[("VENICE_E2EE_PROXY__ATTESTATION__REFRESH_LEAD", "1h")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("attestation.refresh_lead"), "{e}");
    }

    #[test]
    fn third_party_services_need_https_unless_the_test_switch_is_on() {
        for field in [
            "PCS_URL",
            "ROOT_CA_CRL_URL",
            "NRAS_URL",
            "NRAS_JWKS_URL",
            "REKOR_URL",
        ] {
            let var = format!("VENICE_E2EE_PROXY__ATTESTATION__{field}");
            let e = load_from_str("", env(&[(&var, "http://pccs.internal:8081")])).unwrap_err();
            let name = format!("attestation.{}", field.to_ascii_lowercase());
            assert!(e.to_string().contains(&name), "{e}");
            let c = load_from_str(
                "attestation:\n  plain_http_for_tests: true\n",
                env(&[(&var, "http://127.0.0.1:8081")]),
            )
            .unwrap();
            assert!(c
                .describe()
                .unwrap()
                .contains("WARNING: trust relaxed: Intel PCS, NVIDIA NRAS and Rekor may be reached over plain http"));
        }
        let c = load_from_str("", env(&[])).unwrap();
        assert!(!c.describe().unwrap().contains("WARNING"));
        // Every relaxed root and check is named, one warning each.
        let c = load_from_str(
            "attestation:\n  intel_root_ca: /tmp/a.pem\n  nvidia_root_ca: /tmp/b.pem\n  sigstore_trusted_root: /tmp/c.json\n  report_only: [gpu_nonce]\n  allow_debug: true\n",
            env(&[]),
        )
        .unwrap();
        let said = c.describe().unwrap();
        for want in [
            "Intel root replaced by /tmp/a.pem",
            "NVIDIA root replaced by /tmp/b.pem",
            "Sigstore trusted root replaced by /tmp/c.json",
            "gpu_nonce is reported but not enforced",
            "attestation.allow_debug",
        ] {
            assert!(
                said.contains(&format!("# WARNING: trust relaxed: {want}")),
                "{said}"
            );
        }
    }

    /// Errors say what is wrong with the value and, for the environment, which variable set it.
    #[test]
    fn errors_name_the_value_and_its_variable() {
        let err = |yaml: &str, vars: &[(&str, &str)]| {
            load_from_str(yaml, env(vars)).unwrap_err().to_string()
        };
        let e = err("attestation:\n  max_age: 10\n", &[]);
        assert!(
            e.contains("`attestation.max_age`")
                && e.contains("10s")
                && e.contains("refresh_lead (120s)"),
            "{e}"
        );
        let e = err("", &[("VENICE_E2EE_PROXY__SERVER__LISTN", "x")]);
        assert!(
            e.contains("unknown field `listn`")
                && e.contains("set by VENICE_E2EE_PROXY__SERVER__LISTN"),
            "{e}"
        );
        let e = err(
            "",
            &[("VENICE_E2EE_PROXY__SERVER__LISTEN", "localhost:18080")],
        );
        assert!(
            e.contains("not a host name") && e.contains("set by VENICE_E2EE_PROXY__SERVER__LISTEN"),
            "{e}"
        );
        let e = err("server:\n  listen: localhost:18080\n", &[]);
        assert!(
            e.contains("not a host name") && !e.contains("set by"),
            "{e}"
        );
        let e = err("attestation:\n  report_only: [gpu_nonse]\n", &[]);
        assert!(
            e.contains("`gpu_nonse`") && e.contains("gpu_nonce") && e.contains("tdx_tcb_status"),
            "{e}"
        );
    }

    #[test]
    fn client_tokens() {
        let e = load_from_str("server:\n  listen: 0.0.0.0:8080\n", env(&[])).unwrap_err();
        assert!(e.to_string().contains("server.auth_tokens"), "{e}");
        let c = load_from_str(
            "server:\n  listen: 0.0.0.0:8080\n",
            env(&[("VENICE_E2EE_PROXY__SERVER__AUTH_TOKENS", "[tok-a, tok-b]")]),
        )
        .unwrap();
        assert_eq!(c.server.auth_tokens.len(), 2);
        assert!(
            !serde_yaml::to_string(&c).unwrap().contains("tok-a"),
            "tokens are never printed"
        );
        let file =
            std::env::temp_dir().join(format!("venice-e2ee-proxy-tokens-{}", std::process::id()));
        std::fs::write(&file, "t1\n\n t2 \n").unwrap();
        let c = load_from_str(
            &format!("server:\n  auth_tokens_file: {}\n", file.display()),
            env(&[]),
        )
        .unwrap();
        assert_eq!(
            c.server
                .auth_tokens
                .iter()
                .map(|t| t.expose())
                .collect::<Vec<_>>(),
            ["t1", "t2"]
        );
    }

    #[test]
    fn upstream_url_parts() {
        let u = super::super::UpstreamUrl::parse("https://api.venice.ai/api/v1/").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (true, "api.venice.ai", 443, "/api/v1")
        );
        assert_eq!(u.authority(), "api.venice.ai");
        let u = super::super::UpstreamUrl::parse("http://127.0.0.1:7000/api/v1").unwrap();
        assert_eq!((u.tls, u.port), (false, 7000));
        assert!(u.is_loopback());
        assert_eq!(u.authority(), "127.0.0.1:7000");
    }

    #[test]
    fn the_admin_token_comes_only_from_the_environment() {
        let e = load_from_str("server:\n  admin_token: x\n", env(&[])).unwrap_err();
        assert!(e.to_string().contains("server.admin_token"), "{e}");
        let c = load_from_str(
            "",
            env(&[("VENICE_E2EE_PROXY__SERVER__ADMIN_TOKEN", "adm")]),
        )
        .unwrap();
        assert_eq!(c.server.admin_token.unwrap().expose(), "adm");
        assert!(load_from_str("", env(&[]))
            .unwrap()
            .server
            .admin_token
            .is_none());
    }
}
