"""Which offsets of each consumed partition may be committed (at-least-once).

Records of one partition finish out of order (concurrent deliveries, held retries). A
partition's commit position is its lowest offset not yet finished, or one past the highest
finished when none is pending: committing it can never skip a record whose outcome is not
recorded yet.
"""

from __future__ import annotations

TP = tuple[str, int]


class OffsetTracker:
    def __init__(self) -> None:
        self._pending: dict[TP, set[int]] = {}
        self._next: dict[TP, int] = {}
        self._committed: dict[TP, int] = {}

    def add(self, tp: TP, offset: int) -> None:
        """A record was read: it is pending until `done`."""
        self._pending.setdefault(tp, set()).add(offset)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def done(self, tp: TP, offset: int) -> None:
        pending = self._pending.get(tp)
        if pending is not None:
            pending.discard(offset)

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

    def forget(self, tps: set[TP]) -> None:
        """Partitions revoked: their state is the next owner's."""
        for tp in tps:
            self._pending.pop(tp, None)
            self._next.pop(tp, None)
            self._committed.pop(tp, None)
