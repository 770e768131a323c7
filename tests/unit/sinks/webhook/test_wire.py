"""The webhook sink's pure wire: signing (verified with the official standardwebhooks
package), legacy headers (computed here with hmac), size limit and classification."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import pytest
from connectors.sinks.answer import Verdict
from connectors.sinks.webhook import wire
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
LEGACY = "legacy-platform-secret-7f3a"
BODY = '{"event":"form_responses.insert","id":"evt-1","data":{"form_name":"Menu"}}'


def record(body: str = BODY) -> dict[str, Any]:
    return {
        "delivery_id": "dlv-1",
        "endpoint_id": "ep-1",
        "endpoint_url": "https://hooks.example.com/wedsync",
        "event_name": "form_responses.insert",
        "body_json": body,
    }


def build(secret: str, *, legacy: bool = False, ts: int | None = None) -> wire.WebhookRequest:
    return wire.build_request(
        record(),
        secret,
        msg_id="dlv-1",
        timestamp=int(time.time()) if ts is None else ts,
        legacy_headers=legacy,
    )


def test_whsec_signature_verifies_with_the_official_package() -> None:
    req = build(WHSEC)
    assert Webhook(WHSEC).verify(req.body, req.headers) == {
        "event": "form_responses.insert",
        "id": "evt-1",
        "data": {"form_name": "Menu"},
    }


def test_raw_legacy_secret_signature_verifies_with_its_utf8_bytes() -> None:
    req = build(LEGACY)
    Webhook(LEGACY.encode("utf-8")).verify(req.body, req.headers)


def test_signature_with_another_secret_is_rejected() -> None:
    req = build(WHSEC)
    other = "whsec_" + base64.b64encode(b"another key of thirty-two bytes!").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(req.body, req.headers)


def test_tampered_body_is_rejected() -> None:
    req = build(WHSEC)
    with pytest.raises(WebhookVerificationError):
        Webhook(WHSEC).verify(req.body.replace(b"Menu", b"Menv"), req.headers)


def test_webhook_id_is_the_idempotency_key_and_timestamp_is_given() -> None:
    req = build(WHSEC, ts=1_700_000_000)
    assert req.headers["webhook-id"] == "dlv-1"
    assert req.headers["webhook-timestamp"] == "1700000000"
    assert req.headers["webhook-signature"].startswith("v1,")


def test_same_id_and_timestamp_sign_identically() -> None:
    assert build(WHSEC, ts=1_700_000_000).headers == build(WHSEC, ts=1_700_000_000).headers


def test_body_is_body_json_byte_for_byte() -> None:
    body = '{"b": "café",  "a":1}'
    req = wire.build_request(record(body), WHSEC, msg_id="x", timestamp=1)
    assert req.body == body.encode("utf-8")


def test_content_type_and_user_agent() -> None:
    req = build(WHSEC)
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["User-Agent"] == "wedsync-webhooks/1"
    assert req.method == "POST"
    assert req.url == "https://hooks.example.com/wedsync"


def test_no_legacy_headers_by_default() -> None:
    assert not [h for h in build(WHSEC).headers if h.lower().startswith("x-wedsync")]


def test_legacy_headers_match_the_platform_scheme() -> None:
    req = build(LEGACY, legacy=True, ts=1_700_000_123)
    expected = hmac.new(LEGACY.encode(), b"1700000123." + BODY.encode(), hashlib.sha256).hexdigest()
    assert req.headers["X-WedSync-Signature"] == "sha256=" + expected
    assert req.headers["X-WedSync-Event"] == "form_responses.insert"
    assert req.headers["X-WedSync-Timestamp"] == "1700000123"
    assert req.headers["X-WedSync-Source"] == "realtime"


def test_secret_never_appears_in_headers() -> None:
    req = build(LEGACY, legacy=True)
    assert not any(LEGACY in v for v in req.headers.values())
    assert LEGACY.encode() not in req.body


def test_malformed_whsec_secret_is_a_value_error_without_the_secret() -> None:
    with pytest.raises(ValueError) as info:
        wire.signing_key("whsec_@@@not-base64@@@")
    assert "@@@" not in str(info.value)


def test_body_over_the_limit_is_fatal() -> None:
    answer = wire.too_large(b"x" * 11, 10)
    assert answer is not None
    assert answer.verdict is Verdict.FATAL
    assert answer.error_class == "webhook.too_large"


def test_body_at_the_limit_passes() -> None:
    assert wire.too_large(b"x" * 10, 10) is None


@pytest.mark.parametrize(
    ("status", "verdict", "error_class"),
    [
        (200, Verdict.OK, None),
        (201, Verdict.OK, None),
        (202, Verdict.OK, None),
        (204, Verdict.OK, None),
        (410, Verdict.DISABLE, "webhook.410"),
        (301, Verdict.RETRY, "webhook.3xx"),
        (302, Verdict.RETRY, "webhook.3xx"),
        (307, Verdict.RETRY, "webhook.3xx"),
        (308, Verdict.RETRY, "webhook.3xx"),
        (400, Verdict.RETRY, "webhook.4xx"),
        (401, Verdict.RETRY, "webhook.4xx"),
        (403, Verdict.RETRY, "webhook.4xx"),
        (404, Verdict.RETRY, "webhook.4xx"),
        (413, Verdict.RETRY, "webhook.4xx"),
        (500, Verdict.RETRY, "webhook.5xx"),
        (501, Verdict.RETRY, "webhook.5xx"),
        (429, Verdict.RETRY, "webhook.429"),
        (502, Verdict.RETRY, "webhook.502"),
        (503, Verdict.RETRY, "webhook.503"),
        (504, Verdict.RETRY, "webhook.504"),
    ],
)
def test_classify_without_retry_after(
    status: int, verdict: Verdict, error_class: str | None
) -> None:
    answer = wire.classify(status)
    assert (answer.verdict, answer.error_class, answer.status) == (verdict, error_class, status)


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_throttle_statuses_with_retry_after_are_backpressure(status: int) -> None:
    answer = wire.classify(status, "7")
    assert answer.verdict is Verdict.BACKPRESSURE
    assert answer.retry_after == 7.0
    assert answer.error_class == f"webhook.{status}"


def test_retry_after_on_a_plain_500_is_ignored() -> None:
    assert wire.classify(500, "7").verdict is Verdict.RETRY
