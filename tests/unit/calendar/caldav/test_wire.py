"""CalDAV wire: URLs, the VEVENT, headers and answer classification. No I/O."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from connectors.calendar.caldav import wire
from connectors.sinks.answer import Verdict
from icalendar import Calendar

HOME = "https://caldav.example.com/123456/calendars/"

# 2026-06-12 14:00 Europe/London (BST, UTC+1) = 13:00 UTC; ends 22:00 local
START_MS = 1781269200000
END_MS = 1781301600000


def record(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "delivery_id": "dlv-1",
        "integration_id": "int-1",
        "provider": "caldav",
        "calendar_id": "weddings",
        "operation": "upsert",
        "external_event_id": "0a1b2c3d4e5f",
        "title": "Wedding: Ann & Bea",
        "description": "Ceremony at two",
        "location": "Old Hall",
        "starts_at_ms": START_MS,
        "ends_at_ms": END_MS,
        "time_zone": "Europe/London",
        "all_day": False,
        "aggregate_version": 9_000_000_000_123,
        "source_ts_ms": 1770000000000,
    }
    return {**base, **overrides}


def vevent(ics: bytes) -> Any:
    [event] = Calendar.from_ical(ics).walk("VEVENT")
    return event


# ---- classification: every answer PROVIDERS.md lists, verdicts written out ----------------
@pytest.mark.parametrize(
    ("status", "operation", "retry_after", "verdict", "error_class"),
    [
        (201, "upsert", None, Verdict.OK, None),
        (204, "upsert", None, Verdict.OK, None),
        (200, "delete", None, Verdict.OK, None),
        (204, "delete", None, Verdict.OK, None),
        (404, "delete", None, Verdict.OK, None),
        (410, "delete", None, Verdict.OK, None),
        (401, "upsert", None, Verdict.REAUTH, "caldav.401"),
        (401, "delete", None, Verdict.REAUTH, "caldav.401"),
        (403, "upsert", None, Verdict.FATAL, "caldav.403"),
        (409, "upsert", None, Verdict.FATAL, "caldav.409"),
        (404, "upsert", None, Verdict.FATAL, "caldav.404"),
        (412, "upsert", None, Verdict.RETRY, "caldav.412"),
        (412, "delete", None, Verdict.RETRY, "caldav.412"),
        (500, "upsert", None, Verdict.RETRY, "caldav.500"),
        (502, "upsert", None, Verdict.RETRY, "caldav.502"),
        (503, "upsert", None, Verdict.RETRY, "caldav.503"),
        (504, "delete", None, Verdict.RETRY, "caldav.504"),
        (507, "upsert", None, Verdict.RETRY, "caldav.507"),
        (429, "upsert", "30", Verdict.BACKPRESSURE, "caldav.429"),
        (429, "upsert", None, Verdict.BACKPRESSURE, "caldav.429"),
        (503, "upsert", "12", Verdict.BACKPRESSURE, "caldav.503"),
        (400, "upsert", None, Verdict.FATAL, "caldav.400"),
        (415, "upsert", None, Verdict.FATAL, "caldav.415"),
        (301, "upsert", None, Verdict.FATAL, "caldav.301"),
    ],
)
def test_classify(
    status: int, operation: str, retry_after: str | None, verdict: Verdict, error_class: str | None
) -> None:
    answer = wire.classify(status, operation=operation, retry_after=retry_after)
    assert answer.verdict is verdict
    assert answer.error_class == error_class


def test_backpressure_carries_retry_after_seconds() -> None:
    assert wire.classify(429, operation="upsert", retry_after="30").retry_after == 30.0


def test_no_uid_conflict_body_is_fatal_with_its_own_class() -> None:
    body = (
        '<error xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><C:no-uid-conflict/></error>'
    )
    answer = wire.classify(409, operation="upsert", body=body)
    assert answer.verdict is Verdict.FATAL
    assert answer.error_class == "caldav.no_uid_conflict"


# ---- URLs ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("calendar_id", "expected"),
    [
        ("primary", HOME),
        ("", HOME),
        ("weddings", HOME + "weddings/"),
        ("weddings/", HOME + "weddings/"),
        ("/123456/calendars/work/", HOME + "work/"),
        ("https://caldav.example.com/123456/calendars/home", HOME + "home/"),
        ("my cal", HOME + "my%20cal/"),
    ],
)
def test_collection_url(calendar_id: str, expected: str) -> None:
    assert wire.collection_url(HOME, calendar_id) == expected


def test_home_without_trailing_slash() -> None:
    assert wire.collection_url(HOME.rstrip("/"), "x") == HOME + "x/"


@pytest.mark.parametrize(
    "calendar_id",
    [
        "https://evil.example/123456/calendars/x/",
        "http://caldav.example.com/123456/calendars/x/",
        "/other-user/calendars/x/",
        "../../other/",
        "https://caldav.example.com/123456/calendars/../../x/",
    ],
)
def test_collection_outside_the_home_is_refused(calendar_id: str) -> None:
    with pytest.raises(wire.CollectionRefused):
        wire.collection_url(HOME, calendar_id)


def test_home_must_be_http() -> None:
    with pytest.raises(wire.CollectionRefused):
        wire.collection_url("ftp://x.example/cal/", "primary")


def test_event_url_quotes_the_uid() -> None:
    assert wire.event_url(HOME + "w/", "a/b c") == HOME + "w/a%2Fb%20c.ics"


def test_home_url_prefers_the_webhook_url_then_settings_then_default() -> None:
    assert wire.home_url("https://a.example/", {"caldav_url": "https://b.example/"}, None) == (
        "https://a.example/"
    )
    assert wire.home_url(None, {"caldav_url": "https://b.example/"}, "https://c.example/") == (
        "https://b.example/"
    )
    assert wire.home_url(None, '{"caldav_url": "https://j.example/"}', None) == "https://j.example/"
    assert wire.home_url("", {}, "https://c.example/") == "https://c.example/"
    assert wire.home_url(None, None, None) is None


def test_username_from_settings() -> None:
    assert wire.username({"username": "vendor@icloud.example"}) == "vendor@icloud.example"
    assert wire.username('{"username": "u"}') == "u"
    assert wire.username({}) is None


# ---- the VEVENT -----------------------------------------------------------------------------
def test_timed_event_is_in_the_records_zone() -> None:
    ev = vevent(wire.build_event(record()))
    start, end = ev.decoded("dtstart"), ev.decoded("dtend")
    assert start == datetime(2026, 6, 12, 14, 0, tzinfo=ZoneInfo("Europe/London"))
    assert end == datetime(2026, 6, 12, 23, 0, tzinfo=ZoneInfo("Europe/London"))
    assert ev["dtstart"].params["TZID"] == "Europe/London"


def test_timed_event_ships_its_vtimezone() -> None:
    cal = Calendar.from_ical(wire.build_event(record()))
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/London"]


def test_uid_summary_description_location() -> None:
    ev = vevent(wire.build_event(record()))
    assert str(ev["uid"]) == "0a1b2c3d4e5f"
    assert str(ev["summary"]) == "Wedding: Ann & Bea"
    assert str(ev["description"]) == "Ceremony at two"
    assert str(ev["location"]) == "Old Hall"


def test_optional_fields_absent_when_null() -> None:
    ev = vevent(wire.build_event(record(description=None, location=None)))
    assert "DESCRIPTION" not in ev
    assert "LOCATION" not in ev


def test_all_day_event_uses_dates() -> None:
    # local midnights in Europe/London: 2026-06-12 00:00 BST = 2026-06-11 23:00 UTC
    rec = record(all_day=True, starts_at_ms=1781218800000, ends_at_ms=1781305200000)
    ev = vevent(wire.build_event(rec))
    assert ev.decoded("dtstart") == date(2026, 6, 12)
    assert ev.decoded("dtend") == date(2026, 6, 13)
    assert ev["dtstart"].params.get("VALUE") == "DATE"


def test_all_day_event_with_equal_start_and_end_lasts_one_day() -> None:
    rec = record(all_day=True, starts_at_ms=1781218800000, ends_at_ms=1781218800000)
    ev = vevent(wire.build_event(rec))
    assert (ev.decoded("dtstart"), ev.decoded("dtend")) == (date(2026, 6, 12), date(2026, 6, 13))


def test_dtstamp_is_the_source_time_so_retries_build_the_same_bytes() -> None:
    assert wire.build_event(record()) == wire.build_event(record())
    ev = vevent(wire.build_event(record()))
    assert ev.decoded("dtstamp").timestamp() == 1770000000


def test_sequence_and_version_stamp_round_trip() -> None:
    held = wire.stored(wire.build_event(record(), sequence=4))
    assert held == wire.Stored(sequence=4, version=9_000_000_000_123)


def test_stored_of_foreign_or_broken_content() -> None:
    foreign = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    assert wire.stored(foreign) == wire.Stored(0, None)
    assert wire.stored(b"not ical") == wire.Stored(0, None)


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(wire.EventRefused):
        wire.build_event(record(time_zone="Mars/Olympus_Mons"))


def test_end_before_start_is_refused() -> None:
    with pytest.raises(wire.EventRefused):
        wire.build_event(record(ends_at_ms=START_MS - 1))


# ---- headers ------------------------------------------------------------------------------
def test_create_is_conditional_on_absence() -> None:
    assert wire.create_headers() == {
        "Content-Type": "text/calendar; charset=utf-8",
        "If-None-Match": "*",
    }


def test_update_is_conditional_on_the_etag_read() -> None:
    assert wire.update_headers('"abc"')["If-Match"] == '"abc"'
    assert "If-None-Match" not in wire.update_headers('"abc"')


def test_delete_uses_if_match_only_when_known() -> None:
    assert wire.delete_headers('"e1"') == {"If-Match": '"e1"'}
    assert wire.delete_headers(None) == {}


def wall_clock(**overrides: Any) -> dict[str, Any]:
    """A wedding whose zone routing did not know (the platform stores none)."""
    wall = {
        "starts_at_ms": None,
        "ends_at_ms": None,
        "time_zone": None,
        "local_start": "2027-06-12T14:00:00",
        "local_end": "2027-06-12T22:00:00",
    }
    return record(**{**wall, **overrides})


def test_a_wedding_without_any_zone_is_a_floating_time() -> None:
    ics = wire.build_event(wall_clock())
    assert b"DTSTART:20270612T140000\r\n" in ics and b"DTEND:20270612T220000\r\n" in ics
    assert b"TZID" not in ics


def test_a_wedding_without_its_own_zone_is_read_in_the_fallback_zone() -> None:
    ics = wire.build_event(wall_clock(fallback_time_zone="Europe/Paris"))
    assert b"DTSTART;TZID=Europe/Paris:20270612T140000" in ics


def test_an_all_day_wedding_without_any_zone_is_its_days() -> None:
    ics = wire.build_event(wall_clock(all_day=True, local_start="2027-06-12",
                                      local_end="2027-06-13"))  # fmt: skip
    assert b"DTSTART;VALUE=DATE:20270612" in ics and b"DTEND;VALUE=DATE:20270613" in ics
