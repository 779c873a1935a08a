//! Check `sigstore_provenance`: every image the attested compose pins has the provenance its
//! repository's rule requires, proven by Sigstore's transparency log (Rekor): entries looked
//! up by the image digest, each verified against the log's keys (signed entry timestamp,
//! inclusion proof, signed checkpoint, UUID), read (DSSE, in-toto, hashedrekord) and its
//! signer verified (Fulcio chain at the integrated time, OIDC identity; or a key).
//!
//! Rekor answers are immutable, so a verified image is cached by (repository, digest): only
//! a new image needs Rekor, and a Rekor outage fails closed only for a workload that changed.

pub mod entry;
pub mod policy;
pub mod rekor;
pub mod trusted_root;

use async_trait::async_trait;
use entry::{Identity, Signer};
use lru::LruCache;
use policy::{Rule, RuleKind};
use serde::Serialize;
use serde_json::Value;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use trusted_root::TrustedRoot;

/// Where Rekor's answers come from: the live log, or a capture.
#[async_trait]
pub trait Source: Send + Sync {
    /// `POST /api/v1/index/retrieve {"hash":"sha256:…"}`: entry UUIDs.
    async fn uuids(&self, digest: &str) -> Result<Vec<String>, String>;
    /// `POST /api/v1/log/entries/retrieve {"entryUUIDs":[…]}`: the entries.
    async fn entries(&self, uuids: &[String]) -> Result<Value, String>;
}

/// Rekor over HTTP.
pub struct Rekor {
    http: reqwest::Client,
    base: String,
}

impl Rekor {
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        Rekor {
            http,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let r = self
            .http
            .post(&url)
            .json(&body)
            .timeout(std::time::Duration::from_secs(20))
            .send()
            .await
            .map_err(|e| format!("Rekor unreachable ({url}): {e}"))?;
        if !r.status().is_success() {
            return Err(format!("Rekor answered {} for {path}", r.status()));
        }
        r.json()
            .await
            .map_err(|e| format!("Rekor answer for {path}: {e}"))
    }
}

#[async_trait]
impl Source for Rekor {
    async fn uuids(&self, digest: &str) -> Result<Vec<String>, String> {
        let v = self
            .post(
                "/api/v1/index/retrieve",
                serde_json::json!({"hash": format!("sha256:{digest}")}),
            )
            .await?;
        serde_json::from_value(v).map_err(|e| format!("Rekor index answer: {e}"))
    }

    async fn entries(&self, uuids: &[String]) -> Result<Value, String> {
        self.post(
            "/api/v1/log/entries/retrieve",
            serde_json::json!({"entryUUIDs": uuids}),
        )
        .await
    }
}

/// Rekor's answers as recorded (a capture, a test): lookups not recorded fail like an
/// unreachable log.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// Digest (64 hex) → entry UUIDs.
    pub index: std::collections::HashMap<String, Vec<String>>,
    /// UUID → entry.
    pub entries: std::collections::HashMap<String, Value>,
}

#[async_trait]
impl Source for Recorded {
    async fn uuids(&self, digest: &str) -> Result<Vec<String>, String> {
        self.index
            .get(digest)
            .cloned()
            .ok_or_else(|| format!("no recorded Rekor lookup for sha256:{digest}"))
    }

    async fn entries(&self, uuids: &[String]) -> Result<Value, String> {
        let mut out = serde_json::Map::new();
        for u in uuids {
            let e = self
                .entries
                .get(&u.to_ascii_lowercase())
                .ok_or_else(|| format!("no recorded Rekor entry {u}"))?;
            out.insert(u.clone(), e.clone());
        }
        Ok(Value::Array(vec![Value::Object(out)]))
    }
}

/// One image's result, as the report lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ImageResult {
    pub image: String,
    pub repository: String,
    pub digest: Option<String>,
    /// The rule applied (`fulcio`, `signed`, `compose_pinned`), if any covers the image.
    pub rule: Option<RuleKind>,
    pub entries_checked: usize,
    /// The Fulcio identity that satisfied the rule, if one did.
    pub identity: Option<Identity>,
    pub passed: bool,
    pub outcome: String,
    /// Served from the per-digest cache (verified earlier).
    pub cached: bool,
}

pub struct Provenance {
    root: TrustedRoot,
    policy: Vec<Rule>,
    verified: Mutex<LruCache<(String, String), ImageResult>>,
}

/// Verified images remembered (each a few hundred bytes).
const CACHE_ENTRIES: usize = 1024;

impl Provenance {
    pub fn new(root: TrustedRoot, policy: Vec<Rule>) -> Self {
        Provenance {
            root,
            policy,
            verified: Mutex::new(LruCache::new(
                NonZeroUsize::new(CACHE_ENTRIES).expect("non-zero"),
            )),
        }
    }

    /// Checks every image; the check passes when every image does.
    pub async fn check(
        &self,
        images: &[String],
        source: &dyn Source,
    ) -> (Result<String, String>, Vec<ImageResult>) {
        let mut results: Vec<ImageResult> = Vec::new();
        for image in images {
            // A compose may run one image as several services.
            if results.iter().all(|r| &r.image != image) {
                results.push(self.image(image, source).await);
            }
        }
        let failed: Vec<String> = results
            .iter()
            .filter(|r| !r.passed)
            .map(|r| format!("{}: {}", r.image, r.outcome))
            .collect();
        let verdict = if images.is_empty() {
            Err("the attested compose pins no images".into())
        } else if failed.is_empty() {
            Ok(format!(
                "{} images have the provenance their rule requires",
                results.len()
            ))
        } else {
            Err(failed.join("; "))
        };
        (verdict, results)
    }

    async fn image(&self, image: &str, source: &dyn Source) -> ImageResult {
        let r = policy::parse_image(image);
        let mut result = ImageResult {
            image: image.to_string(),
            repository: r.repository.clone(),
            digest: r.digest.clone(),
            rule: None,
            entries_checked: 0,
            identity: None,
            passed: false,
            outcome: String::new(),
            cached: false,
        };
        let Some(rule) = policy::rule_for(&self.policy, &r.repository) else {
            result.outcome = format!("no provenance rule covers repository {}", r.repository);
            return result;
        };
        result.rule = Some(rule.rule);
        let Some(digest) = r.digest else {
            if rule.rule == RuleKind::TagOnly {
                result.passed = true;
                result.outcome = "named by tag only, which its rule allows: the tag can point at other content later without changing any measurement".into();
            } else {
                result.outcome = "not pinned by a sha256 digest".into();
            }
            return result;
        };
        if matches!(rule.rule, RuleKind::ComposePinned | RuleKind::TagOnly) {
            result.passed = true;
            result.outcome =
                "pinned by digest in the attested compose (no log entry required)".into();
            return result;
        }
        let key = (r.repository.clone(), digest.clone());
        if let Some(hit) = self.verified.lock().expect("poisoned").get(&key) {
            let mut hit = hit.clone();
            hit.cached = true;
            return hit;
        }
        let fetched = async {
            let uuids = source.uuids(&digest).await?;
            if uuids.is_empty() {
                return Ok((0, Value::Array(Vec::new())));
            }
            Ok::<_, String>((uuids.len(), source.entries(&uuids).await?))
        }
        .await;
        match fetched {
            Err(e) => result.outcome = e,
            Ok((_, entries)) => {
                evaluate(&mut result, rule, &digest, &entries, &self.root);
                if result.passed {
                    self.verified
                        .lock()
                        .expect("poisoned")
                        .put(key, result.clone());
                }
            }
        }
        result
    }
}

/// Applies `rule` to the log's answer for `digest`: every entry must verify as a log entry,
/// and at least one must satisfy the rule.
pub fn evaluate(
    result: &mut ImageResult,
    rule: &Rule,
    digest: &str,
    entries: &Value,
    root: &TrustedRoot,
) {
    let parsed = match rekor::parse_entries(entries) {
        Ok(p) => p,
        Err(e) => {
            result.outcome = e;
            return;
        }
    };
    result.entries_checked = parsed.len();
    if parsed.is_empty() {
        result.outcome = format!(
            "no Rekor entry for sha256:{digest} (rule {:?} needs one)",
            rule.rule
        );
        return;
    }
    let mut satisfied = None;
    let mut misses = Vec::new();
    for e in &parsed {
        let short = &e.uuid[e.uuid.len().saturating_sub(12)..];
        if let Err(why) = rekor::verify_entry(e, root) {
            result.outcome = format!("entry …{short}: {why}");
            return;
        }
        let material = match entry::read(&e.body, digest, root, e.integrated_time) {
            Ok(m) => m,
            Err(why) => {
                result.outcome = format!("entry …{short}: {why}");
                return;
            }
        };
        if material.names_digest == Some(false) {
            result.outcome =
                format!("entry …{short}: its body names another digest than sha256:{digest}");
            return;
        }
        let link = match material.names_digest {
            Some(true) => "the body names the digest",
            _ => "the digest-to-entry link rests on Rekor's index (DSSE bodies keep only hashes)",
        };
        for s in &material.signers {
            match (rule.rule, s) {
                (RuleKind::Signed, Signer::Key) => {
                    satisfied.get_or_insert((
                        None,
                        format!("{} entry signed by a key; {link}", material.kind),
                    ));
                }
                (RuleKind::Signed, Signer::Certificate(id)) => {
                    satisfied.get_or_insert((
                        Some(id.clone()),
                        format!(
                            "{} entry signed by a Fulcio certificate; {link}",
                            material.kind
                        ),
                    ));
                }
                (RuleKind::Fulcio, Signer::Certificate(id)) => {
                    let issuer_ok = rule
                        .issuer
                        .as_deref()
                        .is_none_or(|want| id.issuer.as_deref() == Some(want));
                    let subject_ok = rule.subject_prefix.as_deref().is_none_or(|want| {
                        id.subject.as_deref().is_some_and(|s| s.starts_with(want))
                    });
                    if issuer_ok && subject_ok {
                        satisfied.get_or_insert((
                            Some(id.clone()),
                            format!(
                                "{} entry signed by {} ({}); {link}",
                                material.kind,
                                id.subject.as_deref().unwrap_or("?"),
                                id.issuer.as_deref().unwrap_or("?")
                            ),
                        ));
                    } else {
                        misses.push(format!(
                            "identity {} from {} does not match",
                            id.subject.as_deref().unwrap_or("?"),
                            id.issuer.as_deref().unwrap_or("?")
                        ));
                    }
                }
                (RuleKind::Fulcio, Signer::Key) => {
                    misses.push("signed by a key, not a Fulcio identity".into())
                }
                (RuleKind::ComposePinned | RuleKind::TagOnly, _) => {}
            }
        }
    }
    match satisfied {
        Some((identity, how)) => {
            result.passed = true;
            result.identity = identity;
            result.outcome = format!("{} entries verified in the log; {how}", parsed.len());
        }
        None => {
            result.outcome = format!(
                "no entry satisfies rule {:?}: {}",
                rule.rule,
                misses.join("; ")
            );
        }
    }
}

#[cfg(test)]
mod tests;
