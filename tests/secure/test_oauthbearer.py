"""SASL/OAUTHBEARER on the secured Apache Kafka's OAUTH listener: Kafka checks each token
against the issuer's keys (OAuthBearerValidatorCallbackHandler and a JWKS URL), the issuer
is a local OAuth 2.0 server following the client credentials grant
(streams.dev.fakes.oidc). A client holding the SLA agent's ACLs passes the start-up check,
records go through confluent-kafka (librdkafka fetches its own tokens) and through Faust's
aiokafka (`ClientCredentialsTokens`), and `wedsync sla` runs; a wrong client secret is
named, never shown."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import SecretStr
from streams.dev.fakes.kit import FakeServer
from streams.dev.fakes.oidc import OidcIssuerFake
from streams.dev.kraft import KafkaCluster
from streams.errors import KafkaAuthenticationFailed
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
        grant(kafka, [*acl_bindings("sla", CLIENT, APP), *roundtrip_acls(CLIENT)])
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
    assert through_confluent_kafka(conn)


def test_records_go_through_faust_s_aiokafka_with_fetched_tokens(
    conn: KafkaConnection, issuer: FakeServer
) -> None:
    issued = issuer.provider.counters["issued"]
    assert through_faust_aiokafka(conn)
    assert issuer.provider.counters["issued"] > issued


def test_the_sla_agent_runs_on_it(conn: KafkaConnection) -> None:
    code, stderr = sla_on(conn)
    assert code == 0, stderr


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
