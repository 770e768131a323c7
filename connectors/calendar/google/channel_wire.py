"""Google push channels on the wire: the `events.watch` and `channels.stop` requests, the
watch answer as a `Channel`, and what an error answer means (a `FetchError`). Pure.

    watch_request(calendar_id, channel_id, token, address, ttl_s)  POST .../events/watch
    stop_request(channel)                                          POST /calendar/v3/channels/stop
    parse_watch(body, calendar_key, now_ms) -> Channel             pending_sync until its sync
    error_for(status, body, retry_after, now_s) -> FetchError

Errors: 401 ReauthRequired; 404 CalendarGone (the calendar was deleted or unshared); 429,
or 403 with a rate-limit reason (rateLimitExceeded, userRateLimitExceeded, quotaExceeded,
or the `usageLimits` domain) Throttled for Retry-After seconds (DEFAULT_RETRY_AFTER_S
without one); another 403 CalendarGone (access lost); 5xx and anything else FetchFailed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from streams.logic.calendar.channels import Channel

from connectors.calendar.feed_errors import (
    CalendarGone,
    FetchError,
    FetchFailed,
    ReauthRequired,
    Throttled,
)
from connectors.calendar.google.wire import Request, error_reason
from connectors.sinks.answer import parse_retry_after

MAX_CHANNEL_ID = 64
MAX_TOKEN = 256
DEFAULT_RETRY_AFTER_S = 30.0
STOP_PATH = "/calendar/v3/channels/stop"
RATE_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded"}
)


class BadWatchAnswer(ValueError):
    """A 2xx watch answer without a channel id, resource id or expiration."""


def watch_path(calendar_id: str) -> str:
    return f"/calendar/v3/calendars/{quote(calendar_id, safe='')}/events/watch"


def watch_request(
    calendar_id: str, channel_id: str, token: str, address: str, ttl_s: int
) -> Request:
    """The events.watch call; ValueError for an id over 64 or a token over 256 characters,
    or a ttl that is not positive."""
    if not 0 < len(channel_id) <= MAX_CHANNEL_ID:
        raise ValueError(f"a channel id has 1 to {MAX_CHANNEL_ID} characters")
    if len(token) > MAX_TOKEN:
        raise ValueError(f"a channel token has at most {MAX_TOKEN} characters")
    if ttl_s <= 0:
        raise ValueError("a channel ttl must be positive")
    body = {"id": channel_id, "type": "web_hook", "address": address, "token": token,
            "params": {"ttl": str(ttl_s)}}  # fmt: skip
    return Request("POST", watch_path(calendar_id), json=body)


def stop_request(channel: Channel) -> Request:
    """The channels.stop call (the channel's id and the resource id Google gave it)."""
    return Request("POST", STOP_PATH, json={"id": channel.channel_id,
                                            "resourceId": channel.resource_id})  # fmt: skip


def parse_watch(body: Any, calendar_key: str, now_ms: int) -> Channel:
    """The channel a watch answer describes, `pending_sync`, created `now_ms`, expiring when
    Google says (its `expiration` is authoritative); BadWatchAnswer when it lacks one."""
    if not isinstance(body, Mapping):
        raise BadWatchAnswer("the watch answer is not a JSON object")
    channel_id, resource, expiration = (
        body.get("id"),
        body.get("resourceId"),
        body.get("expiration"),
    )
    if not isinstance(channel_id, str) or not channel_id:
        raise BadWatchAnswer("the watch answer has no channel id")
    if not isinstance(resource, str) or not resource:
        raise BadWatchAnswer("the watch answer has no resourceId")
    try:
        expires = int(str(expiration))
    except ValueError:
        raise BadWatchAnswer("the watch answer has no expiration in milliseconds") from None
    return Channel(channel_id, calendar_key, "google", resource, expires, now_ms, "pending_sync")


def _domain(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, Mapping) else None
    errors = error.get("errors") if isinstance(error, Mapping) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        domain = errors[0].get("domain")
        return domain if isinstance(domain, str) else None
    return None


def rate_limited(status: int, body: Any) -> bool:
    """A 429, or a 403 naming a rate-limit reason or the `usageLimits` domain."""
    reason = error_reason(body)
    return status == 429 or (
        status == 403 and (reason in RATE_REASONS or _domain(body) == "usageLimits")
    )


def error_for(
    status: int, body: Any, retry_after: str | None = None, *, now_s: float | None = None
) -> FetchError:
    """The FetchError a non-2xx channel answer means (see the module docstring)."""
    reason = error_reason(body)
    what = f"Google answered {status}" + (f" {reason}" if reason else "")
    if status == 401:
        return ReauthRequired(what)
    if rate_limited(status, body):
        wait = parse_retry_after(retry_after, now_s=now_s)
        return Throttled(what, DEFAULT_RETRY_AFTER_S if wait is None else wait)
    if status in (403, 404):
        return CalendarGone(what)
    return FetchFailed(what)
