"""Routing state for a process outside the Faust worker, read from the state rows' changelog.

The Faust `state` agent owns the routing state: it folds `wedsync.ingest.state` into the
`state_rows` table, and Faust writes every assignment to the table's changelog topic
(`<app id>-state_rows-changelog`, one partition, JSON key and value; a delete is a
tombstone). A routing process recovers the same rows the way a table does (read from the
beginning to the end, then keep tailing in a background thread) and keeps the indexes
routing reads (`streams.logic.state.RoutingState`). Index values are replaced whole, never
mutated, so the routing thread always reads complete values.

The changelog also carries the state watermark ('~watermark' -> {"lsn": L}), written after
the rows it covers: `wait_for(lsn, timeout)` blocks the router until the state holds every
change committed at or before `lsn`, or the timeout passes.

A record that is not a row (not JSON, not an object) goes to `wedsync.events.dlq` with its
bytes and the reason, and the rest of the changelog still loads.
`load()` blocks until the changelog is read to its end offset (or `timeout`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from confluent_kafka import Consumer, Message, Producer

from streams.errors import PoisonMessage
from streams.kafka.connection import Kafka, client_config, consumer_config
from streams.kafka.deadletter import dead_letter_message
from streams.kafka.replay import read_to_end
from streams.logic.state import WATERMARK_KEY, RoutingState, StateTables
from streams.topics import EVENTS_DLQ, app_topics

log = logging.getLogger(__name__)


def _decode_key(raw: bytes | None) -> str:
    text = (raw or b"").decode()
    try:
        key = json.loads(text)
    except ValueError:
        return text
    return key if isinstance(key, str) else text


class ChangelogState:
    """RoutingState kept up to date from the state rows' changelog of the app `app_id`."""

    def __init__(self, bootstrap: Kafka, app_id: str) -> None:
        self.bootstrap = bootstrap
        self.topic = app_topics(app_id).state_rows_changelog.name
        self.state = RoutingState()
        self._changed = threading.Condition()
        self._consumer = Consumer(consumer_config(bootstrap, {
            "group.id": f"{app_id}-route-state",
            "enable.auto.commit": False, "log.connection.close": False,
        }))  # fmt: skip
        self._dead = Producer(client_config(bootstrap, {"linger.ms": 5,
                               "allow.auto.create.topics": False,
                               "log.connection.close": False}))  # fmt: skip
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.applied = 0

    @property
    def tables(self) -> StateTables:
        return self.state.tables

    @property
    def watermark(self) -> int:
        return self.state.watermark

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Fold one changelog record; PoisonMessage when it is not a row or a watermark."""
        try:
            name = _decode_key(key)
            row: Any = None if value is None else json.loads(value)
            if name == WATERMARK_KEY:
                lsn = int(row["lsn"])
                self.state.watermark = max(self.state.watermark, lsn)
            elif row is None or isinstance(row, dict):
                self.state.apply(name, row)
            else:
                raise ValueError(f"a {type(row).__name__}, not a row")
        except (ValueError, TypeError, KeyError) as exc:
            raise PoisonMessage(f"state changelog record: {exc}") from None
        self.applied += 1

    def _apply_message(self, msg: Message) -> None:
        try:
            self.apply(msg.key(), msg.value())
        except PoisonMessage as exc:  # dead-letter it; the rest of the state still loads
            log.error("route: %s; dead-lettered", exc)
            dead_letter_message(self._dead, EVENTS_DLQ.name, "route-state", msg, exc)
            self._dead.poll(0)

    def _poll(self, timeout: float) -> None:
        """Wait up to `timeout` for the first record, then take what is already fetched.
        (`consume(n, timeout)` waits for n records or the whole timeout: it held every
        watermark back by up to `timeout`, and with it every event routing waits for.)"""
        first = self._consumer.poll(timeout)
        if first is None:
            return
        for msg in [first, *self._consumer.consume(10_000, 0)]:
            if not msg.error():
                self._apply_message(msg)
        with self._changed:
            self._changed.notify_all()

    def load(self, timeout: float = 120.0) -> StateTables:
        """Read the changelog to its end; then tail it in a daemon thread."""
        pending = read_to_end(self._consumer, [(self.topic, 0)], self._apply_message,
                              timeout=timeout)  # fmt: skip
        if pending:
            log.warning("route: changelog not read to its end in %.0f s: %s", timeout, pending)
        log.info("route: routing state loaded (%d records, watermark %d)", self.applied,
                 self.state.watermark)  # fmt: skip
        self._thread = threading.Thread(target=self._tail, name="route-state", daemon=True)
        self._thread.start()
        return self.state.tables

    def wait_for(self, lsn: int, timeout: float) -> bool:
        """Block until the state holds every change committed at or before `lsn`; False
        when `timeout` passed first."""
        if self.state.watermark >= lsn:
            return True
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.state.watermark < lsn:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def _tail(self) -> None:
        while not self._stop.is_set():
            try:
                self._poll(0.5)
            except Exception:  # keep the last good state; log and go on
                log.exception("route: changelog tail failed; retrying")
                time.sleep(1)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._consumer.close()
        self._dead.flush(10)
