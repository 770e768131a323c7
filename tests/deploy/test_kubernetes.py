"""deploy/kubernetes: every manifest validates offline against the Kubernetes 1.33 schemas
(kubernetes-validate ships them), one Deployment per process kind with probes on /healthz,
resources and scrape annotations, selectors that match, replicas no larger than the partitions
allow, and a Secret of placeholders that every reference resolves against."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.promql import DEPLOY

KUBERNETES = DEPLOY / "kubernetes"
VERSION = "1.33.0"  # fixed: the bundled schemas of this release, no network
SINK_KINDS = ("calendar", "crm", "email", "slack", "sms", "webhook")
MANIFESTS = sorted(set(KUBERNETES.glob("*.yaml")) - {KUBERNETES / "kustomization.yaml"})
PROCESSES = {
    "cdc": ["cdc"],
    "ingest": ["ingest"],
    "worker": ["worker"],
    "route": ["route"],
    "inapp": ["inapp"],
    "sla": ["sla"],
    **{f"sink-{kind}": ["sink", kind] for kind in SINK_KINDS},
}


def _documents() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in MANIFESTS:
        docs += [(path, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


@pytest.fixture(scope="module")
def resources() -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for _, d in _documents()}


@pytest.fixture(scope="module")
def deployments(resources: dict[tuple[str, str], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for (kind, _), d in resources.items()
        if kind == "Deployment"
    }


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return container


def _partitions(resources: dict[tuple[str, str], dict[str, Any]]) -> int:
    return int(resources[("ConfigMap", "wedsync-config")]["data"]["WEDSYNC_PARTITIONS"])


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_validates_against_kubernetes_schemas_strictly(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        try:
            kubernetes_validate.validate(doc, VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(map(str, exc.path))
            pytest.fail(f"{path.name}: {doc['kind']}/{doc['metadata']['name']}: {where}: {exc}")
        except kubernetes_validate.utils.SchemaNotFoundError as exc:
            pytest.fail(f"{path.name}: {exc.message}")


def test_kustomization_lists_every_manifest_in_the_namespace() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    files = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert kustomization["namespace"] == "wedsync"
    for _, doc in _documents():
        assert doc["metadata"].get("namespace", "wedsync") == "wedsync"


def test_one_deployment_per_process_kind(deployments: dict[str, dict[str, Any]]) -> None:
    assert set(deployments) == set(PROCESSES)
    for component, args in PROCESSES.items():
        assert _container(deployments[component])["args"][: len(args)] == args, component


def test_every_process_is_probed_on_healthz_and_has_requests_and_limits(
    deployments: dict[str, dict[str, Any]],
) -> None:
    for component, deployment in deployments.items():
        container = _container(deployment)
        ports = {p["name"] for p in container["ports"]}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["path"] == "/healthz", (component, probe)
            assert container[probe]["httpGet"]["port"] in ports, (component, probe)
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) == {"cpu", "memory"}, component


def test_pods_carry_prometheus_scrape_annotations_for_their_metrics_port(
    deployments: dict[str, dict[str, Any]],
) -> None:
    for component, deployment in deployments.items():
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        port = 9400  # every process's WEDSYNC_METRICS_PORT, the gateways' too
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        assert annotations["prometheus.io/port"] == str(port), component
        assert port in {p["containerPort"] for p in _container(deployment)["ports"]}


def test_selectors_match_their_pods(resources: dict[tuple[str, str], dict[str, Any]]) -> None:
    pod_labels = [
        d["spec"]["template"]["metadata"]["labels"]
        for (kind, _), d in resources.items()
        if kind == "Deployment"
    ]
    for (kind, name), doc in resources.items():
        if kind == "Deployment":
            selector = doc["spec"]["selector"]["matchLabels"]
            assert selector.items() <= doc["spec"]["template"]["metadata"]["labels"].items()
        elif kind in ("Service", "PodDisruptionBudget"):
            spec = doc["spec"]["selector"]
            selector = spec.get("matchLabels", spec)
            assert any(selector.items() <= labels.items() for labels in pod_labels), name


def test_services_for_ingest_inapp_and_metrics_and_a_budget_for_inapp(
    resources: dict[tuple[str, str], dict[str, Any]],
) -> None:
    assert ("Service", "wedsync-ingest") in resources
    assert ("Service", "wedsync-inapp") in resources
    metrics = resources[("Service", "wedsync-metrics")]
    assert metrics["spec"]["ports"][0]["targetPort"] == "metrics"
    budget = resources[("PodDisruptionBudget", "wedsync-inapp")]
    assert budget["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "inapp"
    assert budget["spec"]["minAvailable"] == 1


def test_replicas_fit_the_partitions(
    resources: dict[tuple[str, str], dict[str, Any]], deployments: dict[str, dict[str, Any]]
) -> None:
    partitions = _partitions(resources)
    replicas = {c: d["spec"]["replicas"] for c, d in deployments.items()}
    assert replicas["cdc"] == 1 and replicas["sla"] == 1
    for single in ("cdc", "sla"):
        assert deployments[single]["spec"]["strategy"]["type"] == "Recreate"
    assert 1 <= replicas["worker"] <= partitions
    assert 1 <= replicas["route"] <= partitions  # routing is its own Deployment
    for kind in SINK_KINDS:
        assert 1 <= replicas[f"sink-{kind}"] <= partitions
    assert replicas["inapp"] >= 2


def test_the_secret_holds_placeholders_that_every_reference_resolves(
    resources: dict[tuple[str, str], dict[str, Any]],
) -> None:
    secret = resources[("Secret", "wedsync-secrets")]
    assert "data" not in secret
    assert set(secret["stringData"].values()) == {"REPLACE_ME"}
    for (kind, name), doc in resources.items():
        if kind not in ("Deployment", "Job"):
            continue
        for env in _container(doc).get("env", []):
            ref = env["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "wedsync-secrets"
            assert ref["key"] in secret["stringData"] or ref.get("optional"), (name, ref)


def test_processes_serve_metrics_on_the_pod_interfaces(
    resources: dict[tuple[str, str], dict[str, Any]],
) -> None:
    config = resources[("ConfigMap", "wedsync-config")]["data"]
    assert config["WEDSYNC_METRICS_HOST"] == "0.0.0.0"  # the default is loopback
    assert config["WEDSYNC_METRICS_PORT"] == "9400"


def test_the_ingest_configmap_is_deploy_config_ingest_toml(
    resources: dict[tuple[str, str], dict[str, Any]],
) -> None:
    data = resources[("ConfigMap", "wedsync-ingest-config")]["data"]["ingest.toml"]
    assert data == (DEPLOY / "config" / "ingest.toml").read_text()
