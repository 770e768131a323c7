"""At start, the row keys the routing state holds, read back from `wedsync.ingest.state`
(compacted, one partition, written only by this source) into `StateKeys`, so a TRUNCATE
decoded after a restart removes the rows written before it. I/O: one Kafka consumer,
assigned (no group membership, nothing committed), read from the start to the end the
topic had when it began; records of other databases are not this source's and are skipped.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from confluent_kafka import KafkaException, TopicPartition
from streams.errors import BrokerUnavailable, ConfigurationError, DecodeError
from streams.kafka.codec import TopicCodecs
from streams.models import ChangeEvent
from streams.topics import INGEST_STATE

from connectors.sources.postgres_cdc.decode import HEARTBEAT_KEY
from connectors.sources.postgres_cdc.state_keys import StateKeys

log = logging.getLogger(__name__)


KEEP = "cleanup.policy=compact,retention.ms=-1"


def check_state_topic_kept(admin: Any | None, timeout: float) -> None:
    """ConfigurationError, saying the command, when wedsync.ingest.state lets records
    expire (not compacted, or a finite retention with deletion): the keys read back would
    miss the rows written before it, and a TRUNCATE would leave them in the state. A
    warning when there is no admin client, or Kafka does not report the setting (Tansu)."""
    from confluent_kafka.admin import ConfigResource, ResourceType

    if admin is None:
        log.warning("no Kafka admin client: %s's cleanup.policy is not checked", INGEST_STATE.name)
        return
    resource = ConfigResource(ResourceType.TOPIC, INGEST_STATE.name)
    try:
        entries = admin.describe_configs([resource], request_timeout=timeout)[resource].result(
            timeout=timeout
        )
    except KafkaException as exc:
        raise BrokerUnavailable(f"cannot read {INGEST_STATE.name}'s configuration: {exc}") from exc
    policy = entries.get("cleanup.policy")
    if policy is None or policy.value is None:
        log.warning("Kafka did not report %s's cleanup.policy: not checked", INGEST_STATE.name)
        return
    if "compact" not in policy.value or "delete" in policy.value:
        raise ConfigurationError(
            f"{INGEST_STATE.name} has cleanup.policy={policy.value}: its records expire, so "
            "the CDC source cannot know every row a TRUNCATE of a state table must delete. "
            f"Run kafka-configs.sh --alter --entity-type topics --entity-name "
            f"{INGEST_STATE.name} --add-config {KEEP}, then restart"
        )


def _bounds(consumer: Any, partition: TopicPartition, deadline: float) -> tuple[int, int]:
    """The partition's (low, high) offsets, asked again while its leader is elected."""
    while True:
        try:
            low, high = consumer.get_watermark_offsets(partition, timeout=5.0)
            return int(low), int(high)
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(
                    f"cannot read {INGEST_STATE.name}'s offsets ({exc}): check the broker "
                    "and the source's grants on the topic, then restart"
                ) from exc
            time.sleep(0.2)


def read_state_keys(
    consumer: Any, codecs: TopicCodecs, db: str, keys: StateKeys, timeout: float = 120.0
) -> int:
    """Fold every record of wedsync.ingest.state up to its current end into `keys`; the
    number of records read. BrokerUnavailable when Kafka does not answer within `timeout`
    seconds: the source must not stream without them (a TRUNCATE would leave rows)."""
    decode = codecs[INGEST_STATE].decode
    partition = TopicPartition(INGEST_STATE.name, 0)
    deadline = time.monotonic() + timeout
    low, high = _bounds(consumer, partition, deadline)
    read, last = 0, low - 1
    if high > low:
        consumer.assign([TopicPartition(INGEST_STATE.name, 0, low)])
    while last < high - 1:
        if time.monotonic() > deadline:
            raise BrokerUnavailable(
                f"{INGEST_STATE.name} not read back within {timeout:.0f}s (offset {last} of "
                f"{high}): check the broker and the source's READ grant on it, then restart"
            )
        for msg in consumer.consume(1000, 0.5):
            if msg.error():
                raise BrokerUnavailable(f"reading {INGEST_STATE.name}: {msg.error()}")
            last, read = msg.offset(), read + 1
            if msg.key() == HEARTBEAT_KEY or msg.value() is None:
                continue
            try:
                change = decode(msg.value())
            except DecodeError as exc:  # the state agent dead-lettered it too
                log.warning("%s offset %d unreadable, skipped: %s", INGEST_STATE.name, last, exc)
                continue
            if change["source"]["db"] == db:
                keys.track(msg.key(), cast(ChangeEvent, change))
    log.info("state keys read back: %d rows of the state tables in %d records of %s",
             len(keys), read, INGEST_STATE.name)  # fmt: skip
    return read
