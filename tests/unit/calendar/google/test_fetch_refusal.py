"""What a refused events.list means for the feed (`fetch_wire.refusal`): every rate limit
Google documents is a wait, never a gone calendar."""

from __future__ import annotations

from connectors.calendar.feed_errors import CalendarGone, Throttled
from connectors.calendar.google.fetch_wire import refusal


def google_error(status: int, reason: str, domain: str = "global") -> dict[str, object]:
    errors = [{"domain": domain, "reason": reason, "message": reason}]
    return {"error": {"code": status, "message": reason, "errors": errors}}


def test_a_usage_limits_403_of_any_reason_is_a_throttle() -> None:
    for reason in ("userRateLimitExceeded", "rateLimitExceeded", "someFutureLimit"):
        got = refusal(403, google_error(403, reason, "usageLimits"), None)
        assert isinstance(got, Throttled), reason


def test_a_throttle_honours_retry_after() -> None:
    got = refusal(429, google_error(429, "rateLimitExceeded", "usageLimits"), "7")
    assert isinstance(got, Throttled) and got.retry_after_s == 7.0


def test_a_403_forbidden_is_still_a_gone_calendar() -> None:
    assert isinstance(refusal(403, google_error(403, "forbidden"), None), CalendarGone)
