"""Which calendar-feed process is the active one: a Kafka consumer group as the lease.

Every `wedsync calendar-feed` joins the group `{app_id}-calendar-feed-leader` subscribed to
the one-partition compacted `wedsync.calendar.sync_state` (cooperative-sticky: a member
joining does not move the partition). The member assigned partition 0 is ACTIVE: it loads the
sync states, runs the rounds and keeps the push channels (connectors/calendar/feed/process.py);
the others stand by, polling only to stay in the group. The partition is paused as soon as it
is assigned: the group is a lease, nothing is read through it.

`Leadership` runs the consumer's poll on a thread of its own (librdkafka calls the rebalance
callbacks there) and tells the event loop through two `asyncio.Event`s, `active` and
`standby` (exactly one is set once the first assignment came), and Prometheus through
`wedsync_calendar_feed_active`. On revoke (a graceful hand
over: the holder closes, or the group moves the partition) the callback WAITS, up to
`hand_over_s`, until the active phase has ended (`stood_down()`: its rounds abandoned or
finished, its writer flushed), so the successor is given the partition only after the old
holder's last write. On lost (the group dropped this member: heartbeats failed for the
session timeout) it cannot wait, the partition is another's already.

Fencing. A holder cut off from the group keeps running until librdkafka declares its
assignment lost, up to `session_timeout_ms` after its last heartbeat, while the successor
may already be active: for that window two processes run rounds. The harm is bounded and
accepted: a calendar fetched twice (provider quota), busy records written twice (idempotent
upserts: same ids, the detector takes them as resends), a sync state written by the old
holder over the successor's (compacted, last writer wins: the next round starts from an
older cursor and fetches a few changes again; a cursor never gets ahead of its records,
KafkaRoundWriter writes the state only after the round's records were acknowledged), a
channel made by both (the one not held is stopped as an orphan at its first push). Nothing
is lost and nothing is told twice that is not deduplicated downstream; a real fence (a
transactional producer whose epoch the successor bumps) is not worth its cost here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from streams import metrics
from streams.kafka.connection import Kafka, client_config
from streams.topics import CALENDAR_SYNC_STATE

log = logging.getLogger("wedsync.calendar.feed")

LEASE_TOPIC = CALENDAR_SYNC_STATE  # one partition: one holder


def leader_group(app_id: str) -> str:
    return f"{app_id}-calendar-feed-leader"


class Leadership:
    def __init__(
        self,
        kafka: Kafka,
        app_id: str,
        *,
        session_timeout_ms: int = 10_000,
        hand_over_s: float = 30.0,
    ) -> None:
        self.group = leader_group(app_id)
        self.consumer = Consumer(
            client_config(
                kafka,
                {
                    "group.id": self.group,
                    "enable.auto.commit": False,
                    "auto.offset.reset": "latest",
                    "partition.assignment.strategy": "cooperative-sticky",
                    "session.timeout.ms": session_timeout_ms,
                    "heartbeat.interval.ms": max(100, session_timeout_ms // 5),
                    "log.connection.close": False,
                },
            )
        )
        self.hand_over_s = hand_over_s
        self.active = asyncio.Event()
        self.standby = asyncio.Event()
        self.terms = 0  # times this member became active
        self._loop: asyncio.AbstractEventLoop | None = None
        self._holding = False  # the poll thread's view
        self._generation = 0  # assignments of partition 0 so far
        self._to_pause: list[TopicPartition] = []
        self._ended = threading.Event()  # the active phase has ended (or never began)
        self._ended.set()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Join the group (call on the event loop that waits on `active` / `standby`)."""
        self._loop = asyncio.get_running_loop()
        self.consumer.subscribe(
            [LEASE_TOPIC.name],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self._thread = threading.Thread(target=self._run, name="calendar-feed-leader", daemon=True)
        self._thread.start()

    @property
    def generation(self) -> int:
        """The latest assignment of the lease (read it when a term starts)."""
        return self._generation

    def stood_down(self, generation: int | None = None) -> None:
        """The term of the lease's `generation` (None: the latest) has ended: a revoke
        waiting for it may hand the partition over. The end of an older term (the lease was
        lost and given back meanwhile) releases nothing."""
        if generation is None or generation == self._generation:
            self._ended.set()

    async def close(self) -> None:
        """Leave the group (the standby is assigned at once, not after the session timeout)."""
        self._closing.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 30)

    # ---- the poll thread ---------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._closing.is_set():
                try:
                    msg = self.consumer.poll(0.2)  # records (none: paused) ignored
                    if msg is not None and msg.error() is not None:
                        log.warning("calendar feed: leader group: %s", msg.error())
                    if self._to_pause:
                        paused, self._to_pause = self._to_pause, []
                        self.consumer.pause(paused)
                except Exception:
                    log.exception("calendar feed: the leader group's poll failed; going on")
        finally:
            try:
                self.consumer.close()  # on_revoke: the active phase has ended already
            except Exception as exc:
                log.warning("calendar feed: leaving the leader group: %s", exc)

    def _tell(self, active: bool) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._become, active)

    def _become(self, active: bool) -> None:
        metrics.CALENDAR_FEED_ACTIVE.set(1 if active else 0)
        if active:
            self.terms += 1
            self.standby.clear()
            self.active.set()
        else:
            self.active.clear()
            self.standby.set()

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        if any(tp.partition == 0 for tp in partitions) and not self._holding:
            self._holding = True
            self._generation += 1
            self._ended.clear()
            self._to_pause = list(partitions)
            log.info("calendar feed: active (%s partition 0 assigned)", self.group)
            self._tell(True)
        elif not self._holding:
            self._tell(False)  # in the group, without the lease: standby

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        if self._release(partitions, "revoked") and not self._ended.wait(self.hand_over_s):
            log.warning("calendar feed: the active phase did not end in %.0f s; handing the "
                        "lease over anyway", self.hand_over_s)  # fmt: skip

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._release(partitions, "lost")

    def _release(self, partitions: list[TopicPartition], how: str) -> bool:
        if not self._holding or not any(tp.partition == 0 for tp in partitions):
            return False
        self._holding = False
        log.info("calendar feed: standing by (%s partition 0 %s)", self.group, how)
        self._tell(False)
        return True
