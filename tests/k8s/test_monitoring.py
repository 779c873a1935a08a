"""k8s/monitoring: the PodMonitor finds the proxy in both overlays, the alert rules pass
`promtool check rules` and their unit tests (alerts.test.yaml), the dashboard is a
well-formed Grafana dashboard, and every metric a rule or panel names is one the proxy
exports; the overlays' NetworkPolicies let a Prometheus in another namespace scrape.
Run by tests/e2e/k8s.rs."""

import json
import os
import re
import subprocess
import tempfile

import kubernetes_validate
import pytest
import yaml

from test_manifests import KUBECTL, OVERLAYS, ROOT, env, kinds, pod_specs, proxy_container, render

PREFIX = "venice_e2ee_proxy_"


def monitoring():
    out = subprocess.run(
        [KUBECTL, "kustomize", os.path.join(ROOT, "k8s", "monitoring")],
        check=True, capture_output=True, text=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def exported():
    """Every metric name the proxy exports, read from its definitions (src/metrics.rs)."""
    with open(os.path.join(ROOT, "src", "metrics.rs")) as f:
        src = f.read()
    names = {PREFIX + n for n in re.findall(r'd\.(?:counters?|gauges?|histograms)\(\s*"([a-z0-9_]+)"', src)}
    names |= set(re.findall(r'"(process_[a-z_]+)"', src))
    hists = {PREFIX + n for n in re.findall(r'd\.histograms\(\s*"([a-z0-9_]+)"', src)}
    for h in hists:
        names |= {h + "_bucket", h + "_sum", h + "_count"}
    assert PREFIX + "model_verified" in names and "process_resident_memory_bytes" in names
    return names


def named(expr):
    return set(re.findall(r"\b((?:%s|process_)[a-z0-9_]+)" % PREFIX, expr))


def rules():
    (rule,) = kinds(monitoring(), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    return rule["spec"]


def dashboard():
    (cm,) = [d for d in kinds(monitoring(), "ConfigMap")]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    kubernetes_validate.validate(cm, "1.30.0", strict=True)
    return json.loads(cm["data"]["venice-e2ee-proxy.json"])


def promtool(*args, cwd=None):
    out = subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=cwd)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_the_rules_pass_promtool_and_their_unit_tests():
    spec = rules()
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "full.yaml"), "w") as f:
            yaml.safe_dump(spec, f)
        promtool("check", "rules", "full.yaml", cwd=d)
        # Annotations are templates (checked above); the unit tests compare labels.
        for group in spec["groups"]:
            for rule in group["rules"]:
                rule.pop("annotations", None)
        with open(os.path.join(d, "rules.yaml"), "w") as f:
            yaml.safe_dump(spec, f)
        with open(os.path.join(ROOT, "tests", "k8s", "alerts.test.yaml")) as f:
            tests = yaml.safe_load(f)
        with open(os.path.join(d, "alerts.test.yaml"), "w") as f:
            yaml.safe_dump(tests, f)
        promtool("test", "rules", "alerts.test.yaml", cwd=d)
        # Every alert has a unit test.
        tested = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"]}
        alerts = {r["alert"] for g in spec["groups"] for r in g["rules"]}
        assert alerts == tested, alerts ^ tested


def test_the_alerts_cover_what_the_operator_must_know():
    exprs = " ".join(r["expr"] for g in rules()["groups"] for r in g["rules"])
    for metric in ["model_verified", "attestation_refusals_total", "drift_events_total",
                   "receipts_total", "trust_relaxed", "ready"]:
        assert PREFIX + metric in exprs, metric
    for g in rules()["groups"]:
        for r in g["rules"]:
            assert r["labels"]["severity"] in {"critical", "warning"}, r["alert"]
            assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]


def test_every_metric_named_is_exported():
    names = exported()
    exprs = [r["expr"] for g in rules()["groups"] for r in g["rules"]]
    exprs += [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]
    for expr in exprs:
        unknown = named(expr) - names
        assert not unknown, (expr, unknown)


def test_the_dashboard_is_well_formed():
    d = dashboard()
    assert d["uid"] and d["title"] and d["schemaVersion"] >= 36
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in d["templating"]["list"]}
    assert {"datasource", "namespace"} <= variables
    cells = set()
    for p in d["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        # No two panels overlap.
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, p["title"]
        cells |= mine
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["targets"] and all(t["expr"] for t in p["targets"]), p["title"]
    # The verdicts first: what an operator looks at before traffic.
    titles = [p["title"] for p in sorted(d["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"]))]
    assert titles[:2] == ["Models verified", "Trust relaxations in force"]


# What each overlay needs set to be scraped: the sidecar keeps its admin listener on
# loopback until told otherwise.
SCRAPED = {"egress": {}, "sidecar": {"adminHost": "0.0.0.0", "scrape": "true"}}


def test_the_sidecar_is_not_scraped_unless_asked():
    (monitor,) = kinds(monitoring(), "PodMonitor")
    wanted = monitor["spec"]["selector"]["matchLabels"]
    template = kinds(render("sidecar"), "Deployment")[0]["spec"]["template"]
    assert not wanted.items() <= template["metadata"]["labels"].items()
    assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "false"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pod_monitor_finds_the_proxy(overlay):
    (monitor,) = kinds(monitoring(), "PodMonitor")
    wanted = monitor["spec"]["selector"]["matchLabels"]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    docs = render(overlay, SCRAPED[overlay])
    for deployment in kinds(docs, "Deployment"):
        template = deployment["spec"]["template"]
        assert wanted.items() <= template["metadata"]["labels"].items()
        ports = {p["name"]: p["containerPort"] for p in proxy_container(template["spec"])["ports"]}
        assert endpoint["port"] in ports and endpoint["path"] == "/metrics"
        notes = template["metadata"]["annotations"]
        assert notes["prometheus.io/scrape"] == "true"
        assert int(notes["prometheus.io/port"]) == ports[endpoint["port"]]
        # Reachable from another pod: the admin listener is not on loopback.
        admin = env(proxy_container(template["spec"])).get("VENICE_E2EE_PROXY__SERVER__ADMIN_LISTEN")
        assert admin is None or not admin.startswith("127."), admin


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_in_another_namespace_may_scrape(overlay):
    docs = render(overlay)
    admin = 9090
    admitted = []
    for policy in kinds(docs, "NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            if {"protocol": "TCP", "port": admin} in rule["ports"]:
                admitted += rule["from"]
    cross = [f for f in admitted if "namespaceSelector" in f]
    assert cross, overlay
    for f in cross:
        assert f["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
        assert f["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    # Nothing else reaches the admin port.
    for f in admitted:
        assert f["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
