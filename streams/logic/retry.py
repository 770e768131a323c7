"""When to try a delivery again, and when not to try at all: pure, clock passed in.

- `RetryPolicy.delay()`: the exponential, jittered schedule of retries (by default the
  Standard Webhooks one, about 3 days: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h),
  never sooner than a provider's Retry-After.
- `Breaker`: a circuit breaker per endpoint. Closed until `threshold` consecutive failures;
  then open for `cooldown_s` (doubling on each failed probe, up to `max_cooldown_s`); then
  half-open: one probe goes through, the rest wait; a success closes it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

STANDARD_WEBHOOKS_S: tuple[float, ...] = (
    5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400,
)  # fmt: skip


@dataclass(frozen=True)
class RetryPolicy:
    """`schedule[i]` is the delay before attempt i+1 (attempt 0 is the first try), so the
    last attempt is number len(schedule). `jitter` spreads each delay by +-jitter of it."""

    schedule: tuple[float, ...] = STANDARD_WEBHOOKS_S
    jitter: float = 0.2

    @property
    def max_attempts(self) -> int:
        return len(self.schedule) + 1

    def exhausted(self, attempt: int) -> bool:
        """True when attempt number `attempt` (0-based) was the last one allowed."""
        return attempt + 1 >= self.max_attempts

    def delay(
        self,
        attempt: int,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait after failed attempt `attempt` before the next. A Retry-After is
        honoured as a floor, jitter is added on top of it (never below it)."""
        base = self.schedule[min(attempt, len(self.schedule) - 1)]
        jittered = base * (1 + self.jitter * (2 * rand() - 1))
        if retry_after is not None:
            return max(retry_after, 0.0) + base * self.jitter * rand()
        return max(jittered, 0.0)


@dataclass
class Breaker:
    """One endpoint's circuit breaker. `allow(now)` before a call; `success()`/`failure(now)`
    after it. Only transient failures (retry, backpressure, transport errors) count."""

    threshold: int = 5
    cooldown_s: float = 30.0
    max_cooldown_s: float = 600.0
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False
    _cooldown: float = field(default=0.0, repr=False)

    @property
    def is_open(self) -> bool:
        return self.failures >= self.threshold

    def allow(self, now: float) -> bool:
        """May a call go now? While open: no; after the cooldown one probe may go."""
        if not self.is_open:
            return True
        if now < self.open_until or self.probing:
            return False
        self.probing = True
        return True

    def success(self) -> None:
        self.failures = 0
        self.probing = False
        self._cooldown = 0.0

    def failure(self, now: float) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            was_probe = self.probing
            self._cooldown = (
                min(self._cooldown * 2, self.max_cooldown_s) if was_probe else self.cooldown_s
            )
            self.open_until = now + self._cooldown
            self.probing = False

    def reopens_at(self) -> float:
        """When a call may be tried again (the probe time while open)."""
        return self.open_until
