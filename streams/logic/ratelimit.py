"""A token bucket: `rate` requests per second with bursts up to `burst`. A refusal says how
many seconds until a token is free: the ingest gateway sends it as Retry-After; a sink waits
that long when it is short, or reschedules the record when it is not. Pure: the current time
(monotonic seconds) is an argument, so tests need no clock.
"""

from __future__ import annotations

import math


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; one request costs one token."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._at = now

    def try_acquire(self, now: float) -> float:
        """Take a token: 0.0 when admitted, else the seconds to wait before trying again."""
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = max(self._at, now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate

    def wait(self, now: float) -> float:
        """The seconds until `try_acquire` would admit, taking nothing (0.0: it would now)."""
        tokens = min(self.burst, self._tokens + max(0.0, now - self._at) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def full(self, now: float) -> bool:
        """Saved up to `burst` again: the bucket is indistinguishable from a new one."""
        return self._tokens + max(0.0, now - self._at) * self.rate >= self.burst

    @staticmethod
    def retry_after_header(wait: float) -> str:
        """Retry-After is whole seconds; never 0, so a client does not retry at once."""
        return str(max(1, math.ceil(wait)))
