"""What the calendar feed knows of its own writes (`OwnedFeed`) on Apache Kafka: everything
kept is read again at every start and to its end before the first round, whatever order the
topics are read in, and the calendar ledger marks writes older than the deliveries kept."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Producer
from connectors.calendar.feed.kafka_io import OwnedFeed
from streams.kafka.codec import TopicCodecs
from streams.logic.calendar.echo import OwnedIndex
from streams.logic.calendar.rounds import CalendarRef
from streams.topics import DELIVER, DELIVERY_RESULTS, LEDGER, Destination, Topic

from tests.integration.calendar.support import wait

pytestmark = pytest.mark.integration

CALENDAR = DELIVER[Destination.CALENDAR]


def delivery(integration: str, external: str, delivery_id: str) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {
        "delivery_id": delivery_id, "event_id": uuid.uuid4().hex,
        "event_type": "wedding.date_changed", "aggregate_id": f"wedding-{delivery_id}",
        "aggregate_version": 7, "source_ts_ms": now, "routed_at_ms": now,
        "recipient_id": None, "integration_id": integration, "attempt": 1,
        "provider": "graph", "calendar_id": "primary", "operation": "upsert",
        "external_event_id": external, "title": "Alex & Sam", "description": None,
        "location": None, "starts_at_ms": 1_812_441_600_000, "ends_at_ms": 1_812_463_200_000,
        "time_zone": "Europe/London", "all_day": False, "local_start": None, "local_end": None,
        "fallback_time_zone": None,
    }  # fmt: skip


def result(integration: str, delivery_id: str, provider_id: str) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {
        "delivery_id": delivery_id, "event_id": uuid.uuid4().hex,
        "event_type": "wedding.date_changed", "destination": "calendar",
        "target": f"calendar:{integration}", "integration_id": integration, "attempt": 1,
        "outcome": "delivered", "status_code": 201, "latency_ms": 12, "provider_id": provider_id,
        "error_class": None, "error_message": None, "source_ts_ms": now,
        "completed_at_ms": now, "aggregate_id": f"wedding-{delivery_id}",
        "aggregate_version": 7, "routed_at_ms": now, "source_topic": CALENDAR.deliver.name,
        "source_partition": 0, "source_offset": 0, "superseded_by": None,
        "picked_up_at_ms": now,
    }  # fmt: skip


def produce(bootstrap: str, codecs: TopicCodecs, records: list[tuple[Topic, dict]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for topic, record in records:
        key = str(record["integration_id"]).encode()
        producer.produce(topic.name, codecs[topic].encode(record), key)
    assert producer.flush(30) == 0


def loaded(bootstrap: str, codecs: TopicCodecs, group: str) -> OwnedIndex:
    owned = OwnedIndex()
    feed = OwnedFeed(bootstrap, codecs, owned, group)
    try:
        feed.load(timeout_s=60)
    finally:
        feed.close()
    return owned


def calendar(integration: str) -> CalendarRef:
    return CalendarRef(
        provider="graph", integration_id=integration, calendar_id="primary",
        supplier_id="s-1", time_zone="Europe/London",
    )  # fmt: skip


def test_a_restarted_feed_knows_every_write_the_last_one_read(
    kafka_bootstrap: str, codecs: TopicCodecs, unique_id: str
) -> None:
    integration, delivery_id = uuid.uuid4().hex, uuid.uuid4().hex
    produce(kafka_bootstrap, codecs, [
        (CALENDAR.deliver, delivery(integration, "ext-1", delivery_id)),
        (DELIVERY_RESULTS, result(integration, delivery_id, "AAMk-graph-1")),
    ])  # fmt: skip
    group = f"owned-{unique_id}"
    loaded(kafka_bootstrap, codecs, group)
    again = loaded(kafka_bootstrap, codecs, group)  # the same group: a restart
    assert again.external_id(calendar(integration), "AAMk-graph-1", None) == "ext-1"
    assert again.get(calendar(integration), "ext-1") is not None


def test_a_result_read_before_its_delivery_still_marks_the_provider_id(
    kafka_bootstrap: str, codecs: TopicCodecs, unique_id: str
) -> None:
    integration, delivery_id = uuid.uuid4().hex, uuid.uuid4().hex
    produce(kafka_bootstrap, codecs, [
        (DELIVERY_RESULTS, result(integration, delivery_id, "AAMk-graph-2")),
    ])  # fmt: skip
    owned = OwnedIndex()
    feed = OwnedFeed(kafka_bootstrap, codecs, owned, f"owned-{unique_id}")
    try:
        feed.load(timeout_s=60)
        produce(kafka_bootstrap, codecs, [
            (CALENDAR.deliver, delivery(integration, "ext-2", delivery_id)),
        ])  # fmt: skip
        wait(lambda: owned.external_id(calendar(integration), "AAMk-graph-2", None), 30)
    finally:
        feed.close()
    assert owned.external_id(calendar(integration), "AAMk-graph-2", None) == "ext-2"


def test_a_ledger_result_whose_delivery_is_gone_still_marks_the_event_as_ours(
    kafka_bootstrap: str, codecs: TopicCodecs, unique_id: str
) -> None:
    integration, delivery_id = uuid.uuid4().hex, uuid.uuid4().hex
    produce(kafka_bootstrap, codecs, [
        (LEDGER[Destination.CALENDAR], result(integration, delivery_id, "AAMk-graph-3")),
    ])  # fmt: skip
    owned = loaded(kafka_bootstrap, codecs, f"owned-{unique_id}")
    assert owned.external_id(calendar(integration), "AAMk-graph-3", None) is not None
