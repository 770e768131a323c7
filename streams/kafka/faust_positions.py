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
  read, or the offset sought to): a fresh record beyond it means the broker has no records
  in between (transaction markers, compaction, retention), the only real gap;
- the commit: one past the processed (acked) records that follow the committed offset
  without a hole, where real gaps count as processed and an unprocessed record at the head,
  even exactly at the committed offset, holds the commit back.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

Tp = Hashable


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

    def accept(self, tp: Tp, offset: int) -> range | None:
        """Record that the fresh record at `offset` is handed out; returns the offsets the
        broker skipped before it (a real gap), or None."""
        epoch = self.fetched_epochs.get(tp, 0)
        known = self.expected.get(tp)
        if known is not None and known[0] == epoch:
            start: int | None = known[1]
        else:  # first record since a seek: expect the offset sought to, when one is known
            start = self.fetched_sought.get(tp)
        self.expected[tp] = (epoch, offset + 1)
        if start is not None and offset > start:
            return range(start, offset)
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
