"""`make run`: broker, topics, worker; sample change events in, decoded domain events out."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from streams import topics
from streams.kafka.admin import create_topics
from streams.kafka.broker import die_with_parent, free_port, kafka_broker
from streams.kafka.codec import TopicCodecs
from streams.kafka.deadletter import H_REASON, header_map
from streams.logic.normalize import normalize_change
from streams.models import ChangeEvent, SourceRef
from streams.samples import demo_changes
from streams.settings import Settings
from streams.topics import change_key


@contextlib.contextmanager
def worker_process(bootstrap: str, settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    """`wedsync worker` as a child process that cannot outlive us."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "WEDSYNC_WEB_PORT": str(free_port()),
        "WEDSYNC_APP_ID": settings.app_id,
        "WEDSYNC_LOG_LEVEL": os.environ.get("WEDSYNC_LOG_LEVEL", "warn"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=env,
        preexec_fn=die_with_parent,
        start_new_session=True,  # Ctrl-C reaches the demo, which stops the worker first
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _show(kind: str, record: dict[str, Any]) -> None:
    print(f"  {kind:<28} {json.dumps(record, default=str, sort_keys=True)}", flush=True)


def _expected_event_count(changes: list[ChangeEvent]) -> int:
    """How many domain events the worker should emit for `changes` (asked of the logic)."""
    ref = SourceRef(
        kind="cdc",
        topic=topics.INGEST_CDC.name,
        partition=0,
        offset=0,
        lsn=None,
        commit_lsn=None,
        delivery_id=None,
        table=None,
    )
    return sum(len(normalize_change(change, ref)) for change in changes)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(settings: Settings, *, once: bool, timeout: float = 90.0) -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
    codecs = TopicCodecs.from_settings(settings)
    changes = demo_changes(base_lsn=int(time.time()))
    expected_events = _expected_event_count(changes)
    with kafka_broker(settings.kafka_bootstrap_servers) as bootstrap:
        print(f"[1/4] Kafka broker at {bootstrap}", flush=True)
        create_topics(bootstrap, replication_factor=settings.replication_factor)
        print(f"[2/4] {len(topics.ALL)} catalog topics ready; starting the worker", flush=True)
        with worker_process(bootstrap, settings) as worker:
            producer = Producer(
                {
                    "bootstrap.servers": bootstrap,
                    "enable.idempotence": True,
                    "log.connection.close": False,
                }
            )
            codec = codecs[topics.INGEST_CDC]
            for change in changes:
                producer.produce(
                    topics.INGEST_CDC.name, key=change_key(change), value=codec.encode(change)
                )
            producer.produce(topics.INGEST_CDC.name, key=b"garbage", value=b"not avro at all")
            producer.flush(10)
            print(
                f"[3/4] produced {len(changes)} sample change events and 1 corrupt record "
                f"to {topics.INGEST_CDC.name}",
                flush=True,
            )
            consumer = Consumer(
                {
                    "bootstrap.servers": bootstrap,
                    "group.id": "wedsync-demo",
                    "enable.auto.commit": False,
                    "log.connection.close": False,
                }
            )
            assigned = [
                TopicPartition(t.name, p, 0)
                for t in (topics.EVENTS, topics.EVENTS_DLQ)
                for p in range(t.partitions)
            ]
            consumer.assign(assigned)
            events = dead = 0
            latencies: list[float] = []
            reported = False
            deadline = time.monotonic() + timeout
            print(f"[4/4] reading {topics.EVENTS.name} and {topics.EVENTS_DLQ.name}:", flush=True)
            try:
                while not (once and reported):
                    if worker.poll() is not None:
                        print(f"worker exited with {worker.returncode}", file=sys.stderr)
                        return 1
                    if once and time.monotonic() > deadline:
                        print(f"timed out: {events} events, {dead} dead letters", file=sys.stderr)
                        return 1
                    msg = consumer.poll(0.5)
                    if msg is None or msg.error():
                        continue
                    if msg.topic() == topics.EVENTS_DLQ.name:
                        dead += 1
                        reason = header_map(msg.headers()).get(H_REASON, "")
                        print(f"  dead letter (key={msg.key()!r}): {reason}", flush=True)
                    else:
                        record = codecs[topics.EVENTS].decode(msg.value())
                        events += 1
                        latencies.append(time.time() * 1000 - record["source_ts_ms"])
                        _show(
                            record["event_type"],
                            {
                                k: record[k]
                                for k in ("aggregate_id", "aggregate_version", "payload")
                            },
                        )
                    if events == expected_events and dead == 1 and not reported:
                        reported = True
                        print(
                            f"OK: {len(changes) + 1} sample records processed end to end: "
                            f"{events} domain events, {dead} dead letter; max produce-to-read "
                            f"{max(latencies):.0f} ms (includes worker start-up)",
                            flush=True,
                        )
                        if not once:
                            print(
                                "worker still running; Ctrl-C stops worker and broker", flush=True
                            )
            except KeyboardInterrupt:
                print("\nstopping worker and broker", flush=True)
            finally:
                consumer.close()
    return 0
