"""A throttled round runs again once the wait is over, for the reason it was due: a push's
round stays a push's round (its change-to-fetch time counts from the push)."""

from __future__ import annotations

from connectors.calendar.feed.connected import Connected
from connectors.calendar.feed.engine import CalendarFeed
from connectors.calendar.feed_errors import Throttled
from streams.logic.calendar.rounds import CalendarRef, FetchRound, Reason

from tests.component.calendar.feed.support import Clock, MemoryWriter

CAL = CalendarRef("google", "user-1", "s", "primary")


async def test_a_throttled_pushs_round_is_retried_as_a_push() -> None:
    clock, reasons = Clock(), []

    async def fetch(calendar: CalendarRef, cursor: str | None, window: tuple[int, int],
                    reason: Reason) -> FetchRound:  # fmt: skip
        reasons.append(reason)
        if len(reasons) == 2:
            raise Throttled("google.userRateLimitExceeded", 30.0)
        return FetchRound(calendar, (), f"c{len(reasons)}", cursor is None, reason)

    feed = CalendarFeed(fetch, MemoryWriter(), clock=clock.now_s)
    await feed.connect({CAL.key: Connected(CAL, None)})
    feed.tick()
    await feed.idle()
    feed.push(CAL.key)
    clock.ms += 3_000  # past the debounce
    feed.tick()
    await feed.idle()
    clock.ms += 30_000  # past the wait
    feed.tick()
    await feed.idle()
    assert reasons == ["reconcile", "push", "push"]
    assert feed.pushed_at == {}  # the push's time was used by the round that ran
