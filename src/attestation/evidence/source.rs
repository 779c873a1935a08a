//! Which public source the attested workload runs: only what a reviewed workload says of
//! the measured compose (its `gateway`), never a name found in the compose or a claim. Venice's
//! `source_provenance` claim (ACI §4.1) is unsigned: it is compared with the reviewed gateway
//! and reported, but decides nothing.

use super::review::{ReviewStatus, WorkloadReview};
use serde::Serialize;
use serde_json::Value;

/// The routing gateway a reviewed workload runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct GatewaySource {
    /// The reviewed workload that names it.
    pub(crate) workload: String,
    pub(crate) service: String,
    pub(crate) repository: String,
    pub(crate) commit: String,
    /// The digest of the image the gateway's service runs, when pinned.
    pub(crate) image_digest: Option<String>,
}

impl GatewaySource {
    /// The reviewed fact, in words, for the report.
    pub(crate) fn describe(&self) -> String {
        format!(
            "service `{}` of reviewed workload `{}` builds or runs {}@{}",
            self.service, self.workload, self.repository, self.commit
        )
    }
}

/// What the report claims, as reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct SourceClaim {
    pub(crate) repo_url: Option<String>,
    pub(crate) repo_commit: Option<String>,
    pub(crate) image_digest: Option<String>,
    /// How the claim compares with the reviewed gateway.
    pub(crate) corroboration: String,
}

/// A repository URL as `host/owner/name` (lowercase, no `.git` or trailing `/`), or `None`
/// when it is not an https URL of a repository path. No credentials, port, query or fragment.
pub(crate) fn normalize_repo(url: &str) -> Option<String> {
    let lower = url.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("git+https://"))?;
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    if rest.contains(['@', '?', '#', ' ', '\\']) {
        return None;
    }
    let mut parts = rest.split('/');
    let host = parts.next()?;
    let path: Vec<&str> = parts.collect();
    let valid_host = !host.is_empty()
        && !host.contains(':')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let valid_path = path.len() >= 2
        && path
            .iter()
            .all(|p| !p.is_empty() && *p != "." && *p != "..");
    (valid_host && valid_path).then(|| rest.to_string())
}

/// The `source_provenance` check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Pass(String),
    Fail(String),
    /// Nothing reviewed says what runs (no compose bound, or not a reviewed workload).
    Skipped(String),
    /// Only on the reviewed fact that the workload runs no gateway (and no claim).
    NotApplicable(String),
}

fn field(v: &Value, name: &str) -> Option<String> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Checks Venice's `claim` against the reviewed gateway. `review` is the workload policy's
/// verdict on the compose MRCONFIGID binds (`None`: none is bound); `gateway` the gateway of
/// the reviewed workload it matched.
pub(crate) fn check(
    claim: Option<&Value>,
    review: Option<&WorkloadReview>,
    gateway: Option<&GatewaySource>,
) -> (Verdict, Option<SourceClaim>) {
    let mut c = claim.filter(|v| v.is_object()).map(|v| SourceClaim {
        repo_url: field(v, "repo_url"),
        repo_commit: field(v, "repo_commit"),
        image_digest: field(v, "image_digest"),
        corroboration: String::new(),
    });
    let verdict = verdict(c.as_ref(), review, gateway);
    if let Some(c) = c.as_mut() {
        c.corroboration = match &verdict {
            Verdict::Pass(_) => "the reviewed workload runs what it claims".into(),
            Verdict::Fail(why) | Verdict::Skipped(why) | Verdict::NotApplicable(why) => why.clone(),
        };
    }
    (verdict, c)
}

fn verdict(
    claim: Option<&SourceClaim>,
    review: Option<&WorkloadReview>,
    gateway: Option<&GatewaySource>,
) -> Verdict {
    let Some(review) = review else {
        let why = "no compose is bound by MRCONFIGID, so nothing measured says what runs";
        return match claim {
            None => Verdict::Skipped(why.into()),
            Some(_) => Verdict::Fail(format!("Venice claims a source, but {why}")),
        };
    };
    if review.status != ReviewStatus::Reviewed {
        return Verdict::Skipped(
            "the measured compose is not a reviewed workload (check workload_policy), so nothing reviewed says which source it runs".into(),
        );
    }
    let workload = review.workload.as_deref().unwrap_or_default();
    let Some(g) = gateway else {
        return match claim {
            None => Verdict::NotApplicable(format!(
                "the compose MRCONFIGID binds is reviewed workload `{workload}`, which runs no gateway source"
            )),
            Some(c) => Verdict::Fail(format!(
                "Venice claims source {}, but reviewed workload `{workload}` runs no gateway",
                c.repo_url.as_deref().or(c.image_digest.as_deref()).unwrap_or("<none>")
            )),
        };
    };
    let detail = format!(
        "{}@{}, run by service `{}` as reviewed in `{workload}` (a build at boot fixes the instruction, not the binary it produces)",
        g.repository, g.commit, g.service
    );
    let Some(c) = claim else {
        return Verdict::Pass(format!("{detail}; Venice's report claims no source"));
    };
    let Some(url) = c.repo_url.as_deref() else {
        return Verdict::Fail("Venice's source claim names no repository (repo_url)".into());
    };
    if normalize_repo(url).is_none() || normalize_repo(url) != normalize_repo(&g.repository) {
        return Verdict::Fail(format!(
            "Venice claims repository {url}, the reviewed gateway is {}",
            g.repository
        ));
    }
    if let Some(commit) = &c.repo_commit {
        if !commit.eq_ignore_ascii_case(&g.commit) {
            return Verdict::Fail(format!(
                "Venice claims commit {commit}, the reviewed gateway is at {}",
                g.commit
            ));
        }
    }
    if let Some(d) = &c.image_digest {
        let same = g
            .image_digest
            .as_deref()
            .is_some_and(|g| d.trim_start_matches("sha256:").eq_ignore_ascii_case(g));
        if !same {
            return Verdict::Fail(format!(
                "Venice claims image {d}, the reviewed gateway's service runs {}",
                g.image_digest
                    .as_deref()
                    .map_or("no pinned image".to_string(), |g| format!("sha256:{g}"))
            ));
        }
    }
    if c.repo_commit.is_none() && c.image_digest.is_none() {
        return Verdict::Fail("Venice's source claim names neither a commit nor an image".into());
    }
    Verdict::Pass(detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const COMMIT: &str = "aa65d64c191949b8df7b1ebe210f5b8f8a8e6b99";
    const REPO: &str = "https://github.com/Dstack-TEE/private-ai-gateway.git";

    fn review(status: ReviewStatus) -> WorkloadReview {
        WorkloadReview {
            digest: "d".into(),
            compose_hash: "c".into(),
            os_image_hash: None,
            status,
            workload: Some("gw".into()),
            reviewed_from: None,
            refusals: vec![],
            closest: None,
            differences: vec![],
            unmeasured: vec![],
            gateway: None,
            policy_lines: None,
        }
    }

    fn gateway() -> GatewaySource {
        GatewaySource {
            workload: "gw".into(),
            service: "launcher".into(),
            repository: REPO.into(),
            commit: COMMIT.into(),
            image_digest: None,
        }
    }

    fn claim(repo: Option<&str>, commit: Option<&str>, image: Option<&str>) -> Value {
        json!({"repo_url": repo, "repo_commit": commit, "image_digest": image})
    }

    #[test]
    fn repositories_compare_exactly_after_normalization() {
        let n = |u: &str| normalize_repo(u);
        assert_eq!(
            n("https://github.com/Dstack-TEE/private-ai-gateway.git/").as_deref(),
            Some("github.com/dstack-tee/private-ai-gateway")
        );
        assert_eq!(
            n(REPO),
            n("https://GITHUB.com/dstack-tee/private-ai-gateway")
        );
        for bad in [
            "http://github.com/Dstack-TEE/private-ai-gateway",
            "https://git.attacker.example/Dstack-TEE/private-ai-gateway.git",
            "https://github.com.attacker.example/Dstack-TEE/private-ai-gateway",
            "https://user@github.com/Dstack-TEE/private-ai-gateway",
            "https://github.com:8443/Dstack-TEE/private-ai-gateway",
            "https://github.com/Dstack-TEE/private-ai-gateway/../evil",
            "https://github.com/Dstack-TEE",
            "ssh://git@github.com/Dstack-TEE/private-ai-gateway",
        ] {
            assert_ne!(n(bad), n(REPO), "{bad}");
        }
    }

    #[test]
    fn the_claim_must_be_the_reviewed_gateway() {
        let r = review(ReviewStatus::Reviewed);
        let g = gateway();
        let run = |c: Option<Value>| check(c.as_ref(), Some(&r), Some(&g)).0;
        assert!(matches!(run(None), Verdict::Pass(_)));
        assert!(matches!(
            run(Some(claim(Some(REPO), Some(COMMIT), None))),
            Verdict::Pass(_)
        ));
        for bad in [
            claim(Some(REPO), Some(&"b".repeat(40)), None),
            claim(None, Some(COMMIT), None),
            claim(
                Some("https://github.com/attacker/private-ai-gateway"),
                Some(COMMIT),
                None,
            ),
            claim(
                Some(REPO),
                Some(COMMIT),
                Some(&format!("sha256:{}", "c0".repeat(32))),
            ),
            claim(Some(REPO), None, None),
        ] {
            assert!(matches!(run(Some(bad.clone())), Verdict::Fail(_)), "{bad}");
        }
    }

    #[test]
    fn without_a_reviewed_gateway_nothing_is_a_gateway() {
        let claimed = claim(Some(REPO), Some(COMMIT), None);
        // A reviewed workload without a gateway: n/a, or a claim that is refuted.
        let r = review(ReviewStatus::Reviewed);
        assert!(matches!(
            check(None, Some(&r), None).0,
            Verdict::NotApplicable(_)
        ));
        assert!(matches!(
            check(Some(&claimed), Some(&r), None).0,
            Verdict::Fail(_)
        ));
        // Not reviewed, or no compose bound: nothing says what runs.
        let u = review(ReviewStatus::Unreviewed);
        assert!(matches!(
            check(Some(&claimed), Some(&u), None).0,
            Verdict::Skipped(_)
        ));
        assert!(matches!(
            check(Some(&claimed), None, None).0,
            Verdict::Fail(_)
        ));
        assert!(matches!(check(None, None, None).0, Verdict::Skipped(_)));
    }
}
