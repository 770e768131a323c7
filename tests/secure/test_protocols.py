"""The other security protocols a deployment may use, on the secured Apache Kafka's other
client listeners (`KafkaCluster(secured=True)`): SASL_PLAINTEXT with PLAIN and with SCRAM,
and SSL with client certificates (mutual TLS, the principal the certificate's CN). On each,
a principal holding the SLA agent's ACLs passes the start-up check, records go through
confluent-kafka and through Faust's aiokafka (the credentials the worker gives Faust), and
`wedsync sla` runs; a wrong PLAIN password and a missing client certificate are named."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import (
    AdminClient,
    NewTopic,
)
from pydantic import SecretStr
from streams.dev.kraft import KafkaCluster
from streams.errors import KafkaAuthenticationFailed, KafkaTlsFailed
from streams.kafka.access import acl_bindings, check_access
from streams.kafka.admin import create_topics
from streams.kafka.connection import KafkaConnection, client_config

from tests.secure.roundtrip import (
    TOPIC,
    roundtrip_acls,
    sla_on,
    through_confluent_kafka,
    through_faust_aiokafka,
)
from tests.secure.support import grant, wait_allowed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

APP = "wedsync"
PLAIN_USER, SCRAM_USER, CERT_USER = "sla-plain", "sla-scram", "sla-mtls"
PASSWORDS = {PLAIN_USER: secrets.token_hex(12), SCRAM_USER: secrets.token_hex(12)}


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
        grant(kafka, [b for u in users for b in [*acl_bindings("sla", u, APP), *roundtrip_acls(u)]])
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
    assert through_confluent_kafka(conn)


def test_records_go_through_faust_s_aiokafka_credentials(conn: KafkaConnection) -> None:
    assert through_faust_aiokafka(conn)


def test_the_sla_agent_runs_on_it(conn: KafkaConnection) -> None:
    code, stderr = sla_on(conn)
    assert code == 0, stderr


def test_a_wrong_plain_password_is_named(cluster: KafkaCluster) -> None:
    wrong = sasl_plaintext(cluster, PLAIN_USER, "PLAIN", password="not-the-password")
    with pytest.raises(KafkaAuthenticationFailed) as info:
        check_access(wrong, "sla", APP)
    assert "KAFKA_SASL_PASSWORD" in str(info.value) and "not-the-password" not in str(info.value)


def test_no_client_certificate_names_the_certificate_settings(cluster: KafkaCluster) -> None:
    with pytest.raises(KafkaTlsFailed) as info:
        check_access(mutual_tls(cluster, with_certificate=False), "sla", APP)
    assert "KAFKA_SSL_CERTIFICATE_LOCATION" in str(info.value)
