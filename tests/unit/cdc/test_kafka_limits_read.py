"""`read_kafka_limits` asks Kafka the way a multi-broker cluster accepts: one BROKER
resource per DescribeConfigs call (a three-node cluster refused the source's start)."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import ResourceType
from connectors.sources.postgres_cdc.limits import read_kafka_limits
from streams.topics import INGEST_CDC


class ThreeBrokers:
    """An AdminClient answering as Apache Kafka does for brokers 1-3."""

    def list_topics(self, timeout: float) -> Any:
        return SimpleNamespace(brokers={1: None, 2: None, 3: None})

    def describe_configs(self, resources: list[Any], request_timeout: float) -> dict[Any, Any]:
        brokers = [r for r in resources if r.restype == ResourceType.BROKER]
        answers = {}
        for resource in resources:
            future: Future[Any] = Future()
            if len(brokers) > 1:
                future.set_exception(KafkaException(KafkaError(
                    KafkaError.INVALID_REQUEST,
                    "Only one ConfigResource of type BROKER is allowed per call",
                )))  # fmt: skip
            else:
                key = "message.max.bytes" if resource in brokers else "max.message.bytes"
                future.set_result({key: SimpleNamespace(value="1048588")})
            answers[resource] = future
        return answers


def test_every_broker_and_topic_limit_is_read_on_a_three_node_cluster() -> None:
    limits = read_kafka_limits(ThreeBrokers(), [INGEST_CDC.name], timeout=1.0)
    assert limits.brokers == {"1": 1048588, "2": 1048588, "3": 1048588}
    assert limits.topics == {INGEST_CDC.name: 1048588}
