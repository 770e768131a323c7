"""The Schema Registry client over https with basic auth and mutual TLS, against a registry
that speaks the documented REST API (streams.dev.fakes.schema_registry) behind a CA the test
makes: records round-trip through ids the registry gave; an untrusted certificate, refused
credentials or a refused client certificate is a SchemaRegistryRefused naming the setting,
at start (`check()`), never a secret."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from streams import topics
from streams.dev.certs import Authority, authority
from streams.dev.fakes.kit import FakeServer
from streams.dev.fakes.schema_registry import SchemaRegistryFake
from streams.dev.samples import demo_changes
from streams.errors import SchemaRegistryRefused
from streams.kafka.codec import TopicCodecs
from streams.kafka.registry import ConfluentRegistry
from streams.settings import Settings

PASSWORD = "registry-pass-Zx81"
ROW = {"id": 1}


@pytest.fixture(scope="module")
def ca() -> Authority:
    return authority("registry test CA")


def _server_context(ca: Authority, tmp: Path, *, client_certs: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(ca.server_keystore(tmp / "server.pem"))
    if client_certs:
        context.load_verify_locations(cafile=ca.write(tmp / "clients-ca.pem"))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@pytest.fixture
def registry(ca: Authority, tmp_path: Path) -> Iterator[FakeServer]:
    fake = SchemaRegistryFake(users={"wedsync": PASSWORD})
    context = _server_context(ca, tmp_path, client_certs=False)
    with FakeServer(fake, ssl_context=context) as server:
        yield server


@pytest.fixture
def mtls_registry(ca: Authority, tmp_path: Path) -> Iterator[FakeServer]:
    context = _server_context(ca, tmp_path, client_certs=True)
    with FakeServer(SchemaRegistryFake(), ssl_context=context) as server:
        yield server


def _settings(**values: object) -> Settings:
    return Settings.model_validate(values)


def _round_trip(settings: Settings) -> None:
    """A change encoded with an id the registry gave decodes in a codec that asks anew."""
    change = demo_changes()[0]
    data = TopicCodecs.from_settings(settings)[topics.INGEST_CDC].encode(change)
    assert TopicCodecs.from_settings(settings)[topics.INGEST_CDC].decode(data) == change


def test_records_round_trip_over_https_with_basic_auth(
    registry: FakeServer, ca: Authority, tmp_path: Path
) -> None:
    settings = _settings(SCHEMA_REGISTRY_URL=registry.url,
                         SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO=f"wedsync:{PASSWORD}",
                         SCHEMA_REGISTRY_SSL_CA_LOCATION=ca.write(tmp_path / "ca.pem"))  # fmt: skip
    ConfluentRegistry(settings.schema_registry() or {}).check()
    _round_trip(settings)
    assert registry.provider.counters["registered"] == 1


def _refusal(settings: Settings) -> str:
    with pytest.raises(SchemaRegistryRefused) as info:
        ConfluentRegistry(settings.schema_registry() or {}).check()
    message = str(info.value)
    assert PASSWORD not in message
    return message


def test_an_untrusted_certificate_names_the_ca_setting(
    registry: FakeServer, tmp_path: Path
) -> None:
    other = authority("some other CA").write(tmp_path / "other.pem")
    message = _refusal(_settings(SCHEMA_REGISTRY_URL=registry.url,
                                 SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO=f"wedsync:{PASSWORD}",
                                 SCHEMA_REGISTRY_SSL_CA_LOCATION=other))  # fmt: skip
    assert "SCHEMA_REGISTRY_SSL_CA_LOCATION" in message


def test_a_wrong_password_names_the_credentials_setting(
    registry: FakeServer, ca: Authority, tmp_path: Path
) -> None:
    trusted = ca.write(tmp_path / "ca.pem")
    message = _refusal(_settings(SCHEMA_REGISTRY_URL=registry.url,
                                 SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO="wedsync:wrong-one",
                                 SCHEMA_REGISTRY_SSL_CA_LOCATION=trusted))  # fmt: skip
    assert "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO" in message and "wrong-one" not in message


def test_mutual_tls_with_a_client_certificate_round_trips(
    mtls_registry: FakeServer, ca: Authority, tmp_path: Path
) -> None:
    client = ca.server_keystore(tmp_path / "client.pem", hosts=("wedsync-cdc",))
    settings = _settings(SCHEMA_REGISTRY_URL=mtls_registry.url,
                         SCHEMA_REGISTRY_SSL_CA_LOCATION=ca.write(tmp_path / "ca.pem"),
                         SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION=client,
                         SCHEMA_REGISTRY_SSL_KEY_LOCATION=client)  # fmt: skip
    ConfluentRegistry(settings.schema_registry() or {}).check()
    _round_trip(settings)


def test_no_client_certificate_names_the_certificate_settings(
    mtls_registry: FakeServer, ca: Authority, tmp_path: Path
) -> None:
    trusted = ca.write(tmp_path / "ca.pem")
    message = _refusal(_settings(SCHEMA_REGISTRY_URL=mtls_registry.url,
                                 SCHEMA_REGISTRY_SSL_CA_LOCATION=trusted))  # fmt: skip
    assert "SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION" in message


def test_credentials_in_the_url_never_reach_the_message(registry: FakeServer) -> None:
    url = registry.url.replace("https://", f"https://wedsync:{PASSWORD}@")
    message = _refusal(_settings(SCHEMA_REGISTRY_URL=url))  # the CA is not given: untrusted
    assert "SCHEMA_REGISTRY_SSL_CA_LOCATION" in message


def test_a_process_with_an_untrusted_registry_exits_naming_the_setting(
    registry: FakeServer, tmp_path: Path
) -> None:
    other = authority("some other CA").write(tmp_path / "other.pem")
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
           "SCHEMA_REGISTRY_URL": registry.url, "SCHEMA_REGISTRY_SSL_CA_LOCATION": str(other),
           "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": f"wedsync:{PASSWORD}"}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "streams.app.cli", "sla"], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "SchemaRegistryRefused" in done.stderr
    assert "SCHEMA_REGISTRY_SSL_CA_LOCATION" in done.stderr and PASSWORD not in done.stderr
