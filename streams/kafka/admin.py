"""Create the catalog's topics on a broker, idempotently."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from streams import topics as catalog
from streams.errors import BrokerUnavailable, ConfigurationError
from streams.kafka.connection import Kafka, client_config


@dataclass
class CreateReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


def create_topics(
    bootstrap_servers: Kafka,
    wanted: Iterable[catalog.Topic] = catalog.ALL,
    *,
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> CreateReport:
    """Create every topic in `wanted` that does not exist yet; existing ones are left alone,
    but must have the catalog's partition count (ConfigurationError otherwise: keys would
    land on other partitions than the tables built from them expect)."""
    admin = AdminClient(client_config(bootstrap_servers))
    report = CreateReport()
    wanted = list(wanted)
    new = [NewTopic(t.name, t.partitions, replication_factor, config=t.config()) for t in wanted]
    if not new:
        return report
    futures = admin.create_topics(new, request_timeout=timeout, operation_timeout=timeout)
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
            report.created.append(name)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                report.existing.append(name)
            else:
                raise BrokerUnavailable(f"could not create {name}: {error.str()}") from exc
    if report.existing:
        _check_partitions(admin, [t for t in wanted if t.name in report.existing], timeout)
    return report


def _check_partitions(admin: AdminClient, existing: list[catalog.Topic], timeout: float) -> None:
    metadata = admin.list_topics(timeout=timeout).topics
    wrong = [
        f"{t.name} has {len(metadata[t.name].partitions)}, the catalog says {t.partitions}"
        for t in existing
        if t.name in metadata and len(metadata[t.name].partitions) != t.partitions
    ]
    if wrong:
        raise ConfigurationError(
            "existing topics have another partition count: " + "; ".join(wrong) + ". Set "
            "WEDSYNC_PARTITIONS to the count the cluster has, or recreate the topics"
        )
