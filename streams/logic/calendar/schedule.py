"""When each connected calendar is fetched: single flight, debounced pushes, reconciles.

Pure bookkeeping over injected times (epoch ms). The feed asks `due(now)` for the calendars
to fetch, fetches each (one at a time per calendar: `due` never hands out a running one),
and reports back with `done`:

- a push (`push`) asks for a fetch 2 s after the first push of a burst, at most 10 s after
  it however many follow (a burst of 20,000 notifications is one fetch per calendar, not
  20,000); a push during a fetch marks the calendar dirty and it is fetched again when the
  fetch ends, at most 3 passes in a row (then the next debounce), so no change that arrived
  mid-fetch is lost (compass-calendar's bug) and no calendar can monopolise the feed;
- after a success the next fetch is the reconcile (or CalDAV poll) interval away, the
  safety net for dropped pushes;
- a failure backs off exponentially (1 s, 2 s, ... at most 15 min), a throttle waits
  exactly its Retry-After, and a calendar needing re-auth or gone is not fetched again until
  it is connected again (`remove` + `add`).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["ok", "failed", "throttled", "reauth", "gone"]

SECOND = 1000
MINUTE = 60 * SECOND
MAX_BACKOFF_MS = 15 * MINUTE


@dataclass
class Slot:
    interval_ms: int
    due_ms: int | None
    running: bool = False
    dirty: bool = False
    passes: int = 0
    burst_start_ms: int | None = None
    failures: int = 0
    not_before_ms: int = 0  # a throttle or a backoff: no push brings the fetch earlier
    last_ok_ms: int | None = None  # when its last fetch succeeded


@dataclass(frozen=True)
class Intervals:
    """Reconcile (push calendars) and poll (CalDAV) intervals, shorter for vendors with a
    wedding soon (CALENDAR_SYNC.md T2, T3)."""

    reconcile_ms: int = 60 * MINUTE
    reconcile_soon_ms: int = 15 * MINUTE
    poll_ms: int = 15 * MINUTE
    poll_soon_ms: int = 5 * MINUTE

    def of(self, *, push: bool, soon: bool) -> int:
        if push:
            return self.reconcile_soon_ms if soon else self.reconcile_ms
        return self.poll_soon_ms if soon else self.poll_ms


class Scheduler:
    def __init__(
        self,
        *,
        debounce_ms: int = 2 * SECOND,
        max_debounce_ms: int = 10 * SECOND,
        max_passes: int = 3,
    ) -> None:
        self.debounce_ms = debounce_ms
        self.max_debounce_ms = max_debounce_ms
        self.max_passes = max_passes
        self.slots: dict[str, Slot] = {}
        # (due, key) of every due time set; stale entries (the slot moved on) are skipped
        # when they surface, so `due` and `next_due_ms` cost O(log n), not a scan of every
        # calendar on every push
        self._heap: list[tuple[int, str]] = []

    def _set_due(self, key: str, slot: Slot, due_ms: int | None) -> None:
        slot.due_ms = due_ms
        if due_ms is not None:
            heapq.heappush(self._heap, (due_ms, key))

    def _current(self, entry: tuple[int, str]) -> Slot | None:
        slot = self.slots.get(entry[1])
        if slot is None or slot.running or slot.due_ms != entry[0]:
            return None
        return slot

    def add(
        self, key: str, now_ms: int, interval_ms: int, *, first_due_ms: int | None = None
    ) -> None:
        """A calendar to keep in sync; its first fetch is at `first_due_ms` (default now:
        the catch-up round after a start, which covers any push lost while down)."""
        if key in self.slots:
            self.slots[key].interval_ms = interval_ms
            return
        slot = self.slots[key] = Slot(interval_ms, None)
        self._set_due(key, slot, now_ms if first_due_ms is None else first_due_ms)

    def remove(self, key: str) -> None:
        self.slots.pop(key, None)

    def set_interval(self, key: str, interval_ms: int) -> None:
        """A new interval (a push channel went live or died, a wedding came close); a
        shorter one brings the next reconcile forward at once."""
        slot = self.slots.get(key)
        if slot is None:
            return
        slot.interval_ms = interval_ms
        if slot.due_ms is not None and slot.last_ok_ms is not None and not slot.running:
            due = max(min(slot.due_ms, slot.last_ok_ms + interval_ms), slot.not_before_ms)
            if due != slot.due_ms:
                self._set_due(key, slot, due)

    def push(self, key: str, now_ms: int) -> bool:
        """A notification for the calendar; False when it is not one we keep."""
        slot = self.slots.get(key)
        if slot is None:
            return False
        if slot.running:
            slot.dirty = True
            return True
        if slot.due_ms is None:
            return True  # waiting for the vendor to reconnect: a push cannot fix that
        if slot.burst_start_ms is None:
            slot.burst_start_ms = now_ms
        wanted = min(now_ms + self.debounce_ms, slot.burst_start_ms + self.max_debounce_ms)
        due = max(min(slot.due_ms, wanted), slot.not_before_ms)
        if due != slot.due_ms:
            self._set_due(key, slot, due)
        return True

    def due(self, now_ms: int, limit: int, allow: Callable[[str], bool] | None = None) -> list[str]:
        """Up to `limit` calendars to fetch now, the longest waiting first, skipping those
        `allow` refuses (their account is busy: they stay due); each is running until
        `done` is called for it."""
        chosen: list[str] = []
        refused: list[tuple[int, str]] = []
        while self._heap and self._heap[0][0] <= now_ms and len(chosen) < limit:
            entry = heapq.heappop(self._heap)
            if self._current(entry) is None or entry[1] in chosen:
                continue
            if allow is None or allow(entry[1]):
                chosen.append(entry[1])
            else:
                refused.append(entry)
        for entry in refused:
            heapq.heappush(self._heap, entry)
        for key in chosen:
            slot = self.slots[key]
            slot.running, slot.dirty, slot.burst_start_ms = True, False, None
        return chosen

    def done(self, key: str, now_ms: int, outcome: Outcome, retry_after_ms: int = 0) -> None:
        slot = self.slots.get(key)
        if slot is None:
            return
        slot.running = False
        if outcome == "ok":
            slot.failures = 0
            slot.last_ok_ms = now_ms
            if slot.dirty and slot.passes < self.max_passes:
                slot.passes += 1
                self._set_due(key, slot, now_ms)
            elif slot.dirty:
                slot.passes = 0
                self._set_due(key, slot, now_ms + self.debounce_ms)
            else:
                slot.passes = 0
                self._set_due(key, slot, now_ms + slot.interval_ms)
            slot.dirty = False
        elif outcome == "throttled":
            slot.not_before_ms = now_ms + max(retry_after_ms, SECOND)
            self._set_due(key, slot, slot.not_before_ms)
        elif outcome == "failed":
            slot.failures += 1
            wait = min(SECOND * 2 ** (slot.failures - 1), MAX_BACKOFF_MS)
            slot.not_before_ms = now_ms + wait
            self._set_due(key, slot, slot.not_before_ms)
        else:  # reauth, gone: until the vendor connects the calendar again
            self._set_due(key, slot, None)
            slot.dirty = False

    def next_due_ms(self) -> int | None:
        """The earliest time a calendar is due (None when none is)."""
        while self._heap and self._current(self._heap[0]) is None:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None
