"""The calendar feed's half of `bench.calendar`: `CalendarFeed` with the real
`ProviderFetchers` against the Google fake over loopback, pushes routed by `PushRouter`.

`requests_per_hour` simulates one hour on an injected clock (rounds take no simulated time,
so the fetch concurrency does not change the count) and counts what the fake received; the
feed's request limits (the product's defaults) run on that clock too: a wait for the
project's share moves it on (`limit_waits` counts the waits);
`change_to_written` runs the feed on the real clock and times a vendor's change, the fake's
push and the round that carries it; there the project's share is lifted (at the default
5,000 requests a minute a burst over 10,000 calendars takes two minutes: Google's quota,
not the feed's latency, which is what it measures). Both use an in-memory writer that
records each round (key, time, records) instead of Kafka: what they measure is the feed's
scheduling and fetches, not the write. No broker is needed.

The calendar feed process does not yet mark channels live or index them by channel id (the
channel manager does); these benches set `push_live` and `channel_index` as it will, so push
calendars are reconciled hourly (a calendar without a live channel is polled every 15 min).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web
from connectors.calendar.caldav.config import CalDavConfig
from connectors.calendar.feed.connected import Connected
from connectors.calendar.feed.engine import CalendarFeed, FeedConfig
from connectors.calendar.feed.gate import RequestGate
from connectors.calendar.feed.providers import ProviderFetchers
from connectors.calendar.feed.pushes import PushRouter
from connectors.calendar.feed.sync_state import CalendarSync
from connectors.calendar.google.config import GoogleConfig
from connectors.calendar.graph.config import GraphConfig
from connectors.sinks.credentials import MemoryCredentialStore
from connectors.sinks.oauth import OAuthClient
from connectors.sinks.outbound import OutboundPolicy, http_client
from pydantic import SecretStr
from streams.dev.broker import free_port
from streams.logic.calendar.busy import BusyRecord
from streams.logic.calendar.channels import issue_token, verify_token
from streams.logic.calendar.limits import FeedRates, Limiter
from streams.logic.calendar.rounds import CalendarRef
from streams.logic.calendar.schedule import MINUTE, SECOND, Intervals, Scheduler
from streams.models import DomainEvent
from streams.settings import REPO_ROOT

KEY = b"bench-calendar-channel-key-0123456789"
DEBOUNCE_MS, MAX_DEBOUNCE_MS, RECONCILE_MS = 2 * SECOND, 10 * SECOND, 60 * MINUTE
HOUR_S = 3600.0
STEP_S = 0.01  # the simulated hour delivers pushes in steps this long (not one by one)


def integration(i: int) -> str:
    return f"00000000-bench-cal-{i:06d}"


def channel(i: int) -> str:
    return f"bench-chan-{i}"


def burst_targets(calendars: int, pushes: int, seed: int = 20) -> list[int]:
    """Which calendar each push of a burst names (random, seeded: the same in every run)."""
    pick = random.Random(seed)
    return [pick.randrange(calendars) for _ in range(pushes)]


def push_record(i: int, received_s: float) -> dict[str, Any]:
    """A Google push as the ingest gateway stores it (channel-key mode: verified integration)."""
    headers = {"x-goog-channel-id": channel(i), "x-goog-resource-state": "exists",
               "x-wedsync-integration-id": integration(i)}  # fmt: skip
    return {"verification": "google_channel", "headers": headers,
            "received_at_ms": int(received_s * 1000)}  # fmt: skip


@dataclass
class Written:
    key: str
    at_s: float
    records: int


@dataclass
class MemoryWriter:
    """A `RoundWriter` that keeps (key, clock time, records) of every write."""

    clock: Callable[[], float]
    writes: list[Written] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def write(
        self, records: list[BusyRecord], events: list[DomainEvent], state: CalendarSync | None,
        key: str,
    ) -> None:  # fmt: skip
        self.writes.append(Written(key, self.clock(), len(records)))
        self.changed.set()


@dataclass
class Rig:
    url: str  # the fake's
    feed: CalendarFeed
    router: PushRouter
    writer: MemoryWriter
    http: httpx.AsyncClient

    async def counters(self) -> dict[str, int]:
        """What the fake counted (`GET /_fake/stats`, itself not counted)."""
        got: dict[str, int] = (await self.http.get(f"{self.url}/_fake/stats")).json()["counters"]
        return got


_FAKE = """
import asyncio, sys
from aiohttp import web
from streams.dev.fakes.google import GoogleCalendarFake
async def main():
    runner = web.AppRunner(GoogleCalendarFake().app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(sys.argv[1])).start()
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


@contextlib.asynccontextmanager
async def fake_process() -> AsyncIterator[str]:
    """The Google fake in its own interpreter (its own core: on two cores the feed and the
    fake on one GIL would halve both); its base URL."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _FAKE, str(port), cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        if (await process.stdout.readline()).strip() != b"ready":
            raise RuntimeError("the Google fake did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        await process.wait()


@contextlib.asynccontextmanager
async def rig(
    calendars: int,
    clock: Callable[[], float],
    concurrency: int,
    connections: int = 8,
    gate: RequestGate | None = None,
) -> AsyncIterator[Rig]:
    """The fake on its own thread, the feed with `calendars` Google calendars (each its own
    integration and account), every one with a live channel indexed by its id."""
    async with fake_process() as url:
        store = MemoryCredentialStore(
            {("integration", integration(i)): {"api_key": f"refresh-{i}"} for i in range(calendars)}
        )
        # the product's client (aiohttp underneath, as every sink and the feed use it)
        http = http_client(OutboundPolicy.loopback_for_tests(url))
        google = GoogleConfig(client_id="bench", token_url=f"{url}/token", api_base_url=url)
        fetchers = ProviderFetchers(http, store, google=google, graph=GraphConfig(),
                                    caldav=CalDavConfig(), gate=gate)  # fmt: skip
        fetchers.oauth["google"] = OAuthClient(  # token lifetimes on the same clock as the feed
            http, token_url=google.token_url, client_id="bench", client_secret=SecretStr(""),
            prefix="google", clock=clock,
        )  # fmt: skip
        writer = MemoryWriter(clock)
        intervals = Intervals(reconcile_ms=RECONCILE_MS, reconcile_soon_ms=15 * MINUTE)
        feed = CalendarFeed(
            fetchers.fetch, writer, clock=clock,
            config=FeedConfig(concurrency=concurrency, intervals=intervals),
            scheduler=Scheduler(debounce_ms=DEBOUNCE_MS, max_debounce_ms=MAX_DEBOUNCE_MS),
        )  # fmt: skip
        connected = {}
        for i in range(calendars):
            ref = CalendarRef("google", integration(i), f"sup-{i}", "primary", "UTC")
            connected[ref.key] = Connected(ref, None)
            feed.push_live.add(ref.key)  # what the channel manager records
            feed.channel_index[channel(i)] = ref.key
        await feed.connect(connected)
        try:
            yield Rig(url, feed, PushRouter(feed), writer, http)
        finally:
            await feed.idle()
            await http.aclose()


# ---- 2. provider requests per calendar per hour (injected clock) ----------------------------
@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        """A wait for a limit: the clock moves on to its end (concurrent waits overlap)."""
        self.now += seconds  # the next request's wait is read on the moved clock
        await asyncio.sleep(0)


@dataclass
class HourCounts:
    calendars: int
    pushes: int
    lists: dict[str, int]  # phase -> events.list requests
    tokens: dict[str, int]  # phase -> token grants
    requests: int  # everything the fake answered (lists + token grants)
    routed: int
    wall_s: float
    limit_waits: int = 0  # times a request waited for the feed's request limits


async def _drain(feed: CalendarFeed) -> None:
    """Run every round due now (the clock stands still meanwhile)."""
    while feed.tick():
        await feed.idle()


async def requests_per_hour(calendars: int, pushes: int, burst_at_s: float = 300.0,
                            burst_s: float = 10.0) -> HourCounts:  # fmt: skip
    """One simulated hour from the feed's start: the catch-up round of every calendar, a
    burst of `pushes` over `burst_s` seconds at `burst_at_s`, the reconciles falling due.
    The pushes of each STEP_S are routed together, at its start: every clock step costs
    the scheduler a scan of all calendars, and 20,000 single steps would dominate."""
    started = time.perf_counter()
    t0 = 1_900_000_000.0
    clock = Clock(t0)
    gate = RequestGate(clock=clock, sleep=clock.sleep)
    async with rig(calendars, clock, concurrency=64, gate=gate) as r:
        marks: dict[str, tuple[int, int]] = {}

        async def mark(phase: str) -> None:
            c = await r.counters()
            marks[phase] = (c.get("events_listed", 0), c.get("tokens_issued", 0))

        await _drain(r.feed)
        await mark("catch-up")
        targets = burst_targets(calendars, pushes)
        queue = [(t0 + burst_at_s + burst_s * n / pushes, i) for n, i in enumerate(targets)]
        end, n = t0 + HOUR_S, 0
        settled = t0 + burst_at_s + burst_s + 60  # a minute after the burst's last push
        while True:
            await _drain(r.feed)
            due_ms = r.feed.scheduler.next_due_ms()
            after = [due_ms / 1000] if due_ms is not None else []
            if n < len(queue):
                after.append(queue[n][0])
            if not after or min(after) > end:
                break
            if min(after) > settled and "burst" not in marks:  # the burst's rounds are done
                await mark("burst")
            clock.now = max(clock.now, min(after))
            while n < len(queue) and queue[n][0] <= clock.now + STEP_S:  # 10 ms at a time
                r.router.route(push_record(queue[n][1], queue[n][0]))
                n += 1
        if "burst" not in marks:
            await mark("burst")
        await mark("hour")
        requests = (await r.counters()).get("requests", 0)
        phases = ("catch-up", "burst", "hour")
        lists = {p: marks[p][0] - (marks[q][0] if q else 0)
                 for p, q in zip(phases, (None, *phases[:-1]), strict=True)}  # fmt: skip
        tokens = {p: marks[p][1] - (marks[q][1] if q else 0)
                  for p, q in zip(phases, (None, *phases[:-1]), strict=True)}  # fmt: skip
        return HourCounts(calendars, pushes, lists, tokens, requests, n,
                          time.perf_counter() - started, gate.waits)  # fmt: skip


# ---- 3. change to written round (real clock) ------------------------------------------------
@dataclass
class ChangeTimes:
    calendars: int
    pushes: int
    samples: int
    push_to_written: list[float]  # s, per sampled change whose round was written
    change_to_written: list[float]
    missing: int
    catch_up_s: float
    burst_s: float  # how long the burst took to send


async def _receiver(r: Rig, arrived: dict[str, float]) -> web.AppRunner:
    """Where the fake's channels POST: verify the token as the gateway does, route."""

    async def push(request: web.Request) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        chan = headers.get("x-goog-channel-id", "")
        verified = verify_token([KEY], headers.pop("x-goog-channel-token", None), chan)
        if verified is None:
            return web.Response(status=401)
        headers["x-wedsync-integration-id"] = verified
        now = time.time()
        if headers.get("x-goog-resource-state") == "exists":
            arrived.setdefault(chan, now)
        r.router.route({"verification": "google_channel", "headers": headers,
                        "received_at_ms": int(now * 1000)})  # fmt: skip
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/push", push)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    return runner


async def _watch(r: Rig, i: int, address: str) -> str:
    """A channel on calendar i's account in the fake (the vendor's access token); the token."""
    grant = {"grant_type": "refresh_token", "refresh_token": f"refresh-{i}"}
    access = (await r.http.post(f"{r.url}/token", data=grant)).json()["access_token"]
    body = {"id": channel(i), "type": "web_hook", "address": address,
            "token": issue_token([KEY], integration(i), channel(i))}  # fmt: skip
    auth = {"Authorization": f"Bearer {access}"}
    answer = await r.http.post(f"{r.url}/calendar/v3/calendars/primary/events/watch",
                               json=body, headers=auth)  # fmt: skip
    answer.raise_for_status()
    return access


async def change_to_written(calendars: int, pushes: int, samples: int, burst_s: float = 10.0,
                            concurrency: int = 8, wait_s: float = 90.0) -> ChangeTimes:  # fmt: skip
    """Catch up every calendar, then over `burst_s` route `pushes` gateway-shaped pushes and
    make `samples` vendor changes (events.insert in the fake, whose channel pushes to a
    receiver that routes it); per change, the time until its round is written."""
    rates = FeedRates(google_project_per_min=6_000_000, google_project_burst=100_000)
    gate = RequestGate(Limiter(rates.limits()))
    async with rig(calendars, time.time, concurrency, gate=gate) as r:
        stop = asyncio.Event()
        loop_task = asyncio.create_task(r.feed.run(stop))
        started = time.perf_counter()
        while r.feed.rounds < calendars:  # the catch-up round of every calendar
            r.writer.changed.clear()
            await r.writer.changed.wait()
        catch_up = time.perf_counter() - started
        arrived: dict[str, float] = {}
        runner = await _receiver(r, arrived)
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            sampled = random.Random(3).sample(range(calendars), samples)
            tokens = {i: await _watch(r, i, f"http://127.0.0.1:{port}/push") for i in sampled}
            changes = await _burst(r, pushes, sampled, tokens, burst_s)
            burst_took = time.perf_counter() - started - catch_up
            deadline = time.time() + wait_s
            written = _written_after(r, changes)
            read = len(r.writer.writes)
            while len(written) < len(changes) and time.time() < deadline:
                r.writer.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(r.writer.changed.wait(), deadline - time.time())
                upto = len(r.writer.writes)
                written = _written_after(r, changes, written, read)
                read = upto
        finally:
            stop.set()
            await loop_task
            await runner.cleanup()
        push_times = [written[i] - arrived[channel(i)] for i in written if channel(i) in arrived]
        change_times = [written[i] - changes[i] for i in written]
        return ChangeTimes(calendars, pushes, samples, push_times, change_times,
                           len(changes) - len(written), catch_up, burst_took)  # fmt: skip


async def _burst(r: Rig, pushes: int, sampled: list[int], tokens: dict[int, str],
                 burst_s: float) -> dict[int, float]:  # fmt: skip
    """Route `pushes` at an even pace over `burst_s`, the sampled changes spread among them;
    calendar -> when its change was made."""
    targets = burst_targets(len(r.feed.calendars), pushes)
    change_at = {round(pushes * (k + 0.5) / len(sampled)): i for k, i in enumerate(sampled)}
    changes: dict[int, float] = {}
    inserts: set[asyncio.Task[Any]] = set()
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 30 * 86400))
    event = {"start": {"dateTime": f"{day}T10:00:00Z"}, "end": {"dateTime": f"{day}T18:00:00Z"}}
    start = time.perf_counter()
    for n, i in enumerate(targets):
        delay = start + burst_s * n / pushes - time.perf_counter()
        if delay > 0.002:
            await asyncio.sleep(delay)
        r.router.route(push_record(i, time.time()))
        if (j := change_at.get(n)) is not None:
            changes[j] = time.time()
            inserts.add(asyncio.create_task(r.http.post(
                f"{r.url}/calendar/v3/calendars/primary/events", json=event,
                headers={"Authorization": f"Bearer {tokens[j]}"})))  # fmt: skip
    for answer in await asyncio.gather(*inserts):
        answer.raise_for_status()
    return changes


def _written_after(
    r: Rig, changes: dict[int, float], found: dict[int, float] | None = None, start: int = 0
) -> dict[int, float]:
    """Calendar -> when the first round with busy records after its change was written (the
    calendars are otherwise empty, so that round is the one carrying the change). With
    `found` and `start`, only the writes from `start` on are read (the bench's own scan
    must not cost the feed it measures: a full scan per wake took 40 % of the loop)."""
    keys = {r.feed.channel_index[channel(i)]: i for i in changes}
    out: dict[int, float] = found if found is not None else {}
    for w in r.writer.writes[start:]:
        i = keys.get(w.key)
        if i is not None and i not in out and w.records and w.at_s >= changes[i]:
            out[i] = w.at_s
    return out
