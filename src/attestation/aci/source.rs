//! Source provenance (§4.1, §9.1.4): which public code the attested workload is, checked
//! against a policy and corroborated by measured evidence. The report's `source_provenance`
//! is not bound by the quote, so a claim counts only where the compose MRCONFIGID binds names
//! it: the image digest it pins, or the repository and commit an attested launcher builds.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourcePolicy {
    /// Repositories whose code may serve (`https://host/owner/name`, case and `.git`
    /// ignored). Empty: any repository, reported.
    pub(crate) repositories: Vec<String>,
    /// Accept a workload built from source at boot (a repository and commit but no image
    /// digest). The quote then fixes the instruction to build that commit, not the binary
    /// the build produced.
    pub(crate) allow_built_at_boot: bool,
}

impl Default for SourcePolicy {
    /// Venice's ACI gateway: Phala's private-ai-gateway, which its launcher clones and builds
    /// at boot (see README "What is attested").
    fn default() -> Self {
        SourcePolicy {
            repositories: vec!["https://github.com/Dstack-TEE/private-ai-gateway".into()],
            allow_built_at_boot: true,
        }
    }
}

/// What the report claims, as reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct SourceClaim {
    pub(crate) repo_url: Option<String>,
    pub(crate) repo_commit: Option<String>,
    pub(crate) image_digest: Option<String>,
    /// How the claim is backed by a measurement, or why it is not.
    pub(crate) corroboration: String,
}

fn field(v: &Value, name: &str) -> Option<String> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `https://github.com/Owner/Name.git/` → `github.com/owner/name`.
fn normalize_repo(url: &str) -> String {
    let u = url.trim().to_ascii_lowercase();
    let u = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .or_else(|| u.strip_prefix("git+https://"))
        .unwrap_or(&u);
    let u = u.trim_end_matches('/');
    u.strip_suffix(".git").unwrap_or(u).to_string()
}

/// Checks the claim against `policy`, corroborated by `bound_compose` (the app compose text
/// MRCONFIGID binds, if it does). Returns the verdict and the claim as reported.
pub(crate) fn check(
    claim: Option<&Value>,
    bound_compose: Option<&str>,
    policy: &SourcePolicy,
) -> (Result<String, String>, Option<SourceClaim>) {
    let Some(v) = claim.filter(|v| v.is_object()) else {
        return (Err("the report carries no source provenance".into()), None);
    };
    let mut c = SourceClaim {
        repo_url: field(v, "repo_url"),
        repo_commit: field(v, "repo_commit"),
        image_digest: field(v, "image_digest"),
        corroboration: String::new(),
    };
    let verdict = verdict(&mut c, bound_compose, policy);
    (verdict, Some(c))
}

fn verdict(
    c: &mut SourceClaim,
    bound_compose: Option<&str>,
    policy: &SourcePolicy,
) -> Result<String, String> {
    let repo = c.repo_url.as_deref().map(normalize_repo);
    if let Some(r) = &repo {
        let allowed = policy.repositories.is_empty()
            || policy.repositories.iter().any(|a| normalize_repo(a) == *r);
        if !allowed {
            c.corroboration = "repository not on the policy".into();
            return Err(format!(
                "source repository {r} is not in attestation.source_provenance.repositories"
            ));
        }
    }
    let Some(compose) = bound_compose.map(str::to_ascii_lowercase) else {
        c.corroboration = "no compose bound by MRCONFIGID to corroborate it".into();
        return Err("source provenance is not backed by a measurement (no bound compose)".into());
    };
    if let Some(d) = &c.image_digest {
        let hex = d.trim_start_matches("sha256:").to_ascii_lowercase();
        if hex.len() == 64 && compose.contains(&format!("sha256:{hex}")) {
            c.corroboration = "the attested compose pins this image digest".into();
            return Ok(format!("image {d}, pinned by the attested compose"));
        }
        c.corroboration = "the attested compose does not pin this image digest".into();
        return Err(format!(
            "source image digest {d} is not pinned by the attested compose"
        ));
    }
    let (Some(r), Some(commit)) = (&repo, &c.repo_commit) else {
        c.corroboration = "neither an image digest nor a repository and commit".into();
        return Err(
            "source provenance names neither an image digest nor repository and commit".into(),
        );
    };
    // `owner/name`: how a launcher's configuration names the repository, whatever its URL form.
    let path = r.split_once('/').map_or(r.as_str(), |(_, p)| p);
    let commit_lc = commit.to_ascii_lowercase();
    let is_commit = commit_lc.len() >= 7 && commit_lc.bytes().all(|b| b.is_ascii_hexdigit());
    if !(is_commit && compose.contains(path) && compose.contains(&commit_lc)) {
        c.corroboration = "the attested compose does not name this repository and commit".into();
        return Err(format!(
            "source {r}@{commit} is not named by the attested compose"
        ));
    }
    if !policy.allow_built_at_boot {
        c.corroboration = "built from source at boot".into();
        return Err(format!(
            "{r}@{commit} is built from source at boot with no image digest, which attestation.source_provenance.allow_built_at_boot refuses"
        ));
    }
    c.corroboration =
        "the attested compose names the repository and commit it builds at boot; the built artifact is not measured".into();
    Ok(format!(
        "{r}@{commit}, built from source at boot as the attested compose says (no image digest: the build's output is not measured)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const COMMIT: &str = "aa65d64c191949b8df7b1ebe210f5b8f8a8e6b99";

    fn compose() -> String {
        format!("services:\n  launcher:\n    environment:\n      - GIT_REPO=https://github.com/Dstack-TEE/private-ai-gateway.git\n      - GIT_REV={COMMIT}\n    image: ghcr.io/redpill-ai/private-ai-launcher@sha256:{}\n", "c0".repeat(32))
    }

    fn claim(repo: &str, commit: Option<&str>, image: Option<&str>) -> Value {
        json!({"repo_url": repo, "repo_commit": commit, "image_digest": image, "image_provenance": null})
    }

    #[test]
    fn built_at_boot_from_the_allowed_repository() {
        let p = SourcePolicy::default();
        let c = claim(
            "https://github.com/Dstack-TEE/private-ai-gateway.git",
            Some(COMMIT),
            None,
        );
        let (v, reported) = check(Some(&c), Some(&compose()), &p);
        assert!(v.unwrap().contains("not measured"));
        assert_eq!(reported.unwrap().repo_commit.as_deref(), Some(COMMIT));
        let strict = SourcePolicy {
            allow_built_at_boot: false,
            ..p.clone()
        };
        assert!(check(Some(&c), Some(&compose()), &strict)
            .0
            .unwrap_err()
            .contains("allow_built_at_boot"));
    }

    #[test]
    fn claims_no_measurement_backs_fail() {
        let p = SourcePolicy::default();
        let repo = "https://github.com/dstack-tee/private-ai-gateway";
        // Another commit than the compose builds.
        let other = claim(repo, Some("deadbeefdeadbeef"), None);
        assert!(check(Some(&other), Some(&compose()), &p).0.is_err());
        // No bound compose at all.
        let c = claim(repo, Some(COMMIT), None);
        assert!(check(Some(&c), None, &p)
            .0
            .unwrap_err()
            .contains("measurement"));
        // Nothing claimed.
        assert!(check(None, Some(&compose()), &p).0.is_err());
        assert!(check(Some(&claim(repo, None, None)), Some(&compose()), &p)
            .0
            .is_err());
        // An image digest the compose does not pin.
        let img = claim(repo, None, Some(&format!("sha256:{}", "d1".repeat(32))));
        assert!(check(Some(&img), Some(&compose()), &p).0.is_err());
        let pinned = claim(repo, None, Some(&format!("sha256:{}", "C0".repeat(32))));
        assert!(check(Some(&pinned), Some(&compose()), &p).0.is_ok());
    }

    #[test]
    fn repositories_off_the_policy_fail() {
        let c = claim(
            "https://github.com/attacker/private-ai-gateway",
            Some(COMMIT),
            None,
        );
        let (v, _) = check(Some(&c), Some(&compose()), &SourcePolicy::default());
        assert!(v.unwrap_err().contains("not in"));
        let open = SourcePolicy {
            repositories: vec![],
            allow_built_at_boot: true,
        };
        // Open policy, but the compose still has to name what is claimed.
        assert!(check(Some(&c), Some(&compose()), &open).0.is_err());
    }
}
