"""The error tree. Every failure the pipeline can meet is one of these; foreign exceptions
(httpx, confluent-kafka, fastavro, psycopg2) are translated once, at the boundary.

    WedsyncError                   base; never raised directly
    ├── ConfigurationError         bad settings: fix the configuration and restart
    │   ├── ContractViolation      the source database does not have what the contract reads
    │   ├── KafkaAuthenticationFailed  the cluster refused our SASL login (KAFKA_SASL_*)
    │   ├── KafkaTlsFailed         no TLS session with the broker (KAFKA_SSL_CA_LOCATION, ...)
    │   └── KafkaAccessDenied      the principal lacks ACLs its role needs (streams.kafka.access)
    ├── BrokerUnavailable          Kafka could not be reached: retry later (HTTP 503 upstream)
    │   ├── BrokerDataLost         the cluster lost topics or offsets we had: restart, rebuild
    │   └── EventsNotWritten       the cluster refused a record we produced: stop uncommitted
    ├── SchemaError                a schema file or registry answer is unusable
    │   └── IncompatibleSchema     a new schema version cannot read older data
    ├── DeliveryError              a sink could not deliver a message
    │   ├── RetryableError         transient: retry with exponential backoff
    │   ├── BackpressureError      the target asked us to slow down: retry after `retry_after`
    │   └── FatalError             will never succeed as sent: dead-letter it, do not retry
    └── PoisonMessage              the record itself is bad: dead-letter it with the reason
        └── DecodeError            bytes are not a valid record in our wire format
"""

from __future__ import annotations


class WedsyncError(Exception):
    """Base of every error raised by wedsync-streams."""


class ConfigurationError(WedsyncError):
    """Settings are missing or invalid. Fix the configuration; retrying will not help."""


class ContractViolation(ConfigurationError):
    """A source table lacks a column the pipeline reads, or has it with another type. The
    message names every `table.column` and what to do (add it, or map the name)."""


class KafkaAuthenticationFailed(ConfigurationError):
    """The cluster refused this process's SASL login. The message names the settings to fix
    (KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, KAFKA_SASL_MECHANISM),
    never the password."""


class KafkaTlsFailed(ConfigurationError):
    """No TLS session with a broker: its certificate is not signed by a CA this process
    trusts, or not for the address dialled. The message names KAFKA_SSL_CA_LOCATION (and
    KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM where it applies)."""


class KafkaAccessDenied(ConfigurationError):
    """The principal may not do what its role needs: the message names each missing ACL
    (principal, resource, operation) and where the role's ACLs are listed."""


class SchemaRegistryRefused(ConfigurationError):
    """The Schema Registry cannot be used as configured: its certificate is not trusted, it
    refused the credentials or this process's client certificate, or nothing answers at
    its URL. The message names the SCHEMA_REGISTRY_* setting to fix, never a secret."""


class BrokerUnavailable(WedsyncError):
    """Kafka did not answer in time. Callers retry later; HTTP handlers answer 503."""


class BrokerDataLost(BrokerUnavailable):
    """Kafka no longer has data this process saw (a topic vanished, an embedded broker
    restarted empty). Restarting the process rebuilds its state from what Kafka has now;
    the message says what else must be read again."""


class EventsNotWritten(BrokerUnavailable):
    """The cluster refused a record the worker had produced (after it was handed to the
    producer). The worker stops without committing the records the event came from; the
    message says what to fix before it is started again."""


class SchemaError(WedsyncError):
    """A schema file, or the registry's answer about one, cannot be used."""


class IncompatibleSchema(SchemaError):
    """A schema version cannot read data written with an earlier version.

    ``field`` names the offending field path so the author knows what to fix.
    """

    def __init__(self, message: str, *, subject: str, field: str) -> None:
        super().__init__(message)
        self.subject = subject
        self.field = field


class DeliveryError(WedsyncError):
    """A sink failed to deliver; the subclass says whether and when to retry."""


class RetryableError(DeliveryError):
    """Transient failure (timeout, 5xx, connection reset): retry with backoff."""


class BackpressureError(DeliveryError):
    """The target throttled us (429, Retry-After): retry no sooner than ``retry_after`` s."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FatalError(DeliveryError):
    """Will never succeed as sent (4xx, archived channel, bad credentials): dead-letter it."""


class PoisonMessage(WedsyncError):
    """The record itself is bad. Dead-letter it with this message as the reason; keep going."""


class DecodeError(PoisonMessage):
    """Bytes are not a record in our wire format: wrong magic byte, unknown schema id,
    truncated or corrupt Avro. The original bytes belong on the dead-letter topic."""
