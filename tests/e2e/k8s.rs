//! The Kubernetes manifests: rendered with `kubectl kustomize`, validated against the 1.30
//! schemas and checked for policy by tests/k8s/test_manifests.py.

use std::process::Command;

#[test]
fn kubernetes_overlays_render_validate_and_meet_policy() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/k8s/test_manifests.py");
    let out = Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", script])
        .env("PROXY_BIN", env!("CARGO_BIN_EXE_venice-e2ee-proxy"))
        .output()
        .expect("python3 runs (scripts/setup installs kubectl and kubernetes-validate)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");
}
