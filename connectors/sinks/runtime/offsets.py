"""Commit tracking: which offsets of each consumed partition may be committed (at-least-once),
committing them, and recognising that Kafka lost what was committed.

Records of one partition finish out of order (concurrent deliveries, held retries). A
partition's commit position is its lowest offset not yet finished, or one past the highest
finished when none is pending: committing it can never skip a record whose outcome is not
recorded yet.

The commit positions Kafka confirmed are kept across rebalances (`confirm`, `confirmed`):
offsets never go back in Kafka, so a group commit found below one of them (`behind`) means
Kafka lost data.

A record is finished when its outcome is decided and every outcome record it produced
(result, retry, dead letter) was acknowledged by Kafka: `Stored` counts those for one record
and marks it done in the tracker then. `commit`, `confirm` and `lost_commits` are the
runtime's dealings with the group's committed offsets; each says when it runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, TopicPartition
from streams.kafka.recovering import watermarks

log = logging.getLogger("connectors.sinks.runtime")

TP = tuple[str, int]


class Stored:
    """Counts one record's outcome records until Kafka acknowledged them all; then (once
    the record is finished) calls `done`. Lives on the event loop's thread."""

    __slots__ = ("done", "finished", "pending", "then")

    def __init__(self, done: Callable[[], None]) -> None:
        self.done = done
        self.pending = 0
        self.finished = False
        self.then: Callable[[], None] | None = None  # once acknowledged, after `done`

    def add(self) -> None:
        self.pending += 1

    def acked(self) -> None:
        self.pending -= 1
        if self.finished and self.pending == 0:
            self._complete()

    def finish(self, then: Callable[[], None] | None = None) -> None:
        """The record is handled; `done` (and `then`) once its outcome records are acked."""
        self.finished = True
        self.then = then
        if self.pending == 0:
            self._complete()

    def _complete(self) -> None:
        self.done()
        then, self.then = self.then, None
        if then is not None:
            then()


class OffsetTracker:
    def __init__(self) -> None:
        self._pending: dict[TP, set[int]] = {}
        self._next: dict[TP, int] = {}
        self._committed: dict[TP, int] = {}
        self.confirmed: dict[TP, int] = {}  # highest commit Kafka confirmed, per partition

    def add(self, tp: TP, offset: int) -> None:
        """A record was read: it is pending until `done`."""
        self._pending.setdefault(tp, set()).add(offset)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def done(self, tp: TP, offset: int) -> None:
        pending = self._pending.get(tp)
        if pending is not None:
            pending.discard(offset)

    def read_to(self, tp: TP) -> int:
        """One past the highest offset read from `tp` since it was assigned (0: none)."""
        return self._next.get(tp, 0)

    def pending(self, tp: TP) -> int:
        return len(self._pending.get(tp, ()))

    def committable(self, tps: set[TP] | None = None) -> dict[TP, int]:
        """Positions that moved since the last `mark_committed`, per partition."""
        out: dict[TP, int] = {}
        for tp, nxt in self._next.items():
            if tps is not None and tp not in tps:
                continue
            pending = self._pending.get(tp)
            position = min(pending) if pending else nxt
            if position > self._committed.get(tp, -1):
                out[tp] = position
        return out

    def mark_committed(self, positions: dict[TP, int]) -> None:
        self._committed.update(positions)

    def confirm(self, tp: TP, offset: int) -> None:
        """Kafka confirmed committing `offset` on `tp` for this process."""
        self.confirmed[tp] = max(self.confirmed.get(tp, -1), offset)

    def forget(self, tps: set[TP]) -> None:
        """Partitions revoked: their state is the next owner's (what Kafka confirmed stays)."""
        for tp in tps:
            self._pending.pop(tp, None)
            self._next.pop(tp, None)
            self._committed.pop(tp, None)


def behind(
    confirmed: dict[TP, int], committed: dict[TP, int], ends: dict[TP, int] | None = None
) -> list[str]:
    """The partitions whose group commit (`committed`; negative or absent: none) is below
    the position Kafka confirmed to this process (`confirmed`) and whose log (`ends`, the
    end offsets; None: not asked yet) no longer reaches that position, each as a line saying
    so. A commit below the confirmed one over a log that still holds the records is not a
    loss: an asynchronous commit retried to a new coordinator during a broker's death can
    land after a later one (a rewind, read again at least once)."""
    lost = []
    for (topic, partition), mine in sorted(confirmed.items()):
        now = committed.get((topic, partition), -1)
        end = None if ends is None else ends.get((topic, partition), -1)
        if now < mine and (end is None or end < mine):
            have = now if now >= 0 else "nothing"
            log_end = "" if end is None else f", the log ends at {max(end, 0)}"
            lost.append(
                f"{topic}[{partition}] has {have} committed after Kafka confirmed {mine}{log_end}"
            )
    return lost


async def commit(consumer: Consumer, tracker: OffsetTracker, tps: set[TP] | None = None, *,
                 wait: bool = False) -> None:  # fmt: skip
    """Commit what is finished and stored (of `tps`; default every partition), once per
    commit interval, not per record. Asynchronous while running (a lost commit only means
    records read again, which the ledger skips); `wait` at the end, confirming it."""
    positions = tracker.committable(tps)
    if not positions:
        return
    offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
    if wait:
        done = await asyncio.to_thread(consumer.commit, offsets=offsets, asynchronous=False)
        confirm(tracker, done)
    else:
        consumer.commit(offsets=offsets, asynchronous=True)
    tracker.mark_committed(positions)


def confirm(tracker: OffsetTracker, partitions: list[TopicPartition] | None) -> None:
    """Remember the commit positions Kafka confirmed (the data-loss check's reference)."""
    for tp in partitions or ():
        if tp.error is None and tp.offset >= 0:
            tracker.confirm((tp.topic, tp.partition), tp.offset)


def lost_commits(consumer: Consumer, tracker: OffsetTracker, tps: set[TP] | None = None,
                 timeout: float = 10.0) -> list[str] | None:  # fmt: skip
    """The partitions (of `tps`; default every one) whose commit in the group is gone or
    below a position Kafka confirmed to this process: Kafka lost data. None when Kafka
    cannot say now. Blocking (a thread, or a rebalance callback)."""
    confirmed = list(tracker.confirmed.items())  # a copy: another thread adds
    mine = {tp: o for tp, o in confirmed if o > 0 and (tps is None or tp in tps)}
    if not mine:
        return []
    try:
        now = consumer.committed([TopicPartition(t, p) for t, p in mine], timeout=timeout)
    except KafkaException as exc:
        log.warning("cannot read the group's committed offsets: %s", exc.args[0].str())
        return None
    if any(tp.error is not None for tp in now):
        return None
    committed = {(tp.topic, tp.partition): tp.offset for tp in now}
    suspects = {tp: o for tp, o in mine.items() if behind({tp: o}, committed)}
    if not suspects:
        return []
    try:  # a commit below ours is a loss only where the log no longer holds the records
        ends = {tp: watermarks(consumer, TopicPartition(*tp), 10)[1] for tp in suspects}
    except KafkaException as exc:
        log.warning("cannot read the end offsets: %s", exc.args[0].str())
        return None
    return behind(suspects, committed, ends)


def lost_data_message(details: list[str], group_id: str) -> str:
    """What to tell the operator when Kafka lost data this sink had read."""
    more = len(details) - 3
    shown = "; ".join(details[:3]) + (f" (and {more} more)" if more > 0 else "")
    return (
        f"Kafka lost data this sink had read ({shown}; group {group_id}): a broker "
        "restarted empty or topics were recreated. This process's delivery ledger describes "
        "records that no longer exist and would skip new ones as already processed, so it "
        "stops. Start it again: it reads the ledger from what Kafka holds now. Records that "
        "were only on the lost topics (deliveries not yet made, retries waiting) are gone "
        "with them: `wedsync audit --since <time of the loss>` lists the changes left "
        "without an outcome."
    )
