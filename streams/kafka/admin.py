"""Create the catalog's topics on a broker, idempotently."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from streams import topics as catalog
from streams.errors import BrokerUnavailable, ConfigurationError
from streams.kafka.connection import Kafka, client_config
from streams.kafka.recovering import wait_for_leaders

log = logging.getLogger(__name__)


@dataclass
class CreateReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # not ours to create (ACLs)


def create_topics(
    bootstrap_servers: Kafka,
    wanted: Iterable[catalog.Topic] = catalog.ALL,
    *,
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> CreateReport:
    """Create every topic in `wanted` that does not exist yet; existing ones are left alone,
    but must have the catalog's partition count (ConfigurationError otherwise: keys would
    land on other partitions than the tables built from them expect).

    On a cluster with ACLs, topics this principal may not create are `refused` (a warning):
    creating the catalog is then an admin's job, and a topic it may not even describe looks
    absent from here (Kafka answers TOPIC_AUTHORIZATION_FAILED whether it exists or not).
    Each process checks the topics of its own role at start (`streams.kafka.access`)."""
    admin = AdminClient(client_config(bootstrap_servers))
    report = CreateReport()
    wanted = list(wanted)
    if not wanted:
        return report
    try:  # only what is missing is asked for: no CREATE needed for what exists
        visible = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise BrokerUnavailable(f"could not list the topics: {exc.args[0].str()}") from exc
    report.existing += [t.name for t in wanted if t.name in visible]
    new = [NewTopic(t.name, t.partitions, replication_factor, config=t.config())
           for t in wanted if t.name not in visible]  # fmt: skip
    futures = (
        admin.create_topics(new, request_timeout=timeout, operation_timeout=timeout) if new else {}
    )
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
            report.created.append(name)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                report.existing.append(name)
            elif error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                report.refused.append(name)
            else:
                raise BrokerUnavailable(f"could not create {name}: {error.str()}") from exc
    if report.refused:
        log.warning("not allowed to create %d topics (%s): on this cluster an admin creates "
                    "them (`wedsync topics create` with admin credentials)",
                    len(report.refused), ", ".join(sorted(report.refused)))  # fmt: skip
    if report.existing:
        _check_partitions(admin, [t for t in wanted if t.name in report.existing], timeout)
    # so the first produce does not wait for elections (over 10 s on a loaded machine); a
    # warning, not an error: clients wait for them themselves
    if report.created and (electing := wait_for_leaders(admin, report.created, timeout)):
        log.warning("%d new topics still electing leaders after %.0f s: %s",
                    len(electing), timeout, ", ".join(sorted(electing)[:5]))  # fmt: skip
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
