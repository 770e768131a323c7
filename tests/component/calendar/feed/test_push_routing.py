"""A verified push on a channel the feed does not know (replaced, or left by a crash between
a create and its record) still fetches every calendar of the verified account, and only
those: the feed's per-account index follows connects and disconnects."""

from __future__ import annotations

from connectors.calendar.feed.connected import Connected
from connectors.calendar.feed.engine import CalendarFeed
from connectors.calendar.feed.pushes import PushRouter
from streams.logic.calendar.rounds import CalendarRef, FetchRound


class Writer:
    async def write(self, records, events, state, key):  # type: ignore[no-untyped-def]
        return None


async def fetch(calendar: CalendarRef, cursor, window, reason) -> FetchRound:  # type: ignore[no-untyped-def]
    return FetchRound(calendar, (), "c", cursor is None)


WORK = CalendarRef("google", "acct-1", "s-1", "work@example.com")
HOME = CalendarRef("google", "acct-1", "s-1", "home@example.com")
OTHER = CalendarRef("google", "acct-2", "s-2", "primary")
MAILBOX = CalendarRef("graph", "acct-1", "s-1", "primary")  # same id, another provider


def connected(*calendars: CalendarRef) -> dict[str, Connected]:
    return {c.key: Connected(c, None) for c in calendars}


def google_push(channel: str, integration: str) -> dict:
    headers = {
        "x-goog-channel-id": channel,
        "x-goog-resource-state": "exists",
        "x-wedsync-integration-id": integration,
    }
    return {"verification": "google_channel", "headers": headers}


async def test_an_unknown_channel_fetches_every_calendar_of_its_account_only() -> None:
    feed = CalendarFeed(fetch, Writer())
    await feed.connect(connected(WORK, HOME, OTHER, MAILBOX))
    router = PushRouter(feed)
    assert router.route(google_push("gone-channel", "acct-1")) == sorted([WORK.key, HOME.key])


async def test_a_disconnected_calendar_is_no_longer_fetched_for_its_account() -> None:
    feed = CalendarFeed(fetch, Writer())
    await feed.connect(connected(WORK, HOME, OTHER))
    await feed.connect(connected(HOME, OTHER))
    assert PushRouter(feed).route(google_push("gone-channel", "acct-1")) == [HOME.key]


async def test_an_unknown_channel_of_an_account_with_no_calendar_fetches_nothing() -> None:
    feed = CalendarFeed(fetch, Writer())
    await feed.connect(connected(WORK))
    router = PushRouter(feed)
    assert router.route(google_push("gone-channel", "acct-9")) == []
    assert router.unknown == 1
