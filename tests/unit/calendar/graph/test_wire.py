"""Microsoft Graph wire: requests, the extended-property filter, transactionId and the
classification of every documented answer."""

from __future__ import annotations

from typing import Any

import pytest
from connectors.calendar.graph import wire
from connectors.sinks.answer import Verdict

from tests.calendar_records import ONE_HOUR_IN_LONDON

PROPERTY = "String {8d3c6a52-4f1e-4b7a-9c2d-5e6f7a8b9c0d} Name wedsyncExternalId"
VERSION = "String {8d3c6a52-4f1e-4b7a-9c2d-5e6f7a8b9c0d} Name wedsyncVersion"


def record(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        **ONE_HOUR_IN_LONDON,
        "external_event_id": "wedding-42-vendor-7",
        "aggregate_version": 3,
        "title": "Wedding",
        "description": "Ceremony",
        "location": "Old Mill",
        "integration_id": "int-9",
    }
    return {**base, **overrides}


def error(code: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": "m"}}


# ---- requests --------------------------------------------------------------------------
def test_property_id_is_the_documented_named_string_form() -> None:
    assert wire.PROPERTY_ID == PROPERTY


def test_find_request_filters_on_the_extended_property() -> None:
    request = wire.find_request(record())
    assert request.method == "GET"
    assert request.path == "/v1.0/me/events"
    assert request.params["$filter"] == (
        f"singleValueExtendedProperties/Any(ep: ep/id eq '{PROPERTY}' "
        "and ep/value eq 'wedding-42-vendor-7')"
    )


def test_filter_escapes_single_quotes() -> None:
    assert wire.filter_expression("o'brien").endswith("ep/value eq 'o''brien')")


def test_other_calendar_uses_its_collection() -> None:
    assert wire.find_request(record(calendar_id="AAMk/x=")).path == (
        "/v1.0/me/calendars/AAMk%2Fx%3D/events"
    )


def test_create_request_has_transaction_id_and_property() -> None:
    request = wire.create_request(record(), "delivery-1")
    assert request.method == "POST"
    assert request.path == "/v1.0/me/events"
    assert request.json is not None
    assert request.json["transactionId"] == "6393aba6-0abf-5410-814e-e20343b4a7a7"
    assert request.json["singleValueExtendedProperties"] == [
        {"id": PROPERTY, "value": "wedding-42-vendor-7"},
        {"id": VERSION, "value": "3"},
    ]
    assert request.json["subject"] == "Wedding"
    assert request.json["location"] == {"displayName": "Old Mill"}
    assert request.json["body"] == {"contentType": "text", "content": "Ceremony"}


def test_transaction_id_is_stable_per_delivery_and_not_the_key_itself() -> None:
    assert wire.transaction_id("delivery-1") == wire.transaction_id("delivery-1")
    assert wire.transaction_id("delivery-1") != wire.transaction_id("delivery-2")
    assert "delivery-1" not in wire.transaction_id("delivery-1")


def test_timed_event_is_sent_in_utc() -> None:
    body = wire.create_request(record(), "k").json
    assert body is not None
    assert body["start"] == {"dateTime": "2026-05-28T20:26:40", "timeZone": "UTC"}
    assert body["end"] == {"dateTime": "2026-05-28T21:26:40", "timeZone": "UTC"}
    assert body["isAllDay"] is False


def test_all_day_event_is_local_midnights() -> None:
    # 2026-06-13 00:00 and 2026-06-14 00:00 in London (BST): 23:00 UTC the day before
    body = wire.create_request(
        record(all_day=True, starts_at_ms=1_781_305_200_000, ends_at_ms=1_781_305_200_000), "k"
    ).json
    assert body is not None
    assert body["isAllDay"] is True
    assert body["start"] == {"dateTime": "2026-06-13T00:00:00", "timeZone": "UTC"}
    assert body["end"] == {"dateTime": "2026-06-14T00:00:00", "timeZone": "UTC"}


def test_patch_request_carries_no_transaction_or_property() -> None:
    request = wire.patch_request(record(), "AAMk=")
    assert request.method == "PATCH"
    assert request.path == "/v1.0/me/events/AAMk%3D"
    assert request.json is not None
    assert "transactionId" not in request.json
    assert request.json["singleValueExtendedProperties"] == [{"id": VERSION, "value": "3"}]
    assert request.headers == {}
    assert wire.patch_request(record(), "e", etag='W/"3"').headers == {"If-Match": 'W/"3"'}


def test_delete_and_get_requests() -> None:
    assert wire.delete_request("e1").method == "DELETE"
    assert wire.delete_request("e1").path == "/v1.0/me/events/e1"
    assert wire.get_request("e1").method == "GET"


def test_unknown_time_zone_is_a_bad_record() -> None:
    with pytest.raises(wire.BadRecord):
        wire.create_request(record(time_zone="Mars/Olympus"), "k")


def test_found_ids() -> None:
    assert wire.found_ids({"value": [{"id": "a"}, {"id": "b"}]}) == ["a", "b"]
    assert wire.found_ids({"value": []}) == []
    assert wire.found_ids(None) == []


# ---- classification --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "code", "retry_after", "verdict", "error_class"),
    [
        (401, "InvalidAuthenticationToken", None, Verdict.REAUTH,
         "graph.InvalidAuthenticationToken"),
        (429, "MailboxConcurrency", "2", Verdict.BACKPRESSURE, "graph.MailboxConcurrency"),
        (429, "ApplicationThrottled", "30", Verdict.BACKPRESSURE, "graph.ApplicationThrottled"),
        (429, "TooManyRequests", None, Verdict.BACKPRESSURE, "graph.TooManyRequests"),
        (503, "ServiceUnavailable", "5", Verdict.BACKPRESSURE, "graph.503"),
        (504, "GatewayTimeout", "5", Verdict.BACKPRESSURE, "graph.504"),
        (503, "ServiceUnavailable", None, Verdict.RETRY, "graph.503"),
        (504, "GatewayTimeout", None, Verdict.RETRY, "graph.504"),
        (500, "generalException", None, Verdict.RETRY, "graph.500"),
        (502, "BadGateway", "5", Verdict.RETRY, "graph.502"),
        (404, "ErrorItemNotFound", None, Verdict.FATAL, "graph.ErrorItemNotFound"),
        (412, "PreconditionFailed", None, Verdict.RETRY, "graph.PreconditionFailed"),
        (412, "ErrorIrresolvableConflict", None, Verdict.RETRY, "graph.ErrorIrresolvableConflict"),
        (403, "ErrorAccessDenied", None, Verdict.FATAL, "graph.ErrorAccessDenied"),
        (400, "ErrorInvalidRequest", None, Verdict.FATAL, "graph.ErrorInvalidRequest"),
        (400, "SomethingNew", None, Verdict.FATAL, "graph.400"),
        (409, "ErrorIrresolvableConflict", None, Verdict.RETRY, "graph.ErrorIrresolvableConflict"),
        (422, None, None, Verdict.FATAL, "graph.422"),
        (401, None, None, Verdict.REAUTH, "graph.401"),
    ],
)  # fmt: skip
def test_classification(
    status: int, code: str | None, retry_after: str | None, verdict: Verdict, error_class: str
) -> None:
    answer = wire.classify(status, error(code) if code else None, retry_after)
    assert answer.verdict is verdict
    assert answer.error_class == error_class
    assert answer.status == status


@pytest.mark.parametrize(("header", "seconds"), [("2", 2.0), ("0", 0.0), (None, None)])
def test_backpressure_retry_after(header: str | None, seconds: float | None) -> None:
    assert wire.classify(429, error("MailboxConcurrency"), header).retry_after == seconds


def test_retry_after_as_http_date() -> None:
    answer = wire.classify(
        503, error("ServiceUnavailable"), "Wed, 21 Oct 2015 07:28:10 GMT", now_s=1445412480.0
    )
    assert answer.verdict is Verdict.BACKPRESSURE
    assert answer.retry_after == 10.0


def test_ok_answer_names_the_graph_event_id() -> None:
    answer = wire.classify(201, {"id": "AAMkAG123"})
    assert answer.verdict is Verdict.OK
    assert answer.provider_id == "AAMkAG123"


def test_no_content_is_ok() -> None:
    assert wire.classify(204, None).verdict is Verdict.OK


def test_error_message_does_not_echo_the_provider_text() -> None:
    body = {"error": {"code": "ErrorInvalidRequest", "message": "bride@example.com invalid"}}
    assert "example.com" not in wire.classify(400, body).message


def test_find_and_get_expand_the_version_property() -> None:
    expand = f"singleValueExtendedProperties($filter=id eq '{VERSION}')"
    assert wire.find_request(record()).params["$expand"] == expand
    assert wire.get_request("e1").params == {"$expand": expand}


def held(version: str | None) -> dict[str, Any]:
    props = [{"id": PROPERTY, "value": "x"}]
    if version is not None:
        props.append({"id": VERSION, "value": version})
    return {"id": "e1", "singleValueExtendedProperties": props}


@pytest.mark.parametrize(("held_version", "version"), [("3", 3), (None, None), ("x", None)])
def test_the_version_held_is_read_back(held_version: str | None, version: int | None) -> None:
    """What the write algorithm compares with the record's (connectors/calendar/upsert.py)."""
    assert wire.stored_version(held(held_version)) == version


def test_found_events_keeps_the_expanded_properties() -> None:
    body = {"value": [held("9"), {"no": "id"}]}
    [event] = wire.found_events(body)
    assert wire.stored_version(event) == 9
