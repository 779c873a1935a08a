//! The Kubernetes manifests: rendered with `kubectl kustomize`, validated against the 1.30
//! schemas and checked for policy by tests/k8s/test_manifests.py; the monitoring by
//! tests/k8s/test_monitoring.py.

#[test]
fn kubernetes_overlays_render_validate_and_meet_policy() {
    crate::harness::pytest(
        "tests/k8s/test_manifests.py",
        &[(
            "PROXY_BIN",
            env!("CARGO_BIN_EXE_venice-e2ee-proxy").to_string(),
        )],
    );
}

/// k8s/monitoring: the PodMonitor, the alert rules (`promtool check rules`, `promtool test
/// rules`), the Grafana dashboard, and the NetworkPolicies that let Prometheus scrape.
#[test]
fn monitoring_finds_the_proxy_and_its_alerts_pass_their_tests() {
    crate::harness::pytest("tests/k8s/test_monitoring.py", &[]);
}
