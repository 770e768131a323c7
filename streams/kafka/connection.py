"""How every Kafka client of a process connects: one model, parsed once at the edge
(`streams.settings.Settings.kafka`), passed down, turned into each library's own options here
and nowhere else.

Names follow librdkafka's (`security.protocol`, `sasl.mechanism`, `ssl.ca.location`, ...).
confluent-kafka clients take `librdkafka()`; Faust/aiokafka take `faust_credentials()`.
Secrets are `SecretStr`: never in a repr, a log line or an error message.

A bare bootstrap string where a `KafkaConnection` is expected means PLAINTEXT without
authentication (`connection()`): the embedded broker, the test clusters.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from streams.errors import ConfigurationError

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
# How long the broker may hold a consumer's fetch while it has no data. Apache Kafka answers
# as soon as data arrives for a partition in the fetch, so the wait costs no latency; it sets
# how often an idle consumer asks, and at 5-20 ms a process's few consumers were a quarter of
# the broker's CPU (`bench delivery`). A partition that becomes fetchable while a fetch is
# parked (just assigned, its offset just found) joins the next one: once, up to the wait.
# The embedded Tansu broker answers only after the whole wait: its clients wait
# `EMBEDDED_FETCH_WAIT_MS` (`holds_fetches`; its children get it in FETCH_WAIT_ENV).
FETCH_WAIT_ENV = "KAFKA_FETCH_WAIT_MAX_MS"
DEFAULT_FETCH_WAIT_MS = 500  # Kafka's own consumers' and librdkafka's default
EMBEDDED_FETCH_WAIT_MS = 10
OAUTHBEARER_SETTINGS = (
    "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL",
    "KAFKA_SASL_OAUTHBEARER_CLIENT_ID",
    "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET",
)


class KafkaConnection(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str
    security_protocol: Protocol = "PLAINTEXT"
    sasl_mechanism: Mechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_oauthbearer_token_endpoint_url: str | None = None
    sasl_oauthbearer_client_id: str | None = None
    sasl_oauthbearer_client_secret: SecretStr | None = None
    sasl_oauthbearer_scope: str | None = None
    ssl_ca_location: Path | None = None
    ssl_certificate_location: Path | None = None
    ssl_key_location: Path | None = None
    ssl_key_password: SecretStr | None = None
    ssl_endpoint_identification_algorithm: Literal["https", "none"] = "https"
    client_id: str = "wedsync"
    fetch_wait_ms: int = Field(default=DEFAULT_FETCH_WAIT_MS, ge=1, le=60_000)

    @model_validator(mode="after")
    def _consistent(self) -> KafkaConnection:
        if not self.bootstrap_servers.strip():
            raise ValueError("KAFKA_BOOTSTRAP_SERVERS is empty")
        sasl = self.security_protocol.startswith("SASL_")
        oauth = (
            self.sasl_oauthbearer_token_endpoint_url,
            self.sasl_oauthbearer_client_id,
            self.sasl_oauthbearer_client_secret,
        )
        if self.sasl_mechanism == "OAUTHBEARER":
            if self.sasl_username or self.sasl_password:
                raise ValueError(
                    "KAFKA_SASL_MECHANISM=OAUTHBEARER logs in with a token, not "
                    "KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD: unset them"
                )
            needed = [
                ("KAFKA_SASL_MECHANISM", self.sasl_mechanism),
                *zip(OAUTHBEARER_SETTINGS, oauth, strict=True),
            ]
        else:
            if any(oauth):
                raise ValueError(
                    "KAFKA_SASL_OAUTHBEARER_* is set but KAFKA_SASL_MECHANISM is "
                    f"{self.sasl_mechanism}: set OAUTHBEARER to use it"
                )
            needed = [
                ("KAFKA_SASL_MECHANISM", self.sasl_mechanism),
                ("KAFKA_SASL_USERNAME", self.sasl_username),
                ("KAFKA_SASL_PASSWORD", self.sasl_password),
            ]
        if sasl:
            missing = [name for name, value in needed if not value]
            if missing:
                raise ValueError(
                    f"KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs {', '.join(missing)}"
                )
        elif self.sasl_mechanism or self.sasl_username or self.sasl_password or any(oauth):
            raise ValueError(
                "KAFKA_SASL_* is set but KAFKA_SECURITY_PROTOCOL is "
                f"{self.security_protocol}: set SASL_SSL (or SASL_PLAINTEXT) to use it"
            )
        tls = self.security_protocol in ("SSL", "SASL_SSL")
        files = {
            "KAFKA_SSL_CA_LOCATION": self.ssl_ca_location,
            "KAFKA_SSL_CERTIFICATE_LOCATION": self.ssl_certificate_location,
            "KAFKA_SSL_KEY_LOCATION": self.ssl_key_location,
        }
        if not tls and any(files.values()):
            raise ValueError(
                "KAFKA_SSL_* is set but KAFKA_SECURITY_PROTOCOL is "
                f"{self.security_protocol}: set SSL or SASL_SSL to use TLS"
            )
        if bool(self.ssl_certificate_location) != bool(self.ssl_key_location):
            raise ValueError(
                "mutual TLS needs both KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION"
            )
        for name, path in files.items():
            if path is not None and not path.is_file():
                raise ValueError(f"{name}={path}: no such file")
        return self

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def named(self, client_id: str) -> KafkaConnection:
        """The same connection with this process's client id (quotas, broker logs, ACL
        audit lines name it)."""
        return self.model_copy(update={"client_id": client_id})

    def librdkafka(self) -> dict[str, Any]:
        """Options of a confluent-kafka producer, consumer or admin client."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "client.id": self.client_id,
        }
        if self.sasl_mechanism == "OAUTHBEARER":
            assert self.sasl_oauthbearer_client_secret is not None
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.oauthbearer.method"] = "oidc"  # client credentials, by librdkafka
            config["sasl.oauthbearer.token.endpoint.url"] = self.sasl_oauthbearer_token_endpoint_url
            config["sasl.oauthbearer.client.id"] = self.sasl_oauthbearer_client_id
            config["sasl.oauthbearer.client.secret"] = (
                self.sasl_oauthbearer_client_secret.get_secret_value()
            )
            if self.sasl_oauthbearer_scope:
                config["sasl.oauthbearer.scope"] = self.sasl_oauthbearer_scope
        elif self.sasl_mechanism is not None:
            assert self.sasl_username is not None and self.sasl_password is not None
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.sasl_username
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.tls:
            if self.ssl_ca_location is not None:
                config["ssl.ca.location"] = str(self.ssl_ca_location)
            if self.ssl_certificate_location is not None:
                config["ssl.certificate.location"] = str(self.ssl_certificate_location)
                config["ssl.key.location"] = str(self.ssl_key_location)
            if self.ssl_key_password is not None:
                config["ssl.key.password"] = self.ssl_key_password.get_secret_value()
            config["ssl.endpoint.identification.algorithm"] = (
                self.ssl_endpoint_identification_algorithm
            )
        return config

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context of the Python clients (aiokafka under Faust)."""
        context = ssl.create_default_context(
            cafile=str(self.ssl_ca_location) if self.ssl_ca_location else None
        )
        context.check_hostname = self.ssl_endpoint_identification_algorithm == "https"
        if self.ssl_certificate_location is not None:
            password = self.ssl_key_password.get_secret_value() if self.ssl_key_password else None
            context.load_cert_chain(
                str(self.ssl_certificate_location), str(self.ssl_key_location), password
            )
        return context

    def faust_credentials(self) -> Any:
        """Faust's `broker_credentials` (None for PLAINTEXT)."""
        import faust

        if self.sasl_mechanism == "OAUTHBEARER":
            from streams.kafka.oauthbearer import ClientCredentialsTokens

            return faust.OAuthCredentials(
                oauth_cb=ClientCredentialsTokens(self),
                ssl_context=self.ssl_context() if self.tls else None,
            )
        if self.sasl_mechanism is not None:
            assert self.sasl_username is not None and self.sasl_password is not None
            return faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password.get_secret_value(),
                mechanism=self.sasl_mechanism,
                ssl_context=self.ssl_context() if self.tls else None,
            )
        if self.tls:
            return faust.SSLCredentials(self.ssl_context())
        return None


Kafka = KafkaConnection | str


def connection(kafka: Kafka) -> KafkaConnection:
    """`kafka` as a model; a bare bootstrap string (development and test brokers) is
    PLAINTEXT without authentication, with the fetch wait its broker needs."""
    if isinstance(kafka, KafkaConnection):
        return kafka
    try:
        return KafkaConnection(bootstrap_servers=kafka, fetch_wait_ms=default_fetch_wait(kafka))
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc


_HOLDING_FETCHES: set[str] = set()


def holds_fetches(bootstrap_servers: str) -> None:
    """The broker at `bootstrap_servers` answers a fetch only after its whole wait (the
    embedded Tansu): a bare-address connection to it waits `EMBEDDED_FETCH_WAIT_MS`."""
    _HOLDING_FETCHES.add(bootstrap_servers)


def default_fetch_wait(bootstrap_servers: str) -> int:
    """The fetch wait for `bootstrap_servers` when no setting names one."""
    if bootstrap_servers in _HOLDING_FETCHES:
        return EMBEDDED_FETCH_WAIT_MS
    return DEFAULT_FETCH_WAIT_MS


def client_config(kafka: Kafka, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A confluent-kafka client's configuration: the connection's options, then the
    caller's `options` (librdkafka names), which may not override the connection's own
    except `client.id`."""
    config = connection(kafka).librdkafka()
    for name, value in (options or {}).items():
        if name in config and name != "client.id":
            raise ValueError(f"{name} comes from the connection settings, not from a caller")
        config[name] = value
    return config


def consumer_config(
    kafka: Kafka, options: Mapping[str, Any] | None = None, *, fetch_wait_ms: int | None = None
) -> dict[str, Any]:
    """`client_config` for a consumer: its `fetch.wait.max.ms` is `fetch_wait_ms` when given
    (a component's own setting), else the connection's."""
    wait = connection(kafka).fetch_wait_ms if fetch_wait_ms is None else fetch_wait_ms
    return {**client_config(kafka, options), "fetch.wait.max.ms": wait}
