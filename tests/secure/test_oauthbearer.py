"""SASL/OAUTHBEARER on the secured Apache Kafka's OAUTH listener: Kafka checks each token
against the issuer's keys (OAuthBearerValidatorCallbackHandler and a JWKS URL), the issuer
is a local OAuth 2.0 server following the client credentials grant
(streams.dev.fakes.oidc). A client holding the SLA agent's ACLs passes the start-up check,
records go through confluent-kafka (librdkafka fetches its own tokens) and through Faust's
aiokafka (`ClientCredentialsTokens`), and `wedsync sla` runs; a wrong client secret is
named, never shown."""

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
from confluent_kafka.admin import AdminClient, NewTopic
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import SecretStr
from streams.dev.broker import free_port
from streams.dev.fakes.kit import FakeServer
from streams.dev.fakes.oidc import OidcIssuerFake
from streams.dev.kraft import KafkaCluster
from streams.errors import KafkaAuthenticationFailed
from streams.kafka.access import acl_bindings, check_access
from streams.kafka.admin import create_topics
from streams.kafka.connection import KafkaConnection, client_config

from tests.integration.inapp.support import wait_ready
from tests.secure.support import grant, kafka_env, wait_allowed
from tests.secure.test_protocols import GROUP, TOPIC, _roundtrip_acls

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

APP = "wedsync"
CLIENT, SECRET = "wedsync-sla-oauth", secrets.token_hex(16)


@pytest.fixture(scope="module")
def issuer() -> Iterator[FakeServer]:
    with FakeServer(OidcIssuerFake(clients={CLIENT: SECRET})) as server:
        yield server


@pytest.fixture(scope="module")
def cluster(issuer: FakeServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    kafka = KafkaCluster(secured=True, oauth_jwks_url=f"{issuer.url}/jwks",
                         base_dir=tmp_path_factory.mktemp("oauth-kafka"))  # fmt: skip
    try:
        kafka.start()
        create_topics(kafka.connection())
        admin = AdminClient(client_config(kafka.connection()))
        for future in admin.create_topics([NewTopic(TOPIC, 1, 1)]).values():
            future.result(timeout=30)
        grant(kafka, [*acl_bindings("sla", CLIENT, APP), *_roundtrip_acls(CLIENT)])
        wait_allowed(oauth(kafka, issuer), "sla", APP, timeout=60)
        yield kafka
    finally:
        kafka.stop()


def oauth(cluster: KafkaCluster, issuer: FakeServer, secret: str = SECRET) -> KafkaConnection:
    return KafkaConnection(
        bootstrap_servers=cluster.listener("OAUTH"), security_protocol="SASL_SSL",
        sasl_mechanism="OAUTHBEARER", ssl_ca_location=cluster.ca_location,
        sasl_oauthbearer_token_endpoint_url=f"{issuer.url}/token",
        sasl_oauthbearer_client_id=CLIENT, sasl_oauthbearer_client_secret=SecretStr(secret),
        sasl_oauthbearer_scope="kafka", client_id="wedsync-sla-oauth",
    )  # fmt: skip


@pytest.fixture
def conn(cluster: KafkaCluster, issuer: FakeServer) -> KafkaConnection:
    return oauth(cluster, issuer)


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


def test_records_go_through_faust_s_aiokafka_with_fetched_tokens(
    conn: KafkaConnection, issuer: FakeServer
) -> None:
    auth = dict(credentials_to_aiokafka_auth(conn.faust_credentials()))
    value = uuid.uuid4().bytes
    issued = issuer.provider.counters["issued"]

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
    assert issuer.provider.counters["issued"] > issued


def test_the_sla_agent_runs_on_it(conn: KafkaConnection) -> None:
    port = free_port()
    assert conn.sasl_oauthbearer_client_secret is not None
    env = {**os.environ, **kafka_env(conn), "WEDSYNC_METRICS_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "streams.app.cli", "sla"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        wait_ready(f"http://127.0.0.1:{port}/healthz", timeout=90)
        assert proc.poll() is None
    finally:
        proc.terminate()
        code = proc.wait(30)
        assert proc.stderr is not None
        assert code == 0, proc.stderr.read().decode()[-3000:]


def test_a_wrong_client_secret_is_named_never_shown(
    cluster: KafkaCluster, issuer: FakeServer
) -> None:
    with pytest.raises(KafkaAuthenticationFailed) as info:
        check_access(oauth(cluster, issuer, secret="not-the-secret"), "sla", APP)
    message = str(info.value)
    assert "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET" in message and "not-the-secret" not in message


def test_faust_s_token_provider_names_a_refused_client(
    cluster: KafkaCluster, issuer: FakeServer
) -> None:
    from streams.kafka.oauthbearer import ClientCredentialsTokens

    tokens = ClientCredentialsTokens(oauth(cluster, issuer, secret="not-the-secret"))
    with pytest.raises(KafkaAuthenticationFailed) as info:
        asyncio.run(tokens.token())
    assert "invalid_client" in str(info.value) and "not-the-secret" not in str(info.value)
