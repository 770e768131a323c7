"""Google channel requests, the watch answer and error answers (channel_wire.py)."""

from __future__ import annotations

from typing import Any

import pytest
from connectors.calendar.feed_errors import (
    CalendarGone,
    FetchFailed,
    ReauthRequired,
    Throttled,
)
from connectors.calendar.google.channel_wire import (
    DEFAULT_RETRY_AFTER_S,
    BadWatchAnswer,
    error_for,
    parse_watch,
    stop_request,
    watch_request,
)
from streams.logic.calendar.channels import Channel

ANSWER = {"kind": "api#channel", "id": "chan-1", "resourceId": "res-1",
          "resourceUri": "https://www.googleapis.com/calendar/v3/calendars/primary/events",
          "token": "v1.x.y", "expiration": "1780604800000"}  # fmt: skip


def google_error(status: int, reason: str, domain: str = "global") -> dict[str, Any]:
    return {
        "error": {
            "code": status,
            "message": reason,
            "errors": [{"domain": domain, "reason": reason, "message": reason}],
        }
    }


def test_the_watch_request_has_the_documented_body() -> None:
    request = watch_request("vendor@example.com", "chan-1", "tok", "https://in.example/g", 3600)
    assert (request.method, request.path) == (
        "POST", "/calendar/v3/calendars/vendor%40example.com/events/watch")  # fmt: skip
    assert request.json == {"id": "chan-1", "type": "web_hook", "address": "https://in.example/g",
                            "token": "tok", "params": {"ttl": "3600"}}  # fmt: skip


@pytest.mark.parametrize(
    ("channel_id", "token", "ttl"),
    [("", "t", 1), ("c" * 65, "t", 1), ("c", "t" * 257, 1), ("c", "t", 0)],
)
def test_a_watch_request_outside_googles_limits_is_refused(
    channel_id: str, token: str, ttl: int
) -> None:
    with pytest.raises(ValueError):
        watch_request("primary", channel_id, token, "https://in.example/g", ttl)


def test_the_stop_request_names_the_channel_and_its_resource() -> None:
    channel = Channel("chan-1", "google:i:primary", "google", "res-1", 2, 1, "active")
    request = stop_request(channel)
    assert (request.path, request.json) == (
        "/calendar/v3/channels/stop", {"id": "chan-1", "resourceId": "res-1"})  # fmt: skip


def test_a_watch_answer_is_a_pending_channel_expiring_when_google_says() -> None:
    channel = parse_watch(ANSWER, "google:i:primary", 1_780_000_000_000)
    assert channel == Channel("chan-1", "google:i:primary", "google", "res-1", 1_780_604_800_000,
                              1_780_000_000_000, "pending_sync")  # fmt: skip


@pytest.mark.parametrize("missing", ["id", "resourceId", "expiration"])
def test_a_watch_answer_without_its_ids_or_expiration_is_refused(missing: str) -> None:
    body = {k: v for k, v in ANSWER.items() if k != missing}
    with pytest.raises(BadWatchAnswer):
        parse_watch(body, "google:i:primary", 0)


def test_a_watch_answer_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(BadWatchAnswer):
        parse_watch(["x"], "k", 0)


def test_401_means_reauth() -> None:
    assert isinstance(error_for(401, google_error(401, "authError")), ReauthRequired)


def test_404_means_the_calendar_is_gone() -> None:
    assert isinstance(error_for(404, google_error(404, "notFound")), CalendarGone)


def test_403_forbidden_means_access_to_the_calendar_is_lost() -> None:
    assert isinstance(error_for(403, google_error(403, "forbidden")), CalendarGone)


@pytest.mark.parametrize(
    ("status", "reason", "domain"),
    [
        (403, "rateLimitExceeded", "usageLimits"),
        (403, "userRateLimitExceeded", "usageLimits"),
        (403, "somethingElse", "usageLimits"),
        (429, "rateLimitExceeded", "global"),
    ],
)
def test_rate_limits_mean_throttled(status: int, reason: str, domain: str) -> None:
    error = error_for(status, google_error(status, reason, domain), "7")
    assert isinstance(error, Throttled) and error.retry_after_s == 7.0


def test_a_throttle_without_retry_after_waits_the_default() -> None:
    error = error_for(429, None)
    assert isinstance(error, Throttled) and error.retry_after_s == DEFAULT_RETRY_AFTER_S


@pytest.mark.parametrize("status", [500, 502, 503, 400])
def test_server_errors_and_other_answers_are_transient_failures(status: int) -> None:
    assert type(error_for(status, google_error(status, "backendError"))) is FetchFailed
