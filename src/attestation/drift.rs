//! Drift watch: what serves a model changes under the operator week to week (its measured
//! compose, OS image, gateway commit, keyset, the upstream route its gateway picks, Venice's
//! model list). Each change is logged once as one structured line (target `drift`), counted
//! (`venice_e2ee_proxy_drift_events_total{model,what}`) and kept among the last few for the
//! status page. What was verified yesterday is then never silently not what serves today.

use serde::Serialize;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;

/// Events kept for the status page.
const KEPT: usize = 32;

/// What can change: the `what` of an event.
pub(crate) const WHATS: [&str; 6] = [
    "compose",
    "os_image",
    "gateway_commit",
    "keyset",
    "upstream_route",
    "model_list",
];

/// One change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct DriftEvent {
    /// Unix seconds.
    pub(crate) at: u64,
    /// The model, or `-` for Venice's model list.
    pub(crate) model: String,
    /// `compose`, `os_image`, `gateway_commit`, `keyset`, `upstream_route`, `model_list`.
    pub(crate) what: &'static str,
    pub(crate) before: String,
    pub(crate) after: String,
}

/// What identifies a model's attested workload, as last verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    pub(crate) compose: Option<String>,
    pub(crate) os_image: Option<String>,
    pub(crate) gateway_commit: Option<String>,
    pub(crate) keyset: Option<String>,
}

#[derive(Default)]
pub(crate) struct DriftWatch {
    fingerprints: Mutex<HashMap<String, Fingerprint>>,
    routes: Mutex<HashMap<String, String>>,
    models: Mutex<Option<BTreeSet<String>>>,
    recent: Mutex<VecDeque<DriftEvent>>,
}

impl DriftWatch {
    /// The events kept, newest last.
    pub(crate) fn recent(&self) -> Vec<DriftEvent> {
        self.recent
            .lock()
            .expect("poisoned")
            .iter()
            .cloned()
            .collect()
    }

    fn record(&self, event: DriftEvent) {
        log::warn!(
            target: "drift",
            "drift model={} what={} before={} after={}",
            event.model,
            event.what,
            event.before,
            event.after
        );
        crate::metrics::METRICS
            .drift_events
            .with_label_values(&[&event.model, event.what])
            .inc();
        let mut recent = self.recent.lock().expect("poisoned");
        if recent.len() == KEPT {
            recent.pop_front();
        }
        recent.push_back(event);
    }

    /// A model's workload as just verified: each part that differs from the last one is an
    /// event (the first verification is none).
    pub(crate) fn verified(&self, model: &str, now: Fingerprint, at: u64) {
        let before = self
            .fingerprints
            .lock()
            .expect("poisoned")
            .insert(model.to_string(), now.clone());
        let Some(before) = before else { return };
        let parts = [
            ("compose", &before.compose, &now.compose),
            ("os_image", &before.os_image, &now.os_image),
            (
                "gateway_commit",
                &before.gateway_commit,
                &now.gateway_commit,
            ),
            ("keyset", &before.keyset, &now.keyset),
        ];
        for (what, was, is) in parts {
            if was != is {
                self.record(DriftEvent {
                    at,
                    model: model.to_string(),
                    what,
                    before: shown(was),
                    after: shown(is),
                });
            }
        }
    }

    /// The route a model's gateway chose for an answer, as its anchored receipt records it.
    pub(crate) fn routed(&self, model: &str, route: &str, at: u64) {
        let before = self
            .routes
            .lock()
            .expect("poisoned")
            .insert(model.to_string(), route.to_string());
        if let Some(before) = before.filter(|b| b != route) {
            self.record(DriftEvent {
                at,
                model: model.to_string(),
                what: "upstream_route",
                before,
                after: route.to_string(),
            });
        }
    }

    /// Venice's E2EE model list as just fetched: models added and removed are an event.
    pub(crate) fn listed(&self, ids: BTreeSet<String>, at: u64) {
        let before = self.models.lock().expect("poisoned").replace(ids.clone());
        let Some(before) = before else { return };
        let gone: Vec<&String> = before.difference(&ids).collect();
        let new: Vec<&String> = ids.difference(&before).collect();
        if gone.is_empty() && new.is_empty() {
            return;
        }
        let join = |v: Vec<&String>| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
            }
        };
        self.record(DriftEvent {
            at,
            model: "-".into(),
            what: "model_list",
            before: format!("removed:{}", join(gone)),
            after: format!("added:{}", join(new)),
        });
    }
}

fn shown(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(compose: &str, commit: Option<&str>) -> Fingerprint {
        Fingerprint {
            compose: Some(compose.into()),
            os_image: Some("os".into()),
            gateway_commit: commit.map(Into::into),
            keyset: None,
        }
    }

    #[test]
    fn each_change_is_one_event_and_the_first_sight_none() {
        let w = DriftWatch::default();
        w.verified("m", print("c1", Some("a")), 1);
        w.verified("m", print("c1", Some("a")), 2);
        assert!(w.recent().is_empty());
        w.verified("m", print("c2", Some("b")), 3);
        let e = w.recent();
        assert_eq!(
            e.iter().map(|e| e.what).collect::<Vec<_>>(),
            ["compose", "gateway_commit"]
        );
        assert_eq!((e[0].before.as_str(), e[0].after.as_str()), ("c1", "c2"));
        w.routed("m", "r1", 4);
        w.routed("m", "r1", 5);
        w.routed("m", "r2", 6);
        w.listed(["a".to_string(), "b".into()].into(), 7);
        w.listed(["b".to_string(), "c".into()].into(), 8);
        let e = w.recent();
        assert_eq!(e[2].what, "upstream_route");
        assert_eq!(e[3].what, "model_list");
        assert_eq!(
            (e[3].before.as_str(), e[3].after.as_str()),
            ("removed:a", "added:c")
        );
        for i in 0..40 {
            w.routed("m", &format!("r{i}"), 9);
        }
        assert_eq!(w.recent().len(), KEPT);
    }
}
