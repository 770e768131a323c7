"""The other security protocols a deployment may use, on the secured Apache Kafka's other
client listeners (`KafkaCluster(secured=True)`): SASL_PLAINTEXT with PLAIN and with SCRAM,
and SSL with client certificates (mutual TLS, the principal the certificate's CN). On each,
a principal holding the SLA agent's ACLs passes the start-up check, records go through
confluent-kafka and through Faust's aiokafka (the credentials the worker gives Faust), and
`wedsync sla` runs; a wrong PLAIN password and a missing client certificate are named."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import SecretStr
from streams.dev.broker import free_port
from streams.dev.kraft import KafkaCluster
from streams.errors import KafkaAuthenticationFailed, KafkaTlsFailed
from streams.kafka.access import acl_bindings, check_access
from streams.kafka.admin import create_topics
from streams.kafka.connection import KafkaConnection, client_config

from tests.integration.inapp.support import wait_ready
from tests.secure.support import grant, kafka_env, wait_allowed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

APP = "wedsync"
PLAIN_USER, SCRAM_USER, CERT_USER = "sla-plain", "sla-scram", "sla-mtls"
PASSWORDS = {PLAIN_USER: secrets.token_hex(12), SCRAM_USER: secrets.token_hex(12)}
TOPIC, GROUP = "protocols.roundtrip", "protocols-"


def _roundtrip_acls(principal: str) -> list[AclBinding]:
    allow = AclPermissionType.ALLOW
    return [
        AclBinding(ResourceType.TOPIC, TOPIC, ResourcePatternType.LITERAL, f"User:{principal}",
                   "*", op, allow)
        for op in (AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE)
    ] + [AclBinding(ResourceType.GROUP, GROUP, ResourcePatternType.PREFIXED, f"User:{principal}",
                    "*", AclOperation.READ, allow)]  # fmt: skip


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    kafka = KafkaCluster(secured=True, users=dict(PASSWORDS),
                         base_dir=tmp_path_factory.mktemp("protocols-kafka"))  # fmt: skip
    try:
        kafka.start()
        create_topics(kafka.connection())
        admin = AdminClient(client_config(kafka.connection()))
        for future in admin.create_topics([NewTopic(TOPIC, 1, 1)]).values():
            future.result(timeout=30)
        users = (PLAIN_USER, SCRAM_USER, CERT_USER)
        grant(
            kafka, [b for u in users for b in [*acl_bindings("sla", u, APP), *_roundtrip_acls(u)]]
        )
        for make in CONNECTIONS.values():  # until the ACLs reached the authorizer
            wait_allowed(make(kafka), "sla", APP, timeout=60)
        yield kafka
    finally:
        kafka.stop()


def sasl_plaintext(
    cluster: KafkaCluster, user: str, mechanism: str, password: str | None = None
) -> KafkaConnection:
    return KafkaConnection(
        bootstrap_servers=cluster.listener("SASLPLAIN"), security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism, sasl_username=user,
        sasl_password=SecretStr(password or PASSWORDS[user]), client_id=f"wedsync-{user}",
    )  # fmt: skip


def mutual_tls(cluster: KafkaCluster, *, with_certificate: bool = True) -> KafkaConnection:
    certificate = cluster.client_certificate(CERT_USER) if with_certificate else None
    return KafkaConnection(
        bootstrap_servers=cluster.listener("MTLS"), security_protocol="SSL",
        ssl_ca_location=cluster.ca_location, ssl_certificate_location=certificate,
        ssl_key_location=certificate, client_id="wedsync-sla-mtls",
    )  # fmt: skip


CONNECTIONS = {
    "SASL_PLAINTEXT PLAIN": lambda c: sasl_plaintext(c, PLAIN_USER, "PLAIN"),
    "SASL_PLAINTEXT SCRAM-SHA-256": lambda c: sasl_plaintext(c, SCRAM_USER, "SCRAM-SHA-256"),
    "SSL mutual TLS": mutual_tls,
}


@pytest.fixture(params=sorted(CONNECTIONS))
def conn(request: pytest.FixtureRequest, cluster: KafkaCluster) -> KafkaConnection:
    return CONNECTIONS[request.param](cluster)


def test_the_start_up_check_passes_with_the_roles_acls(conn: KafkaConnection) -> None:
    check_access(conn, "sla", APP)


def test_records_go_through_confluent_kafka(conn: KafkaConnection) -> None:
    value = uuid.uuid4().bytes
    producer = Producer(client_config(conn))
    producer.produce(TOPIC, value)
    assert producer.flush(30) == 0
    consumer = Consumer(client_config(conn, {"group.id": f"{GROUP}{uuid.uuid4()}",
                                             "auto.offset.reset": "earliest"}))  # fmt: skip
    consumer.subscribe([TOPIC])
    try:
        seen = []
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                seen.append(message.value())
                if value in seen:
                    break
        assert value in seen
    finally:
        consumer.close()


def test_records_go_through_faust_s_aiokafka_credentials(conn: KafkaConnection) -> None:
    auth = dict(credentials_to_aiokafka_auth(conn.faust_credentials()))
    value = uuid.uuid4().bytes

    async def roundtrip() -> bool:
        producer = AIOKafkaProducer(bootstrap_servers=conn.bootstrap_servers, **auth)
        await producer.start()
        try:
            await producer.send_and_wait(TOPIC, value)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(TOPIC, bootstrap_servers=conn.bootstrap_servers,
                                    group_id=f"{GROUP}{uuid.uuid4()}",
                                    auto_offset_reset="earliest", **auth)  # fmt: skip
        await consumer.start()
        try:
            async with asyncio.timeout(60):
                async for message in consumer:
                    if message.value == value:
                        return True
        finally:
            await consumer.stop()
        return False

    assert asyncio.run(roundtrip())


def test_the_sla_agent_runs_on_it(conn: KafkaConnection) -> None:
    port = free_port()
    env = {**os.environ, **kafka_env(conn), "WEDSYNC_METRICS_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "streams.app.cli", "sla"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        wait_ready(f"http://127.0.0.1:{port}/healthz", timeout=90)
        assert proc.poll() is None
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


def test_a_wrong_plain_password_is_named(cluster: KafkaCluster) -> None:
    wrong = sasl_plaintext(cluster, PLAIN_USER, "PLAIN", password="not-the-password")
    with pytest.raises(KafkaAuthenticationFailed) as info:
        check_access(wrong, "sla", APP)
    assert "KAFKA_SASL_PASSWORD" in str(info.value) and "not-the-password" not in str(info.value)


def test_no_client_certificate_names_the_certificate_settings(cluster: KafkaCluster) -> None:
    with pytest.raises(KafkaTlsFailed) as info:
        check_access(mutual_tls(cluster, with_certificate=False), "sla", APP)
    assert "KAFKA_SSL_CERTIFICATE_LOCATION" in str(info.value)
