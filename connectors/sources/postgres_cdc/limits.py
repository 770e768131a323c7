"""The record size limit against Kafka's own, checked once at start.

Kafka refuses a record batch larger than the topic's `max.message.bytes` (which defaults to
the broker's `message.max.bytes`, 1048588 bytes); librdkafka refuses, at `produce()`, a record
larger than the producer's `message.max.bytes`. The source writes records of at most
`max_record_bytes` (key + value + headers; `config.py`) and builds its producer for exactly
that (`producer_limits`), so a record it accepts is one every topic it writes to accepts,
as long as

    max_record_bytes + RECORD_OVERHEAD <= every topic's max.message.bytes
                                          and every broker's message.max.bytes

`check_record_limit` decides that (pure); `read_kafka_limits` asks Kafka (DescribeConfigs
through the AdminClient); `check_kafka_limits` does both at the source's start. A limit the
broker does not report (Tansu answers DescribeConfigs without them) cannot be checked: a
warning names it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.errors import BrokerUnavailable, ConfigurationError

log = logging.getLogger(__name__)

DEFAULT_MAX_RECORD_BYTES = 1_000_000  # librdkafka's own default message.max.bytes
# A record batch's header (61 bytes) and one record's framing (length, attributes,
# timestamp and offset deltas, key and value lengths, header count and lengths), with room.
RECORD_OVERHEAD = 512
SETTING = "WEDSYNC_CDC_MAX_RECORD_BYTES (max_record_bytes)"


@dataclass(frozen=True)
class KafkaLimits:
    """What Kafka says it accepts: None where it did not say."""

    topics: Mapping[str, int | None] = field(default_factory=dict)  # max.message.bytes
    brokers: Mapping[str, int | None] = field(default_factory=dict)  # message.max.bytes

    def named(self) -> list[tuple[str, int | None]]:
        """(`topic T max.message.bytes` / `broker B message.max.bytes`, limit) pairs."""
        return [(f"topic {t} max.message.bytes", v) for t, v in sorted(self.topics.items())] + [
            (f"broker {b} message.max.bytes", v) for b, v in sorted(self.brokers.items())
        ]


def producer_limits(max_record_bytes: int) -> dict[str, Any]:
    """librdkafka settings that make `produce()` refuse what Kafka would refuse, and keep
    every batch within the limit the start check proved."""
    size = max_record_bytes + RECORD_OVERHEAD
    return {"message.max.bytes": size, "batch.size": size}


def check_record_limit(max_record_bytes: int, limits: KafkaLimits) -> list[str]:
    """ConfigurationError naming the setting and every limit it exceeds when a record of
    `max_record_bytes` could be refused by Kafka; else the limits Kafka did not report
    (unchecked, for a warning)."""
    needed = max_record_bytes + RECORD_OVERHEAD
    named = limits.named()
    exceeded = [f"{name}={value}" for name, value in named if value is not None and value < needed]
    if exceeded:
        lowest = min(value for name, value in named if value is not None)
        raise ConfigurationError(
            f"{SETTING} is {max_record_bytes}: with {RECORD_OVERHEAD} bytes of record framing "
            f"a record can be {needed} bytes, more than Kafka accepts: {', '.join(exceeded)}. "
            f"Set it to at most {lowest - RECORD_OVERHEAD}, or raise max.message.bytes on "
            "those topics and message.max.bytes on the brokers"
        )
    return [name for name, value in named if value is None]


def read_kafka_limits(admin: Any, topic_names: Iterable[str], timeout: float) -> KafkaLimits:
    """Each topic's `max.message.bytes` and each broker's `message.max.bytes`, by
    DescribeConfigs on `admin` (a confluent-kafka AdminClient). A topic that does not exist
    yet reports None. Raises BrokerUnavailable when Kafka does not answer."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import ConfigResource, ResourceType

    try:
        brokers = sorted(admin.list_topics(timeout=timeout).brokers)
    except KafkaException as exc:
        raise BrokerUnavailable(
            f"cannot read the record size limits from Kafka: {exc}; is the broker up?"
        ) from exc
    wanted = {ConfigResource(ResourceType.TOPIC, t): ("topic", t, "max.message.bytes")
              for t in topic_names}  # fmt: skip
    wanted.update({ConfigResource(ResourceType.BROKER, str(b)): ("broker", str(b),
                   "message.max.bytes") for b in brokers})  # fmt: skip
    found: dict[str, dict[str, int | None]] = {"topic": {}, "broker": {}}
    # Kafka takes one BROKER resource per DescribeConfigs call (a three-node cluster refuses
    # "Only one ConfigResource of type BROKER is allowed per call"): topics together, then
    # one call per broker
    topic_part = [r for r in wanted if r.restype == ResourceType.TOPIC]
    calls = [topic_part] if topic_part else []
    calls += [[r] for r in wanted if r.restype == ResourceType.BROKER]
    futures = {
        resource: future
        for call in calls
        for resource, future in admin.describe_configs(call, request_timeout=timeout).items()
    }
    for resource, future in futures.items():
        kind, name, key = wanted[resource]
        try:
            entries = future.result(timeout=timeout)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                found[kind][name] = None
                continue
            raise BrokerUnavailable(
                f"cannot read {key} of {kind} {name} from Kafka: {error.str()}"
            ) from exc
        entry = entries.get(key)
        value = None if entry is None or entry.value is None else int(entry.value)
        found[kind][name] = value
    return KafkaLimits(topics=found["topic"], brokers=found["broker"])


def check_kafka_limits(
    admin: Any | None, max_record_bytes: int, topic_names: list[str], timeout: float
) -> None:
    """At start: ConfigurationError when `max_record_bytes` is above what one of
    `topic_names` or a broker takes (BrokerUnavailable when Kafka does not say); a warning
    for each limit Kafka did not report, or when there is no admin client to ask."""
    if admin is None:
        log.warning("no Kafka admin client: max_record_bytes %d is not checked against "
                    "Kafka's limits", max_record_bytes)  # fmt: skip
        return
    unchecked = check_record_limit(max_record_bytes, read_kafka_limits(admin, topic_names, timeout))
    if unchecked:
        log.warning("Kafka did not report %s: max_record_bytes %d is not checked against "
                    "them", ", ".join(unchecked), max_record_bytes)  # fmt: skip
