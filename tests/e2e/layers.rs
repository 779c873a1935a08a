//! The source's shape: the product's top-level modules import each other one way only, in
//! the layers docs/ARCHITECTURE.md draws (`proxy` → `exchange` → `state` → `api` → `chat` → `e2ee`/`venice`/...), so
//! no import loop can come back. Test code is left out: a test may reach across layers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each top-level module's layer: a module may import only modules of a lower layer.
const LAYERS: &[(&str, u8)] = &[
    ("error", 0),
    ("metrics", 0),
    ("logging", 0),
    ("config", 0),
    ("budget", 1),
    ("e2ee", 1),
    ("venice", 1),
    ("attestation", 2),
    ("chat", 2),
    ("agent_sessions", 2),
    ("api", 3),
    ("state", 4),
    ("exchange", 5),
    ("proxy", 6),
    ("server", 7),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code without its test module and comments.
fn product_code(text: &str) -> String {
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    code.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `crate::name` paths in `code`.
fn imported(code: &str) -> BTreeSet<&str> {
    code.match_indices("crate::")
        .filter(|(at, _)| !code[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        .map(|(at, m)| {
            let rest = &code[at + m.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

#[test]
fn modules_import_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let layer = |m: &str| LAYERS.iter().find(|(n, _)| *n == m).map(|(_, l)| *l);
    let mut wrong = Vec::new();
    let mut edges = 0;
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let name = rel.file_stem().unwrap().to_str().unwrap();
        if name == "tests" || name.ends_with("_tests") || name == "properties" {
            continue;
        }
        let Some(top) = rel.components().next().and_then(|c| c.as_os_str().to_str()) else {
            continue;
        };
        let top = top.trim_end_matches(".rs");
        if top == "main" || top == "lib" {
            continue;
        }
        let from = layer(top).unwrap_or_else(|| panic!("src/{top} has no layer in LAYERS"));
        let text = std::fs::read_to_string(file).unwrap();
        for to in imported(&product_code(&text)) {
            if to == top {
                continue;
            }
            edges += 1;
            let Some(to_layer) = layer(to) else {
                panic!("{} imports crate::{to}, which has no layer", rel.display());
            };
            if to_layer >= from {
                wrong.push(format!(
                    "{} ({top}, layer {from}) imports crate::{to} (layer {to_layer})",
                    rel.display()
                ));
            }
        }
    }
    assert!(edges > 50, "the scan sees the imports ({edges})");
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

/// Each dialect lives in its own folder under `src/api/`, reached only through the registry
/// (`api/mod.rs`): no dialect imports another, and nothing outside `api/` names one, so that
/// adding a dialect touches the registry and its own folder.
#[test]
fn dialects_are_reached_only_through_the_registry() {
    let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let dialects: Vec<String> = std::fs::read_dir(&api)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert!(dialects.len() >= 3, "the dialect folders: {dialects:?}");
    let src = api.parent().unwrap();
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(src).unwrap();
        let name = rel.file_stem().unwrap().to_str().unwrap();
        if name == "tests" || name.ends_with("_tests") || name == "properties" {
            continue;
        }
        let mut parts = rel.components().map(|c| c.as_os_str().to_str().unwrap());
        let home = match (parts.next(), parts.next()) {
            (Some("api"), Some(d)) if dialects.iter().any(|x| x == d) => Some(d),
            (Some("api"), Some("mod.rs")) => continue,
            _ => None,
        };
        let code = product_code(&std::fs::read_to_string(file).unwrap());
        for other in dialects.iter().filter(|d| Some(d.as_str()) != home) {
            let named = [format!("api::{other}"), format!("super::{other}")];
            if named.iter().any(|n| {
                code.match_indices(n.as_str()).any(|(at, _)| {
                    !code[at + n.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
                })
            }) {
                wrong.push(format!("{} names the dialect {other}", rel.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dialects reached around the registry:\n{}",
        wrong.join("\n")
    );
}
