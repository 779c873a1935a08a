//! Check `sigstore_provenance`: every image the attested compose pins has the provenance its
//! repository's rule requires, proven by Sigstore's transparency log (Rekor): entries looked
//! up by the image digest, each verified against the log's keys (signed entry timestamp,
//! inclusion proof, signed checkpoint, UUID), read (DSSE, in-toto, hashedrekord) and its
//! signer verified (Fulcio chain at the integrated time, OIDC identity; or a key).
//!
//! Rekor answers are immutable, so a verified image is cached by (repository, digest): only
//! a new image needs Rekor, and a Rekor outage fails closed only for a workload that changed.
//!
//! Rekor is public and append-only: anyone can log an entry about any digest. So an image
//! passes when one entry verifies in full and satisfies its rule; every other entry is
//! reported with why it did not count and can never fail the image. The work per digest is
//! bounded (`attestation.rekor_max_entries`, fetched in batches) whatever the log holds.

pub(crate) mod entry;
mod error;
pub mod policy;
pub mod rekor;
pub mod trusted_root;

pub(crate) use crate::config::attestation::DEFAULT_MAX_ENTRIES;
use async_trait::async_trait;
pub use entry::key_fingerprint;
use entry::{Identity, Signer};
pub use error::ProvenanceError;
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
    async fn uuids(&self, digest: &str) -> Result<Vec<String>, ProvenanceError>;
    /// `POST /api/v1/log/entries/retrieve {"entryUUIDs":[…]}`: the entries.
    async fn entries(&self, uuids: &[String]) -> Result<Value, ProvenanceError>;
}

/// Rekor over HTTP.
pub(crate) struct Rekor {
    http: reqwest::Client,
    base: String,
}

impl Rekor {
    pub(crate) fn new(http: reqwest::Client, base: &str) -> Self {
        Rekor {
            http,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, ProvenanceError> {
        let unavailable = ProvenanceError::Unavailable;
        let url = format!("{}{path}", self.base);
        let r = self
            .http
            .post(&url)
            .json(&body)
            .timeout(std::time::Duration::from_secs(20))
            .send()
            .await
            .map_err(|e| unavailable(format!("Rekor unreachable ({url}): {e}")))?;
        if !r.status().is_success() {
            return Err(unavailable(format!(
                "Rekor answered {} for {path}",
                r.status()
            )));
        }
        let limit = crate::venice::client::DOCUMENT_LIMIT;
        let body = crate::venice::client::read_limited(r, limit)
            .await
            .map_err(|e| unavailable(format!("Rekor answer for {path}: {e}")))?
            .ok_or_else(|| {
                unavailable(format!("Rekor answer for {path}: more than {limit} bytes"))
            })?;
        serde_json::from_slice(&body)
            .map_err(|e| unavailable(format!("Rekor answer for {path}: {e}")))
    }
}

#[async_trait]
impl Source for Rekor {
    async fn uuids(&self, digest: &str) -> Result<Vec<String>, ProvenanceError> {
        let v = self
            .post(
                "/api/v1/index/retrieve",
                serde_json::json!({"hash": format!("sha256:{digest}")}),
            )
            .await?;
        serde_json::from_value(v)
            .map_err(|e| ProvenanceError::Unavailable(format!("Rekor index answer: {e}")))
    }

    async fn entries(&self, uuids: &[String]) -> Result<Value, ProvenanceError> {
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
    pub(crate) index: std::collections::HashMap<String, Vec<String>>,
    /// UUID → entry.
    pub(crate) entries: std::collections::HashMap<String, Value>,
}

#[async_trait]
impl Source for Recorded {
    async fn uuids(&self, digest: &str) -> Result<Vec<String>, ProvenanceError> {
        self.index.get(digest).cloned().ok_or_else(|| {
            ProvenanceError::Unavailable(format!("no recorded Rekor lookup for sha256:{digest}"))
        })
    }

    /// The recorded ones; an entry not recorded is missing from the answer, as an entry the
    /// log did not return would be.
    async fn entries(&self, uuids: &[String]) -> Result<Value, ProvenanceError> {
        let mut out = serde_json::Map::new();
        for u in uuids {
            if let Some(e) = self.entries.get(&u.to_ascii_lowercase()) {
                out.insert(u.clone(), e.clone());
            }
        }
        Ok(Value::Array(vec![Value::Object(out)]))
    }
}

/// One image's result, as the report lists it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ImageResult {
    pub(crate) image: String,
    pub(crate) repository: String,
    pub(crate) digest: Option<String>,
    /// The rule applied (`fulcio`, `signed`, `compose_pinned`, `tag_only`), if any covers
    /// the image.
    pub(crate) rule: Option<RuleKind>,
    /// How many entries the log's index lists for the digest, and how many were examined.
    pub(crate) entries_listed: usize,
    pub(crate) entries_checked: usize,
    /// Each examined entry's fate: the one that satisfied the rule, and why the others did
    /// not count.
    pub(crate) entries: Vec<EntryFate>,
    /// The Fulcio identity that satisfied the rule, if one did.
    pub(crate) identity: Option<Identity>,
    pub(crate) passed: bool,
    pub(crate) outcome: String,
    /// Served from the per-digest cache (verified earlier).
    pub(crate) cached: bool,
}

/// What became of one log entry listed for an image's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct EntryFate {
    pub(crate) uuid: String,
    /// It verified in the log and satisfied the image's rule.
    pub(crate) satisfies: bool,
    pub(crate) why: String,
}

pub struct Provenance {
    root: TrustedRoot,
    policy: Vec<Rule>,
    pub(crate) deployer_named_images: policy::DeployerNamedImages,
    /// Entries examined per digest at most, in the order the index lists them.
    max_entries: usize,
    verified: Mutex<LruCache<(String, String), ImageResult>>,
}

/// Verified images remembered (each a few hundred bytes).
const CACHE_ENTRIES: usize = 1024;
/// Entries asked for in one `log/entries/retrieve`.
const BATCH: usize = 10;

impl Provenance {
    pub fn new(root: TrustedRoot, policy: Vec<Rule>) -> Self {
        Provenance {
            root,
            policy,
            deployer_named_images: Default::default(),
            max_entries: DEFAULT_MAX_ENTRIES,
            verified: Mutex::new(LruCache::new(
                NonZeroUsize::new(CACHE_ENTRIES).expect("non-zero"),
            )),
        }
    }

    pub(crate) fn with_deployer_named_images(mut self, m: policy::DeployerNamedImages) -> Self {
        self.deployer_named_images = m;
        self
    }

    /// At most `n` (at least 1) entries examined per digest.
    pub(crate) fn with_max_entries(mut self, n: usize) -> Self {
        self.max_entries = n.max(1);
        self
    }

    /// Checks every image; the check passes when every image does.
    pub(crate) async fn check(
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
            entries_listed: 0,
            entries_checked: 0,
            entries: Vec::new(),
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
        let uuids = match source.uuids(&digest).await {
            Ok(u) => u,
            Err(e) => {
                result.outcome = e.to_string();
                return result;
            }
        };
        // Newest first, as Rekor's index lists them; a flood beyond the window is not read.
        let window = &uuids[..uuids.len().min(self.max_entries)];
        let mut eval = Evaluation {
            rule,
            digest: &digest,
            root: &self.root,
            fates: Vec::new(),
            satisfied: None,
        };
        for batch in window.chunks(BATCH) {
            let batch = batch.to_vec();
            match source.entries(&batch).await {
                Ok(answer) => eval.answer(&batch, &answer),
                Err(e) => {
                    for u in &batch {
                        eval.fate(u, false, format!("not retrieved: {e}"));
                    }
                }
            }
            if eval.satisfied.is_some() {
                break;
            }
        }
        eval.finish(&mut result, uuids.len());
        if result.passed {
            self.verified
                .lock()
                .expect("poisoned")
                .put(key, result.clone());
        }
        result
    }
}

/// The short form of a UUID in reasons (its tail is the leaf hash's).
fn short(uuid: &str) -> &str {
    &uuid[uuid.len().saturating_sub(12)..]
}

/// One image's entries judged against its rule, batch by batch.
struct Evaluation<'a> {
    rule: &'a Rule,
    digest: &'a str,
    root: &'a TrustedRoot,
    fates: Vec<EntryFate>,
    /// The identity and the words for the first entry that satisfied the rule.
    satisfied: Option<(Option<Identity>, String)>,
}

impl Evaluation<'_> {
    fn fate(&mut self, uuid: &str, satisfies: bool, why: String) {
        self.fates.push(EntryFate {
            uuid: uuid.to_string(),
            satisfies,
            why,
        });
    }

    /// Judges the entries of one `log/entries/retrieve` answer for the UUIDs `asked`.
    fn answer(&mut self, asked: &[String], answer: &Value) {
        let parsed = match rekor::parse_entries(answer) {
            Ok(p) => p,
            Err(e) => {
                for u in asked {
                    self.fate(u, false, format!("not retrieved: {e}"));
                }
                return;
            }
        };
        let mut seen = Vec::new();
        for (uuid, entry) in parsed {
            // Only what was asked for counts: an answer cannot add entries of its own.
            if !asked.iter().any(|a| a.eq_ignore_ascii_case(&uuid)) {
                continue;
            }
            seen.push(uuid.to_ascii_lowercase());
            let (satisfies, why) = self.judge(entry);
            self.fate(&uuid, satisfies, why);
        }
        for u in asked {
            if !seen.contains(&u.to_ascii_lowercase()) {
                self.fate(u, false, "not retrieved: the log did not return it".into());
            }
        }
    }

    /// Whether one entry verifies in full and satisfies the rule, and why (not).
    fn judge(&mut self, entry: Result<rekor::Entry, ProvenanceError>) -> (bool, String) {
        let e = match entry {
            Ok(e) => e,
            Err(why) => return (false, format!("unreadable: {why}")),
        };
        if let Err(why) = rekor::verify_entry(&e, self.root) {
            return (false, format!("does not verify in the log: {why}"));
        }
        let material = match entry::read(&e.body, self.digest, self.root, e.integrated_time) {
            Ok(m) => m,
            Err(why) => return (false, format!("unreadable: {why}")),
        };
        if material.names_digest == Some(false) {
            return (
                false,
                format!("its body names another digest than sha256:{}", self.digest),
            );
        }
        let link = match material.names_digest {
            Some(true) => "the body names the digest",
            _ => "the digest-to-entry link rests on Rekor's index (DSSE bodies keep only hashes)",
        };
        let rule = self.rule;
        let mut misses = Vec::new();
        for s in &material.signers {
            let found = match (rule.rule, s) {
                // Anyone can log an entry signed by a key of their own about a public
                // image's digest: only the keys the rule names count.
                (RuleKind::Signed, Signer::Key(fp)) => {
                    if rule.keys.iter().any(|k| k.eq_ignore_ascii_case(fp)) {
                        Some((
                            None,
                            format!("{} entry signed by key {fp}; {link}", material.kind),
                        ))
                    } else {
                        misses.push(format!("signed by key {fp}, which the rule does not name"));
                        None
                    }
                }
                (RuleKind::Signed, Signer::Certificate(_)) => {
                    misses
                        .push("signed by a Fulcio certificate, not one of the rule's keys".into());
                    None
                }
                (RuleKind::Fulcio, Signer::Certificate(id)) => {
                    let issuer_ok = rule
                        .issuer
                        .as_deref()
                        .is_none_or(|want| id.issuer.as_deref() == Some(want));
                    let subject_ok = rule.subject_prefix.as_deref().is_none_or(|want| {
                        id.subject.as_deref().is_some_and(|s| s.starts_with(want))
                    });
                    let who = format!(
                        "{} ({})",
                        id.subject.as_deref().unwrap_or("?"),
                        id.issuer.as_deref().unwrap_or("?")
                    );
                    if issuer_ok && subject_ok {
                        Some((
                            Some(id.clone()),
                            format!("{} entry signed by {who}; {link}", material.kind),
                        ))
                    } else {
                        misses.push(format!("another identity: {who}"));
                        None
                    }
                }
                (RuleKind::Fulcio, Signer::Key(_)) => {
                    misses.push("signed by a key, not a Fulcio identity".into());
                    None
                }
                (RuleKind::ComposePinned | RuleKind::TagOnly, _) => None,
            };
            if let Some((identity, how)) = found {
                let why = format!("satisfies rule {}: {how}", rule.rule.name());
                self.satisfied.get_or_insert((identity, how));
                return (true, why);
            }
        }
        if misses.is_empty() {
            misses.push("no signer".into());
        }
        (false, misses.join("; "))
    }

    /// The image's result: passed when one entry satisfied the rule, whatever the others.
    fn finish(self, result: &mut ImageResult, listed: usize) {
        result.entries_listed = listed;
        result.entries_checked = self.fates.len();
        let mut notes = Vec::new();
        let others = self.fates.iter().filter(|f| !f.satisfies).count();
        if others > 0 {
            notes.push(format!("{others} other entries did not count"));
        }
        if listed > self.fates.len() {
            notes.push(format!(
                "{} of {listed} listed entries examined ({})",
                self.fates.len(),
                if self.satisfied.is_some() {
                    "stopped at the first that satisfied the rule"
                } else {
                    "stopped at attestation.rekor_max_entries"
                }
            ));
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        };
        match self.satisfied {
            Some((identity, how)) => {
                result.passed = true;
                result.identity = identity;
                result.outcome = format!("verified in the log; {how}{notes}");
            }
            None if listed == 0 => {
                result.outcome = format!(
                    "no Rekor entry for sha256:{} (rule {} needs one)",
                    self.digest,
                    self.rule.rule.name()
                );
            }
            None => {
                let seen: Vec<String> = self
                    .fates
                    .iter()
                    .take(5)
                    .map(|f| format!("…{}: {}", short(&f.uuid), f.why))
                    .collect();
                result.outcome = format!(
                    "no entry satisfies rule {}: {}{notes}",
                    self.rule.rule.name(),
                    seen.join("; ")
                );
            }
        }
        result.entries = self.fates;
    }
}

#[cfg(test)]
mod tests;
