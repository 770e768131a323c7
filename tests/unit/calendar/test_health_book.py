"""The SLA agent's view of calendar health (streams/logic/calendar/health_book.py), fed the
sync states the feed writes (`CalendarSync.to_bytes`)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from connectors.calendar.feed.sync_state import CalendarSync
from streams.logic.calendar.differ import Known
from streams.logic.calendar.health_book import HealthBook, overall, parse
from streams.logic.calendar.schedule import Intervals

KEY = "google:int-1:primary"
CALDAV = "caldav:int-2:https://dav.example/cal/"
MIN = 60_000
T0 = 1_700_000_000_000


def state(key: str = KEY, **fields: Any) -> bytes:
    fields.setdefault("last_success_ms", T0)
    fields.setdefault("interval_ms", 15 * MIN)
    fields.setdefault("status", "polling_only")
    fields.setdefault("status_since_ms", T0)
    return CalendarSync(key, added_ms=T0, **fields).to_bytes()


def channel(expires_at_ms: int, channel_state: str = "active") -> dict[str, Any]:
    return {"channel_id": "ch-1", "calendar_key": KEY, "provider": "google",
            "resource_id": "r-1", "expires_at_ms": expires_at_ms, "created_at_ms": T0,
            "state": channel_state}  # fmt: skip


def book_with(raw: bytes, key: str = KEY) -> HealthBook:
    book = HealthBook()
    book.apply(key, raw)
    return book


def test_a_recent_success_without_push_is_polling_only() -> None:
    out = book_with(state()).evaluate(T0 + MIN)
    assert [(h.key, h.status) for h in out.health] == [(KEY, "polling_only")]


def test_a_live_push_channel_makes_it_healthy() -> None:
    out = book_with(state(channels=[channel(T0 + 24 * 60 * MIN)])).evaluate(T0 + MIN)
    assert out.health[0].status == "healthy"
    assert out.health[0].push_live


def test_an_expired_channel_is_no_live_push() -> None:
    out = book_with(state(channels=[channel(T0 + MIN)])).evaluate(T0 + 2 * MIN)
    assert out.health[0].status == "polling_only"


def test_a_channel_not_active_is_no_live_push() -> None:
    raw = state(channels=[channel(T0 + 60 * MIN, "pending_sync")])
    assert book_with(raw).evaluate(T0 + MIN).health[0].status == "polling_only"


def test_it_turns_stale_by_time_alone_after_twice_its_interval() -> None:
    book = book_with(state(interval_ms=5 * MIN))
    assert book.evaluate(T0 + 10 * MIN).health[0].status == "polling_only"
    out = book.evaluate(T0 + 10 * MIN + 1)  # no new sync state arrived
    assert [(h.status, h.since_ms) for h in out.health] == [("stale", T0 + 10 * MIN + 1)]
    assert [(c.previous, c.status) for c in out.changes] == [("polling_only", "stale")]


def test_a_new_success_brings_a_stale_calendar_back() -> None:
    book = book_with(state(interval_ms=5 * MIN))
    book.evaluate(T0 + 11 * MIN)
    book.apply(KEY, state(interval_ms=5 * MIN, last_success_ms=T0 + 12 * MIN))
    out = book.evaluate(T0 + 12 * MIN)
    assert [(c.previous, c.status) for c in out.changes] == [("stale", "polling_only")]


def test_a_refused_credential_is_reauth_required() -> None:
    book = book_with(state())
    book.evaluate(T0 + MIN)
    book.apply(KEY, state(reauth=True, status="reauth_required", status_since_ms=T0 + 2 * MIN))
    out = book.evaluate(T0 + 3 * MIN)
    assert [(h.status, h.since_ms) for h in out.health] == [("reauth_required", T0 + 2 * MIN)]
    assert [(c.previous, c.status) for c in out.changes] == [("polling_only", "reauth_required")]


def test_a_gone_calendar_is_disabled() -> None:
    out = book_with(state(gone=True, reauth=True)).evaluate(T0 + MIN)
    assert out.health[0].status == "disabled"


def test_a_tombstone_removes_the_calendar() -> None:
    book = book_with(state())
    book.evaluate(T0 + MIN)
    book.apply(KEY, None)
    out = book.evaluate(T0 + 2 * MIN)
    assert (out.removed, out.health, book.counts()) == ([KEY], [], {})
    assert book.evaluate(T0 + 3 * MIN).removed == []  # told once


def test_a_tombstone_of_a_calendar_never_evaluated_removes_nothing_to_tell() -> None:
    book = book_with(state())
    book.apply(KEY, None)
    assert book.evaluate(T0 + MIN).removed == []


def test_changes_are_told_only_when_the_status_changes() -> None:
    book = book_with(state(interval_ms=5 * MIN))
    book.evaluate(T0 + MIN)
    assert book.evaluate(T0 + 2 * MIN).changes == []
    assert len(book.evaluate(T0 + 11 * MIN).changes) == 1
    assert book.evaluate(T0 + 12 * MIN).changes == []


def test_the_first_sight_agreeing_with_the_feed_tells_no_change_and_keeps_its_since() -> None:
    out = book_with(state(status_since_ms=T0 - 5 * MIN)).evaluate(T0 + MIN)
    assert out.changes == []
    assert out.health[0].since_ms == T0 - 5 * MIN


def test_the_first_sight_disagreeing_with_the_feed_tells_the_change() -> None:
    out = book_with(state(interval_ms=MIN)).evaluate(T0 + 3 * MIN)  # its feed stopped
    assert [(c.previous, c.status) for c in out.changes] == [("polling_only", "stale")]


def test_an_unchanged_calendar_writes_no_new_health_record() -> None:
    book = book_with(state())
    assert len(book.evaluate(T0 + MIN).health) == 1
    assert book.evaluate(T0 + 2 * MIN).health == []


def test_a_new_success_with_the_same_status_writes_a_new_health_record() -> None:
    book = book_with(state())
    book.evaluate(T0 + MIN)
    book.apply(KEY, state(last_success_ms=T0 + 2 * MIN))
    out = book.evaluate(T0 + 3 * MIN)
    assert [h.last_success_ms for h in out.health] == [T0 + 2 * MIN]
    assert out.changes == []


def test_a_state_without_interval_gets_the_feeds_default_interval() -> None:
    body = json.loads(state())
    del body["interval_ms"]
    seen = parse(json.dumps(body).encode())
    assert seen.interval(T0) == Intervals().poll_ms
    live = parse(state(interval_ms=None, channels=[channel(T0 + 60 * MIN)]))
    assert live.interval(T0) == Intervals().reconcile_ms


def test_a_caldav_calendar_without_interval_gets_the_poll_interval() -> None:
    assert parse(state(CALDAV, interval_ms=None)).interval(T0) == Intervals().poll_ms


def test_the_busy_map_is_not_kept() -> None:
    known = Known.from_json({"intervals": {"ev-1": {"": "iid-1"}}})
    seen = parse(state(known=known))
    assert not hasattr(seen, "known") and not hasattr(seen, "__dict__")


def test_a_record_that_is_not_a_sync_state_is_refused() -> None:
    with pytest.raises(ValueError):
        HealthBook().apply(KEY, b'{"cursor": "x"}')


def test_counts_are_per_provider_and_status() -> None:
    book = book_with(state())
    book.apply(CALDAV, state(CALDAV, gone=True))
    book.evaluate(T0 + MIN)
    assert book.counts() == {("google", "polling_only"): 1, ("caldav", "disabled"): 1}


@pytest.mark.parametrize(
    ("provider", "status", "expected"),
    [("caldav", "polling_only", "healthy"), ("google", "polling_only", "degraded"),
     ("graph", "healthy", "healthy"), ("google", "stale", "failing"),
     ("caldav", "reauth_required", "failing"), ("graph", "disabled", "failing")],
)  # fmt: skip
def test_overall_state_of_a_status(provider: str, status: Any, expected: str) -> None:
    assert overall(provider, status) == expected
