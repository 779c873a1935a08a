//! Which provenance each container image needs, by image repository (longest prefix wins),
//! and how compose `image:` values name a repository and digest.

pub use crate::config::attestation::{default_policy, DeployerNamedImages, Rule, RuleKind};

/// An image reference split into repository (normalized) and sha256 digest (64 lowercase
/// hex, if pinned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRef {
    pub(crate) repository: String,
    pub(crate) digest: Option<String>,
}

/// Parses a compose `image:` value, including `${VAR:-default}` / `${VAR-default}` forms
/// (the default is what runs when the variable is unset, which the attested env allows).
pub(crate) fn parse_image(value: &str) -> ImageRef {
    let mut text = value.trim().to_string();
    while let Some(start) = text.find("${") {
        let Some(end) = text[start..].find('}').map(|e| start + e) else {
            break;
        };
        let inner = &text[start + 2..end];
        let default = inner
            .split_once(":-")
            .or_else(|| inner.split_once('-'))
            .map_or("", |(_, d)| d);
        text = format!("{}{}{}", &text[..start], default, &text[end + 1..]);
    }
    let (name, digest) = match text.split_once("@sha256:") {
        Some((n, d)) if d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (n.to_string(), Some(d.to_ascii_lowercase()))
        }
        _ => (text.split('@').next().unwrap_or("").to_string(), None),
    };
    // A tag before the digest (`name:tag@sha256:…`) does not count; a registry port does.
    let name = match name.rsplit_once(':') {
        Some((n, tag)) if !tag.contains('/') => n.to_string(),
        _ => name,
    };
    let mut repository = name.to_ascii_lowercase();
    for prefix in ["docker.io/", "index.docker.io/", "registry-1.docker.io/"] {
        if let Some(rest) = repository.strip_prefix(prefix) {
            repository = rest.to_string();
        }
    }
    if let Some(rest) = repository.strip_prefix("library/") {
        repository = rest.to_string();
    }
    ImageRef { repository, digest }
}

/// The rule for a repository: the longest matching prefix, on a path boundary (`datadog/agent`
/// covers `datadog/agent` and `datadog/agent/x`, never `datadog/agent-evil`; `nearaidev/` every
/// repository under it).
pub(crate) fn rule_for<'a>(policy: &'a [Rule], repository: &str) -> Option<&'a Rule> {
    policy
        .iter()
        .filter(|r| covers(&r.repository, repository))
        .max_by_key(|r| r.repository.len())
}

fn covers(prefix: &str, repository: &str) -> bool {
    match repository.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_cover_repositories_on_path_boundaries() {
        let policy = default_policy();
        let rule = |r: &str| rule_for(&policy, r).map(|r| r.repository.as_str());
        assert_eq!(rule("datadog/agent"), Some("datadog/agent"));
        assert_eq!(rule("datadog/agent/sub"), Some("datadog/agent"));
        assert_eq!(rule("datadog/agent-evil"), None);
        assert_eq!(rule("nearaidev/compose-manager"), Some("nearaidev/"));
        assert_eq!(rule("nearaidevil/compose-manager"), None);
        assert_eq!(rule("prom/node-exporter-x"), None);
    }

    #[test]
    fn image_references_in_every_form() {
        let d = "a3c6e223ae5643689e6f0ae78461c2cb2d1b52d5b4ea306dc354b9ac7096d6e2";
        for (text, repo) in [
            (
                format!("nearaidev/compose-manager@sha256:{d}"),
                "nearaidev/compose-manager",
            ),
            (
                format!("docker.io/nearaidev/compose-manager:v1@sha256:{d}"),
                "nearaidev/compose-manager",
            ),
            (
                format!("${{CM_IMAGE:-nearaidev/compose-manager@sha256:{d}}}"),
                "nearaidev/compose-manager",
            ),
            (
                format!(
                    "${{CM_IMAGE-nearaidev/compose-manager@sha256:{}}}",
                    d.to_uppercase()
                ),
                "nearaidev/compose-manager",
            ),
            (format!("docker.io/library/nginx@sha256:{d}"), "nginx"),
            (
                format!("registry.example:5000/team/app@sha256:{d}"),
                "registry.example:5000/team/app",
            ),
        ] {
            let r = parse_image(&text);
            assert_eq!(r.repository, repo, "{text}");
            assert_eq!(r.digest.as_deref(), Some(d), "{text}");
        }
        assert_eq!(parse_image("nginx:latest").digest, None);
        assert_eq!(parse_image("nginx:latest").repository, "nginx");
        assert_eq!(
            parse_image("app@sha256:abc").digest,
            None,
            "not a whole digest"
        );
    }

    #[test]
    fn the_longest_prefix_rules() {
        let mut p = default_policy();
        p.push(Rule {
            repository: "nearaidev/special".into(),
            rule: RuleKind::Signed,
            issuer: None,
            subject_prefix: None,
            keys: vec!["sha256:00".into()],
        });
        assert_eq!(
            rule_for(&p, "nearaidev/special/app").unwrap().rule,
            RuleKind::Signed
        );
        // Not on a path boundary: the wider rule.
        assert_eq!(
            rule_for(&p, "nearaidev/special-app").unwrap().rule,
            RuleKind::Fulcio
        );
        assert_eq!(
            rule_for(&p, "nearaidev/compose-manager").unwrap().rule,
            RuleKind::Fulcio
        );
        assert_eq!(
            rule_for(&p, "certbot/dns-cloudflare").unwrap().rule,
            RuleKind::ComposePinned
        );
        assert!(rule_for(&p, "someone/else").is_none());
    }
}
