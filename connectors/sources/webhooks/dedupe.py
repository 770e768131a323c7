"""Pure, in-memory bookkeeping for the gateway: delivery ids seen recently, and rate limits.

`DedupeWindow` remembers a delivery id for `window` seconds after it was *stored* (the gateway
marks an id only once Kafka acknowledged its record), bounded by `max_entries` (the oldest go
first). It lives in one process: a second gateway replica has its own window, and a restart
forgets it, so downstream consumers must still tolerate the odd duplicate (at-least-once).

The gateway's rate limit is `streams.logic.ratelimit.TokenBucket` (the sinks use it too).

It takes the current time as an argument (monotonic seconds), so tests need no clock.
"""

from __future__ import annotations

from collections import OrderedDict


class DedupeWindow:
    """Delivery ids stored within the last `window` seconds."""

    def __init__(self, window: float, max_entries: int = 1_000_000) -> None:
        if window <= 0 or max_entries <= 0:
            raise ValueError("window and max_entries must be positive")
        self.window = window
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()  # id -> expiry, oldest first

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now: float) -> None:
        while self._seen:
            key, expiry = next(iter(self._seen.items()))
            if expiry > now:
                return
            del self._seen[key]

    def seen(self, key: str, now: float) -> bool:
        """True when `key` was marked within the window ending at `now`."""
        self._expire(now)
        return key in self._seen

    def mark(self, key: str, now: float) -> None:
        """Remember `key` until `now + window` (a second mark extends it)."""
        self._seen.pop(key, None)
        self._seen[key] = now + self.window
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)
        self._expire(now)
