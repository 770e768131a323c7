"""Pure pieces of the outbound webhook sink: Standard Webhooks signing, the legacy
X-WedSync signature, the request, and what an endpoint's answer means. No I/O.

Classification (Standard Webhooks / Svix, PROVIDERS.md):

    2xx                  ok
    410 Gone             disable the endpoint (the customer removed it)
    429, 502, 503, 504   backpressure: wait Retry-After when given, else plain retry
    3xx                  retry, never followed. Standard Webhooks counts a redirect as a
                         failure; we retry it rather than dead-letter it, because a customer
                         who moved the endpoint updates `webhook_endpoints.endpoint_url` and
                         should still get the event on a later attempt; the redirect target
                         is never called (it could point anywhere, SSRF).
    other non-2xx        retry (Standard Webhooks retries every non-2xx)

`error_class` is ``webhook.<status>`` for the statuses named above and ``webhook.3xx`` /
``webhook.4xx`` / ``webhook.5xx`` / ``webhook.other`` for the rest: a closed set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.sinks.answer import (
    Answer,
    Verdict,
    backpressure,
    disable,
    fatal,
    ok,
    parse_retry_after,
    retry,
)

SECRET_PREFIX = "whsec_"

# status -> verdict for the statuses Standard Webhooks names; everything else by class
STATUS_VERDICTS: Mapping[int, Verdict] = {
    410: Verdict.DISABLE,
    429: Verdict.BACKPRESSURE,
    502: Verdict.BACKPRESSURE,
    503: Verdict.BACKPRESSURE,
    504: Verdict.BACKPRESSURE,
}


@dataclass(frozen=True)
class WebhookRequest:
    """One signed call: POST `url` with `headers` and exactly `body`."""

    url: str
    headers: dict[str, str]
    body: bytes
    method: str = "POST"


def signing_key(secret: str) -> bytes:
    """The HMAC key of an endpoint secret: ``whsec_<base64>`` decoded after the prefix; any
    other secret as its UTF-8 bytes. Raises ValueError (without the secret) when a whsec_
    secret is not base64."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX) :] + "==")
        except ValueError:
            raise ValueError("the whsec_ secret is not valid base64") from None
    return secret.encode("utf-8")


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks signature: ``v1,`` + base64(HMAC-SHA256(key, id.ts.body))."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.digest(key, to_sign, "sha256")
    return "v1," + base64.b64encode(digest).decode("ascii")


def legacy_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The platform's legacy header value: ``sha256=`` + hex(HMAC-SHA256(secret, ts.body)),
    keyed with the secret's UTF-8 bytes as stored (whsec_ prefix included)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def body_bytes(record: Mapping[str, Any]) -> bytes:
    """The exact bytes we sign and send: the record's `body_json` as UTF-8."""
    return str(record["body_json"]).encode("utf-8")


def too_large(body: bytes, max_body_bytes: int) -> Answer | None:
    """A fatal answer when the body exceeds the limit (nothing is sent), else None."""
    if len(body) > max_body_bytes:
        return fatal(
            "webhook.too_large",
            f"body of {len(body)} bytes exceeds the {max_body_bytes}-byte limit",
        )
    return None


def build_request(
    record: Mapping[str, Any],
    secret: str,
    *,
    msg_id: str,
    timestamp: int,
    legacy_headers: bool = False,
    user_agent: str = "wedsync-webhooks/1",
) -> WebhookRequest:
    """The signed request for `record`. `msg_id` is the delivery's idempotency key (the same
    on every retry); `timestamp` is unix seconds at send time."""
    body = body_bytes(record)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": user_agent,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(signing_key(secret), msg_id, timestamp, body),
    }
    if legacy_headers:
        headers.update(
            {
                "X-WedSync-Signature": legacy_signature(secret, timestamp, body),
                "X-WedSync-Event": str(record["event_name"]),
                "X-WedSync-Timestamp": str(timestamp),
                "X-WedSync-Source": "realtime",
            }
        )
    return WebhookRequest(url=str(record["endpoint_url"]), headers=headers, body=body)


def classify(status: int, retry_after_header: str | None = None) -> Answer:
    """What the endpoint's answer means (see the module docstring)."""
    if 200 <= status < 300:
        return ok(status)
    verdict = STATUS_VERDICTS.get(status)
    if verdict is Verdict.DISABLE:
        return disable("webhook.410", "the endpoint answered 410 Gone", status=status)
    if verdict is Verdict.BACKPRESSURE:
        wait = parse_retry_after(retry_after_header)
        if wait is None:
            return retry(f"webhook.{status}", "endpoint overloaded", status=status)
        return backpressure(f"webhook.{status}", wait, "endpoint asked to wait", status=status)
    if 300 <= status < 400:
        return retry("webhook.3xx", "redirect answered; never followed", status=status)
    if 400 <= status < 500:
        return retry("webhook.4xx", status=status)
    if 500 <= status < 600:
        return retry("webhook.5xx", status=status)
    return retry("webhook.other", status=status)
