"""The gateway's Kafka side: read the in-app topic, the receipts and the presence topics in a
thread, decode, and hand batches to the event loop; write receipts, results and presence.

Every gateway reads every partition (assign, no consumer group): a user may connect to any
gateway, so each must see every notification. It starts each in-app partition at the history
window (the last `history_records` records, no older than `history_max_age_s`), the receipts
from their start (one day, one partition) and the presence topic from its start (compacted),
and reports `ready` once it has read up to where the log ended when it started.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, Message, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient
from streams import metrics
from streams.kafka.codec import TopicCodecs
from streams.kafka.connection import Kafka, client_config, consumer_config
from streams.kafka.ready import ready as ready_records
from streams.kafka.recovering import asked_again, watermarks
from streams.topics import DELIVER, INAPP_PRESENCE, INAPP_RECEIPTS, Destination

from connectors.sinks.inapp.config import GatewaySettings

log = logging.getLogger(__name__)
NOTIFICATIONS = DELIVER[Destination.INAPP].deliver


@dataclass(frozen=True)
class Notification:
    partition: int
    offset: int
    at_s: float  # Kafka record timestamp
    record: dict[str, Any]


@dataclass(frozen=True)
class Receipt:
    user: str
    record: dict[str, Any]  # a delivery result, outcome seen or read


@dataclass(frozen=True)
class PresenceRecord:
    key: str
    at_s: float
    record: dict[str, Any] | None  # None: tombstone (a leave)


Item = Notification | Receipt | PresenceRecord


@dataclass(frozen=True)
class Batch:
    items: list[Item]
    log_ends: dict[int, int]  # in-app partition -> high watermark as last fetched
    caught_up: bool


def incarnation(bootstrap: Kafka, timeout: float = 10.0) -> str:
    """The in-app topic's id: a topic that is deleted and created again gets another, so
    positions from the old one are never taken for positions in the new one."""
    admin = AdminClient(client_config(bootstrap))
    described = admin.describe_topics(TopicCollection([NOTIFICATIONS.name]))
    desc = described[NOTIFICATIONS.name].result(timeout)
    return str(desc.topic_id)


class Feed:
    """Reads in a thread; `on_batch` is called on the loop's thread."""

    def __init__(
        self,
        bootstrap: Kafka,
        settings: GatewaySettings,
        codecs: TopicCodecs,
        loop: asyncio.AbstractEventLoop,
        on_batch: Callable[[Batch], None],
    ) -> None:
        self.settings = settings
        self._loop = loop
        self._on_batch = on_batch
        self._codec = codecs[NOTIFICATIONS]
        self._receipt_codec = codecs[INAPP_RECEIPTS]
        self._presence_codec = codecs[INAPP_PRESENCE]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inapp-feed", daemon=True)
        self._consumer = Consumer(consumer_config(bootstrap, {
            "group.id": f"wedsync-inapp-{settings.gateway_id}",  # never joined: assign only
            "enable.auto.commit": False, "log.connection.close": False,
        }, fetch_wait_ms=settings.fetch_wait_ms))  # fmt: skip
        self.partitions = NOTIFICATIONS.partitions
        self.starts: dict[int, tuple[int, int]] = {}  # partition -> (window start, log end)
        self._targets: dict[tuple[str, int], int] = {}

    def plan(self, now_s: float) -> dict[int, tuple[int, int]]:
        """Where each in-app partition's history starts, and where the log ends now."""
        s = self.settings
        since_ms = int((now_s - s.history_max_age_s) * 1000)
        asking = [TopicPartition(NOTIFICATIONS.name, p, since_ms) for p in range(self.partitions)]
        by_age = asked_again(lambda: self._consumer.offsets_for_times(asking, timeout=10))
        starts = {}
        for tp in by_age:
            low, high = watermarks(self._consumer, TopicPartition(NOTIFICATIONS.name, tp.partition))
            aged = tp.offset if tp.offset >= 0 else high
            starts[tp.partition] = (max(low, high - s.history_records, aged), high)
        return starts

    def start(self, now_s: float) -> None:
        self.starts = self.plan(now_s)
        assignment = [
            TopicPartition(NOTIFICATIONS.name, p, start) for p, (start, _) in self.starts.items()
        ]
        for t in (INAPP_RECEIPTS, INAPP_PRESENCE):
            for p in range(t.partitions):
                low, high = watermarks(self._consumer, TopicPartition(t.name, p))
                assignment.append(TopicPartition(t.name, p, low))
                self._targets[(t.name, p)] = high
        for p, (_, end) in self.starts.items():
            self._targets[(NOTIFICATIONS.name, p)] = end
        self._consumer.assign(assignment)
        self._thread.start()

    def _decode(self, msg: Message) -> Item | None:
        topic = msg.topic()
        at_s = msg.timestamp()[1] / 1000.0
        try:
            if topic == NOTIFICATIONS.name:
                rec = self._codec.decode(msg.value())
                return Notification(msg.partition() or 0, msg.offset() or 0, at_s, rec)
            if topic == INAPP_RECEIPTS.name:
                return Receipt((msg.key() or b"").decode(), self._receipt_codec.decode(msg.value()))
            value = msg.value()
            presence = None if value is None else self._presence_codec.decode(value)
            return PresenceRecord((msg.key() or b"").decode(), at_s, presence)
        except Exception as exc:  # a bad record is counted, never fatal
            metrics.INAPP_UNREADABLE.labels(topic=topic or "").inc()
            log.warning("unreadable record at %s:%s:%s: %s", topic, msg.partition(),
                        msg.offset(), exc)  # fmt: skip
            return None

    def _caught_up(self, positions: dict[tuple[str, int], int]) -> bool:
        return all(positions.get(k, 0) >= end for k, end in self._targets.items())

    def _run(self) -> None:
        positions: dict[tuple[str, int], int] = {}
        ready = False
        idle_since = time.monotonic()
        while not self._stop.is_set():
            try:
                msgs = ready_records(self._consumer, 2000, 0.05)
            except Exception:  # keep reading; librdkafka reconnects
                log.exception("in-app feed: consume failed")
                time.sleep(0.5)
                continue
            items: list[Item] = []
            for msg in msgs:
                if msg.error():
                    continue
                positions[(msg.topic() or "", msg.partition() or 0)] = (msg.offset() or 0) + 1
                item = self._decode(msg)
                if item is not None:
                    items.append(item)
            if not ready:
                # an empty stretch also ends the warm-up: watermarks may lag (Tansu)
                if msgs:
                    idle_since = time.monotonic()
                ready = self._caught_up(positions) or time.monotonic() - idle_since > 2.0
                if not ready:
                    if items:
                        self._hand(Batch(items, {}, False))
                    continue
            elif not items:
                continue
            ends = {}
            for p in range(self.partitions):
                _, high = self._consumer.get_watermark_offsets(
                    TopicPartition(NOTIFICATIONS.name, p), cached=True
                )
                if high >= 0:
                    ends[p] = high
            self._hand(Batch(items, ends, True))

    def _hand(self, batch: Batch) -> None:
        try:
            self._loop.call_soon_threadsafe(self._on_batch, batch)
        except RuntimeError:  # the loop closed: we are stopping
            self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._consumer.close()


def producer(bootstrap: Kafka) -> Producer:
    return Producer(client_config(bootstrap, {
        "linger.ms": 2, "acks": "all",
        "enable.idempotence": True, "log.connection.close": False,
    }))  # fmt: skip
