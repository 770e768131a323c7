"""The routing engine on the real broker: one event id routes once (also across a restart),
a record that cannot be routed goes to the dead-letter topic while routing goes on, and an
event is never routed against a state known to be behind its commit."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from streams import topics
from streams.background import Background
from streams.errors import BrokerUnavailable
from streams.kafka.admin import create_topics
from streams.kafka.codec import TopicCodecs
from streams.kafka.deadletter import H_ERROR_CLASS, H_STAGE, H_TOPIC, header_map
from streams.logic.normalize import normalize_change
from streams.logic.routing import load_rules
from streams.logic.state import StateTables
from streams.models import DomainEvent
from streams.routing.engine import RouteEngine, RouteSettings
from streams.routing.process import internal_topics
from streams.settings import Settings

from tests.integration.agents_support import (
    SOURCE,
    WEDDING,
    DeliveryReader,
    date_change,
    state_changes,
    state_of,
    wedding_rows,
)

pytestmark = pytest.mark.integration


class RunningEngine(Background):
    """The engine on a thread; `close()` stops it (and re-raises what it raised)."""

    def __init__(self, engine: RouteEngine) -> None:
        self.engine = engine
        super().__init__(engine.run, "route")

    def close(self) -> None:
        self.stop()

    def routed(self, event_id: str) -> Any:
        """A `read_until` predicate: `event_id` was delivered; the engine's error if it died."""

        def check(got: list[tuple[object, dict[str, object]]]) -> bool:
            if not self.alive:
                self.close()  # re-raises what the engine raised
            return any(r["event_id"] == event_id for _, r in got)

        return check


class FailingProducer:
    """Takes records and reports each as failed, as librdkafka does once its retries are
    spent (message timed out): the routing engine must commit nothing past them."""

    def __init__(self, _config: dict[str, Any]) -> None:
        self.pending: list[Any] = []

    def produce(self, topic: str, value: Any = None, key: Any = None, **kw: Any) -> None:
        if kw.get("on_delivery") is not None:
            self.pending.append(kw["on_delivery"])

    def poll(self, timeout: float = 0) -> int:
        callbacks, self.pending = self.pending, []
        for callback in callbacks:
            callback(KafkaError(KafkaError._MSG_TIMED_OUT), None)
        return len(callbacks)

    def flush(self, timeout: float = 0) -> int:
        self.poll()
        return 0

    def __len__(self) -> int:
        return len(self.pending)


@pytest.fixture
def wedding_state(settings: Settings) -> StateTables:
    """The routing state of the test's wedding: its vendors, their channels and systems."""
    prefix = f"{settings.app_id}-"
    return state_of(state_changes(wedding_rows(f"{prefix}{WEDDING}", prefix)))


@pytest.fixture
def start_engine(
    kafka_bootstrap: str, settings: Settings, codecs: TopicCodecs, wedding_state: StateTables
) -> Iterator[object]:
    config = RouteSettings(commit_interval_s=0.05, state_wait_s=0.3)
    create_topics(kafka_bootstrap, internal_topics(settings.app_id, config))
    running: list[RunningEngine] = []

    def start(**kw: Any) -> RunningEngine:
        engine = RouteEngine(**{
            "bootstrap": kafka_bootstrap, "group_id": f"{settings.app_id}-route",
            "app_id": settings.app_id, "codecs": codecs, "rules": load_rules(),
            "state": wedding_state, "bookings_topic": None, "config": config, **kw,
        })  # fmt: skip
        running.append(RunningEngine(engine))
        return running[-1]

    yield start
    for r in running:
        if r.thread.is_alive():
            r.close()


def _wedding_moved(settings: Settings) -> DomainEvent:
    wedding = f"{settings.app_id}-{WEDDING}"
    change = date_change(wedding, lsn=7, old="2027-06-12", new="2027-06-19")
    (event,) = [e for e in normalize_change(change, SOURCE) if e["event_type"] != "record.changed"]
    return event


def _send(bootstrap: str, codecs: TopicCodecs, *values: tuple[bytes, bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for key, value in values:
        producer.produce(topics.EVENTS.name, value, key)
    assert producer.flush(10) == 0


def _after_a_state_change(settings: Settings) -> DomainEvent:
    """The wedding's move, committed after the state change that linked its vendors (LSN 7)."""
    event = _wedding_moved(settings)
    return {**event, "source": {**event["source"], "state_lsn": 7}}


def _send_event(bootstrap: str, codecs: TopicCodecs, event: DomainEvent) -> None:
    _send(bootstrap, codecs, (event["aggregate_id"].encode(), codecs[topics.EVENTS].encode(event)))


def _wait(predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _delivery_counts(reader: DeliveryReader, event_id: str, expected: int) -> Counter[str]:
    """Read until `expected` deliveries of `event_id` are in, then 2 s more: duplicates that
    arrive late are counted too."""

    def ours(got: list[tuple[object, dict[str, object]]]) -> int:
        return sum(1 for _, r in got if r["event_id"] == event_id)

    reader.read_until(lambda got: ours(got) >= expected, timeout=60)
    settle = time.monotonic() + 2
    reader.read_until(lambda got: time.monotonic() > settle, timeout=10)
    return Counter(r["delivery_id"] for _, r in reader.records if r["event_id"] == event_id)


class LateState:
    """A routing state that reaches its commit only once `arrive()` is called: until then
    every wait for it times out, as when the worker's state agent is slower to start than
    the routing process (a fresh machine) or is behind."""

    def __init__(self, full: StateTables) -> None:
        self.full = full
        self.tables = StateTables.empty()
        self.arrived = threading.Event()
        self.waits = 0

    def ready(self, lsn: int, timeout: float) -> bool:
        self.waits += 1
        return self.arrived.wait(timeout)

    def arrive(self) -> None:
        for table in dataclasses.fields(self.full):
            getattr(self.tables, table.name).update(getattr(self.full, table.name))
        self.arrived.set()


def test_an_event_is_not_routed_against_a_state_behind_its_commit(
    kafka_bootstrap: str,
    settings: Settings,
    codecs: TopicCodecs,
    start_engine: object,
    wedding_state: StateTables,
) -> None:
    event = _after_a_state_change(settings)
    late = LateState(wedding_state)
    reader = DeliveryReader(kafka_bootstrap, codecs)
    try:
        start_engine(state=late.tables, state_ready=late.ready)  # type: ignore[operator]
        _send_event(kafka_bootstrap, codecs, event)
        _wait(lambda: late.waits >= 3, timeout=20)  # held, asked again, not routed bare
        late.arrive()
        counts = _delivery_counts(reader, event["event_id"], expected=10)
    finally:
        reader.close()
    assert len(counts) == 10  # every vendor channel, calendar and system of the wedding
    assert set(counts.values()) == {1}


def test_a_held_event_is_routed_by_the_next_process_when_this_one_stops_holding_it(
    kafka_bootstrap: str,
    settings: Settings,
    codecs: TopicCodecs,
    start_engine: object,
    wedding_state: StateTables,
) -> None:
    event = _after_a_state_change(settings)
    late = LateState(wedding_state)  # never arrives here
    reader = DeliveryReader(kafka_bootstrap, codecs)
    try:
        holding = start_engine(state=late.tables, state_ready=late.ready)  # type: ignore[operator]
        _send_event(kafka_bootstrap, codecs, event)
        _wait(lambda: late.waits >= 2, timeout=20)
        holding.close()  # its commit on stop must not pass the held event
        start_engine(state_ready=lambda lsn, timeout: True)  # type: ignore[operator]
        counts = _delivery_counts(reader, event["event_id"], expected=10)
    finally:
        reader.close()
    assert len(counts) == 10
    assert set(counts.values()) == {1}


def test_an_event_id_seen_twice_is_routed_once_also_after_a_restart(
    kafka_bootstrap: str, settings: Settings, codecs: TopicCodecs, start_engine: object
) -> None:
    event = _wedding_moved(settings)
    value = codecs[topics.EVENTS].encode(event)
    key = event["aggregate_id"].encode()
    reader = DeliveryReader(kafka_bootstrap, codecs)
    try:
        first = start_engine()  # type: ignore[operator]
        _send(kafka_bootstrap, codecs, (key, value), (key, value))
        _wait(lambda: first.engine.duplicates >= 1)
        first.close()
        second = start_engine()  # type: ignore[operator]
        _send(kafka_bootstrap, codecs, (key, value))
        _wait(lambda: second.engine.duplicates >= 1)
        counts = _delivery_counts(reader, event["event_id"], expected=10)
    finally:
        reader.close()
    assert len(counts) == 10  # every vendor channel, calendar and system of the wedding
    assert set(counts.values()) == {1}


def test_unroutable_record_is_dead_lettered_and_routing_goes_on(
    kafka_bootstrap: str, settings: Settings, codecs: TopicCodecs, start_engine: object
) -> None:
    event = _wedding_moved(settings)
    bad_key = f"{settings.app_id}-garbage".encode()
    dlq = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"{settings.app_id}-dlq"})
    dlq.assign(
        [TopicPartition(topics.EVENTS_DLQ.name, p, 0) for p in range(topics.EVENTS_DLQ.partitions)]
    )
    reader = DeliveryReader(kafka_bootstrap, codecs)
    try:
        engine = start_engine()  # type: ignore[operator]
        _send(
            kafka_bootstrap, codecs, (bad_key, b"\x00\x00\x00\x00\x01not avro"),
            (event["aggregate_id"].encode(), codecs[topics.EVENTS].encode(event)),
        )  # fmt: skip
        reader.read_until(engine.routed(event["event_id"]), timeout=60)
        dead = None
        deadline = time.monotonic() + 30
        while dead is None and time.monotonic() < deadline:
            for msg in dlq.consume(100, 0.2):
                if not msg.error() and msg.key() == bad_key:
                    dead = msg
    finally:
        reader.close()
        dlq.close()
    assert dead is not None
    assert dead.value() == b"\x00\x00\x00\x00\x01not avro"
    headers = header_map(dead.headers())
    assert headers[H_STAGE] == "route"
    assert headers[H_ERROR_CLASS] == "DecodeError"


def test_a_failed_produce_commits_nothing_past_it(
    kafka_bootstrap: str, settings: Settings, codecs: TopicCodecs, start_engine: object
) -> None:
    event = _wedding_moved(settings)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    written: list[Any] = []
    producer.produce(topics.EVENTS.name, codecs[topics.EVENTS].encode(event),
                     event["aggregate_id"].encode(),
                     on_delivery=lambda err, msg: written.append(msg))  # fmt: skip
    assert producer.flush(10) == 0
    ours = TopicPartition(topics.EVENTS.name, written[0].partition())
    failing = start_engine(make_producer=FailingProducer)  # type: ignore[operator]
    failing.thread.join(60)
    assert isinstance(failing.error, BrokerUnavailable)
    probe = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"{settings.app_id}-route",
                      "enable.auto.commit": False})  # fmt: skip
    try:
        (committed,) = probe.committed([ours], 10)
    finally:
        probe.close()
    # the session's broker holds other tests' events too: the engine may commit batches that
    # produced nothing (so nothing could fail), never past a record whose deliveries failed
    assert committed.offset <= written[0].offset()


def test_a_bad_seen_marker_is_dead_lettered_and_routing_goes_on(
    kafka_bootstrap: str, settings: Settings, codecs: TopicCodecs, start_engine: object
) -> None:
    event = _wedding_moved(settings)
    seen = topics.app_topics(settings.app_id).route_seen.name
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for partition in range(topics.EVENTS.partitions):
        producer.produce(seen, b"{not a marker", str(partition).encode(), partition=partition)
    assert producer.flush(10) == 0
    dlq = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"{settings.app_id}-dlq"})
    dlq.assign(
        [TopicPartition(topics.EVENTS_DLQ.name, p, 0) for p in range(topics.EVENTS_DLQ.partitions)]
    )
    reader = DeliveryReader(kafka_bootstrap, codecs)
    try:
        running = start_engine()  # type: ignore[operator]
        _send(kafka_bootstrap, codecs, (event["aggregate_id"].encode(),
                                        codecs[topics.EVENTS].encode(event)))  # fmt: skip
        reader.read_until(
            lambda got: any(r["event_id"] == event["event_id"] for _, r in got), timeout=60
        )
        assert running.error is None
        dead: list[Any] = []
        deadline = time.monotonic() + 30
        while len(dead) < topics.EVENTS.partitions and time.monotonic() < deadline:
            for msg in dlq.consume(100, 0.2):
                headers = {} if msg.error() else header_map(msg.headers())
                if headers.get(H_STAGE) == "route-seen" and headers.get(H_TOPIC) == seen:
                    dead.append(msg)
    finally:
        reader.close()
        dlq.close()
    assert {m.value() for m in dead} == {b"{not a marker"}
    assert len(dead) == topics.EVENTS.partitions
