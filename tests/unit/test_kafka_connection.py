"""One model for how every Kafka client connects (`streams.kafka.connection`), parsed from
the environment once (`streams.settings`): librdkafka's names, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from streams.errors import ConfigurationError
from streams.kafka.connection import KafkaConnection, client_config
from streams.settings import Settings, load_settings

PASSWORD = "s3cr3t-sasl-password"


def sasl_ssl(ca: Path) -> KafkaConnection:
    return KafkaConnection(
        bootstrap_servers="kafka-1:9093,kafka-2:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="wedsync-worker",
        sasl_password=SecretStr(PASSWORD),
        ssl_ca_location=ca,
        client_id="wedsync-worker",
    )


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return path


def test_sasl_ssl_gives_librdkafkas_options(ca: Path) -> None:
    assert sasl_ssl(ca).librdkafka() == {
        "bootstrap.servers": "kafka-1:9093,kafka-2:9093",
        "security.protocol": "SASL_SSL",
        "client.id": "wedsync-worker",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "wedsync-worker",
        "sasl.password": PASSWORD,
        "ssl.ca.location": str(ca),
        "ssl.endpoint.identification.algorithm": "https",
    }


def test_the_password_is_not_in_the_models_text(ca: Path) -> None:
    connection = sasl_ssl(ca)
    assert PASSWORD not in repr(connection)
    assert PASSWORD not in str(connection)


def test_sasl_without_credentials_names_what_is_missing() -> None:
    with pytest.raises(ValueError, match="KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD"):
        KafkaConnection(bootstrap_servers="k:9093", security_protocol="SASL_SSL",
                        sasl_mechanism="PLAIN")  # fmt: skip


def test_sasl_settings_under_plaintext_are_refused() -> None:
    with pytest.raises(ValueError, match="set SASL_SSL"):
        KafkaConnection(bootstrap_servers="k:9092", sasl_username="someone")


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"KAFKA_SSL_CA_LOCATION=.*no such file"):
        KafkaConnection(bootstrap_servers="k:9093", security_protocol="SSL",
                        ssl_ca_location=tmp_path / "absent.pem")  # fmt: skip


def test_mutual_tls_needs_the_certificate_and_its_key(ca: Path) -> None:
    with pytest.raises(ValueError, match="KAFKA_SSL_KEY_LOCATION"):
        KafkaConnection(bootstrap_servers="k:9093", security_protocol="SSL",
                        ssl_ca_location=ca, ssl_certificate_location=ca)  # fmt: skip


def test_a_caller_cannot_override_the_connections_own_options(ca: Path) -> None:
    with pytest.raises(ValueError, match=r"security\.protocol"):
        client_config(sasl_ssl(ca), {"security.protocol": "PLAINTEXT"})


def test_a_bare_bootstrap_string_is_plaintext() -> None:
    assert client_config("127.0.0.1:9092", {"group.id": "g"}) == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "PLAINTEXT",
        "client.id": "wedsync",
        "group.id": "g",
    }


def test_the_password_can_come_from_a_mounted_file(tmp_path: Path, ca: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    settings = Settings(
        kafka_bootstrap_servers="k:9093", kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256", kafka_sasl_username="wedsync-sink",
        kafka_sasl_password_file=secret, kafka_ssl_ca_location=ca,
    )  # fmt: skip
    assert settings.kafka_cluster("wedsync-sink").librdkafka()["sasl.password"] == PASSWORD


def test_a_wrong_setting_is_named_without_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", PASSWORD)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert "KAFKA_SASL_MECHANISM" in str(raised.value)
    assert PASSWORD not in str(raised.value)


def test_a_process_that_needs_the_cluster_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="KAFKA_BOOTSTRAP_SERVERS is not set"):
        Settings(kafka_bootstrap_servers=None).kafka_cluster("wedsync-cdc")


def test_oauthbearer_gives_librdkafkas_oidc_options(ca: Path) -> None:
    conn = KafkaConnection(
        bootstrap_servers="k:9093", security_protocol="SASL_SSL", sasl_mechanism="OAUTHBEARER",
        sasl_oauthbearer_token_endpoint_url="https://idp.example/oauth2/token",
        sasl_oauthbearer_client_id="wedsync-sla", sasl_oauthbearer_scope="kafka",
        sasl_oauthbearer_client_secret=SecretStr(PASSWORD), ssl_ca_location=ca,
    )  # fmt: skip
    options = conn.librdkafka()
    assert {k: v for k, v in options.items() if k.startswith("sasl.")} == {
        "sasl.mechanism": "OAUTHBEARER",
        "sasl.oauthbearer.method": "oidc",
        "sasl.oauthbearer.token.endpoint.url": "https://idp.example/oauth2/token",
        "sasl.oauthbearer.client.id": "wedsync-sla",
        "sasl.oauthbearer.client.secret": PASSWORD,
        "sasl.oauthbearer.scope": "kafka",
    }
    assert PASSWORD not in repr(conn)


def test_oauthbearer_without_its_client_names_what_is_missing() -> None:
    with pytest.raises(
        ValueError, match="KAFKA_SASL_OAUTHBEARER_CLIENT_ID, KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET"
    ):
        KafkaConnection(bootstrap_servers="k:9093", security_protocol="SASL_SSL",
                        sasl_mechanism="OAUTHBEARER",
                        sasl_oauthbearer_token_endpoint_url="https://idp/token")  # fmt: skip


def test_oauthbearer_settings_with_another_mechanism_are_refused() -> None:
    with pytest.raises(ValueError, match="set OAUTHBEARER"):
        KafkaConnection(bootstrap_servers="k:9093", security_protocol="SASL_SSL",
                        sasl_mechanism="PLAIN", sasl_username="u", sasl_password=SecretStr("p"),
                        sasl_oauthbearer_client_id="wedsync-sla")  # fmt: skip
