"""Microsoft Graph change-notification subscriptions on the wire, as pure functions (no I/O).

One subscription per connected calendar: resource ``/me/events`` for the ``primary``
calendar (Graph notifies for every calendar of the mailbox: the fetch round of the primary
calendar sorts it out) and ``/me/calendars/{id}/events`` otherwise; ``changeType``
created,updated,deleted; ``expirationDateTime`` now + `LIFETIME_MIN` (10,000 min, under
Graph's 10,080 for Outlook events); ``lifecycleNotificationUrl`` always set (it cannot be added
later by PATCH); ``clientState`` given by the caller (a MAC it can verify statelessly, at most
128 chars: a longer one is refused here, before Graph refuses it).

Requests: `create_request`, `renew_request` (PATCH expirationDateTime; renewing also
reauthorizes), `reauthorize_request`, `delete_request`. Answers: `parse_subscription` ->
`Subscription`; `is_unknown(status)` says the subscription no longer exists (404: create a new
one and run a delta round); any other error is classified as a fetch error
(`fetch_wire.classify_error`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from streams.logic.calendar.rounds import CalendarRef

from connectors.calendar.graph.wire import Request

LIFETIME_MIN = 10_000
MAX_CLIENT_STATE = 128
CHANGE_TYPES = "created,updated,deleted"


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscription as Graph holds it."""

    id: str
    resource: str
    expires_ms: int
    client_state: str | None


def resource(calendar: CalendarRef) -> str:
    if calendar.calendar_id == "primary":
        return "/me/events"
    return f"/me/calendars/{quote(calendar.calendar_id, safe='')}/events"


def expiration(now_ms: int, minutes: int = LIFETIME_MIN) -> str:
    when = datetime.fromtimestamp(now_ms / 1000, UTC) + timedelta(minutes=minutes)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def create_request(
    calendar: CalendarRef,
    notification_url: str,
    lifecycle_url: str,
    client_state: str,
    now_ms: int,
    minutes: int = LIFETIME_MIN,
) -> Request:
    """POST /v1.0/subscriptions for `calendar`; ValueError for a clientState over 128."""
    if len(client_state) > MAX_CLIENT_STATE:
        raise ValueError("clientState is limited to 128 characters")
    body = {
        "changeType": CHANGE_TYPES,
        "notificationUrl": notification_url,
        "lifecycleNotificationUrl": lifecycle_url,
        "resource": resource(calendar),
        "expirationDateTime": expiration(now_ms, minutes),
        "clientState": client_state,
    }
    return Request("POST", "/v1.0/subscriptions", json=body)


def _path(subscription_id: str) -> str:
    return f"/v1.0/subscriptions/{quote(subscription_id, safe='')}"


def renew_request(subscription_id: str, now_ms: int, minutes: int = LIFETIME_MIN) -> Request:
    return Request("PATCH", _path(subscription_id),
                   json={"expirationDateTime": expiration(now_ms, minutes)})  # fmt: skip


def reauthorize_request(subscription_id: str) -> Request:
    return Request("POST", _path(subscription_id) + "/reauthorize")


def delete_request(subscription_id: str) -> Request:
    return Request("DELETE", _path(subscription_id))


def is_unknown(status: int) -> bool:
    return status == 404


def parse_subscription(body: Any) -> Subscription:
    """A subscription answer; ValueError when it is not one."""
    if not isinstance(body, Mapping) or not body.get("id"):
        raise ValueError("a subscription has an id")
    text = str(body.get("expirationDateTime") or "")
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("a subscription has an expirationDateTime") from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    state = body.get("clientState")
    return Subscription(str(body["id"]), str(body.get("resource") or ""),
                        int(when.timestamp() * 1000), str(state) if state else None)  # fmt: skip
