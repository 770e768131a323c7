"""A calendar's sync status."""

from __future__ import annotations

from streams.logic.calendar.health import status

HOUR = 3_600_000


def test_recent_success_with_push_is_healthy() -> None:
    assert (
        status(now_ms=10 * HOUR, interval_ms=HOUR, last_success_ms=9 * HOUR, push_live=True)
        == "healthy"
    )


def test_recent_success_without_push_is_polling_only() -> None:
    assert (
        status(now_ms=10 * HOUR, interval_ms=HOUR, last_success_ms=9 * HOUR, push_live=False)
        == "polling_only"
    )


def test_no_success_within_twice_the_interval_is_stale() -> None:
    assert (
        status(now_ms=10 * HOUR, interval_ms=HOUR, last_success_ms=7 * HOUR, push_live=True)
        == "stale"
    )


def test_a_new_calendar_is_not_stale_before_its_first_interval_passes() -> None:
    assert (
        status(
            now_ms=HOUR, interval_ms=HOUR, last_success_ms=None, push_live=False, added_ms=HOUR - 5
        )
        == "polling_only"
    )


def test_refused_credentials_win_over_staleness() -> None:
    assert (
        status(now_ms=10 * HOUR, interval_ms=HOUR, last_success_ms=0, push_live=True, reauth=True)
        == "reauth_required"
    )


def test_a_gone_calendar_is_disabled() -> None:
    assert (
        status(now_ms=0, interval_ms=HOUR, last_success_ms=0, push_live=True, gone=True)
        == "disabled"
    )
