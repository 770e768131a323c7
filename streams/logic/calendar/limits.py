"""The calendar feed's request limits (CALENDAR_SYNC.md §5.7), counted per provider request:
a fetch round that follows five pages costs five, a channel create or stop costs one.

Every request names its *slots*, (limit name, key) pairs (`slots`):

    google   ("google_user", integration) and ("google_project", ""): Google counts per user
             per project (600/min) and per project (10,000/min); the feed keeps to a share
    graph    ("graph_mailbox", integration): Outlook allows 4 concurrent requests and 10,000
             requests per 10 minutes per app and mailbox
    caldav   ("caldav_account", integration) and ("caldav_host", host): iCloud publishes no
             limits; a few at once per account and per server

`Limiter` holds per slot a `TokenBucket` (the limit's rate) and the requests in flight (its
concurrency). `try_acquire` admits a request on all its slots at once or on none: 0.0 it is
admitted (a token taken and a place held on every slot; `release` gives the places back),
a positive number is the seconds to wait (a rate, or a provider's Retry-After), None is a slot
at its concurrency (wait for a `release`). `throttled` is the provider saying slow down: the
slot takes nothing for max(Retry-After, truncated exponential backoff over the throttles in a
row), `succeeded` ends the row. Memory stays bounded: `sweep` (run by `try_acquire` every
`sweep_every_s`) drops the state of slots that hold nothing, wait for nothing and have saved
up their whole burst (a new state is the same), or were idle for `idle_s`.

Pure: the current time (monotonic seconds) is an argument; nothing here sleeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from streams.logic.ratelimit import TokenBucket

Slot = tuple[str, str]  # (limit name, key)

GOOGLE_USER = "google_user"
GOOGLE_PROJECT = "google_project"
GRAPH_MAILBOX = "graph_mailbox"
CALDAV_ACCOUNT = "caldav_account"
CALDAV_HOST = "caldav_host"


@dataclasses.dataclass(frozen=True)
class Limit:
    """`rate_per_s` tokens a second (None: no rate), `burst` saved up, `concurrency` requests
    in flight at once (None: any)."""

    rate_per_s: float | None = None
    burst: int = 1
    concurrency: int | None = None


@dataclasses.dataclass(frozen=True)
class FeedRates:
    """The feed's limits in the providers' units; the defaults are the documented quotas or
    the feed's share of them (the calendar sinks spend the same quotas)."""

    google_user_per_min: float = 60.0  # 10% of Google's 600 per user per project
    google_user_burst: int = 10
    google_project_per_min: float = 5_000.0  # 50% of Google's 10,000 per project
    google_project_burst: int = 100
    graph_requests_per_window: int = 5_000  # 50% of Outlook's 10,000 per mailbox...
    graph_window_s: float = 600.0  # ... per 10 minutes
    graph_burst: int = 20
    graph_concurrency: int = 4  # Outlook's concurrent requests per mailbox per app
    caldav_per_min: float = 60.0
    caldav_burst: int = 5
    caldav_concurrency: int = 2  # per account (iCloud throttles busy accounts)
    caldav_host_concurrency: int = 20

    def limits(self) -> dict[str, Limit]:
        # a bucket admits at most burst + rate * window in any window: the rates leave room
        return {
            GOOGLE_USER: Limit(self.google_user_per_min / 60, self.google_user_burst),
            GOOGLE_PROJECT: Limit(self.google_project_per_min / 60, self.google_project_burst),
            GRAPH_MAILBOX: Limit(
                self.graph_requests_per_window / self.graph_window_s,
                self.graph_burst,
                self.graph_concurrency,
            ),
            CALDAV_ACCOUNT: Limit(
                self.caldav_per_min / 60, self.caldav_burst, self.caldav_concurrency
            ),
            CALDAV_HOST: Limit(None, 1, self.caldav_host_concurrency),
        }


def slots(provider: str, account: str, host: str = "") -> tuple[Slot, ...]:
    """The slots one request of `account` (an integration id) at `provider` takes."""
    if provider == "google":
        return ((GOOGLE_USER, account), (GOOGLE_PROJECT, ""))
    if provider == "graph":
        return ((GRAPH_MAILBOX, account),)
    if provider == "caldav":
        return ((CALDAV_ACCOUNT, account), (CALDAV_HOST, host))
    raise ValueError(f"no limits for provider {provider!r}")


def account_slot(provider: str, account: str) -> Slot:
    """The slot a provider's "slow down" to `account` is charged to (Google's per-user
    reasons, Graph's mailbox, a CalDAV login)."""
    return slots(provider, account)[0]


@dataclasses.dataclass
class _State:
    bucket: TokenBucket | None
    in_flight: int = 0
    blocked_until: float = 0.0
    strikes: int = 0  # throttles in a row
    last: float = 0.0


class Limiter:
    def __init__(
        self,
        limits: Mapping[str, Limit],
        *,
        idle_s: float = 600.0,
        sweep_every_s: float = 60.0,
        max_backoff_s: float = 64.0,
    ) -> None:
        self.limits = dict(limits)
        self.idle_s = idle_s
        self.sweep_every_s = sweep_every_s
        self.max_backoff_s = max_backoff_s
        self._states: dict[Slot, _State] = {}
        self._swept = 0.0

    def __len__(self) -> int:
        """Slots with state held (the rest are as new)."""
        return len(self._states)

    def try_acquire(self, wanted: Sequence[Slot], now: float) -> float | None:
        """0.0 admitted on every slot; seconds to wait; None: a slot is at its concurrency."""
        if now - self._swept >= self.sweep_every_s:
            self.sweep(now)
        known = [slot for slot in wanted if slot[0] in self.limits]
        states = [self._state(slot, now) for slot in known]
        wait = 0.0
        for slot, state in zip(known, states, strict=True):
            wait = max(wait, state.blocked_until - now)
            if state.bucket is not None:
                wait = max(wait, state.bucket.wait(now))
            cap = self.limits[slot[0]].concurrency
            if cap is not None and state.in_flight >= cap and wait <= 0:
                return None
        if wait > 0:
            return wait
        for state in states:
            if state.bucket is not None:
                state.bucket.try_acquire(now)
            state.in_flight += 1
            state.last = now
        return 0.0

    def release(self, held: Sequence[Slot], now: float) -> None:
        """Give back the places of an admitted request (its answer came, or it failed)."""
        for slot in held:
            state = self._states.get(slot)
            if state is not None and state.in_flight > 0:
                state.in_flight -= 1
                state.last = now

    def throttled(self, slot: Slot, retry_after_s: float, now: float) -> float:
        """The provider refused `slot` for a rate: it admits nothing for the seconds returned
        (at least `retry_after_s`; longer when throttled again and again)."""
        if slot[0] not in self.limits:
            return retry_after_s
        state = self._state(slot, now)
        state.strikes += 1
        backoff = min(2.0 ** (state.strikes - 1), self.max_backoff_s)
        state.blocked_until = max(state.blocked_until, now + max(retry_after_s, backoff))
        state.last = now
        return state.blocked_until - now

    def succeeded(self, slot: Slot) -> None:
        """A request of `slot` succeeded: the next throttle starts the backoff afresh."""
        state = self._states.get(slot)
        if state is not None:
            state.strikes = 0

    def blocked_for(self, wanted: Sequence[Slot], now: float) -> float:
        """Seconds until none of `wanted` is held back by a throttle (0.0: none is)."""
        return max([0.0] + [s.blocked_until - now for w in wanted if (s := self._states.get(w))])

    def sweep(self, now: float) -> int:
        """Drop the state of idle slots; how many were dropped."""
        self._swept = now
        idle = [slot for slot, state in self._states.items() if self._idle(state, now)]
        for slot in idle:
            del self._states[slot]
        return len(idle)

    def _idle(self, state: _State, now: float) -> bool:
        if state.in_flight or state.blocked_until > now:
            return False
        if now - state.last >= self.idle_s:
            return True
        return state.strikes == 0 and (state.bucket is None or state.bucket.full(now))

    def _state(self, slot: Slot, now: float) -> _State:
        state = self._states.get(slot)
        if state is None:
            limit = self.limits[slot[0]]
            bucket = None
            if limit.rate_per_s is not None:
                bucket = TokenBucket(limit.rate_per_s, limit.burst, now)
            state = self._states[slot] = _State(bucket, last=now)
        return state
