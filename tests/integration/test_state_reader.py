"""The routing process's state reader on the real broker: rows and the watermark recovered
from the state rows' changelog; a record that is not a row is dead-lettered with its bytes
and the rest still loads."""

from __future__ import annotations

import json
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from streams import topics
from streams.kafka.admin import create_topics
from streams.kafka.deadletter import H_STAGE, H_TOPIC, header_map
from streams.routing.state_reader import ChangelogState
from streams.settings import Settings

pytestmark = pytest.mark.integration


def test_a_bad_changelog_record_is_dead_lettered_and_the_rest_loads(
    kafka_bootstrap: str, settings: Settings
) -> None:
    name = topics.app_topics(settings.app_id).state_rows_changelog.name
    create_topics(kafka_bootstrap, [topics.Topic(name, None, key="row key", fixed_partitions=1)])
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    bad_key = json.dumps("suppliers:s-bad").encode()
    producer.produce(name, b"\xff not json", bad_key)
    producer.produce(name, json.dumps({"id": "s-ok", "business_name": "Ok"}).encode(),
                     json.dumps("suppliers:s-ok").encode())  # fmt: skip
    producer.produce(name, json.dumps({"lsn": 42}).encode(), json.dumps("~watermark").encode())
    assert producer.flush(10) == 0
    reader = ChangelogState(kafka_bootstrap, settings.app_id)
    try:
        tables = reader.load(timeout=30)
        assert "s-ok" in tables.suppliers and reader.watermark == 42
    finally:
        reader.close()
    dlq = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"{settings.app_id}-dlq"})
    dlq.assign([TopicPartition(topics.EVENTS_DLQ.name, p, 0)
                for p in range(topics.EVENTS_DLQ.partitions)])  # fmt: skip
    dead = None
    deadline = time.monotonic() + 30
    try:
        while dead is None and time.monotonic() < deadline:
            for msg in dlq.consume(100, 0.2):
                if not msg.error() and msg.key() == bad_key:
                    dead = msg
    finally:
        dlq.close()
    assert dead is not None and dead.value() == b"\xff not json"
    headers = header_map(dead.headers())
    assert (headers[H_STAGE], headers[H_TOPIC]) == ("route-state", name)
