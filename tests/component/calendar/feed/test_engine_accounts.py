"""The feed runs at most `per_account` rounds at once for one account (a Graph mailbox
allows 4 concurrent requests; a vendor with many calendars must not take them all)."""

from __future__ import annotations

import asyncio

from connectors.calendar.feed.connected import Connected
from connectors.calendar.feed.engine import CalendarFeed, FeedConfig
from streams.logic.calendar.rounds import CalendarRef, FetchRound


class Writer:
    async def write(self, records, events, state, key):  # type: ignore[no-untyped-def]
        return None


async def test_one_account_gets_at_most_two_rounds_at_once() -> None:
    running, most = 0, 0
    gate = asyncio.Event()

    async def fetch(calendar: CalendarRef, cursor, window, reason) -> FetchRound:  # type: ignore[no-untyped-def]
        nonlocal running, most
        running += 1
        most = max(most, running)
        await gate.wait()
        running -= 1
        return FetchRound(calendar, (), "c", cursor is None)

    feed = CalendarFeed(fetch, Writer(), config=FeedConfig(concurrency=8, per_account=2))
    calendars = {
        c.key: Connected(c, None)
        for c in (CalendarRef("graph", "mailbox-1", "s", f"cal-{n}") for n in range(5))
    }
    await feed.connect(calendars)
    feed.tick()
    feed.tick()
    await asyncio.sleep(0)
    assert (most, len(feed.tasks)) == (2, 2)
    gate.set()
    await feed.idle()
