"""connectors.calendar.graph.fetch_wire and channel_wire: pure mapping of Graph delta answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from connectors.calendar.feed_errors import (
    CalendarGone,
    FetchFailed,
    FullResyncRequired,
    ReauthRequired,
    Throttled,
)
from connectors.calendar.graph import channel_wire, fetch_wire
from streams.logic.calendar.rounds import CalendarRef

CAL = CalendarRef("graph", "int-9", "sup-1", "primary", time_zone="Europe/London")
WINDOW = (
    int(datetime(2027, 1, 1, tzinfo=UTC).timestamp() * 1000),
    int(datetime(2028, 1, 1, tzinfo=UTC).timestamp() * 1000),
)


def ms(*args: int, zone: str = "UTC") -> int:
    return int(datetime(*args, tzinfo=ZoneInfo(zone)).timestamp() * 1000)  # type: ignore[arg-type,misc]


def item(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "AAMkAGevent1",
        "iCalUId": "040000008200E00074C5B7101A82E008abc",
        "subject": "Dentist",
        "bodyPreview": "private",
        "location": {"displayName": "Harley St"},
        "attendees": [{"emailAddress": {"address": "a@example.com"}}],
        "transactionId": "wedsync-123",
        "showAs": "busy",
        "isAllDay": False,
        "isCancelled": False,
        "type": "singleInstance",
        "start": {"dateTime": "2027-06-12T14:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2027-06-12T15:30:00.0000000", "timeZone": "UTC"},
        "lastModifiedDateTime": "2027-05-01T10:00:00.1234567Z",
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
    }
    return {**base, **overrides}


def seen(raw: dict[str, Any], *, full: bool = True) -> Any:
    result = fetch_wire.observe(raw, CAL, WINDOW, full=full)
    assert result is not None
    return result[1]


# ---- requests -------------------------------------------------------------------------------
def test_primary_calendar_reads_the_mailbox_calendar_view() -> None:
    request = fetch_wire.first_request(CAL, WINDOW, page_size=50)
    assert request.path == "/v1.0/me/calendarView/delta"
    assert request.params == {
        "startDateTime": "2027-01-01T00:00:00Z",
        "endDateTime": "2028-01-01T00:00:00Z",
    }
    assert request.headers["Prefer"] == 'odata.maxpagesize=50, outlook.timezone="UTC"'


def test_other_calendar_reads_its_own_calendar_view() -> None:
    other = CalendarRef("graph", "int-9", "sup-1", "AAMk/cal=")
    assert fetch_wire.first_request(other, WINDOW).path == (
        "/v1.0/me/calendars/AAMk%2Fcal%3D/calendarView/delta"
    )


# ---- pages ----------------------------------------------------------------------------------
def test_page_with_next_link_has_no_delta_link() -> None:
    page = fetch_wire.parse_page({"value": [item()], "@odata.nextLink": "https://g/next"})
    assert (len(page.items), page.next_link, page.delta_link) == (1, "https://g/next", None)


def test_last_page_carries_the_delta_link() -> None:
    page = fetch_wire.parse_page({"value": [], "@odata.deltaLink": "https://g/delta"})
    assert (page.next_link, page.delta_link) == (None, "https://g/delta")


def test_answer_without_value_is_not_a_page() -> None:
    with pytest.raises(ValueError):
        fetch_wire.parse_page({"error": {"code": "x"}})


# ---- busy classes ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("show_as", "busy"),
    [
        ("busy", "busy"),
        ("oof", "busy"),
        ("workingElsewhere", "busy"),
        ("tentative", "tentative"),
        ("free", "free"),
        ("unknown", "free"),
    ],
)
def test_show_as_gives_the_busy_class(show_as: str, busy: str) -> None:
    assert seen(item(showAs=show_as)).busy == busy


def test_declined_invitation_is_free() -> None:
    assert seen(item(responseStatus={"response": "declined"})).busy == "free"


def test_cancelled_event_is_free() -> None:
    assert seen(item(isCancelled=True)).busy == "free"


def test_timed_event_keeps_its_utc_times_and_ids() -> None:
    observed = seen(item())
    assert (observed.start_ms, observed.end_ms) == (ms(2027, 6, 12, 14), ms(2027, 6, 12, 15, 30))
    assert observed.ical_uid == "040000008200E00074C5B7101A82E008abc"
    assert observed.updated_ms == ms(2027, 5, 1, 10) + 123
    assert observed.all_day is False and observed.ours is None and observed.instance == ""


def test_nothing_private_reaches_the_observation() -> None:
    text = repr(seen(item()))
    for private in ("Dentist", "private", "Harley", "example.com", "wedsync-123"):
        assert private not in text


# ---- all-day --------------------------------------------------------------------------------
def test_all_day_event_is_placed_at_midnight_of_its_original_windows_zone() -> None:
    observed = seen(
        item(
            isAllDay=True,
            originalStartTimeZone="Pacific Standard Time",
            start={"dateTime": "2027-06-12T00:00:00.0000000", "timeZone": "UTC"},
            end={"dateTime": "2027-06-13T00:00:00.0000000", "timeZone": "UTC"},
        )
    )
    assert observed.all_day is True
    assert observed.start_ms == ms(2027, 6, 12, zone="America/Los_Angeles")
    assert observed.end_ms == ms(2027, 6, 13, zone="America/Los_Angeles")


def test_all_day_event_with_unknown_zone_uses_the_calendar_zone() -> None:
    observed = seen(
        item(
            isAllDay=True,
            originalStartTimeZone="tzone://Microsoft/Custom",
            start={"dateTime": "2027-06-12T00:00:00.0000000", "timeZone": "UTC"},
            end={"dateTime": "2027-06-14T00:00:00.0000000", "timeZone": "UTC"},
        )
    )
    assert (observed.start_ms, observed.end_ms) == (
        ms(2027, 6, 12, zone="Europe/London"),
        ms(2027, 6, 14, zone="Europe/London"),
    )


def test_all_day_event_with_iana_original_zone_uses_it() -> None:
    observed = seen(
        item(
            isAllDay=True,
            originalStartTimeZone="Asia/Tokyo",
            start={"dateTime": "2027-06-12T00:00:00.0000000", "timeZone": "UTC"},
            end={"dateTime": "2027-06-13T00:00:00.0000000", "timeZone": "UTC"},
        )
    )
    assert observed.start_ms == ms(2027, 6, 12, zone="Asia/Tokyo")


# ---- removals and the window ----------------------------------------------------------------
def test_removed_item_is_a_deletion_even_outside_the_window() -> None:
    assert fetch_wire.observe(
        {"id": "AAMkAGgone", "@removed": {"reason": "deleted"}}, CAL, WINDOW, full=False
    ) == ("AAMkAGgone", None)


def test_item_outside_the_window_is_dropped_on_a_full_sync() -> None:
    late = item(
        start={"dateTime": "2029-01-01T10:00:00", "timeZone": "UTC"},
        end={"dateTime": "2029-01-01T11:00:00", "timeZone": "UTC"},
    )
    assert fetch_wire.observe(late, CAL, WINDOW, full=True) is None


def test_item_moved_out_of_the_window_is_a_deletion_incrementally() -> None:
    late = item(
        start={"dateTime": "2029-01-01T10:00:00", "timeZone": "UTC"},
        end={"dateTime": "2029-01-01T11:00:00", "timeZone": "UTC"},
    )
    assert fetch_wire.observe(late, CAL, WINDOW, full=False) == ("AAMkAGevent1", None)


def test_item_ending_at_the_window_start_is_outside() -> None:
    edge = item(
        start={"dateTime": "2026-12-31T23:00:00", "timeZone": "UTC"},
        end={"dateTime": "2027-01-01T00:00:00", "timeZone": "UTC"},
    )
    assert fetch_wire.observe(edge, CAL, WINDOW, full=True) is None


def test_unreadable_times_raise() -> None:
    with pytest.raises(ValueError):
        fetch_wire.observe(item(start={"timeZone": "UTC"}), CAL, WINDOW, full=True)


# ---- errors (Graph's documented bodies) -----------------------------------------------------
def body(code: str, message: str = "m") -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "innerError": {"request-id": "r"}}}


def test_gone_means_full_resync() -> None:
    assert isinstance(fetch_wire.classify_error(410, body("resyncRequired")), FullResyncRequired)


@pytest.mark.parametrize("status", [400, 404])
def test_sync_state_not_found_means_full_resync(status: int) -> None:
    error = fetch_wire.classify_error(status, body("syncStateNotFound"))
    assert isinstance(error, FullResyncRequired)


def test_resync_required_code_means_full_resync() -> None:
    assert isinstance(fetch_wire.classify_error(400, body("resyncRequired")), FullResyncRequired)


def test_refused_token_means_reauth() -> None:
    error = fetch_wire.classify_error(401, body("InvalidAuthenticationToken"))
    assert isinstance(error, ReauthRequired)


def test_missing_calendar_is_gone() -> None:
    assert isinstance(fetch_wire.classify_error(404, body("ErrorItemNotFound")), CalendarGone)


def test_access_denied_to_the_calendar_is_gone() -> None:
    assert isinstance(fetch_wire.classify_error(403, body("ErrorAccessDenied")), CalendarGone)


def test_throttled_carries_retry_after() -> None:
    error = fetch_wire.classify_error(429, body("ApplicationThrottled"), "7")
    assert isinstance(error, Throttled) and error.retry_after_s == 7.0


@pytest.mark.parametrize("status", [503, 504])
def test_unavailable_without_retry_after_waits_the_default(status: int) -> None:
    error = fetch_wire.classify_error(status, body("ServiceUnavailable"))
    assert isinstance(error, Throttled)
    assert error.retry_after_s == fetch_wire.DEFAULT_RETRY_AFTER_S


def test_other_server_error_is_a_transient_failure() -> None:
    error = fetch_wire.classify_error(500, body("generalException"))
    assert isinstance(error, FetchFailed) and not isinstance(error, Throttled)


# ---- subscriptions --------------------------------------------------------------------------
NOW = ms(2027, 6, 1)


def test_subscription_on_primary_watches_the_mailbox_events() -> None:
    request = channel_wire.create_request(CAL, "https://h/n", "https://h/l", "v1.mac", NOW)
    assert request.json is not None
    assert request.json["resource"] == "/me/events"
    assert request.json["lifecycleNotificationUrl"] == "https://h/l"
    assert request.json["changeType"] == "created,updated,deleted"
    assert request.json["expirationDateTime"] == "2027-06-07T22:40:00.000Z"  # + 10,000 min


def test_subscription_on_another_calendar_watches_its_events() -> None:
    other = CalendarRef("graph", "int-9", "sup-1", "AAMkcal")
    request = channel_wire.create_request(other, "https://h/n", "https://h/l", "s", NOW)
    assert request.json is not None and request.json["resource"] == "/me/calendars/AAMkcal/events"


def test_client_state_over_128_chars_is_refused_before_graph() -> None:
    with pytest.raises(ValueError):
        channel_wire.create_request(CAL, "https://h/n", "https://h/l", "x" * 129, NOW)


def test_renew_patches_only_the_expiry() -> None:
    request = channel_wire.renew_request("sub/1", NOW)
    assert (request.method, request.path) == ("PATCH", "/v1.0/subscriptions/sub%2F1")
    assert request.json == {"expirationDateTime": "2027-06-07T22:40:00.000Z"}


def test_subscription_answer_is_parsed() -> None:
    sub = channel_wire.parse_subscription(
        {
            "id": "s1",
            "resource": "/me/events",
            "clientState": "c",
            "expirationDateTime": "2027-06-07T22:40:00.000Z",
        }
    )
    assert sub == channel_wire.Subscription("s1", "/me/events", ms(2027, 6, 7, 22, 40), "c")
