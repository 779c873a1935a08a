//! Which model the enclave says it serves. Venice's attestations name the upstream model
//! (`model_name`, `upstream_model`: Hugging Face style, e.g. `Qwen/Qwen3.5-122B-A10B`) beside
//! the Venice id asked for; a model served under another name has been caught this way. The
//! names are claims (no quote covers them), so they can only refuse, never vouch.

use serde_json::Value;

/// The upstream model names an attestation states, wherever Venice's layouts put them.
pub(crate) fn served_names(raw: &Value) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for pointer in [
        "/model_name",
        "/upstream_model",
        "/attestation/model_name",
        "/attestation/upstream_model",
    ] {
        if let Some(n) = raw.pointer(pointer).and_then(Value::as_str) {
            let n = n.trim();
            if !n.is_empty() && !names.iter().any(|m| m == n) {
                names.push(n.to_string());
            }
        }
    }
    names
}

/// Lowercase alphanumeric runs, letters and digits apart: `Qwen3.5-122B` → qwen 3 5 122 b.
fn tokens(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut digits = false;
    for c in name.chars().map(|c| c.to_ascii_lowercase()) {
        let boundary =
            !c.is_ascii_alphanumeric() || (!current.is_empty() && c.is_ascii_digit() != digits);
        if boundary && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        if c.is_ascii_alphanumeric() {
            digits = c.is_ascii_digit();
            current.push(c);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Quantization and number-format markers whose digits say nothing of the model's version or
/// size (`FP8`, `INT4`, `BF16`, `NVFP4`).
const FORMATS: [&str; 4] = ["fp", "int", "bf", "nvfp"];

/// The digit tokens of a name, format markers' digits left out: its version and sizes, in
/// order (`Qwen3.6-27B-FP8` → 3 6 27).
fn numbers(tokens: &[String]) -> Vec<&str> {
    let mut out = Vec::new();
    let mut previous = "";
    for t in tokens {
        if t.bytes().all(|b| b.is_ascii_digit()) && !FORMATS.contains(&previous) {
            out.push(t.as_str());
        }
        previous = t;
    }
    out
}

/// Whether `served` (an upstream name) is the model the Venice id `requested` names: every
/// family token of the id, without Venice's own markers (`e2ee-`, `-p`, `uncensored`),
/// occurs in the served name's last path segment, and their version and size numbers are
/// the same, in the same order (`qwen3-27b` is not `Qwen3.6-27B`).
pub(crate) fn same_model(requested: &str, served: &str) -> bool {
    let unmarked = |mut t: Vec<String>| {
        if t.first().is_some_and(|t| t == "e") && t.get(1).is_some_and(|t| t == "2") {
            t.drain(..3.min(t.len())); // e 2 ee
        }
        t
    };
    let mut wanted = unmarked(tokens(requested));
    if wanted.last().is_some_and(|t| t == "p") {
        wanted.pop();
    }
    wanted.retain(|t| t != "uncensored" && t != "tee");
    let mut have = unmarked(tokens(served.rsplit('/').next().unwrap_or(served)));
    if numbers(&wanted) != numbers(&have) {
        return false;
    }
    !wanted.is_empty()
        && wanted
            .iter()
            .all(|w| match have.iter().position(|h| h == w) {
                Some(i) => {
                    have.remove(i);
                    true
                }
                None => false,
            })
}

/// The check's outcome.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Pass(String),
    Fail(String),
    /// No name is stated, so there is nothing to compare.
    NotApplicable(String),
}

/// Checks every name `raw` states against `requested`: by the configured names when the
/// operator lists them (exactly, any case), else by `same_model`.
pub(crate) fn check(requested: &str, raw: &Value, configured: Option<&[String]>) -> Verdict {
    match compare(requested, raw, configured) {
        Ok(Some(d)) => Verdict::Pass(d),
        Ok(None) => Verdict::NotApplicable(
            "Venice's answer states no upstream model (model_name, upstream_model), and no quote or measurement names a model: nothing to compare".into(),
        ),
        Err(e) => Verdict::Fail(e),
    }
}

fn compare(
    requested: &str,
    raw: &Value,
    configured: Option<&[String]>,
) -> Result<Option<String>, String> {
    let served = served_names(raw);
    if served.is_empty() {
        return Ok(None);
    }
    for name in &served {
        let ok = match configured {
            Some(list) => list.iter().any(|c| c.eq_ignore_ascii_case(name)),
            None => same_model(requested, name),
        };
        if !ok {
            return Err(format!(
                "the enclave says it serves `{name}`, which is not `{requested}`{}",
                if configured.is_some() {
                    " (attestation.model_names)"
                } else {
                    ""
                }
            ));
        }
    }
    Ok(Some(format!(
        "the upstream model it states ({}) is `{requested}` (a claim: it can refuse, not vouch)",
        served.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn venice_ids_match_their_upstream_names() {
        for (id, name) in [
            ("e2ee-qwen3-5-122b-a10b", "Qwen/Qwen3.5-122B-A10B"),
            ("e2ee-glm-5-2-p", "z-ai/glm-5.2"),
            ("e2ee-gpt-oss-120b-p", "openai/gpt-oss-120b"),
            ("e2ee-qwen3-vl-30b-a3b-p", "Qwen/Qwen3-VL-30B-A3B-Instruct"),
            ("e2ee-deepseek-v4-flash", "deepseek-ai/DeepSeek-V4-Flash"),
            (
                "e2ee-gemma-4-26b-a4b-uncensored-p",
                "google/gemma-4-26b-a4b-it",
            ),
            ("e2ee-qwen-2-5-7b-p", "Qwen/Qwen2.5-7B-Instruct"),
            ("e2ee-qwen3-6-27b", "Qwen/Qwen3.6-27B-FP8"),
        ] {
            assert!(same_model(id, name), "{id} ~ {name}");
        }
        for (id, name) in [
            ("e2ee-glm-5-2-p", "zai-org/GLM-4.6"),
            ("e2ee-gpt-oss-120b-p", "openai/gpt-oss-20b"),
            ("e2ee-qwen3-6-27b", "Qwen/Qwen3.5-27B"),
            ("e2ee-qwen3-6-35b-a3b", "Qwen/Qwen3.6-27B"),
            ("e2ee-deepseek-v4-flash", "deepseek-ai/DeepSeek-V3.2"),
            ("e2ee-gemma-4-31b", "google/gemma-3-27b-it"),
            // Another version or size beside the same tokens.
            ("e2ee-qwen3-27b", "Qwen/Qwen3.6-27B"),
            ("e2ee-glm-5-p", "z-ai/glm-5.2"),
            ("e2ee-qwen3-5-122b-a10b", "Qwen/Qwen3.5-122B-A10B-2"),
            ("e2ee-gpt-oss-120b-p", "openai/gpt-oss-120b-v2"),
        ] {
            assert!(!same_model(id, name), "{id} is not {name}");
        }
    }

    #[test]
    fn every_stated_name_must_be_the_model() {
        let pass = |v: Verdict| matches!(v, Verdict::Pass(_));
        let capture = json!({"model_name": "Qwen/Qwen3.5-122B-A10B", "upstream_model": "Qwen/Qwen3.5-122B-A10B"});
        assert!(pass(check("e2ee-qwen3-5-122b-a10b", &capture, None)));
        let swapped =
            json!({"model_name": "Qwen/Qwen3.5-122B-A10B", "upstream_model": "Qwen/Qwen3-32B"});
        match check("e2ee-qwen3-5-122b-a10b", &swapped, None) {
            Verdict::Fail(e) => assert!(e.contains("Qwen3-32B"), "{e}"),
            other => panic!("{other:?}"),
        }
        // Nothing stated: not a pass, not applicable (nothing signed names a model).
        assert!(matches!(
            check("e2ee-qwen3-5-122b-a10b", &json!({}), None),
            Verdict::NotApplicable(_)
        ));
        // The operator's list decides when given.
        let listed = ["qwen/qwen3-32b".to_string()];
        assert!(pass(check(
            "e2ee-x",
            &json!({"model_name": "Qwen/Qwen3-32B"}),
            Some(&listed)
        )));
        assert!(matches!(
            check("e2ee-x", &capture, Some(&listed)),
            Verdict::Fail(_)
        ));
    }
}
