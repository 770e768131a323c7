"""Microsoft Graph subscriptions of a calendar (I/O; requests and answers are `channel_wire`).

Called by the channel manager with a fresh access token: `create_subscription` (Graph runs
its validation handshake against both URLs before answering, so the gateway must already
answer them), `renew_subscription` at half-life (PATCH; also reauthorizes), `reauthorize`
on ``reauthorizationRequired``, `delete_subscription` when a calendar is disconnected or an
orphan notifies. 404 means the subscription no longer exists: renew and reauthorize return
None/False (the caller creates a new one and runs a delta round), delete returns False
(already gone); a create answered 404 means the calendar is gone (CalendarGone). Other
failures raise `feed_errors` (`fetch_wire.classify_error`; transport errors and unreadable
answers are FetchFailed; a refused handshake is Graph's 400 ValidationError: FetchFailed).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from streams.logic.calendar.rounds import CalendarRef

from connectors.calendar.feed_errors import FetchFailed
from connectors.calendar.graph import channel_wire, fetch_wire
from connectors.calendar.graph.wire import Request


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _call(
    http: httpx.AsyncClient, base_url: str, token: str, request: Request
) -> tuple[int, Any]:
    """(status, JSON body or None) of a 2xx or 404 answer; raises for the others."""
    try:
        answer = await http.request(
            request.method, base_url.rstrip("/") + request.path, json=request.json,
            headers={"Authorization": f"Bearer {token}", **request.headers},
        )  # fmt: skip
    except httpx.HTTPError as exc:
        raise FetchFailed(f"Graph subscription call failed: {type(exc).__name__}") from None
    try:
        body = answer.json() if answer.content else None
    except ValueError:
        body = None
    if answer.is_success or channel_wire.is_unknown(answer.status_code):
        return answer.status_code, body
    raise fetch_wire.classify_error(answer.status_code, body, answer.headers.get("Retry-After"))


def _subscription(body: Any) -> channel_wire.Subscription:
    try:
        return channel_wire.parse_subscription(body)
    except ValueError:
        raise FetchFailed("Graph answered something that is not a subscription") from None


async def create_subscription(
    http: httpx.AsyncClient, base_url: str, token: str, calendar: CalendarRef, *,
    notification_url: str, lifecycle_url: str, client_state: str, now_ms: int | None = None,
) -> channel_wire.Subscription:  # fmt: skip
    """A new subscription on `calendar`'s events (see the module docstring)."""
    request = channel_wire.create_request(
        calendar, notification_url, lifecycle_url, client_state, now_ms or _now_ms()
    )
    status, body = await _call(http, base_url, token, request)
    if channel_wire.is_unknown(status):
        raise fetch_wire.classify_error(status, body)  # the mailbox or calendar is gone
    return _subscription(body)


async def renew_subscription(
    http: httpx.AsyncClient, base_url: str, token: str, subscription_id: str,
    *, now_ms: int | None = None, minutes: int = channel_wire.LIFETIME_MIN,
) -> channel_wire.Subscription | None:  # fmt: skip
    """The renewed subscription, or None when Graph no longer knows it."""
    request = channel_wire.renew_request(subscription_id, now_ms or _now_ms(), minutes)
    status, body = await _call(http, base_url, token, request)
    return None if channel_wire.is_unknown(status) else _subscription(body)


async def reauthorize(
    http: httpx.AsyncClient, base_url: str, token: str, subscription_id: str
) -> bool:
    """True once reauthorized; False when Graph no longer knows the subscription."""
    status, _ = await _call(
        http, base_url, token, channel_wire.reauthorize_request(subscription_id)
    )
    return not channel_wire.is_unknown(status)


async def delete_subscription(
    http: httpx.AsyncClient, base_url: str, token: str, subscription_id: str
) -> bool:
    """True when deleted now; False when it was already gone."""
    status, _ = await _call(http, base_url, token, channel_wire.delete_request(subscription_id))
    return not channel_wire.is_unknown(status)
