"""The feed writes each calendar's fetch interval in its sync state (the SLA agent's staleness
clock: streams/logic/calendar/health_book.py), also when only the interval moved."""

from __future__ import annotations

from typing import Any

from connectors.calendar.feed.connected import Connected
from connectors.calendar.feed.engine import CalendarFeed
from connectors.calendar.feed.sync_state import CalendarSync
from streams.logic.calendar.rounds import CalendarRef, FetchRound

NOW_S = 1_700_000_000.0
CAL = CalendarRef("caldav", "login-1", "sup-1", "https://dav.example/cal/")


class Writer:
    def __init__(self) -> None:
        self.states: list[CalendarSync | None] = []

    async def write(self, records: Any, events: Any, state: CalendarSync | None, key: str) -> None:
        self.states.append(state)


async def no_fetch(*_: Any) -> FetchRound:
    raise AssertionError("no round in these tests")


def feed_with(state: CalendarSync) -> tuple[CalendarFeed, Writer]:
    writer = Writer()
    feed = CalendarFeed(no_fetch, writer, clock=lambda: NOW_S)
    feed.load([state])
    return feed, writer


async def test_a_state_written_before_the_interval_gets_it_with_its_status_unchanged() -> None:
    now = int(NOW_S * 1000)
    old = CalendarSync(CAL.key, last_success_ms=now, status="polling_only", status_since_ms=now)
    feed, writer = feed_with(old)
    await feed.connect({CAL.key: Connected(CAL, now + 3 * 24 * 3600 * 1000)})  # wedding soon
    await feed.check_health()
    [written] = writer.states
    assert written is not None
    assert (written.interval_ms, written.status) == (feed.config.intervals.poll_soon_ms,
                                                     "polling_only")  # fmt: skip


async def test_an_unchanged_interval_and_status_writes_nothing() -> None:
    now = int(NOW_S * 1000)
    state = CalendarSync(CAL.key, last_success_ms=now, status="polling_only",
                         interval_ms=15 * 60 * 1000)  # fmt: skip
    feed, writer = feed_with(state)
    await feed.connect({CAL.key: Connected(CAL, None)})
    await feed.check_health()
    assert writer.states == []
