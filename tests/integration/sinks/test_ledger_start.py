"""A sink restarted after many results starts from the bounded ledger, on Apache Kafka: the
compacted `wedsync.delivery.ledger.slack` and the results of its uncommitted records, not
the history; and it still skips a copy, a stale version and a record whose commit was lost.
A compacted ledger without its marker (a deployment upgraded) is backfilled once from the
results.

Each test's sink has a consumer group of its own whose offsets start at the current end of
the Slack topics, so it reads only that test's records on the session's shared broker. The
results of 'history' are written with timestamps three days old; the restarted sinks read
back no copy window and allow no clock skew, so nothing but the compacted ledger and the
uncommitted records' results can tell them what happened before."""

from __future__ import annotations

import time
import uuid
from functools import partial
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from connectors.sinks import envelope
from connectors.sinks.credentials import MemoryCredentialStore
from connectors.sinks.runtime import SinkRuntime
from connectors.sinks.settings import SinkSettings
from streams.kafka.codec import TopicCodecs
from streams.logic.ledger import BACKFILLED, SEP
from streams.topics import DELIVER, DELIVERY_RESULTS, LEDGER, Destination

from tests.integration.sinks.support import (
    FAST,
    RunningSink,
    ScriptedConnector,
    outcomes,
    produce,
    read_all,
    results,
    slack_record,
    wait_until,
)

pytestmark = pytest.mark.integration

SLACK = DELIVER[Destination.SLACK]
LEDGER_SLACK = LEDGER[Destination.SLACK]
BOUNDED = {"ledger_copy_window_s": 0.0, "ledger_clock_skew_s": 0.0}
HISTORY = 3_000  # results written before the restart, three days old
THREE_DAYS_AGO_MS = int((time.time() - 3 * 86_400) * 1000)


def start_at_the_end(bootstrap: str, group_id: str) -> None:
    """Commit `group_id`'s offsets at the current end of the Slack deliver and retry topics."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id,
                         "enable.auto.commit": False})  # fmt: skip

    def end(tp: TopicPartition) -> TopicPartition | None:
        try:  # a topic just created may not have its leader yet
            return TopicPartition(tp.topic, tp.partition, consumer.get_watermark_offsets(tp, 5)[1])
        except KafkaException:
            return None

    try:
        parts = [TopicPartition(t.name, p) for t in (SLACK.deliver, SLACK.retry)
                 for p in range(t.partitions)]  # fmt: skip
        consumer.commit(offsets=[wait_until(partial(end, tp)) for tp in parts],
                        asynchronous=False)  # fmt: skip
    finally:
        consumer.close()


def rewind(bootstrap: str, group_id: str, result: dict[str, Any]) -> None:
    """Commit `group_id` back to the record `result` is about: its commit was lost."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id,
                         "enable.auto.commit": False})  # fmt: skip
    try:
        tp = TopicPartition(result["source_topic"], result["source_partition"],
                            result["source_offset"])  # fmt: skip
        consumer.commit(offsets=[tp], asynchronous=False)
    finally:
        consumer.close()


def delivered_result(record: dict[str, Any], offset: int = 0) -> dict[str, Any]:
    item = envelope.Item.read(SLACK.deliver.name, 0, offset, b"k", b"", [], record)
    return envelope.result(item, destination=Destination.SLACK, target="slack:C0001",
                           outcome="delivered", now_ms=THREE_DAYS_AGO_MS)  # fmt: skip


def write_history(bootstrap: str, codecs: TopicCodecs, n: int = HISTORY) -> None:
    """`n` delivered results, three days old, of deliveries nobody will see again."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    value = codecs[DELIVERY_RESULTS].encode(delivered_result(slack_record(0), offset=10**9))
    for i in range(n):
        producer.produce(DELIVERY_RESULTS.name, value, f"old-{i}".encode(),
                         timestamp=THREE_DAYS_AGO_MS)  # fmt: skip
        producer.poll(0)
    assert producer.flush(30) == 0


def start(bootstrap: str, codecs: TopicCodecs, connector: ScriptedConnector,
          group_id: str, **settings: Any) -> RunningSink:  # fmt: skip
    return RunningSink(SinkRuntime(
        connector, bootstrap=bootstrap, codecs=codecs, credentials=MemoryCredentialStore(),
        settings=SinkSettings(**{**FAST, **settings}), group_id=group_id,
    ))  # fmt: skip


def read_at_start(sink: RunningSink) -> int:
    return wait_until(lambda: getattr(sink.runtime, "_reader", None)).read_at_start


def final(bootstrap: str, codecs: TopicCodecs, delivery_id: str, outcome: str) -> list[str]:
    return wait_until(lambda: (o := outcomes(bootstrap, codecs, delivery_id)) and outcome in o
                      and o)  # fmt: skip


@pytest.fixture
def group_id(kafka_bootstrap: str) -> str:
    group = f"wedsync-sink-slack-{uuid.uuid4().hex[:8]}"
    start_at_the_end(kafka_bootstrap, group)
    return group


def test_a_restarted_sink_skips_a_copy_and_a_stale_version_from_the_compacted_ledger(
    kafka_bootstrap: str, codecs: TopicCodecs, group_id: str
) -> None:
    wedding = f"wedding-{uuid.uuid4().hex[:8]}"
    newer = slack_record(1, aggregate_id=wedding, aggregate_version=200)
    older = slack_record(2, aggregate_id=wedding, aggregate_version=100)
    first = start(kafka_bootstrap, codecs, ScriptedConnector(), group_id)
    produce(kafka_bootstrap, codecs, [newer])
    final(kafka_bootstrap, codecs, newer["delivery_id"], "delivered")
    first.stop()
    write_history(kafka_bootstrap, codecs)
    produce(kafka_bootstrap, codecs, [newer, older])  # a copy, then an older version
    again = ScriptedConnector()
    second = start(kafka_bootstrap, codecs, again, group_id, **BOUNDED)
    try:
        final(kafka_bootstrap, codecs, newer["delivery_id"], "skipped_duplicate")
        final(kafka_bootstrap, codecs, older["delivery_id"], "skipped_stale")
        assert read_at_start(second) < HISTORY
    finally:
        second.stop()
    assert again.calls == []
    stale = [r for r in results(kafka_bootstrap, codecs)
             if r["delivery_id"] == older["delivery_id"]]  # fmt: skip
    assert [r["superseded_by"] for r in stale] == [newer["delivery_id"]]


def test_a_record_whose_commit_was_lost_is_skipped_quietly_after_a_restart(
    kafka_bootstrap: str, codecs: TopicCodecs, group_id: str
) -> None:
    fact = slack_record(1, event_type="form.response_received")
    later = slack_record(2, event_type="form.response_received")
    first = start(kafka_bootstrap, codecs, ScriptedConnector(), group_id)
    produce(kafka_bootstrap, codecs, [fact])
    final(kafka_bootstrap, codecs, fact["delivery_id"], "delivered")
    first.stop()
    done = [r for r in results(kafka_bootstrap, codecs)
            if r["delivery_id"] == fact["delivery_id"]]  # fmt: skip
    rewind(kafka_bootstrap, group_id, done[0])
    write_history(kafka_bootstrap, codecs)
    again = ScriptedConnector()
    second = start(kafka_bootstrap, codecs, again, group_id, **BOUNDED)
    try:
        produce(kafka_bootstrap, codecs, [later])  # read after the lost commit's record
        final(kafka_bootstrap, codecs, later["delivery_id"], "delivered")
        assert read_at_start(second) < HISTORY
    finally:
        second.stop()
    assert outcomes(kafka_bootstrap, codecs, fact["delivery_id"]) == ["delivered"]
    assert [c.delivery_id for c in again.calls] == [later["delivery_id"]]


def test_a_ledger_without_its_marker_is_backfilled_once_from_the_results(
    kafka_bootstrap: str, codecs: TopicCodecs, group_id: str
) -> None:
    wedding = f"wedding-{uuid.uuid4().hex[:8]}"
    newer = slack_record(1, aggregate_id=wedding, aggregate_version=500)
    older = slack_record(2, aggregate_id=wedding, aggregate_version=400)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(LEDGER_SLACK.name, None, BACKFILLED.encode())  # as before the upgrade
    producer.produce(DELIVERY_RESULTS.name, codecs[DELIVERY_RESULTS].encode(
        delivered_result(newer, offset=10**9)), b"k", timestamp=THREE_DAYS_AGO_MS)  # fmt: skip
    assert producer.flush(10) == 0
    produce(kafka_bootstrap, codecs, [older])
    connector = ScriptedConnector()
    sink = start(kafka_bootstrap, codecs, connector, group_id, **BOUNDED)
    try:
        final(kafka_bootstrap, codecs, older["delivery_id"], "skipped_stale")
    finally:
        sink.stop()
    assert connector.calls == []
    kept = {m.key(): m.value() for m in read_all(kafka_bootstrap, LEDGER_SLACK)}
    assert kept[BACKFILLED.encode()] is not None
    key = SEP.join(("slack:C0001", "wedding", wedding)).encode()
    assert codecs[DELIVERY_RESULTS].decode(kept[key])["delivery_id"] == newer["delivery_id"]
