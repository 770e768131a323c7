"""deploy/compose.yaml: valid against the Compose Specification's JSON schema (vendored in
tests/data, see its README), every wedsync process is a service of the one image with a
/healthz check, Kafka is three KRaft brokers, PostgreSQL 15 replicates logically with the
platform schema, every mounted file exists, and no secret is written in the file."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from connectors.sources.webhooks.config import load_gateway_config

from tests.deploy.promql import DEPLOY

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "compose-spec.json"
SINK_KINDS = ("calendar", "crm", "email", "slack", "sms", "webhook")
PROCESSES = {
    "cdc": ["cdc"],
    "worker": ["worker"],
    "route": ["route"],
    "inapp": ["inapp"],
    "sla": ["sla"],
    **{f"sink-{kind}": ["sink", kind] for kind in SINK_KINDS},
}
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|DSN|WHSEC|_KEY", re.IGNORECASE)
_REFERENCE = re.compile(r"\$\{(\w+)")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text())
    assert schema["title"] == "Compose Specification"
    jsonschema.Draft201909Validator.check_schema(schema)  # the draft the file declares
    return jsonschema.Draft201909Validator(schema)


def _wedsync_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
    }


def test_compose_file_is_valid_against_the_compose_specification(
    compose: dict[str, Any], validator: jsonschema.protocols.Validator
) -> None:
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors, "\n".join(errors)


def test_the_schema_rejects_what_compose_would_reject(
    compose: dict[str, Any], validator: jsonschema.protocols.Validator
) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["worker"]["healthcheck"]["intervall"] = "5s"
    broken["services"]["cdc"]["depends_on"]["postgres"] = {"condition": "service_ready"}
    assert len(list(validator.iter_errors(broken))) >= 2


def test_every_wedsync_process_is_a_service_of_the_one_image(compose: dict[str, Any]) -> None:
    services = _wedsync_services(compose)
    for name, command in PROCESSES.items():
        assert services[name]["command"] == command, name
    assert services["ingest"]["command"][:3] == ["ingest", "--config", "/etc/wedsync/ingest.toml"]
    assert services["topics"]["command"] == ["topics", "create"]
    assert {s["image"] for s in services.values()} == {"wedsync-streams:local"}
    assert {s["build"]["context"] for s in services.values()} == {".."}


def test_processes_start_after_kafka_the_registry_and_the_topics(compose: dict[str, Any]) -> None:
    for name, service in _wedsync_services(compose).items():
        depends = service["depends_on"]
        for broker in ("kafka-1", "kafka-2", "kafka-3", "schema-registry"):
            assert depends[broker]["condition"] == "service_healthy", name
        if name != "topics":
            assert depends["topics"]["condition"] == "service_completed_successfully", name
    for name in ("cdc", *(f"sink-{kind}" for kind in SINK_KINDS)):
        assert compose["services"][name]["depends_on"]["postgres"]["condition"] == (
            "service_healthy"
        )


def test_every_process_is_health_checked_on_healthz(compose: dict[str, Any]) -> None:
    for name, service in _wedsync_services(compose).items():
        if name == "topics":
            assert service["healthcheck"] == {"disable": True}
            continue
        test = " ".join(service["healthcheck"]["test"])
        assert "http://127.0.0.1:9400/healthz" in test, name  # WEDSYNC_METRICS_PORT


def test_processes_serve_metrics_on_every_interface_of_the_container() -> None:
    shared = (DEPLOY / "env" / "wedsync.env").read_text().splitlines()
    assert "WEDSYNC_METRICS_HOST=0.0.0.0" in shared  # the default is loopback
    assert "WEDSYNC_METRICS_PORT=9400" in shared


def test_kafka_is_three_brokers_in_kraft_mode(compose: dict[str, Any]) -> None:
    brokers = {n: s for n, s in compose["services"].items() if n.startswith("kafka-")}
    assert len(brokers) == 3
    envs = [b["environment"] for b in brokers.values()]
    assert {b["image"].split(":")[0] for b in brokers.values()} == {"apache/kafka"}
    assert len({e["CLUSTER_ID"] for e in envs}) == 1
    assert sorted(e["KAFKA_NODE_ID"] for e in envs) == ["1", "2", "3"]
    for name, env in zip(brokers, envs, strict=True):
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == (
            "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
        )
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert "zookeeper" not in json.dumps(env).lower()
    shared = (DEPLOY / "env" / "wedsync.env").read_text()
    assert "KAFKA_BOOTSTRAP_SERVERS=kafka-1:9092,kafka-2:9092,kafka-3:9092" in shared
    assert "SCHEMA_REGISTRY_URL=http://schema-registry:8081" in shared
    assert compose["services"]["schema-registry"]["image"].startswith(
        "confluentinc/cp-schema-registry:"
    )


def test_postgres_15_replicates_logically_and_creates_the_platform_schema(
    compose: dict[str, Any],
) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == "postgres:15"
    assert "wal_level=logical" in postgres["command"]
    assert (
        "../schemas/platform/platform.sql:/docker-entrypoint-initdb.d/10-platform.sql:ro"
        in postgres["volumes"]
    )


def test_prometheus_and_grafana_get_the_rules_and_the_dashboard(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    assert "./prometheus/rules:/etc/prometheus/rules:ro" in prometheus["volumes"]
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    grafana = compose["services"]["grafana"]
    assert any(v.startswith("./grafana/dashboards:") for v in grafana["volumes"])


def test_every_mounted_file_and_env_file_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source}"
        for env_file in service.get("env_file", []):
            assert (DEPLOY / env_file).is_file(), f"{name}: {env_file}"
    assert (DEPLOY / "Dockerfile").is_file()


def test_no_secret_is_written_in_the_compose_file(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if _SECRET_NAME.search(key):
                assert value is None or "${" in str(value), f"{name}: {key} is literal"
    for line in (DEPLOY / "env" / "wedsync.env").read_text().splitlines():
        if line and not line.startswith("#"):
            assert not _SECRET_NAME.search(line.split("=")[0]), line


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return [node] if isinstance(node, str) else []


def test_every_variable_the_file_needs_is_documented_and_git_ignored(
    compose: dict[str, Any],
) -> None:
    referenced = {name for text in _strings(compose) for name in _REFERENCE.findall(text)}
    passed_through = {
        key
        for service in compose["services"].values()
        for key, value in (service.get("environment") or {}).items()
        if value is None
    }
    example = (DEPLOY / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*(\w+)=", example, re.MULTILINE))
    assert referenced | passed_through <= documented
    for line in example.splitlines():
        if "=" in line and not line.startswith("#"):
            assert "change-me" in line or "Y2hhbmdlLW1l" in line, line  # placeholders only
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()


def test_the_ingest_config_parses_with_its_secrets_from_the_environment() -> None:
    environ = {"INGEST_BILLING_WHSEC": "whsec_" + "A" * 32, "INGEST_SUPABASE_TOKEN": "x"}
    config = load_gateway_config(DEPLOY / "config" / "ingest.toml", environ)
    assert config.host == "0.0.0.0" and config.port == 8080
    assert set(config.sources) == {"billing", "supabase"}


def test_the_dockerfile_installs_the_project_on_python_3_11_slim() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\s*$", dockerfile, re.MULTILINE)
    assert re.search(r"^RUN rm -rf streams/dev \\\n\s+&& pip install \.", dockerfile, re.MULTILINE)
    assert 'ENTRYPOINT ["wedsync"]' in dockerfile
    assert re.search(r"^USER \d+", dockerfile, re.MULTILINE)  # not root
    root = DEPLOY.parent
    for sources in re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE):
        for source in sources.split():
            assert (root / source).exists(), source
