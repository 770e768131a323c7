"""Which Kafka a process talks to: the configured cluster (`KAFKA_BOOTSTRAP_SERVERS` and the
KAFKA_SECURITY_* settings), or a development broker (`streams.dev.broker`) chosen explicitly,
never silently."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from streams.errors import ConfigurationError
from streams.kafka.connection import KafkaConnection
from streams.settings import Settings


@contextlib.contextmanager
def kafka_broker(
    settings: Settings, client_id: str, *, dev_default: str | None = None
) -> Iterator[KafkaConnection]:
    """How this process connects to Kafka: the configured cluster (`KAFKA_BOOTSTRAP_SERVERS`
    and the KAFKA_SECURITY_* settings), or a development broker started for the duration,
    chosen explicitly (`WEDSYNC_BROKER`, or the `dev_default` of a dev command such as the
    demo). A production command with neither refuses to start: ConfigurationError naming
    the variable, never an in-memory broker that looks healthy and keeps nothing."""
    if settings.kafka_bootstrap_servers:
        yield settings.kafka(settings.kafka_bootstrap_servers, client_id)
        return
    choice = settings.broker or dev_default
    if choice is None:
        raise ConfigurationError(
            "KAFKA_BOOTSTRAP_SERVERS is not set: point it at your Kafka cluster (with "
            "KAFKA_SECURITY_PROTOCOL and its settings for a secured one), or set "
            "WEDSYNC_BROKER=tansu to start an embedded development broker (data in memory)"
        )
    if settings.kafka_security_protocol != "PLAINTEXT":
        raise ConfigurationError(
            f"WEDSYNC_BROKER={choice} starts a PLAINTEXT development broker, but "
            f"KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol}: unset one of them"
        )
    try:
        from streams.dev.broker import dev_broker
    except ModuleNotFoundError:
        raise ConfigurationError(
            f"WEDSYNC_BROKER={choice} asks for a development broker, which this installation "
            "leaves out (no streams.dev, as in the production image): set "
            "KAFKA_BOOTSTRAP_SERVERS to your cluster"
        ) from None

    with dev_broker(choice) as bootstrap:
        yield settings.kafka(bootstrap, client_id)
