"""The feed's request limits against the fakes over loopback: many rounds of one Google user
stay within the fake's per-user quota (every page is a request) and every calendar still
converges; a throttled round is put off, honours the provider's wait and completes; a
Graph mailbox never has more than 4 requests in flight.

One hand clock serves the feed's scheduler, the limiter and the fake's quota; the gate's
`sleep` moves it, so a wait for the rate costs no real time."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from connectors.calendar.feed.engine import CalendarFeed, FeedConfig
from connectors.calendar.feed.gate import RequestGate
from connectors.calendar.feed.providers import ProviderFetchers
from connectors.calendar.feed_errors import Throttled
from connectors.calendar.google import fetch_wire as google_wire
from connectors.sinks.credentials import MemoryCredentialStore
from connectors.sinks.outbound import OutboundPolicy, http_client
from streams.dev.fakes.calendar_kit import owner_of
from streams.dev.fakes.google import GoogleCalendarFake
from streams.dev.fakes.graph import GraphFake
from streams.dev.fakes.kit import Switches
from streams.dev.fakes.quota import UserQuota
from streams.logic.calendar.limits import GOOGLE_PROJECT, GOOGLE_USER, FeedRates, Limit, Limiter
from streams.logic.calendar.rounds import CalendarRef

from tests.component.calendar.feed.support import (
    GOOGLE_INTEGRATION,
    GOOGLE_REFRESH,
    GRAPH_INTEGRATION,
    GRAPH_REFRESH,
    Clock,
    Gateway,
    MemoryWriter,
    connect,
    fetchers_for,
    make_manager,
    served,
)

GOOGLE_OWNER = owner_of(GOOGLE_REFRESH)
QUOTA = 10  # the fake's requests per user per second
DAY_MS = 86_400_000
WINDOW = (1_796_000_000_000, 1_796_000_000_000 + 548 * DAY_MS)  # from Nov 2026, 18 months
CALENDARS = [
    CalendarRef("google", GOOGLE_INTEGRATION, "supplier-1", f"room-{n}@example.com", "UTC")
    for n in range(6)
]


class HandClock(Clock):
    """The tests' one clock; `sleep` moves it instead of waiting."""

    async def sleep(self, seconds: float) -> None:
        self.ms += math.ceil(seconds * 1000)
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> HandClock:
    return HandClock()


@pytest.fixture
def google(clock: HandClock) -> Iterator[tuple[GoogleCalendarFake, UserQuota]]:
    provider = GoogleCalendarFake(
        Switches(fail_status=500),
        throttle_status=403,
        client_id="google-app",
        client_secret="google-SECRET",
    )
    quota = UserQuota(QUOTA, 1.0, clock=clock.now_s).install(provider)
    with served(provider):
        yield provider, quota


def google_gate(clock: HandClock, user: Limit) -> RequestGate:
    limiter = Limiter({GOOGLE_USER: user, GOOGLE_PROJECT: Limit(1000.0, 1000)})
    return RequestGate(limiter, clock=clock.now_s, sleep=clock.sleep, max_wait_s=60)


Build = Callable[..., ProviderFetchers]


@pytest.fixture
async def build(
    google: tuple[GoogleCalendarFake, UserQuota], graph: GraphFake
) -> AsyncIterator[Build]:
    """`build(gate, http=None)`: fetchers for both fakes through `gate`, closed at the end."""
    credentials = MemoryCredentialStore(
        {
            ("integration", GOOGLE_INTEGRATION): {"api_key": GOOGLE_REFRESH},
            ("integration", GRAPH_INTEGRATION): {"api_key": GRAPH_REFRESH},
        }
    )
    made: list[ProviderFetchers] = []

    def one(gate: RequestGate, http: httpx.AsyncClient | None = None) -> ProviderFetchers:
        made.append(fetchers_for(google[0], graph, credentials, http=http, gate=gate))
        return made[-1]

    yield one
    for fetchers in made:
        await fetchers.aclose()


@pytest.fixture
def limited(build: Build, clock: HandClock) -> ProviderFetchers:
    """At most 4 + 5/s per user: 9 in any second, under the fake's 10."""
    return build(google_gate(clock, Limit(5.0, 4)))


@pytest.fixture(autouse=True)
def two_events_a_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """A round of nine events follows five pages: five requests."""
    monkeypatch.setattr(google_wire, "PAGE_SIZE", 2)


def google_event(n: int) -> dict[str, Any]:
    day, hour = 1 + n % 28, 8 + n // 28 % 12
    return {
        "summary": "Private",
        "start": {"dateTime": f"2027-06-{day:02d}T{hour:02d}:00:00Z"},
        "end": {"dateTime": f"2027-06-{day:02d}T{hour:02d}:30:00Z"},
    }


async def rounds_until(feed: CalendarFeed, clock: HandClock, done: int) -> None:
    """Tick (moving the clock a second when nothing is due) until `done` rounds were written."""
    for _ in range(2000):
        if feed.rounds >= done:
            return
        if feed.tick() == 0:
            clock.ms += 1000
        await feed.idle()
    raise AssertionError(f"{feed.rounds} rounds written, {done} expected")


def converged(google: GoogleCalendarFake, writer: MemoryWriter) -> bool:
    for calendar in CALENDARS:
        want = {i for (o, c, i) in google.events if (o, c) == (GOOGLE_OWNER, calendar.calendar_id)}
        if set(writer.states[calendar.key].known.intervals) != want:
            return False
    return True


async def connect_seeded(feed: CalendarFeed, google: GoogleCalendarFake) -> None:
    """Nine events in each of the six calendars, which the feed is then given."""
    for calendar in CALENDARS:
        for n in range(9):
            google.vendor_upsert(GOOGLE_OWNER, calendar.calendar_id, google_event(n))
    await connect(feed, *CALENDARS)


async def many_rounds(
    fetchers: ProviderFetchers, google: GoogleCalendarFake, clock: HandClock
) -> MemoryWriter:
    """Six calendars of one user: nine events each read in full, then five waves of a change
    to every calendar and a push for each."""
    writer = MemoryWriter()
    feed = CalendarFeed(fetchers.fetch, writer, clock=clock.now_s,
                        config=FeedConfig(concurrency=8, per_account=3))  # fmt: skip
    await connect_seeded(feed, google)
    await rounds_until(feed, clock, len(CALENDARS))
    for wave in range(5):
        for calendar in CALENDARS:
            google.vendor_upsert(GOOGLE_OWNER, calendar.calendar_id, google_event(20 + wave))
            feed.push(calendar.key)
        await rounds_until(feed, clock, len(CALENDARS) * (wave + 2))
    return writer


async def test_a_users_rounds_stay_within_its_quota_and_all_converge(
    limited: ProviderFetchers, google: tuple[GoogleCalendarFake, UserQuota], clock: HandClock
) -> None:
    fake, quota = google
    writer = await many_rounds(limited, fake, clock)
    assert quota.refused == 0
    assert quota.admitted == 6 * 5 + 5 * 6  # every page counted: 5 a full round, 1 a change
    assert limited.gate.waits > 0  # the limiter did hold requests back
    assert converged(fake, writer)


async def test_without_the_limits_the_same_rounds_are_refused(
    build: Build, google: tuple[GoogleCalendarFake, UserQuota], clock: HandClock
) -> None:
    """The quota bites: the limits are what keeps the first test under it."""
    fake, quota = google
    unlimited = build(google_gate(clock, Limit(1000.0, 1000)))
    feed = CalendarFeed(unlimited.fetch, MemoryWriter(), clock=clock.now_s,
                        config=FeedConfig(concurrency=8, per_account=3))  # fmt: skip
    await connect_seeded(feed, fake)
    feed.tick()
    await feed.idle()
    assert quota.refused > 0  # 403 userRateLimitExceeded
    assert feed.rounds < 3


async def test_a_throttled_round_waits_out_the_backoff_then_completes(
    limited: ProviderFetchers, google: tuple[GoogleCalendarFake, UserQuota], clock: HandClock
) -> None:
    fake, _ = google
    writer = MemoryWriter()
    feed = CalendarFeed(limited.fetch, writer, clock=clock.now_s)
    first = CALENDARS[0]
    fake.vendor_upsert(GOOGLE_OWNER, first.calendar_id, google_event(1))
    fake.switches.throttle_next = 1  # 403 rateLimitExceeded, no Retry-After
    await connect(feed, first)
    feed.tick()
    await feed.idle()
    assert feed.rounds == 0
    slot_wait = limited.gate.limiter.blocked_for([(GOOGLE_USER, GOOGLE_INTEGRATION)], clock.now_s())
    assert slot_wait == pytest.approx(30.0)  # Google's default wait: the user is held back
    clock.ms += 29_000
    assert feed.tick() == 0  # not before the wait is over
    clock.ms += 1_000
    assert feed.tick() == 1
    await feed.idle()
    assert feed.rounds == 1
    assert set(writer.states[first.key].known.intervals) == {
        i for (o, c, i) in fake.events if c == first.calendar_id
    }


async def test_a_held_back_user_sends_nothing_for_its_other_calendars(
    limited: ProviderFetchers, google: tuple[GoogleCalendarFake, UserQuota], clock: HandClock
) -> None:
    _, quota = google
    feed = CalendarFeed(limited.fetch, MemoryWriter(), clock=clock.now_s)
    refused = Throttled("google.userRateLimitExceeded", 120.0)
    limited.gate.throttled("google", GOOGLE_INTEGRATION, refused)
    await connect(feed, *CALENDARS[:2])
    feed.tick()
    await feed.idle()
    assert (feed.rounds, quota.admitted) == (0, 0)  # put off by the gate: no request went out
    clock.ms += 120_000
    await rounds_until(feed, clock, 2)
    assert quota.admitted == 2


async def test_a_graph_retry_after_holds_the_mailbox_that_long(
    build: Build, graph: GraphFake, clock: HandClock
) -> None:
    gate = RequestGate(Limiter(FeedRates().limits()), clock=clock.now_s, sleep=clock.sleep)
    fetchers = build(gate)
    feed = CalendarFeed(fetchers.fetch, MemoryWriter(), clock=clock.now_s)
    graph.switches.retry_after_s = 45
    graph.switches.throttle_next = 1  # 429 ApplicationThrottled, Retry-After: 45
    calendar = CalendarRef("graph", GRAPH_INTEGRATION, "supplier-2", "primary")
    await connect(feed, calendar)
    feed.tick()
    await feed.idle()
    held = gate.limiter.blocked_for([("graph_mailbox", GRAPH_INTEGRATION)], clock.now_s())
    assert (feed.rounds, held) == (0, pytest.approx(45.0))
    clock.ms += 45_000
    await rounds_until(feed, clock, 1)


async def test_a_graph_mailbox_never_has_more_than_four_requests_in_flight(
    build: Build, graph: GraphFake
) -> None:
    gate = RequestGate(Limiter(FeedRates().limits()))  # real time: the fake is slow
    fetchers = build(gate)
    feed = CalendarFeed(fetchers.fetch, MemoryWriter(),
                        config=FeedConfig(concurrency=8, per_account=8))  # fmt: skip
    graph.switches.latency_ms = 100
    calendars = [CalendarRef("graph", GRAPH_INTEGRATION, "s", f"cal-{n}") for n in range(8)]
    await connect(feed, *calendars)
    assert feed.tick() == 8
    await feed.idle()
    assert (feed.rounds, graph.counters["concurrency_rejections"]) == (8, 0)
    assert gate.waits > 0


async def test_the_gate_works_over_the_products_outbound_client(
    build: Build, google: tuple[GoogleCalendarFake, UserQuota], clock: HandClock
) -> None:
    """The product's client answers whole bodies (aiohttp underneath): a gated round reads
    every page of them."""
    fake, quota = google
    http = http_client(OutboundPolicy.loopback_for_tests(fake.base_url))  # type: ignore[attr-defined]
    fetchers = build(google_gate(clock, Limit(5.0, 4)), http)
    for n in range(9):
        fake.vendor_upsert(GOOGLE_OWNER, CALENDARS[0].calendar_id, google_event(n))
    got = await fetchers.fetch(CALENDARS[0], None, WINDOW, "reconcile")
    assert (len(got.changes), quota.admitted, quota.refused) == (9, 5, 0)


async def test_a_throttled_channel_call_holds_the_user_back(
    limited: ProviderFetchers,
    google: tuple[GoogleCalendarFake, UserQuota],
    clock: HandClock,
    gateway: Gateway,
) -> None:
    fake, _ = google
    feed = CalendarFeed(limited.fetch, MemoryWriter(), clock=clock.now_s)
    manager = make_manager(feed, limited, gateway, clock)
    await connect(feed, CALENDARS[0])
    fake.switches.throttle_next = 1  # events.watch answered 403 rateLimitExceeded
    await manager.maintain()
    user = [(GOOGLE_USER, GOOGLE_INTEGRATION)]
    assert limited.gate.limiter.blocked_for(user, clock.now_s()) == pytest.approx(30.0)
    assert manager.failures == 1
