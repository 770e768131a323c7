"""Routing state for a process outside the Faust worker, read from the GlobalTables'
changelog topics.

The Faust `state` agent owns the routing state: it folds CDC into four GlobalTables, and Faust
writes every assignment to the table's changelog topic (`<app id>-<table>-changelog`, JSON
key and value; a delete is a tombstone). A routing process recovers the same state the way a
GlobalTable does: read every changelog partition from the beginning up to its end, then keep
tailing it in a background thread. Values are replaced whole, never mutated, so the routing
thread always reads a complete value.

`load()` blocks until the changelogs are read to their end offsets (or `timeout`); it raises
BrokerUnavailable when Kafka cannot tell where the end is.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from confluent_kafka import Consumer, Message

from streams.logic.state import StateTables
from streams.replay import read_to_end

log = logging.getLogger(__name__)

TABLE_NAMES = ("suppliers", "wedding_vendors", "webhook_endpoints", "integrations")


def changelog_topic_name(app_id: str, table: str) -> str:
    """Faust's name for a table's changelog topic (`<app id>-<table>-changelog`)."""
    return f"{app_id}-{table}-changelog"


def _decode_key(raw: bytes | None) -> str:
    text = (raw or b"").decode()
    try:
        key = json.loads(text)
    except ValueError:
        return text
    return key if isinstance(key, str) else text


class ChangelogState:
    """StateTables kept up to date from the changelog topics of the app `app_id`."""

    def __init__(self, bootstrap: str, app_id: str, *, partitions: int) -> None:
        self.bootstrap = bootstrap
        self.tables = StateTables.empty()
        self._by_topic: dict[str, dict[str, Any]] = {
            changelog_topic_name(app_id, name): getattr(self.tables, name) for name in TABLE_NAMES
        }
        self._partitions = partitions
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": f"{app_id}-route-state",
            "enable.auto.commit": False, "fetch.wait.max.ms": 50,
            "log.connection.close": False,
        })  # fmt: skip
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.applied = 0

    def _apply(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        table = self._by_topic[topic]
        name = _decode_key(key)
        if value is None:
            table.pop(name, None)
        else:
            table[name] = json.loads(value)
        self.applied += 1

    def _apply_message(self, msg: Message) -> None:
        self._apply(msg.topic() or "", msg.key(), msg.value())

    def _poll(self, timeout: float) -> None:
        for msg in self._consumer.consume(10_000, timeout):
            if not msg.error():
                self._apply_message(msg)

    def load(self, timeout: float = 120.0) -> StateTables:
        """Read every changelog to its end; then tail it in a daemon thread."""
        parts = [(topic, p) for topic in self._by_topic for p in range(self._partitions)]
        pending = read_to_end(self._consumer, parts, self._apply_message, timeout=timeout)
        if pending:
            log.warning("route: changelogs not read to their end in %.0f s: %s", timeout, pending)
        log.info("route: routing state loaded from changelogs (%d records)", self.applied)
        self._thread = threading.Thread(target=self._tail, name="route-state", daemon=True)
        self._thread.start()
        return self.tables

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
