//! What users copy: the README, the docs, `conf/`, the Kubernetes manifests and the
//! Dockerfile name only models Venice lists today (the simulated catalog mirrors that list).

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

/// `e2ee-…` words with a digit in them: model ids (header and metric names have none).
fn model_ids(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices("e2ee-").filter_map(|(at, _)| {
        let word = &text[at..];
        let end = word
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .unwrap_or(word.len());
        let word = word[..end].trim_end_matches('-');
        let preceded = text[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '-');
        (!preceded && word.contains(|c: char| c.is_ascii_digit())).then_some(word)
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
        }
    }
    assert!(named > 10, "the scan finds the model names the docs use");
}

#[test]
fn model_ids_are_read_as_written() {
    let text = "model: e2ee-qwen3-6-27b, header x-venice-e2ee-session, `e2ee-glm-5-1`.";
    let ids: Vec<&str> = model_ids(text).collect();
    assert_eq!(ids, ["e2ee-qwen3-6-27b", "e2ee-glm-5-1"]);
}
