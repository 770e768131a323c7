"""Which records the Faust worker may hand out and commit: pure bookkeeping, no Kafka.

Faust's fetch loop decides three things per partition with one number, the last offset it
handed to the streams (`_read_offset`), whose meaning changes to "the next offset" after a
seek: whether a record is a repeat (dropped), whether offsets were skipped by the broker (a
"gap", committed as if processed) and, with the committed offset, how far it may commit.
Two off-by-ones and one race in that lost records after every worker restart under load
(`streams.kafka.faust_transport` tells the story). `ReadPositions` keeps them apart:

- a **position epoch** per partition, bumped by every seek, and the epochs at which the
  current batch was fetched: a record fetched before its partition's latest seek is stale
  (the fetcher reads it again from the new position) and is never handed out or counted;
- the **next expected offset** per partition, in Kafka's sense (one past the last record
  read, or the offset sought to). A first record after a seek beyond the offset sought is
  the broker's own answer that nothing is in between (transaction markers, compaction,
  retention): the only real gap. A jump within one continuous read is not: aiokafka hands
  out every record from its position in order, so the offsets between are records Faust's
  own `getmany` dropped (flow stopped, a generation change, a partition paused) after
  aiokafka had moved past them. Those are read again (a seek back), never committed;
- a **hole watch**: a partition whose committed offset stays behind records processed after
  it for `patience_s` (a record dropped by some other path, never to be fetched again, that
  holds every later commit) is read again from its committed offset;
- the commit: one past the processed (acked) records that follow the committed offset
  without a hole, where real gaps count as processed and an unprocessed record at the head,
  even exactly at the committed offset, holds the commit back.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

Tp = Hashable


@dataclass(frozen=True)
class Skipped:
    """Offsets before a fresh record that were not handed out. `by_broker`: right after a
    seek, so the broker has no records there (a real gap, counted as processed); otherwise
    records dropped after the fetch, to be read again."""

    offsets: range
    by_broker: bool


@dataclass
class ReadPositions:
    epochs: dict[Tp, int] = field(default_factory=dict)
    sought: dict[Tp, int] = field(default_factory=dict)
    fetched_epochs: dict[Tp, int] = field(default_factory=dict)
    fetched_sought: dict[Tp, int] = field(default_factory=dict)
    expected: dict[Tp, tuple[int, int]] = field(default_factory=dict)  # tp -> (epoch, offset)

    # ---- called on the fetcher's thread ------------------------------------------------------
    def moved(self, tp: Tp, offset: int) -> None:
        """The fetcher's position of `tp` was set to `offset` (a seek)."""
        self.sought[tp] = offset
        self.epochs[tp] = self.epochs.get(tp, 0) + 1

    def stamp(self) -> None:
        """The records just drained from the fetcher were fetched at the current positions."""
        self.fetched_epochs = dict(self.epochs)
        self.fetched_sought = dict(self.sought)

    # ---- called by the fetch loop, per record of the current batch ---------------------------
    def stale(self, tp: Tp) -> bool:
        """True when `tp` was sought after the current batch was fetched."""
        return self.epochs.get(tp, 0) != self.fetched_epochs.get(tp, 0)

    def accept(self, tp: Tp, offset: int) -> Skipped | None:
        """Record that the fresh record at `offset` is handed out; returns the offsets
        skipped before it, or None when it is the one expected."""
        epoch = self.fetched_epochs.get(tp, 0)
        known = self.expected.get(tp)
        start: int | None
        if known is not None and known[0] == epoch:
            start, sought = known[1], False
        else:  # first record since a seek: expect the offset sought to, when one is known
            start, sought = self.fetched_sought.get(tp), True
        self.expected[tp] = (epoch, offset + 1)
        if start is not None and offset > start:
            return Skipped(range(start, offset), by_broker=sought)
        return None

    def forget(self, tp: Tp) -> None:
        """`tp` was revoked."""
        for table in (self.epochs, self.sought, self.expected):
            table.pop(tp, None)


def commit_offset(acked: list[int], committed: int | None) -> tuple[int | None, int]:
    """For a partition's acked offsets (real gaps already merged in, sorted) and its
    committed offset (the next to read; None when unknown): the offset to commit, or None,
    and how many leading entries of `acked` that commit covers."""
    if not acked or (committed is not None and acked[0] > committed):
        return None, 0
    end = 0
    while end + 1 < len(acked) and acked[end + 1] <= acked[end] + 1:
        end += 1
    return acked[end] + 1, end + 1


@dataclass
class HoleWatch:
    """Per partition, since when its committed offset has stayed behind a processed record."""

    patience_s: float
    since: dict[Tp, tuple[int, float]] = field(default_factory=dict)

    def stuck(self, tp: Tp, committed: int | None, head: int | None, now: float) -> bool:
        """`head` is the lowest processed offset not yet committed. True (once per
        `patience_s`) when the record at `committed` has held the commit that long: read the
        partition again from `committed`."""
        if committed is None or head is None or head <= committed:
            self.since.pop(tp, None)
            return False
        first = self.since.get(tp)
        if first is None or first[0] != committed:
            self.since[tp] = (committed, now)
            return False
        if now - first[1] < self.patience_s:
            return False
        self.since[tp] = (committed, now)
        return True

    def forget(self, tp: Tp) -> None:
        self.since.pop(tp, None)


def counts_as_processed(
    message_generation: int | None, current_generation: int, flowing: bool
) -> bool:
    """Whether a stream's ack of a message means it was processed. Faust's streams ack, as
    if processed, a message they skip: one fetched in an earlier consumer generation, or
    one taken while the flow is stopped for a rebalance (`faust.streams.Stream._py_aiter`).
    Counted, such an ack lets the commit pass a record that was never processed."""
    return flowing and message_generation == current_generation
