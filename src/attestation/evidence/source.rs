//! Which public source the attested workload runs, read from the compose MRCONFIGID binds,
//! never from what the report claims. The policy names the routing gateway's source (its
//! repositories, and the images built from them): a compose that builds one of those
//! repositories at boot, or runs one of those images pinned by digest, makes the attested
//! CVM that gateway. Venice's `source_provenance` claim (ACI §4.1) is unsigned: it is
//! compared with what the compose runs, and reported, but decides nothing.

use super::compose::{AppCompose, Service, Setting};
use crate::attestation::provenance::policy::parse_image;
pub(crate) use crate::config::attestation::SourcePolicy;
use serde::Serialize;
use serde_json::Value;

/// What the measured compose runs of the gateway's source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum GatewaySource {
    /// A launcher builds the repository at boot; `commit` as the compose sets it.
    Built {
        service: String,
        repository: String,
        commit: Option<Setting>,
    },
    /// A service runs an image of the source, pinned by digest.
    Image {
        service: String,
        repository: String,
        digest: String,
    },
}

impl GatewaySource {
    /// The measured fact, in words, for the report.
    pub(crate) fn describe(&self) -> String {
        match self {
            GatewaySource::Built {
                service,
                repository,
                commit,
            } => format!(
                "service `{service}` builds {repository}@{} at boot",
                commit.as_ref().map_or("<no commit>", |c| c.value.as_str())
            ),
            GatewaySource::Image {
                service,
                repository,
                digest,
            } => format!("service `{service}` runs {repository}@sha256:{digest}"),
        }
    }
}

/// What the report claims, as reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct SourceClaim {
    pub(crate) repo_url: Option<String>,
    pub(crate) repo_commit: Option<String>,
    pub(crate) image_digest: Option<String>,
    /// How the claim compares with what the measured compose runs.
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

/// Where launchers name the commit they build (the private-ai-gateway launcher's
/// environment, dstack git-launcher's pin file, common CI names).
const COMMIT_KEYS: [&str; 6] = [
    "GIT_REV",
    "GIT_COMMIT",
    "GIT_SHA",
    "COMMIT_SHA",
    "COMMIT",
    "REVISION",
];

/// What a service is told to build: a repository the policy names, in any of its settings or
/// arguments (launchers name them in many ways; the value is compared exactly, and only a
/// measured one counts), and the commit under a launcher's name for it, else the one full
/// commit hash the service names (two: ambiguous, none).
fn built_by(s: &Service, repos: &[String]) -> Option<(String, Option<Setting>)> {
    let values = || s.settings.values().chain(&s.args);
    let repository = values()
        .filter_map(|v| normalize_repo(v.measured()?))
        .find(|r| repos.contains(r))?;
    let keyed = COMMIT_KEYS.iter().find_map(|k| s.settings.get(*k)).cloned();
    let commit = keyed.or_else(|| {
        let mut hashes = values().filter(|v| full_commit(&v.value));
        match (hashes.next(), hashes.next()) {
            (Some(only), None) => Some(only.clone()),
            _ => None,
        }
    });
    Some((repository, commit))
}

/// The gateway's source among what `compose` runs, if it runs any.
pub(crate) fn gateway_source(compose: &AppCompose, policy: &SourcePolicy) -> Option<GatewaySource> {
    let repos: Vec<String> = policy
        .repositories
        .iter()
        .filter_map(|r| normalize_repo(r))
        .collect();
    let built = compose.services.iter().find_map(|s| {
        let (repository, commit) = built_by(s, &repos)?;
        Some(GatewaySource::Built {
            service: s.name.clone(),
            repository,
            commit,
        })
    });
    built.or_else(|| {
        compose.services.iter().find_map(|s| {
            let image = parse_image(s.image.as_ref()?.measured()?);
            let named = policy
                .images
                .iter()
                .any(|i| parse_image(i).repository == image.repository);
            Some(GatewaySource::Image {
                service: s.name.clone(),
                repository: image.repository.clone(),
                digest: image.digest.filter(|_| named)?,
            })
        })
    })
}

/// The `source_provenance` check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Pass(String),
    Fail(String),
    /// No compose is bound, so nothing says whether the workload runs the gateway.
    Skipped(String),
    /// Only on the measured fact that the compose runs no gateway source (and no claim).
    NotApplicable(String),
}

fn field(v: &Value, name: &str) -> Option<String> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn full_commit(c: &str) -> bool {
    matches!(c.len(), 40 | 64) && c.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks what the bound compose runs of the gateway's source against `policy`, and Venice's
/// `claim` against it. `compose` is the compose MRCONFIGID binds (`None`: none is bound);
/// `gateway` is `gateway_source` of it.
pub(crate) fn check(
    claim: Option<&Value>,
    compose: Option<&AppCompose>,
    gateway: Option<&GatewaySource>,
    policy: &SourcePolicy,
) -> (Verdict, Option<SourceClaim>) {
    let mut c = claim.filter(|v| v.is_object()).map(|v| SourceClaim {
        repo_url: field(v, "repo_url"),
        repo_commit: field(v, "repo_commit"),
        image_digest: field(v, "image_digest"),
        corroboration: String::new(),
    });
    let verdict = verdict(c.as_mut(), compose, gateway, policy);
    if let Some(c) = c.as_mut() {
        if c.corroboration.is_empty() {
            c.corroboration = match &verdict {
                Verdict::Pass(_) => "the measured compose runs what it claims".into(),
                Verdict::Fail(why) | Verdict::Skipped(why) | Verdict::NotApplicable(why) => {
                    why.clone()
                }
            };
        }
    }
    (verdict, c)
}

fn verdict(
    claim: Option<&mut SourceClaim>,
    compose: Option<&AppCompose>,
    gateway: Option<&GatewaySource>,
    policy: &SourcePolicy,
) -> Verdict {
    let Some(_) = compose else {
        let why = "no compose is bound by MRCONFIGID, so nothing measured says what runs";
        return match claim {
            None => Verdict::Skipped(why.into()),
            Some(_) => Verdict::Fail(format!("Venice claims a source, but {why}")),
        };
    };
    let Some(gateway) = gateway else {
        return match claim {
            None => Verdict::NotApplicable(
                "the compose MRCONFIGID binds runs none of the gateway's sources (attestation.source_provenance): not a gateway; its images are checked by sigstore_provenance".into(),
            ),
            Some(c) => Verdict::Fail(match &c.image_digest {
                Some(d) => format!(
                    "Venice claims image {d}, but no service of the measured compose runs an image attestation.source_provenance.images names"
                ),
                None => format!(
                    "Venice claims source {}, but the measured compose builds no repository attestation.source_provenance.repositories names",
                    c.repo_url.as_deref().unwrap_or("<none>")
                ),
            }),
        };
    };
    let measured = match gateway {
        GatewaySource::Built {
            service,
            repository,
            commit,
        } => {
            let commit = match commit {
                None => {
                    return Verdict::Fail(format!(
                        "service `{service}` builds {repository} at boot but the compose names no single commit"
                    ))
                }
                Some(c) if !c.deployer_vars.is_empty() => {
                    return Verdict::Fail(format!(
                        "service `{service}` builds {repository} at a commit the deployer sets ({} in allowed_envs), which nothing measures",
                        c.deployer_vars.join(", ")
                    ))
                }
                Some(c) if !full_commit(&c.value) => {
                    return Verdict::Fail(format!(
                        "service `{service}` builds {repository} at `{}`, not a full commit hash",
                        c.value
                    ))
                }
                Some(c) => c.value.to_ascii_lowercase(),
            };
            if !policy.allow_built_at_boot {
                return Verdict::Fail(format!(
                    "{repository}@{commit} is built from source at boot with no image digest, which attestation.source_provenance.allow_built_at_boot refuses"
                ));
            }
            if let Some(c) = &claim {
                if c.image_digest.is_some() {
                    return Verdict::Fail(format!(
                        "Venice claims an image, but the measured compose builds {repository} from source"
                    ));
                }
                if c.repo_commit.as_deref().map(str::to_ascii_lowercase) != Some(commit.clone()) {
                    return Verdict::Fail(format!(
                        "Venice claims commit {}, the measured compose builds {commit}",
                        c.repo_commit.as_deref().unwrap_or("<none>")
                    ));
                }
            }
            (
                repository,
                format!(
                    "{repository}@{commit}, built from source at boot by service `{service}` as the measured compose says (the build's output is not measured)"
                ),
            )
        }
        GatewaySource::Image {
            repository, digest, ..
        } => {
            if let Some(d) = claim.as_ref().and_then(|c| c.image_digest.as_deref()) {
                if !d.trim_start_matches("sha256:").eq_ignore_ascii_case(digest) {
                    return Verdict::Fail(format!(
                        "Venice claims image {d}, the measured compose runs sha256:{digest}"
                    ));
                }
            }
            (repository, gateway.describe())
        }
    };
    let (repository, detail) = measured;
    let Some(c) = claim else {
        return Verdict::Pass(format!("{detail}; Venice's report claims no source"));
    };
    let Some(url) = c.repo_url.as_deref() else {
        return Verdict::Fail("Venice's source claim names no repository (repo_url)".into());
    };
    let claimed = normalize_repo(url);
    // An image's own repository is a registry path: the claim names the source it was built
    // from, which must be one the policy lists.
    let same = match gateway {
        GatewaySource::Built { .. } => claimed.as_deref() == Some(repository.as_str()),
        GatewaySource::Image { .. } => policy
            .repositories
            .iter()
            .any(|r| normalize_repo(r).is_some_and(|r| Some(r) == claimed)),
    };
    if same {
        Verdict::Pass(detail)
    } else {
        Verdict::Fail(format!(
            "Venice claims repository {url}, the measured compose runs {repository}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const COMMIT: &str = "aa65d64c191949b8df7b1ebe210f5b8f8a8e6b99";
    const REPO: &str = "https://github.com/Dstack-TEE/private-ai-gateway.git";

    fn compose_with(env: &str, allowed: &[&str]) -> AppCompose {
        let yaml = format!("services:\n  launcher:\n    image: ghcr.io/redpill-ai/private-ai-launcher@sha256:{}\n    environment:\n{env}", "c0".repeat(32));
        AppCompose::parse(
            &json!({"docker_compose_file": yaml, "allowed_envs": allowed}).to_string(),
        )
        .unwrap()
    }

    fn launcher(repo: &str, commit: &str) -> AppCompose {
        compose_with(
            &format!("      - GIT_REPO={repo}\n      - GIT_REV={commit}\n"),
            &[],
        )
    }

    fn claim(repo: Option<&str>, commit: Option<&str>, image: Option<&str>) -> Value {
        json!({"repo_url": repo, "repo_commit": commit, "image_digest": image, "image_provenance": null})
    }

    fn run(claimed: Option<&Value>, compose: &AppCompose, p: &SourcePolicy) -> Verdict {
        let g = gateway_source(compose, p);
        check(claimed, Some(compose), g.as_ref(), p).0
    }

    fn passes(v: Verdict) -> bool {
        matches!(v, Verdict::Pass(_))
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
    fn built_at_boot_from_the_gateways_repository() {
        let p = SourcePolicy::default();
        let c = launcher(REPO, COMMIT);
        assert!(matches!(
            gateway_source(&c, &p),
            Some(GatewaySource::Built { .. })
        ));
        let claimed = claim(Some(REPO), Some(COMMIT), None);
        let (v, reported) = check(
            Some(&claimed),
            Some(&c),
            gateway_source(&c, &p).as_ref(),
            &p,
        );
        assert!(
            matches!(&v, Verdict::Pass(d) if d.contains("not measured")),
            "{v:?}"
        );
        assert_eq!(reported.unwrap().repo_commit.as_deref(), Some(COMMIT));
        // No claim at all: the measurement decides alone.
        assert!(passes(run(None, &c, &p)));
        let strict = SourcePolicy {
            allow_built_at_boot: false,
            ..p.clone()
        };
        assert!(!passes(run(Some(&claimed), &c, &strict)));
    }

    #[test]
    fn what_the_compose_does_not_measure_fails() {
        let p = SourcePolicy::default();
        // Another host serving a repository of the same owner/name is not the gateway.
        let attacker = launcher(
            "https://git.attacker.example/Dstack-TEE/private-ai-gateway.git",
            COMMIT,
        );
        assert_eq!(gateway_source(&attacker, &p), None);
        let claimed = claim(Some(REPO), Some(COMMIT), None);
        assert!(!passes(run(Some(&claimed), &attacker, &p)));
        // A short commit, or one the deployer chooses.
        let short = launcher(REPO, "aa65d64");
        assert!(!passes(run(None, &short, &p)));
        let chosen = compose_with(
            &format!("      - GIT_REPO={REPO}\n      - GIT_REV=${{REV:-{COMMIT}}}\n"),
            &["REV"],
        );
        assert!(matches!(run(None, &chosen, &p), Verdict::Fail(w) if w.contains("REV")));
        // A repository the deployer chooses is no gateway source at all.
        let repo_var = compose_with(
            &format!("      - GIT_REPO=${{REPO:-{REPO}}}\n      - GIT_REV={COMMIT}\n"),
            &["REPO"],
        );
        assert_eq!(gateway_source(&repo_var, &p), None);
        // A claim that is not what runs.
        let c = launcher(REPO, COMMIT);
        for bad in [
            claim(
                Some(REPO),
                Some("deadbeefdeadbeefdeadbeefdeadbeefdeadbeef"),
                None,
            ),
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
        ] {
            assert!(!passes(run(Some(&bad), &c, &p)), "{bad}");
        }
        // No compose bound.
        assert!(matches!(
            check(Some(&claimed), None, None, &p).0,
            Verdict::Fail(_)
        ));
        assert!(matches!(check(None, None, None, &p).0, Verdict::Skipped(_)));
    }

    #[test]
    fn an_image_digest_counts_only_on_a_service_running_the_gateways_image() {
        let digest = "c0".repeat(32);
        let c = launcher("https://github.com/someone/else", COMMIT);
        let image_claim = claim(Some(REPO), None, Some(&format!("sha256:{digest}")));
        // The compose pins that digest, but on a launcher the policy does not name.
        let p = SourcePolicy::default();
        assert!(!passes(run(Some(&image_claim), &c, &p)));
        let named = SourcePolicy {
            images: vec!["ghcr.io/redpill-ai/private-ai-launcher".into()],
            ..p.clone()
        };
        assert!(matches!(
            gateway_source(&c, &named),
            Some(GatewaySource::Image { .. })
        ));
        assert!(passes(run(Some(&image_claim), &c, &named)));
        let other = claim(
            Some(REPO),
            None,
            Some(&format!("sha256:{}", "d1".repeat(32))),
        );
        assert!(!passes(run(Some(&other), &c, &named)));
    }

    #[test]
    fn launchers_name_their_source_in_many_ways() {
        let p = SourcePolicy::default();
        let built = |yaml: &str, allowed: &[&str]| {
            let c = AppCompose::parse(
                &json!({"docker_compose_file": yaml, "allowed_envs": allowed}).to_string(),
            )
            .unwrap();
            match gateway_source(&c, &p) {
                Some(GatewaySource::Built {
                    service, commit, ..
                }) => Some((service, commit.map(|c| c.value))),
                _ => None,
            }
        };
        // dstack git-launcher's pin file, mounted as a config (the gateway's deploy/compose.yaml).
        let git_launcher = format!("services:\n  private-ai-gateway:\n    image: docker.io/dstacktee/git-launcher@sha256:{}\n    command: [\"/etc/git-launcher/gateway.conf\"]\n    configs:\n      - source: gateway-pin\n        target: /etc/git-launcher/gateway.conf\nconfigs:\n  gateway-pin:\n    content: |\n      REPO_URL={REPO}\n      COMMIT_SHA={COMMIT}\n      WORK_DIR=/var/lib/git-launcher/private-ai-gateway\n", "44".repeat(32));
        assert_eq!(
            built(&git_launcher, &[]),
            Some(("private-ai-gateway".into(), Some(COMMIT.into())))
        );
        // The same with the commit left to the deployer, as that compose ships it.
        let deployer = git_launcher.replace(COMMIT, "${PRIVATE_AI_GATEWAY_REPO_COMMIT:?set it}");
        let (_, commit) = built(&deployer, &["PRIVATE_AI_GATEWAY_REPO_COMMIT"]).unwrap();
        assert_eq!(commit.as_deref(), Some(""));
        // Arguments, and a commit under no known name: the one full hash the service names.
        let args =
            format!("services:\n  l:\n    command: [\"--repo={REPO}\", \"--at\", \"{COMMIT}\"]\n");
        assert_eq!(built(&args, &[]), Some(("l".into(), Some(COMMIT.into()))));
        let two = format!(
            "services:\n  l:\n    environment:\n      A: {REPO}\n      B: {COMMIT}\n      C: {}\n",
            "b".repeat(40)
        );
        assert_eq!(
            built(&two, &[]),
            Some(("l".into(), None)),
            "two hashes: ambiguous"
        );
        let v = run(
            None,
            &AppCompose::parse(&json!({"docker_compose_file": two}).to_string()).unwrap(),
            &p,
        );
        assert!(matches!(v, Verdict::Fail(w) if w.contains("no single commit")));
    }

    #[test]
    fn not_a_gateway_without_a_claim_is_not_applicable() {
        let c = launcher("https://github.com/someone/else", COMMIT);
        assert!(matches!(
            run(None, &c, &SourcePolicy::default()),
            Verdict::NotApplicable(_)
        ));
        // An open policy takes nothing for a gateway.
        let open = SourcePolicy {
            repositories: vec![],
            ..SourcePolicy::default()
        };
        assert_eq!(gateway_source(&launcher(REPO, COMMIT), &open), None);
    }
}
