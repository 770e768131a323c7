"""Settings, parsed once at the edge from the environment (and a `.env` file if present).

`KAFKA_BOOTSTRAP_SERVERS` and `SCHEMA_REGISTRY_URL` keep their conventional names; everything
else is prefixed `WEDSYNC_`. Settings are frozen and validated before any I/O happens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.errors import ConfigurationError
from streams.kafka.connection import (
    KafkaConnection,
    Mechanism,
    Protocol,
    default_fetch_wait,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WEDSYNC_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "WEDSYNC_KAFKA_BOOTSTRAP_SERVERS"),
        description="The Kafka cluster. Unset: only WEDSYNC_BROKER's development broker.",
    )
    broker: Literal["tansu", "kafka", "kafka3", "testcontainers"] | None = Field(
        default=None,
        validation_alias=AliasChoices("WEDSYNC_BROKER"),
        description="A development broker to start when KAFKA_BOOTSTRAP_SERVERS is unset: "
        "tansu (embedded, memory), kafka or kafka3 (Apache Kafka from .cache/kafka), "
        "testcontainers. Unset: a production command refuses to start without a broker.",
    )
    kafka_security_protocol: Protocol = Field(
        default="PLAINTEXT", validation_alias=AliasChoices("KAFKA_SECURITY_PROTOCOL")
    )
    kafka_sasl_mechanism: Mechanism | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_SASL_MECHANISM")
    )
    kafka_sasl_username: str | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_SASL_USERNAME")
    )
    kafka_sasl_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_SASL_PASSWORD")
    )
    kafka_sasl_password_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_SASL_PASSWORD_FILE"),
        description="A mounted secret holding the SASL password (instead of the variable).",
    )
    kafka_sasl_oauthbearer_token_endpoint_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL"),
        description="OAUTHBEARER: the identity provider's token endpoint (client credentials).",
    )
    kafka_sasl_oauthbearer_client_id: str | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_SASL_OAUTHBEARER_CLIENT_ID")
    )
    kafka_sasl_oauthbearer_client_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET")
    )
    kafka_sasl_oauthbearer_scope: str | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_SASL_OAUTHBEARER_SCOPE")
    )
    kafka_ssl_ca_location: Path | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_SSL_CA_LOCATION")
    )
    kafka_ssl_certificate_location: Path | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_SSL_CERTIFICATE_LOCATION")
    )
    kafka_ssl_key_location: Path | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_SSL_KEY_LOCATION")
    )
    kafka_ssl_key_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_SSL_KEY_PASSWORD")
    )
    kafka_ssl_endpoint_identification_algorithm: Literal["https", "none"] = Field(
        default="https",
        validation_alias=AliasChoices("KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM"),
    )
    schema_registry_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SCHEMA_REGISTRY_URL", "WEDSYNC_SCHEMA_REGISTRY_URL"),
        description="Confluent-compatible Schema Registry; unset: the embedded registry.",
    )
    schema_registry_basic_auth: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", "WEDSYNC_SCHEMA_REGISTRY_BASIC_AUTH"
        ),
        description="'user:password' for the Schema Registry.",
    )
    schema_registry_ssl_ca_location: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("SCHEMA_REGISTRY_SSL_CA_LOCATION"),
        description="PEM file of the CA that signed the registry's certificate (https).",
    )
    schema_registry_ssl_certificate_location: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION"),
        description="This process's client certificate (PEM) for a registry requiring mTLS.",
    )
    schema_registry_ssl_key_location: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("SCHEMA_REGISTRY_SSL_KEY_LOCATION"),
        description="The client certificate's private key (PEM).",
    )
    schema_registry_ssl_key_password: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SCHEMA_REGISTRY_SSL_KEY_PASSWORD"),
        description="The private key's password, when it has one.",
    )
    schemas_dir: Path = Path(__file__).resolve().parent / "schemas"  # schemas/, shipped inside
    app_id: str = "wedsync"
    partitions: int = Field(
        default=6,
        ge=1,
        description="Partitions of every keyed catalog topic and of Faust's internal topics "
        "(tables stay co-partitioned with their sources). The most workers a stage can use; "
        "on the embedded broker each partition also costs broker CPU on every fetch.",
    )
    replication_factor: int = 1
    faust_fetch_wait_ms: int = Field(
        default=50,
        ge=1,
        description="Longest a Faust worker's fetch wait (streams.kafka.faust_transport): "
        "aiokafka leaves a partition whose records are being consumed out of the fetch in "
        "flight, so its next record can wait for that fetch to end.",
    )
    kafka_fetch_wait_max_ms: int | None = Field(
        default=None,
        ge=1,
        le=60_000,
        validation_alias=AliasChoices("KAFKA_FETCH_WAIT_MAX_MS"),
        description="Longest the broker holds a consumer's fetch while it has no data "
        "(every confluent-kafka consumer of the process). Unset: 500 ms, or the embedded "
        "broker's 10 ms (it answers only after the whole wait); Kafka answers as soon as "
        "data arrives, so a long wait costs no latency and saves broker CPU.",
    )
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    log_level: Literal["debug", "info", "warn", "warning", "error", "critical"] = Field(
        default="info",
        description="Every command's log level (the Faust worker's too); the audit lines "
        "of outbound calls (`wedsync.audit`) are kept at any level.",
    )
    metrics_port: int | None = Field(
        default=9400,
        description="Port of this process's /metrics and /healthz (unset: none served).",
    )
    metrics_host: str = Field(default="127.0.0.1", description="0.0.0.0 in containers.")

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _kafka_connection_is_valid(self) -> Settings:
        if self.kafka_sasl_password and self.kafka_sasl_password_file:
            raise ValueError("set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both")
        self.kafka(self.kafka_bootstrap_servers or "localhost:9092")  # fails here, before I/O
        return self

    def kafka_cluster(self, client_id: str) -> KafkaConnection:
        """The configured cluster, for a process that never starts a broker of its own (the
        CDC source, sinks, the SLA agent, audits): ConfigurationError when none is set."""
        if not self.kafka_bootstrap_servers:
            raise ConfigurationError(
                "KAFKA_BOOTSTRAP_SERVERS is not set: point it at the pipeline's Kafka cluster "
                "(`wedsync broker` runs a local development one)"
            )
        return self.kafka(self.kafka_bootstrap_servers, client_id)

    def schema_registry(self) -> dict[str, str] | None:
        """The Schema Registry client's configuration (confluent-kafka's names), or None for
        the embedded registry."""
        if not self.schema_registry_url:
            return None
        conf = {"url": self.schema_registry_url}
        secrets = {"basic.auth.user.info": self.schema_registry_basic_auth,
                   "ssl.key.password": self.schema_registry_ssl_key_password}  # fmt: skip
        files = {"ssl.ca.location": self.schema_registry_ssl_ca_location,
                 "ssl.certificate.location": self.schema_registry_ssl_certificate_location,
                 "ssl.key.location": self.schema_registry_ssl_key_location}  # fmt: skip
        conf.update({k: v.get_secret_value() for k, v in secrets.items() if v is not None})
        conf.update({k: str(v) for k, v in files.items() if v is not None})
        return conf

    def kafka(self, bootstrap_servers: str, client_id: str | None = None) -> KafkaConnection:
        """How this process's Kafka clients connect to `bootstrap_servers` (the configured
        cluster, or the development broker started for it)."""
        password = self.kafka_sasl_password
        if self.kafka_sasl_password_file is not None:
            try:
                text = self.kafka_sasl_password_file.read_text().strip()
            except OSError as exc:
                raise ValueError(
                    f"KAFKA_SASL_PASSWORD_FILE={self.kafka_sasl_password_file}: {exc.strerror}"
                ) from None
            password = SecretStr(text)
        return KafkaConnection(
            bootstrap_servers=bootstrap_servers,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=password,
            sasl_oauthbearer_token_endpoint_url=self.kafka_sasl_oauthbearer_token_endpoint_url,
            sasl_oauthbearer_client_id=self.kafka_sasl_oauthbearer_client_id,
            sasl_oauthbearer_client_secret=self.kafka_sasl_oauthbearer_client_secret,
            sasl_oauthbearer_scope=self.kafka_sasl_oauthbearer_scope,
            ssl_ca_location=self.kafka_ssl_ca_location,
            ssl_certificate_location=self.kafka_ssl_certificate_location,
            ssl_key_location=self.kafka_ssl_key_location,
            ssl_key_password=self.kafka_ssl_key_password,
            ssl_endpoint_identification_algorithm=self.kafka_ssl_endpoint_identification_algorithm,
            client_id=client_id or self.app_id,
            fetch_wait_ms=self.kafka_fetch_wait_max_ms or default_fetch_wait(bootstrap_servers),
        )


def load_settings() -> Settings:
    """Read the environment once. Call at process start, pass the result down.
    ConfigurationError names each setting that is wrong (never its value: some are secrets)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError(settings_problems(exc)) from None


def settings_problems(exc: ValidationError) -> str:
    """What is wrong, per setting, without the values given."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        if where in Settings.model_fields:  # a field read from its prefixed variable
            where = f"WEDSYNC_{where.upper()}"
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)
