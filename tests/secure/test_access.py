"""Each role's ACLs (`streams.kafka.access`) on a secured Apache Kafka, and the preflight's
answers when they or the credentials are wrong.

One cluster for the module; its SCRAM users are made by Kafka's StorageTool at format time
(`--add-scram`): one per role holding exactly the role's ACLs, and per role of
`WITHOUT_ONE` one user per row holding all the others. The processes not in the pipeline
test (`wedsync sla`, `ingest`, `inapp`, the calendar feed's lease) are started as their
role's user and used; a sink started with a wrong password, a CA of its own or one ACL short
exits naming what to fix."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AclBinding
from connectors.calendar.feed.leader import Leadership
from pydantic import SecretStr
from streams.dev.broker import free_port
from streams.dev.certs import authority
from streams.dev.kraft import KafkaCluster
from streams.errors import KafkaAccessDenied
from streams.kafka.access import ROLES, Grant, acl_bindings, check_access, grants
from streams.kafka.admin import create_topics
from streams.kafka.codec import TopicCodecs
from streams.kafka.connection import KafkaConnection, client_config

from tests.integration.inapp.support import INAPP, Client, GatewayProcess, notification, token
from tests.integration.test_process_metrics import process, scrape
from tests.secure.support import grant, kafka_env, user_name

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

APP = "wedsync"  # the processes' default WEDSYNC_APP_ID
WITHOUT_ONE = (
    "cdc",
    "worker",
    "route",
    "sink:webhook",
    "sla",
    "ingest",
    "inapp",
)  # a sink stands for all
PASSWORDS = {user_name(role): secrets.token_hex(12) for role in ROLES} | {
    user_name(role, f"without-{i}"): secrets.token_hex(12)
    for role in WITHOUT_ONE
    for i in range(len(grants(role, APP)))
}


def _without(role: str, user: str, left_out: Grant) -> list[AclBinding]:
    every = acl_bindings(role, user, APP)
    kind = {"topic": "TOPIC", "group": "GROUP", "cluster": "BROKER"}[left_out.resource]
    pattern = "PREFIXED" if left_out.prefixed else "LITERAL"
    return [
        b
        for b in every
        if not (
            b.restype.name == kind
            and b.name == left_out.name
            and b.resource_pattern_type.name == pattern
        )
    ]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """Started, the catalog's topics created by the admin, every user's ACLs granted."""
    kafka = KafkaCluster(
        secured=True, users=dict(PASSWORDS), base_dir=tmp_path_factory.mktemp("secured-kafka")
    )
    try:
        kafka.start()
        create_topics(kafka.connection())
        bindings = [b for role in ROLES for b in acl_bindings(role, user_name(role), APP)]
        for role in WITHOUT_ONE:
            for i, row in enumerate(grants(role, APP)):
                bindings += _without(role, user_name(role, f"without-{i}"), row)
        grant(kafka, bindings)
        _wait_allowed(kafka, "sink:webhook")
        yield kafka
    finally:
        kafka.stop()


def _conn(cluster: KafkaCluster, role: str, suffix: str = "", **changes: object) -> KafkaConnection:
    name = user_name(role, suffix)
    return cluster.connection(name, PASSWORDS[name]).model_copy(update=changes)


def _wait_allowed(cluster: KafkaCluster, role: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check_access(_conn(cluster, role), role, APP)
        except KafkaAccessDenied:  # the ACLs still on their way to the authorizer
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _denied(cluster: KafkaCluster, user: str) -> list[str]:
    log = cluster.node(1).directory / "authorizer.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [ln for ln in lines if f"Principal = User:{user} is Denied" in ln]


# ---- the table, through the preflight ----------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_a_role_with_exactly_its_acls_passes_the_preflight(
    cluster: KafkaCluster, role: str
) -> None:
    check_access(_conn(cluster, role), role, APP)


@pytest.mark.parametrize("role", WITHOUT_ONE)
def test_a_role_without_one_of_its_acls_is_told_which(cluster: KafkaCluster, role: str) -> None:
    untold = []
    for i, row in enumerate(grants(role, APP)):
        try:
            check_access(_conn(cluster, role, f"without-{i}"), role, APP)
            untold.append(f"{row.target}: passed")
        except KafkaAccessDenied as exc:
            said = str(exc)
            if row.target not in said or not all(op in said for op in row.operations):
                untold.append(f"{row.target}: {said[:300]}")
    assert untold == []


# ---- the processes that are not in the pipeline test -------------------------------------
def _env(cluster: KafkaCluster, role: str, **more: str) -> dict[str, str]:
    return {**kafka_env(_conn(cluster, role)), **more}


def test_the_sla_agent_runs_with_only_its_acls(cluster: KafkaCluster) -> None:
    port = free_port()
    env = _env(cluster, "sla", WEDSYNC_METRICS_PORT=str(port), WEDSYNC_SLA_EVALUATE_EVERY_S="1")
    with process(["sla"], env):
        scrape(port, "wedsync_sla_evaluations_total 2")
    assert _denied(cluster, user_name("sla")) == []


def test_the_ingest_gateway_stores_a_webhook_with_only_its_acls(cluster: KafkaCluster) -> None:
    port = free_port()
    config = {
        "host": "127.0.0.1",
        "port": port,
        "sources": {"tave": {"method": "bearer", "tokens": ["tave-token"]}},
    }
    env = _env(
        cluster,
        "ingest",
        WEDSYNC_INGEST_CONFIG=json.dumps(config),
        WEDSYNC_METRICS_PORT=str(free_port()),
    )
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/tave",
        data=b'{"id": "evt-1"}',
        method="POST",
        headers={"Authorization": "Bearer tave-token", "Content-Type": "application/json"},
    )
    with process(["ingest"], env):
        status = _post(request)
    assert status in (200, 202)
    assert _denied(cluster, user_name("ingest")) == []


def _post(request: urllib.request.Request, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return int(answer.status)
        except OSError:  # not listening yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_the_inapp_gateway_delivers_with_only_its_acls(
    cluster: KafkaCluster, codecs: TopicCodecs, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _env(cluster, "inapp", WEDSYNC_METRICS_PORT=str(free_port())).items():
        monkeypatch.setenv(name, value)
    gateway = GatewayProcess(cluster.bootstrap_servers, free_port())
    try:
        client = Client(gateway.url, token("couple-1"))
        client.hello()
        sent = notification("couple-1")
        producer = Producer(client_config(cluster.connection()))
        producer.produce(INAPP.name, codecs[INAPP].encode(sent), b"couple-1")
        assert producer.flush(10) == 0
        got = client.until(lambda f: f.get("event_id") == sent["event_id"], timeout=20)
        client.send({"type": "read", "ids": [got["id"]]})  # a receipt, written and read back
        client.until(lambda f: f["type"] == "state" and f["read"])
    finally:
        gateway.terminate()
    assert _denied(cluster, user_name("inapp")) == []


def test_the_calendar_feeds_lease_is_taken_with_only_its_acls(cluster: KafkaCluster) -> None:
    async def take() -> None:
        lease = Leadership(_conn(cluster, "calendar-feed"), APP)
        lease.start()
        try:
            await asyncio.wait_for(lease.active.wait(), 60)
        finally:
            lease.stood_down()
            await lease.close()

    asyncio.run(take())
    assert _denied(cluster, user_name("calendar-feed")) == []


# ---- what a process says when it cannot work ---------------------------------------------
def _sink(env: dict[str, str], tmp_path: Path) -> tuple[int, str, float]:
    """`wedsync sink webhook` with `env`: exit code, what it printed, seconds it ran."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "streams.app.cli", "sink", "webhook", "--dev-credentials"],
        env={**os.environ, **env, "WEDSYNC_METRICS_PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def test_a_wrong_password_stops_a_sink_naming_the_sasl_settings(
    cluster: KafkaCluster, tmp_path: Path
) -> None:
    wrong = "not-the-password-" + secrets.token_hex(6)
    conn = _conn(cluster, "sink:webhook", sasl_password=SecretStr(wrong))
    code, said, _ = _sink(kafka_env(conn), tmp_path)
    assert code == 2
    assert "KafkaAuthenticationFailed" in said
    assert "KAFKA_SASL_USERNAME" in said and "KAFKA_SASL_PASSWORD" in said
    assert wrong not in said and PASSWORDS[user_name("sink:webhook")] not in said


def test_an_untrusted_broker_certificate_stops_a_sink_naming_the_ca_setting(
    cluster: KafkaCluster, tmp_path: Path
) -> None:
    other = authority("not the cluster's CA").write(tmp_path / "other-ca.pem")
    code, said, _ = _sink(
        kafka_env(_conn(cluster, "sink:webhook", ssl_ca_location=other)), tmp_path
    )
    assert code == 2
    assert "KafkaTlsFailed" in said and "KAFKA_SSL_CA_LOCATION" in said
    assert PASSWORDS[user_name("sink:webhook")] not in said


def test_a_missing_acl_stops_a_sink_naming_the_acl(cluster: KafkaCluster, tmp_path: Path) -> None:
    rows = grants("sink:webhook", APP)
    i, row = next((i, g) for i, g in enumerate(rows) if g.resource == "group")
    user = user_name("sink:webhook", f"without-{i}")
    code, said, _ = _sink(kafka_env(_conn(cluster, "sink:webhook", f"without-{i}")), tmp_path)
    assert code == 2
    assert "KafkaAccessDenied" in said
    assert f"User:{user}" in said and row.target in said and "READ" in said
    assert PASSWORDS[user] not in said
