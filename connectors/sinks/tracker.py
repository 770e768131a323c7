"""Which offsets of each consumed partition may be committed (at-least-once).

Records of one partition finish out of order (concurrent deliveries, held retries). A
partition's commit position is its lowest offset not yet finished, or one past the highest
finished when none is pending: committing it can never skip a record whose outcome is not
recorded yet.

The commit positions Kafka confirmed are kept across rebalances (`confirm`, `confirmed`):
offsets never go back in Kafka, so a group commit found below one of them (`behind`) means
Kafka lost data.
"""

from __future__ import annotations

TP = tuple[str, int]


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
