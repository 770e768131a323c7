"""The broker refuses an event the worker produced, after the worker handed it to its producer
(here: the events topic's `max.message.bytes` is smaller than the event, so every produce of
it fails with MESSAGE_TOO_LARGE; a broker that stays unavailable past the producer's timeout
fails the same way). The worker stops, saying why and what to do, and exits with
EVENTS_NOT_WRITTEN_EXIT WITHOUT committing the change: started again once the topic takes
the event, it writes it. Before, the failure was a warning in Faust's log and the next
commit went past the change: the event was lost, silently.

On a cluster of the test's own (a topic's configuration is changed)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
)
from streams import topics
from streams.app.worker import EVENTS_NOT_WRITTEN_EXIT
from streams.dev.broker import free_port
from streams.dev.cdc_like import produce_changes
from streams.dev.kraft import KafkaCluster
from streams.dev.samples import change_event
from streams.kafka.admin import create_topics
from streams.kafka.codec import TopicCodecs
from streams.kafka.recovering import watermarks

pytestmark = pytest.mark.integration

CLIENT = f"send-failure-{uuid.uuid4().hex[:8]}"


def _worker(bootstrap: str, app_id: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "WEDSYNC_APP_ID": app_id,
           "WEDSYNC_WEB_PORT": str(free_port()), "WEDSYNC_METRICS_PORT": str(free_port()),
           "WEDSYNC_LOG_LEVEL": "warn"}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "streams.app.cli", "worker"], env=env,
        stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def _events_max_bytes(admin: AdminClient, value: str | None) -> None:
    """Set (or, with None, remove) `max.message.bytes` of the events topic."""
    op = AlterConfigOpType.SET if value is not None else AlterConfigOpType.DELETE
    entry = ConfigEntry("max.message.bytes", value or "", incremental_operation=op)
    resource = ConfigResource("topic", topics.EVENTS.name, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def _form_response() -> object:
    row = {"id": str(uuid.uuid4()), "supplier_id": str(uuid.uuid4()), "couple_id": CLIENT,
           "client_name": "Alex & Sam", "form_name": "Venue questions", "question_count": 3,
           "submitted_at": "2027-01-01T10:00:00+00:00"}  # fmt: skip
    return change_event("form_responses", "c", lsn=7_000, after=row)


def _committed_past_end(bootstrap: str, app_id: str) -> list[int]:
    """Partitions of the CDC input that hold records and whose committed offset (group
    `app_id`) is their end: the worker committed past everything written there."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": app_id})
    try:
        parts = range(topics.INGEST_CDC.partitions)
        tps = [TopicPartition(topics.INGEST_CDC.name, p) for p in parts]
        past = []
        for tp in consumer.committed(tps, timeout=10):
            end = watermarks(consumer, tp)[1]
            if end > 0 and tp.offset == end:
                past.append(tp.partition)
        return past
    finally:
        consumer.close()


def _wait_event(bootstrap: str, codecs: TopicCodecs, timeout: float) -> bool:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{CLIENT}",
                         "auto.offset.reset": "earliest"})  # fmt: skip
    consumer.subscribe([topics.EVENTS.name])
    codec = codecs[topics.EVENTS]
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for msg in consumer.consume(100, 0.5):
                if msg.error() is None:
                    event = codec.decode(msg.value())
                    if event["payload"].get("client_id") == CLIENT:
                        return True
        return False
    finally:
        consumer.close()


def test_an_event_the_broker_refuses_stops_the_worker_before_its_change_is_committed(
    codecs: TopicCodecs, unique_id: str, tmp_path: Path
) -> None:
    app_id = f"wedsync-sendfail-{unique_id}"
    log = tmp_path / "worker.log"
    cluster = KafkaCluster(nodes=1)
    bootstrap = cluster.start()
    worker: subprocess.Popen[bytes] | None = None
    try:
        create_topics(bootstrap)
        admin = AdminClient({"bootstrap.servers": bootstrap})
        _events_max_bytes(admin, "64")
        worker = _worker(bootstrap, app_id, log)
        produce_changes(bootstrap, codecs, [_form_response()])  # type: ignore[list-item]
        try:
            code = worker.wait(60)
        except subprocess.TimeoutExpired:
            code = None
        text = log.read_text(errors="replace")
        assert code == EVENTS_NOT_WRITTEN_EXIT, f"worker exit {code}; log tail: {text[-2000:]}"
        assert "max.message.bytes" in text  # what to do about it
        assert _committed_past_end(bootstrap, app_id) == []

        _events_max_bytes(admin, None)
        worker = _worker(bootstrap, app_id, log)
        assert _wait_event(bootstrap, codecs, 90), "the change never became an event"
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
        cluster.stop()
