//! Which models `attestation.prewarm` names, against what Venice lists now. An entry is an
//! id (read through `models.aliases`, so a retired id can point at its successor), a pattern
//! with `*` (`e2ee-qwen*`), or `listed` (every E2EE text model Venice lists). Venice retires
//! models monthly: an entry that matches nothing listed is reported (log, `/readyz`, the
//! status page), never silently dropped.

use crate::config::ModelsSection;

/// Every E2EE text model Venice lists.
pub(crate) const LISTED: &str = "listed";

/// One prewarm entry and the listed models it selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selected {
    pub(crate) entry: String,
    pub(crate) models: Vec<String>,
    /// A pattern (or `listed`): satisfied once one of its models verifies, since Venice
    /// adds and retires models under it. An id: its one model must verify.
    pub(crate) pattern: bool,
}

impl Selected {
    /// Nothing listed matches it: a retired id, a misspelt one, a pattern for a family gone.
    pub(crate) fn unmatched(&self) -> bool {
        self.models.is_empty()
    }
}

/// Whether `id` matches `pattern`, where `*` stands for any run of characters.
pub(crate) fn glob(pattern: &str, id: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = id.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// `entries` before any list was fetched: each id as itself (aliases applied), patterns
/// selecting nothing yet.
pub(crate) fn as_configured(entries: &[String], aliases: &ModelsSection) -> Vec<Selected> {
    entries
        .iter()
        .map(|entry| {
            let pattern = entry == LISTED || entry.contains('*');
            Selected {
                entry: entry.clone(),
                models: if pattern {
                    Vec::new()
                } else {
                    vec![aliases.resolve(entry).unwrap_or(entry).to_string()]
                },
                pattern,
            }
        })
        .collect()
}

/// `entries` against the ids Venice lists (in its order), aliases applied to ids.
pub(crate) fn select(
    entries: &[String],
    listed: &[&str],
    aliases: &ModelsSection,
) -> Vec<Selected> {
    entries
        .iter()
        .map(|entry| {
            let pattern = entry == LISTED || entry.contains('*');
            let models = if entry == LISTED {
                listed.iter().map(|m| m.to_string()).collect()
            } else if pattern {
                listed
                    .iter()
                    .filter(|m| glob(entry, m))
                    .map(|m| m.to_string())
                    .collect()
            } else {
                let id = aliases.resolve(entry).unwrap_or(entry);
                listed
                    .iter()
                    .filter(|m| **m == id)
                    .map(|m| m.to_string())
                    .collect()
            };
            Selected {
                entry: entry.clone(),
                models,
                pattern,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &[&str] = &[
        "e2ee-glm-5-1",
        "e2ee-qwen3-6-35b-a3b",
        "e2ee-qwen3-vl-30b-a3b-p",
    ];

    fn entries(e: &[&str]) -> Vec<String> {
        e.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn patterns_match_like_shell_globs() {
        assert!(glob("e2ee-qwen*", "e2ee-qwen3-6-35b-a3b"));
        assert!(glob("*-p", "e2ee-qwen3-vl-30b-a3b-p"));
        assert!(glob("e2ee-*-a3b*", "e2ee-qwen3-vl-30b-a3b-p"));
        assert!(glob("exact", "exact") && !glob("exact", "exactly"));
        assert!(!glob("e2ee-glm*", "e2ee-qwen3-6-35b-a3b"));
        assert!(!glob("*-q", "e2ee-qwen3-vl-30b-a3b-p"));
        assert!(glob("*", "anything"));
    }

    #[test]
    fn entries_select_what_venice_lists() {
        let none = ModelsSection::default();
        let got = select(
            &entries(&["listed", "e2ee-qwen*", "e2ee-glm-5-1"]),
            LIST,
            &none,
        );
        assert_eq!(got[0].models, LIST);
        assert_eq!(
            got[1].models,
            ["e2ee-qwen3-6-35b-a3b", "e2ee-qwen3-vl-30b-a3b-p"]
        );
        assert_eq!(
            (got[2].models.as_slice(), got[2].pattern),
            (&["e2ee-glm-5-1".to_string()][..], false)
        );
        assert!(got[0].pattern && got[1].pattern);
        // A retired id selects nothing, loudly; an alias points it at its successor.
        let retired = select(&entries(&["e2ee-qwen3-6-27b", "e2ee-gemma*"]), LIST, &none);
        assert!(retired.iter().all(Selected::unmatched));
        let mut aliases = ModelsSection::default();
        aliases
            .aliases
            .insert("e2ee-qwen3-6-27b".into(), "e2ee-qwen3-6-35b-a3b".into());
        let remapped = select(&entries(&["e2ee-qwen3-6-27b"]), LIST, &aliases);
        assert_eq!(remapped[0].models, ["e2ee-qwen3-6-35b-a3b"]);
        assert_eq!(remapped[0].entry, "e2ee-qwen3-6-27b");
    }
}
