//! What users copy: the README, the docs, `conf/`, the Kubernetes manifests and the
//! Dockerfile name only models Venice lists today (the simulated catalog mirrors that list)
//! and none its deprecation table schedules for retirement (tests/data/venice-deprecations.json,
//! from Venice's api-docs); the simulated catalog lists none Venice has retired.

use std::path::{Path, PathBuf};
use venice_e2ee_tools::sim::MODELS;

/// Every text file under `path`.
fn files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            files(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_none_or(|e| e != "pem" && e != "der") {
        out.push(path.to_path_buf());
    }
}

/// `e2ee-…` words with a digit after the prefix: model ids (header and metric names have
/// none); a word ending in `*` is a pattern (`e2ee-qwen*`), not an id.
fn model_ids(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices("e2ee-").filter_map(|(at, _)| {
        let word = &text[at..];
        let end = word
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .unwrap_or(word.len());
        let pattern = word[end..].starts_with('*');
        let word = word[..end].trim_end_matches('-');
        let preceded = text[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '-');
        let id = word["e2ee-".len()..].contains(|c: char| c.is_ascii_digit());
        (!preceded && !pattern && id).then_some(word)
    })
}

#[test]
fn docs_and_manifests_name_only_models_venice_lists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    for p in [
        "README.md",
        "SECURITY.md",
        "Dockerfile",
        "docs",
        "conf",
        "k8s",
    ] {
        files(&root.join(p), &mut paths);
    }
    let listed: Vec<&str> = MODELS.iter().filter(|m| m.e2ee).map(|m| m.id).collect();
    let retiring = deprecations();
    let mut named = 0;
    for path in &paths {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        for id in model_ids(&text) {
            named += 1;
            assert!(
                listed.contains(&id),
                "{} names {id}, which Venice does not list",
                path.display()
            );
            assert!(
                !retiring.iter().any(|(r, _)| r == id),
                "{} names {id}, which Venice retires: take the model from /v1/models, or `prewarm: listed`",
                path.display()
            );
        }
    }
    assert!(named > 10, "the scan finds the model names the docs use");
}

/// Venice's scheduled and past retirements: (id, removal time as served).
fn deprecations() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/venice-deprecations.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let list: Vec<(String, String)> = v["deprecations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_string(),
                d["removes_at"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        list.iter().any(|(id, _)| id.starts_with("e2ee-")),
        "the table is read"
    );
    list
}

/// The simulator follows Venice: a model past its removal date is not in its catalog.
#[test]
fn the_simulated_catalog_lists_no_retired_model() {
    let today = time::OffsetDateTime::now_utc();
    for (id, removes_at) in deprecations() {
        let at = time::OffsetDateTime::parse(
            &removes_at,
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        if at <= today {
            assert!(
                !MODELS.iter().any(|m| m.id == id),
                "the simulated Venice still lists {id}, retired {removes_at}"
            );
        }
    }
}

#[test]
fn model_ids_are_read_as_written() {
    let text =
        "model: e2ee-qwen3-6-35b-a3b, header x-venice-e2ee-session, `e2ee-glm-5-1`, `e2ee-qwen*`.";
    let ids: Vec<&str> = model_ids(text).collect();
    assert_eq!(ids, ["e2ee-qwen3-6-35b-a3b", "e2ee-glm-5-1"]);
}

/// Every setting the configuration defines (as `check-config` prints it) has its row in
/// docs/CONFIGURATION.md and its line in conf/proxy.yaml (a comment where setting it would
/// replace a compiled-in default). Secrets are never printed, and are documented by hand.
#[test]
fn every_setting_is_documented_and_shown() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let (docs, conf_text) = (read("docs/CONFIGURATION.md"), read("conf/proxy.yaml"));
    let conf: serde_yaml::Value = serde_yaml::from_str(&conf_text).unwrap();
    let defaults = serde_yaml::to_value(venice_e2ee_proxy::config::Config::default()).unwrap();
    let mut missing = Vec::new();
    let mut seen = 0;
    for (section, fields) in defaults.as_mapping().unwrap() {
        let section = section.as_str().unwrap();
        for field in fields.as_mapping().unwrap().keys() {
            let field = field.as_str().unwrap();
            seen += 1;
            let name = format!("{section}.{field}");
            if !docs.contains(&format!("`{name}`")) {
                missing.push(format!("docs/CONFIGURATION.md lacks `{name}`"));
            }
            let shown = conf.get(section).and_then(|s| s.get(field)).is_some()
                || conf_text.contains(&format!("# {field}:"));
            if !shown {
                missing.push(format!("conf/proxy.yaml lacks {name}"));
            }
        }
    }
    assert!(seen > 60, "the settings are read ({seen})");
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// A heading's GitHub anchor: lower case, spaces to `-`, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every relative link in the README, SECURITY.md and docs/ names a file that exists, and a
/// heading in it when it names one.
#[test]
fn relative_links_resolve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = vec![root.join("README.md"), root.join("SECURITY.md")];
    files(&root.join("docs"), &mut paths);
    let mut broken = Vec::new();
    let mut checked = 0;
    for path in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
    {
        let text = std::fs::read_to_string(path).unwrap();
        for (at, _) in text.match_indices("](") {
            let rest = &text[at + 2..];
            let Some(end) = rest.find([')', ' ']) else {
                continue;
            };
            let link = &rest[..end];
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, fragment) = link.split_once('#').unwrap_or((link, ""));
            let target = if file.is_empty() {
                path.clone()
            } else {
                path.parent().unwrap().join(file)
            };
            if !target.exists() {
                broken.push(format!("{}: {link}", path.display()));
                continue;
            }
            if !fragment.is_empty() && target.extension().is_some_and(|e| e == "md") {
                let headings = std::fs::read_to_string(&target).unwrap();
                let found = headings
                    .lines()
                    .filter_map(|l| l.strip_prefix('#'))
                    .any(|h| anchor(h.trim_start_matches('#')) == fragment);
                if !found {
                    broken.push(format!("{}: {link} (no such heading)", path.display()));
                }
            }
        }
    }
    assert!(checked > 20, "links are read ({checked})");
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
