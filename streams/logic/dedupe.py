"""A time-windowed seen-set: has this event id been routed within the last `window_ms`?

Pure and in-memory; one instance per partition (event ids of one aggregate stay on one
partition, so a partition's set sees every repeat of its ids). The caller passes the clock.

    window = SeenWindow(window_ms=15 * 60_000)
    if window.seen(event["event_id"], now_ms):
        skip (already routed)

An id counts as seen from its first sighting until `first + window_ms` (exclusive); a
repeat inside the window does not extend it. Expired ids are dropped lazily, oldest first,
on each call, so memory is bounded by the ids seen in one window (and by `max_entries`,
which evicts the oldest ids first when set). `snapshot()` / `from_snapshot()` let the caller
persist the set (e.g. in a Faust table) so a restart does not forget what it routed.
"""

from __future__ import annotations

from collections.abc import Mapping


class SeenWindow:
    """Event id -> first-seen time (epoch ms), expiring after `window_ms`."""

    __slots__ = ("_first_seen", "max_entries", "window_ms")

    def __init__(self, window_ms: int, max_entries: int | None = None) -> None:
        if window_ms <= 0:
            raise ValueError("window_ms must be positive")
        if max_entries is not None and max_entries <= 0:
            raise ValueError("max_entries must be positive")
        self.window_ms = window_ms
        self.max_entries = max_entries
        self._first_seen: dict[str, int] = {}

    def seen(self, event_id: str, now_ms: int) -> bool:
        """True when `event_id` was already seen within the window; otherwise record it
        (first seen now) and return False."""
        self.expire(now_ms)
        first = self._first_seen.get(event_id)
        if first is not None and now_ms < first + self.window_ms:
            return True
        if first is not None:  # expired but not yet purged (clock went backwards earlier)
            del self._first_seen[event_id]
        self._first_seen[event_id] = now_ms
        if self.max_entries is not None and len(self._first_seen) > self.max_entries:
            del self._first_seen[next(iter(self._first_seen))]
        return False

    def expire(self, now_ms: int) -> int:
        """Drop ids whose window ended at or before `now_ms`, oldest first; returns how many."""
        horizon = now_ms - self.window_ms
        entries = self._first_seen
        dropped = 0
        while entries:
            oldest = next(iter(entries))
            if entries[oldest] > horizon:
                break
            del entries[oldest]
            dropped += 1
        return dropped

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._first_seen

    def __len__(self) -> int:
        return len(self._first_seen)

    def snapshot(self) -> dict[str, int]:
        """A copy of id -> first-seen ms, oldest first."""
        return dict(self._first_seen)

    @classmethod
    def from_snapshot(
        cls, entries: Mapping[str, int], window_ms: int, max_entries: int | None = None
    ) -> SeenWindow:
        """Rebuild a window from `snapshot()` output (any order)."""
        window = cls(window_ms, max_entries)
        for event_id, first in sorted(entries.items(), key=lambda item: item[1]):
            window._first_seen[event_id] = first
        return window
