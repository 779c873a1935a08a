//! Which provenance each container image needs, by image repository (longest prefix wins),
//! and how compose `image:` values name a repository and digest.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// A log entry signed by a Fulcio certificate whose identity matches is required.
    Fulcio,
    /// A verified log entry signed by one of the rule's `keys` is required.
    Signed,
    /// No log entry required: the digest pinned in the attested compose is the guarantee.
    ComposePinned,
    /// The image may be named by tag alone (reported as such); pinned, as `compose_pinned`.
    /// The compose fixes the tag, not the content it resolves to.
    TagOnly,
}

impl RuleKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            RuleKind::Fulcio => "fulcio",
            RuleKind::Signed => "signed",
            RuleKind::ComposePinned => "compose_pinned",
            RuleKind::TagOnly => "tag_only",
        }
    }
}

/// What to do with an image the compose names through a variable the deployer sets
/// (`allowed_envs`): it is the deployer's choice, not a measurement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployerNamedImages {
    /// `sigstore_provenance` fails.
    #[default]
    Refuse,
    /// Its default is checked, and the report says the deployer may run another.
    Report,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// An image repository prefix (`nearaidev/`, `datadog/agent`), Docker Hub names without
    /// `docker.io/` or `library/`.
    pub repository: String,
    pub rule: RuleKind,
    /// `fulcio`: the OIDC issuer the certificate must name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `fulcio`: the certificate subject (a workflow URI) must start with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_prefix: Option<String>,
    /// `signed`: the signer keys that count, by fingerprint (`sha256:` + hex of the SHA-256
    /// of the key's SubjectPublicKeyInfo DER).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
}

/// The policy for the images Venice's enclaves run, and why. The dstack-layout enclaves
/// (2026-04-24 capture):
/// - `nearaidev/`: NEAR AI builds its own images (compose-manager) in GitHub Actions of the
///   `nearai` organisation and signs them keyless: require exactly that identity.
/// - `datadog/agent`: Datadog signs its agent images with its own key (no Fulcio identity):
///   require a verified log entry signed by that key (the one the capture's entry names).
/// - `certbot/`: certbot's images are not signed in Rekor at all; the digest the attested
///   compose pins is the whole guarantee (it cannot change without changing MRCONFIGID).
///
/// The ACI gateway (Phala's private-ai-gateway under dstack): its images are not known to be
/// signed in Rekor, so the pinned digest is the guarantee (`dstacktee/dstack-ingress`,
/// `ghcr.io/redpill-ai/`, `prom/node-exporter`); `dstacktee/dstack-verifier` is named by tag
/// only (`:latest`) and serves NEAR AI's verification path, not the ACI path that sees the
/// prompt, so it is allowed and reported as unpinned. The gateway itself is not an image: its
/// launcher builds a pinned commit at boot (check `source_provenance`).
pub fn default_policy() -> Vec<Rule> {
    let rule = |repository: &str, rule, issuer: Option<&str>, subject_prefix: Option<&str>| Rule {
        repository: repository.into(),
        rule,
        issuer: issuer.map(Into::into),
        subject_prefix: subject_prefix.map(Into::into),
        keys: Vec::new(),
    };
    vec![
        rule(
            "nearaidev/",
            RuleKind::Fulcio,
            Some("https://token.actions.githubusercontent.com"),
            Some("https://github.com/nearai/"),
        ),
        Rule {
            keys: vec![DATADOG_AGENT_KEY.into()],
            ..rule("datadog/agent", RuleKind::Signed, None, None)
        },
        rule("certbot/", RuleKind::ComposePinned, None, None),
        rule(
            "dstacktee/dstack-ingress",
            RuleKind::ComposePinned,
            None,
            None,
        ),
        rule("dstacktee/dstack-verifier", RuleKind::TagOnly, None, None),
        rule("ghcr.io/redpill-ai/", RuleKind::ComposePinned, None, None),
        rule("prom/node-exporter", RuleKind::ComposePinned, None, None),
    ]
}

/// The key Datadog signs its agent images with (the 2026-04-24 capture's Rekor entry).
const DATADOG_AGENT_KEY: &str =
    "sha256:25bcab4ec8eede1e3091a14692126798c23986832ae6e5948d6f7eb0a928ab0b";

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

/// The rule for a repository: the longest matching prefix.
pub(crate) fn rule_for<'a>(policy: &'a [Rule], repository: &str) -> Option<&'a Rule> {
    policy
        .iter()
        .filter(|r| repository.starts_with(r.repository.as_str()))
        .max_by_key(|r| r.repository.len())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            rule_for(&p, "nearaidev/special-app").unwrap().rule,
            RuleKind::Signed
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
