"""The calendar feed's request gate: every provider request of a fetch round or a channel
call passes `streams.logic.calendar.limits.Limiter` first (the token endpoint does not: it
is not the calendar API and has no such quota).

`RequestGate.client(http, provider, account)` is an httpx.AsyncClient for one account whose
transport waits for the request's slots (`limits.slots`; CalDAV's include the server's host)
and then sends it with `http`, the injected client (its timeouts, policy and hooks apply);
the places are given back once the answer's body is read (the answer is handed on whole,
decoded: calendar pages are JSON or XML of bounded size, and the product's client reads
them whole anyway). The fetchers and channel calls
take it where they took `http`, so each of their requests is counted, pages included.

A request waits for its limits at most `max_wait_s` in all; a longer wait (a rate far
behind, or a provider's Retry-After still running) raises `Deferred`, a `Throttled` with the
seconds left, without sending anything: the round is put off by the scheduler and holds no
slot of the feed's concurrency meanwhile. `throttled(provider, account, exc)` charges a
provider's Throttled to the account's slot (backoff, Retry-After) and returns the Throttled to
raise, with the wait the limiter will keep; `succeeded` ends a row of throttles.

`clock` (monotonic seconds) and `sleep` are injected: tests move a hand clock in `sleep`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import httpx
from streams.logic.calendar import limits as limits_mod
from streams.logic.calendar.limits import Limiter, Slot

from connectors.calendar.feed_errors import Throttled

MIN_SLEEP_S = 0.001
DECODED = ("content-encoding", "content-length", "transfer-encoding")  # the body is decoded


class Deferred(Throttled):
    """The feed's own limits put the request off (nothing was sent to the provider)."""


class RequestGate:
    def __init__(
        self,
        limiter: Limiter | None = None,
        *,
        max_wait_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limiter = Limiter(limits_mod.FeedRates().limits()) if limiter is None else limiter
        self.max_wait_s = max_wait_s
        self.clock = clock
        self.sleep = sleep
        self.waits = 0  # times a request waited for a limit (tests, benchmarks)
        self._released = asyncio.Event()

    async def acquire(self, wanted: Sequence[Slot]) -> None:
        """Wait until `wanted` admits a request (Deferred past `max_wait_s`)."""
        waited = 0.0
        while True:
            wait = self.limiter.try_acquire(wanted, self.clock())
            if wait == 0.0:
                return
            self.waits += 1
            if wait is None:  # a slot at its concurrency: until a request ends
                started = self.clock()
                released = self._released
                try:
                    await asyncio.wait_for(released.wait(), self.max_wait_s - waited)
                except TimeoutError:
                    raise Deferred("calendar feed: requests in flight", 1.0) from None
                waited += self.clock() - started
                continue
            if waited + wait > self.max_wait_s:
                raise Deferred(f"calendar feed: {wanted[0][0]} limit", wait)
            wait = max(wait, MIN_SLEEP_S)  # a float's last bit short of a token is no spin
            await self.sleep(wait)
            waited += wait

    def release(self, held: Sequence[Slot]) -> None:
        self.limiter.release(held, self.clock())
        released, self._released = self._released, asyncio.Event()
        released.set()

    def throttled(self, provider: str, account: str, exc: Throttled) -> Throttled:
        """A provider's Throttled for `account`: charged to its slot unless it was ours."""
        if isinstance(exc, Deferred):
            return exc
        slot = limits_mod.account_slot(provider, account)
        wait = self.limiter.throttled(slot, exc.retry_after_s, self.clock())
        return Throttled(str(exc), wait)

    def succeeded(self, provider: str, account: str) -> None:
        self.limiter.succeeded(limits_mod.account_slot(provider, account))

    def client(self, http: httpx.AsyncClient, provider: str, account: str) -> httpx.AsyncClient:
        """A client whose every request takes `account`'s slots at `provider`."""
        transport = _GatedTransport(self, http, provider, account)
        return httpx.AsyncClient(
            transport=transport, timeout=http.timeout, headers=http.headers, trust_env=False
        )


class _GatedTransport(httpx.AsyncBaseTransport):
    def __init__(
        self, gate: RequestGate, http: httpx.AsyncClient, provider: str, account: str
    ) -> None:
        self.gate, self.http = gate, http
        self.provider, self.account = provider, account

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        held = limits_mod.slots(self.provider, self.account, request.url.host)
        await self.gate.acquire(held)
        try:
            answer = await self.http.send(request)  # the body read: the request is over
        finally:
            self.gate.release(held)
        headers = [(k, v) for k, v in answer.headers.multi_items() if k.lower() not in DECODED]
        return httpx.Response(
            answer.status_code, headers=headers, content=answer.content,
            extensions=answer.extensions,
        )  # fmt: skip
