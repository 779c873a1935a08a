//! The Kubernetes manifests: rendered with `kubectl kustomize`, validated against the 1.30
//! schemas and checked for policy by tests/k8s/test_manifests.py.

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
