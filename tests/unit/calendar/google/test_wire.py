"""Google Calendar wire: ids, requests and the classification of every documented answer."""

from __future__ import annotations

import re
from typing import Any

import pytest
from connectors.calendar.google import wire
from connectors.sinks.answer import Verdict

from tests.calendar_records import ONE_HOUR_IN_LONDON


def record(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        **ONE_HOUR_IN_LONDON,
        "external_event_id": "abc123def456",
        "aggregate_version": 3,
        "title": "Wedding",
        "description": None,
        "location": None,
        "integration_id": "int-1",
    }
    return {**base, **overrides}


def error(status: int, reason: str) -> dict[str, Any]:
    return {
        "error": {
            "code": status,
            "message": "m",
            "errors": [{"domain": "global", "reason": reason, "message": "m"}],
        }
    }


# ---- event ids -------------------------------------------------------------------------
def test_valid_external_id_is_used_as_is() -> None:
    assert wire.event_id("0123456789abcdefghijklmnopqrstuv") == "0123456789abcdefghijklmnopqrstuv"


@pytest.mark.parametrize(
    "external",
    ["wedding:42/vendor:7", "ABCDEF", "abcd", "w" * 10, "x" * 2000, "", "ünïcode-id"],
)
def test_derived_id_is_base32hex_of_valid_length(external: str) -> None:
    derived = wire.event_id(external)
    assert re.fullmatch(r"[0-9a-v]+", derived)
    assert 5 <= len(derived) <= 1024


def test_derived_id_is_deterministic_and_distinct() -> None:
    assert wire.event_id("wedding:42/vendor:7") == wire.event_id("wedding:42/vendor:7")
    assert wire.event_id("wedding:42/vendor:7") != wire.event_id("wedding:42/vendor:8")


def test_derived_id_known_value() -> None:
    # base32hex(sha256(b"wedding:1")) lowercased, without padding
    assert wire.event_id("wedding:1") == "gvugfuborlulh1t36ulo3o4db7gk9jasce2hro98r2o6kolgfkpg"


@pytest.mark.parametrize(
    ("value", "valid"),
    [("abcde", True), ("abcd", False), ("0v0v0", True), ("abcdw", False), ("ABCDE", False),
     ("a" * 1024, True), ("a" * 1025, False)],
)  # fmt: skip
def test_is_event_id(value: str, valid: bool) -> None:
    assert wire.is_event_id(value) is valid


# ---- requests --------------------------------------------------------------------------
def test_insert_request_carries_our_id_and_times() -> None:
    request = wire.insert_request(record())
    assert request.method == "POST"
    assert request.path == "/calendar/v3/calendars/primary/events"
    assert request.json is not None
    assert request.json["id"] == "abc123def456"
    assert request.json["start"] == {
        "dateTime": "2026-05-28T21:26:40+01:00",
        "timeZone": "Europe/London",
    }
    assert request.json["end"]["dateTime"] == "2026-05-28T22:26:40+01:00"
    assert request.json["extendedProperties"] == {
        "private": {"wedsyncExternalId": "abc123def456", "wedsyncVersion": "3"}
    }
    assert "description" not in request.json


def test_calendar_id_is_escaped_in_the_path() -> None:
    request = wire.insert_request(record(calendar_id="team@group.calendar.google.com"))
    assert request.path == "/calendar/v3/calendars/team%40group.calendar.google.com/events"


def test_all_day_event_uses_dates_with_exclusive_end() -> None:
    # 2026-06-13 00:00 and 2026-06-14 00:00 in London (BST)
    request = wire.insert_request(
        record(all_day=True, starts_at_ms=1_781_305_200_000, ends_at_ms=1_781_391_600_000)
    )
    assert request.json is not None
    assert request.json["start"] == {"date": "2026-06-13"}
    assert request.json["end"] == {"date": "2026-06-14"}


def test_all_day_event_lasts_at_least_one_day() -> None:
    request = wire.insert_request(
        record(all_day=True, starts_at_ms=1_781_305_200_000, ends_at_ms=1_781_305_200_000)
    )
    assert request.json is not None
    assert request.json["end"] == {"date": "2026-06-14"}


def test_patch_request_has_no_id_and_if_match_only_when_given() -> None:
    plain = wire.patch_request(record())
    assert plain.method == "PATCH"
    assert plain.path == "/calendar/v3/calendars/primary/events/abc123def456"
    assert plain.json is not None and "id" not in plain.json
    assert plain.json["status"] == "confirmed"
    assert plain.headers == {}
    assert wire.patch_request(record(), etag='"7"').headers == {"If-Match": '"7"'}


def test_delete_and_get_requests() -> None:
    assert wire.delete_request(record()).method == "DELETE"
    assert wire.delete_request(record()).path.endswith("/events/abc123def456")
    assert wire.get_request(record()).method == "GET"


def test_unknown_time_zone_is_a_bad_record() -> None:
    with pytest.raises(wire.BadRecord):
        wire.insert_request(record(time_zone="Mars/Olympus"))


def test_requests_carry_no_credentials() -> None:
    request = wire.insert_request(record())
    assert "Authorization" not in request.headers


# ---- classification --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "reason", "verdict", "error_class"),
    [
        (401, "authError", Verdict.REAUTH, "google.authError"),
        (403, "rateLimitExceeded", Verdict.BACKPRESSURE, "google.rateLimitExceeded"),
        (429, "rateLimitExceeded", Verdict.BACKPRESSURE, "google.rateLimitExceeded"),
        (403, "userRateLimitExceeded", Verdict.BACKPRESSURE, "google.userRateLimitExceeded"),
        (429, "userRateLimitExceeded", Verdict.BACKPRESSURE, "google.userRateLimitExceeded"),
        (403, "quotaExceeded", Verdict.BACKPRESSURE, "google.quotaExceeded"),
        (500, "backendError", Verdict.RETRY, "google.backendError"),
        (400, "invalid", Verdict.FATAL, "google.invalid"),
        (400, "badRequest", Verdict.FATAL, "google.badRequest"),
        (403, "forbiddenForNonOrganizer", Verdict.FATAL, "google.forbiddenForNonOrganizer"),
        (403, "forbidden", Verdict.FATAL, "google.forbidden"),
        (404, "notFound", Verdict.FATAL, "google.notFound"),
        (409, "duplicate", Verdict.OK, None),
        (410, "deleted", Verdict.OK, None),
        (412, "conditionNotMet", Verdict.RETRY, "google.conditionNotMet"),
    ],
)
def test_reason_classification(
    status: int, reason: str, verdict: Verdict, error_class: str | None
) -> None:
    answer = wire.classify(status, error(status, reason))
    assert answer.verdict is verdict
    assert answer.error_class == error_class
    assert answer.status == status


@pytest.mark.parametrize(
    ("status", "verdict", "error_class"),
    [
        (400, Verdict.FATAL, "google.400"),
        (401, Verdict.REAUTH, "google.401"),
        (403, Verdict.FATAL, "google.403"),
        (404, Verdict.FATAL, "google.404"),
        (429, Verdict.BACKPRESSURE, "google.429"),
        (500, Verdict.RETRY, "google.500"),
        (502, Verdict.RETRY, "google.502"),
        (503, Verdict.RETRY, "google.503"),
        (504, Verdict.RETRY, "google.504"),
        (507, Verdict.RETRY, "google.507"),
        (422, Verdict.FATAL, "google.422"),
    ],
)
def test_status_classification_without_a_reason(
    status: int, verdict: Verdict, error_class: str
) -> None:
    answer = wire.classify(status, None)
    assert answer.verdict is verdict
    assert answer.error_class == error_class


def test_unknown_reason_falls_back_to_status() -> None:
    answer = wire.classify(403, error(403, "somethingNew"))
    assert answer.verdict is Verdict.FATAL
    assert answer.error_class == "google.403"


def test_backpressure_carries_retry_after_when_given() -> None:
    answer = wire.classify(429, error(429, "rateLimitExceeded"), "12")
    assert answer.retry_after == 12.0


def test_backpressure_without_retry_after_has_none() -> None:
    assert wire.classify(403, error(403, "rateLimitExceeded")).retry_after is None


def test_ok_answer_names_the_event_id() -> None:
    answer = wire.classify(200, {"id": "abc123def456", "etag": '"3"'})
    assert answer.verdict is Verdict.OK
    assert answer.provider_id == "abc123def456"


def test_ok_answer_falls_back_to_the_etag() -> None:
    assert wire.classify(200, {"etag": '"3"'}).provider_id == '"3"'


def test_error_message_does_not_echo_the_provider_text() -> None:
    body = error(400, "invalid")
    body["error"]["message"] = "bride@example.com is invalid"
    answer = wire.classify(400, body)
    assert "example.com" not in answer.message


@pytest.mark.parametrize(
    ("operation", "status", "step"),
    [
        ("insert", 409, "patch"),
        ("patch", 404, "insert"),
        ("patch", 412, "refetch"),
        ("delete", 404, "done"),
        ("delete", 410, "done"),
        ("insert", 404, None),
        ("patch", 409, None),
        ("delete", 500, None),
    ],
)
def test_follow_ups(operation: wire.Operation, status: int, step: str | None) -> None:
    assert wire.follow_up(operation, status) == step


def stored(version: str | None) -> dict[str, Any]:
    private = {"wedsyncExternalId": "abc123def456"}
    if version is not None:
        private["wedsyncVersion"] = version
    return {"id": "abc123def456", "extendedProperties": {"private": private}}


@pytest.mark.parametrize(("held", "version"), [("3", 3), (None, None), ("garbage", None)])
def test_the_version_held_is_read_back(held: str | None, version: int | None) -> None:
    """What the write algorithm compares with the record's (connectors/calendar/upsert.py)."""
    assert wire.stored_version(stored(held)) == version


def test_stored_version() -> None:
    assert wire.stored_version(stored("17")) == 17
    assert wire.stored_version({"id": "x"}) is None


def test_an_all_day_wall_clock_event_needs_no_zone() -> None:
    rec = record(starts_at_ms=None, ends_at_ms=None, time_zone=None, all_day=True,
                 local_start="2027-06-12", local_end="2027-06-13")  # fmt: skip
    assert not wire.needs_calendar_zone(rec)
    assert wire.event_times(rec) == ({"date": "2027-06-12"}, {"date": "2027-06-13"})


def test_a_timed_wall_clock_event_without_any_zone_is_a_bad_record_naming_the_setting() -> None:
    rec = record(starts_at_ms=None, ends_at_ms=None, time_zone=None,
                 local_start="2027-06-12T14:00:00", local_end="2027-06-12T22:00:00")  # fmt: skip
    assert wire.needs_calendar_zone(rec)
    with pytest.raises(wire.BadRecord, match="WEDSYNC_ROUTE_DEFAULT_TIME_ZONE"):
        wire.event_times(wire.placed(rec, None))
