"""The CRM sink's pure wire: requests per crm_kind, auth headers, classification tables."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from connectors.sinks.answer import Verdict
from connectors.sinks.crm import wire

KEY = "sk_live_abcdef123456"
PHOTO_PAYLOAD: dict[str, Any] = {
    "event_type": "wedding_date_changed",
    "wedding_id": "w-1",
    "client_name": "Ann & Bob",
    "wedding_date": "2027-06-12",
    "ceremony_time": "2027-06-12T14:00:00+01:00",
    "venue_name": "Old Mill",
    "guest_count": 120,
    "photographer_notes": "golden hour",
    "updated_at": "2027-01-01T10:00:00Z",
}
VENUE_PAYLOAD: dict[str, Any] = {
    "booking_id": "w-1",
    "event_date": "2027-06-12",
    "party_size": 120,
    "setup_time": "2027-06-12T10:00:00+01:00",
    "ceremony_start": "2027-06-12T14:00:00+01:00",
    "reception_start": "2027-06-12T18:00:00+01:00",
    "special_requirements": "step-free",
    "coordinator_notes": None,
    "last_updated": "2027-01-01T10:00:00Z",
}


def rec(kind: str, url: str, scheme: str = "bearer", payload: dict[str, Any] | None = None) -> Any:
    return {
        "delivery_id": "dlv-1",
        "integration_id": "int-1",
        "crm_kind": kind,
        "endpoint_url": url,
        "auth_scheme": scheme,
        "payload": dict(PHOTO_PAYLOAD if payload is None else payload),
    }


def build(record: Any, scheme: str | None = None, base: str | None = None) -> wire.CrmRequest:
    client = wire.CLIENTS[record["crm_kind"]]
    auth = wire.CrmAuth(scheme or client.scheme(record), KEY, "studio")
    return client.build(record, auth, "dlv-1", base)


# ---- requests ---------------------------------------------------------------------------
def test_photography_webhook_posts_the_payload_with_bearer() -> None:
    req = build(rec("photography_crm", "https://crm.example.com/hook"))
    assert (req.method, req.url) == ("POST", "https://crm.example.com/hook")
    assert req.headers["Authorization"] == "Bearer sk_live_abcdef123456"
    assert req.body == PHOTO_PAYLOAD
    assert json.loads(req.content()) == PHOTO_PAYLOAD


def test_venue_booking_uses_the_venue_key_header() -> None:
    record = rec("venue_booking", "https://venue.example.com/b", "api_key_header", VENUE_PAYLOAD)
    req = build(record)
    assert req.headers["X-Venue-API-Key"] == KEY
    assert "Authorization" not in req.headers
    assert req.body == VENUE_PAYLOAD


@pytest.mark.parametrize(
    "kind",
    ["photography_crm", "venue_booking", "tave", "honeybook", "light_blue", "custom"],
)
def test_every_request_carries_the_idempotency_key_and_json(kind: str) -> None:
    req = build(rec(kind, "https://x.example.com/api"))
    assert req.headers["Idempotency-Key"] == "dlv-1"
    assert req.headers["Content-Type"] == "application/json"


def test_tave_form_response_creates_a_lead_with_x_api_key() -> None:
    payload = {**PHOTO_PAYLOAD, "event_type": "form_response"}
    req = build(rec("tave", "https://tave.example.com", "bearer", payload))
    assert req.url == "https://tave.example.com/api/v2/leads"
    assert req.headers["X-Api-Key"] == KEY
    assert "Authorization" not in req.headers
    assert req.body["external_id"] == "w-1"
    assert req.body["client"] == {"name": "Ann & Bob"}
    assert req.body["event_date"] == "2027-06-12"
    assert req.body["venue"] == {"name": "Old Mill"}


def test_tave_other_events_update_the_job() -> None:
    req = build(rec("tave", "https://tave.example.com/api/v2/leads"))
    assert req.url == "https://tave.example.com/api/v2/jobs"
    assert req.body["source_event"] == "wedding_date_changed"


def test_tave_base_url_override() -> None:
    req = build(rec("tave", "https://tave.example.com"), base="http://127.0.0.1:9/tave")
    assert req.url == "http://127.0.0.1:9/tave/api/v2/jobs"


def test_honeybook_posts_a_project_with_bearer() -> None:
    req = build(rec("honeybook", "https://api.honeybook.example/", "api_key_header"))
    assert req.url == "https://api.honeybook.example/v1/projects"
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert req.body["external_reference"] == "w-1"
    assert req.body["name"] == "Ann & Bob wedding"
    assert req.body["event_date"] == "2027-06-12"
    assert req.body["guest_count"] == 120


def test_generic_follows_the_record_scheme_api_key_header() -> None:
    req = build(rec("light_blue", "https://lb.example.com/x", "api_key_header"))
    assert req.headers["X-API-Key"] == KEY
    assert req.body == PHOTO_PAYLOAD


def test_basic_auth_uses_username_and_key() -> None:
    req = build(rec("custom", "https://c.example.com/x", "basic"))
    expected = "Basic " + base64.b64encode(f"studio:{KEY}".encode()).decode()
    assert req.headers["Authorization"] == expected


def test_none_scheme_sends_no_auth() -> None:
    client = wire.CLIENTS["custom"]
    req = client.build(rec("custom", "https://c.example.com/x", "none"), wire.CrmAuth("none"), "k")
    assert "Authorization" not in req.headers
    assert not [h for h in req.headers if "key" in h.lower() and h != "Idempotency-Key"]


def test_basic_without_username_is_refused() -> None:
    with pytest.raises(ValueError, match="username"):
        wire.auth_headers(wire.CrmAuth("basic", KEY, None), "X-API-Key")


def test_missing_key_error_does_not_show_values() -> None:
    with pytest.raises(ValueError) as info:
        wire.auth_headers(wire.CrmAuth("bearer", None), "X-API-Key")
    assert "bearer" in str(info.value)


def test_secret_not_in_reprs() -> None:
    req = build(rec("photography_crm", "https://crm.example.com/hook"))
    assert KEY not in repr(req)
    assert KEY not in repr(wire.CrmAuth("bearer", KEY))


def test_fixed_schemes_ignore_the_record() -> None:
    assert wire.CLIENTS["tave"].scheme(rec("tave", "https://t", "bearer")) == "api_key_header"
    assert wire.CLIENTS["honeybook"].scheme(rec("honeybook", "https://h", "basic")) == "bearer"
    assert wire.CLIENTS["custom"].scheme(rec("custom", "https://c", "basic")) == "basic"


# ---- classification: generic HTTP -------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "retry_after", "verdict", "error_class", "wait"),
    [
        (200, None, Verdict.OK, None, None),
        (201, None, Verdict.OK, None, None),
        (204, None, Verdict.OK, None, None),
        (429, "30", Verdict.BACKPRESSURE, "crm.429", 30.0),
        (429, None, Verdict.BACKPRESSURE, "crm.429", None),
        (503, "5", Verdict.BACKPRESSURE, "crm.503", 5.0),
        (503, None, Verdict.RETRY, "crm.503", None),
        (500, None, Verdict.RETRY, "crm.500", None),
        (502, None, Verdict.RETRY, "crm.502", None),
        (504, None, Verdict.RETRY, "crm.504", None),
        (408, None, Verdict.RETRY, "crm.408", None),
        (401, None, Verdict.REAUTH, "crm.401", None),
        (403, None, Verdict.FATAL, "crm.403", None),
        (410, None, Verdict.DISABLE, "crm.410", None),
        (301, None, Verdict.FATAL, "crm.301", None),
        (302, None, Verdict.FATAL, "crm.302", None),
        (400, None, Verdict.FATAL, "crm.400", None),
        (404, None, Verdict.FATAL, "crm.404", None),
        (409, None, Verdict.FATAL, "crm.409", None),
        (422, None, Verdict.FATAL, "crm.422", None),
    ],
)
def test_generic_http_classification(
    status: int, retry_after: str | None, verdict: Verdict, error_class: str | None, wait: Any
) -> None:
    answer = wire.CLIENTS["photography_crm"].classify(status, None, retry_after)
    assert (answer.verdict, answer.error_class, answer.retry_after) == (verdict, error_class, wait)
    assert answer.status == status


def test_provider_id_from_the_answer_body() -> None:
    assert wire.CLIENTS["custom"].classify(201, {"id": "abc"}).provider_id == "abc"
    assert wire.CLIENTS["custom"].classify(200, {"data": {"id": 42}}).provider_id == "42"
    assert wire.CLIENTS["custom"].classify(200, "not json").provider_id is None


@pytest.mark.parametrize(
    "body", [{"message": "Duplicate booking"}, {"detail": "lead already exists"}, "duplicate"]
)
def test_409_saying_duplicate_is_ok(body: Any) -> None:
    answer = wire.CLIENTS["venue_booking"].classify(409, body)
    assert answer.verdict is Verdict.OK


def test_409_without_duplicate_words_is_fatal() -> None:
    assert wire.CLIENTS["venue_booking"].classify(409, {"message": "locked"}).verdict is (
        Verdict.FATAL
    )


# ---- classification: every provider code -------------------------------------------------
OK, REAUTH, BACKOFF = Verdict.OK, Verdict.REAUTH, Verdict.BACKPRESSURE
FATAL, DISABLE = Verdict.FATAL, Verdict.DISABLE
PHOTO, VENUE = "photography_crm", "venue_booking"
CODES = [
    (PHOTO, 409, {"error": "duplicate", "id": "e1"}, OK, None),
    (PHOTO, 409, {"error": "already_exists"}, OK, None),
    (PHOTO, 401, {"error": "invalid_api_key"}, REAUTH, "photography_crm.invalid_api_key"),
    (PHOTO, 401, {"error": "unauthorized"}, REAUTH, "photography_crm.unauthorized"),
    (PHOTO, 403, {"error": "invalid_api_key"}, FATAL, "crm.403"),
    (PHOTO, 429, {"error": "rate_limited"}, BACKOFF, "photography_crm.rate_limited"),
    (PHOTO, 422, {"error": "validation_error"}, FATAL, "photography_crm.validation_error"),
    (VENUE, 409, {"code": "duplicate_booking", "id": "b1"}, OK, None),
    (VENUE, 404, {"code": "booking_not_found"}, FATAL, "venue_booking.booking_not_found"),
    (VENUE, 403, {"code": "venue_inactive"}, DISABLE, "venue_booking.venue_inactive"),
    (VENUE, 401, {"error": "invalid_api_key"}, REAUTH, "venue_booking.invalid_api_key"),
    ("tave", 409, {"error": {"code": "duplicate_lead"}, "id": "l1"}, OK, None),
    ("tave", 409, {"error": {"code": "duplicate_job"}}, OK, None),
    ("tave", 401, {"error": {"code": "invalid_api_key"}}, REAUTH, "tave.invalid_api_key"),
    ("tave", 429, {"error": {"code": "rate_limited"}}, BACKOFF, "tave.rate_limited"),
    ("tave", 422, {"error": {"code": "validation_failed"}}, FATAL, "tave.validation_failed"),
    ("tave", 404, {"error": {"code": "job_not_found"}}, FATAL, "tave.job_not_found"),
    ("tave", 403, {"error": {"code": "studio_disabled"}}, DISABLE, "tave.studio_disabled"),
    ("honeybook", 409, {"error": "project_exists", "id": "p1"}, OK, None),
    ("honeybook", 401, {"error": "invalid_token"}, REAUTH, "honeybook.invalid_token"),
    ("honeybook", 401, {"error": "token_expired"}, REAUTH, "honeybook.token_expired"),
    ("honeybook", 403, {"error": "token_expired"}, FATAL, "crm.403"),
    ("honeybook", 429, {"error": "rate_limit_exceeded"}, BACKOFF, "honeybook.rate_limit_exceeded"),
    ("honeybook", 400, {"error": "invalid_request"}, FATAL, "honeybook.invalid_request"),
    ("honeybook", 403, {"error": "account_suspended"}, DISABLE, "honeybook.account_suspended"),
    ("custom", 409, {"error": {"type": "already_exists"}}, OK, None),
    ("light_blue", 500, {"error": "rate_limited"}, BACKOFF, "light_blue.rate_limited"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "status", "body", "verdict", "error_class"), CODES)
def test_provider_error_codes(
    kind: str, status: int, body: Any, verdict: Verdict, error_class: str | None
) -> None:
    answer = wire.CLIENTS[kind].classify(status, body, None)
    assert (answer.verdict, answer.error_class) == (verdict, error_class)


def test_duplicate_code_keeps_the_existing_id() -> None:
    answer = wire.CLIENTS["tave"].classify(409, {"error": {"code": "duplicate_lead"}, "id": "l7"})
    assert answer.provider_id == "l7"


def test_code_backpressure_honours_retry_after() -> None:
    answer = wire.CLIENTS["tave"].classify(429, {"error": {"code": "rate_limited"}}, "12")
    assert answer.retry_after == 12.0


def test_error_code_on_a_2xx_is_ignored() -> None:
    assert wire.CLIENTS["tave"].classify(200, {"code": "invalid_api_key"}).verdict is Verdict.OK


def test_unknown_code_falls_back_to_http() -> None:
    answer = wire.CLIENTS["tave"].classify(400, {"error": {"code": "mystery"}})
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "crm.400")
