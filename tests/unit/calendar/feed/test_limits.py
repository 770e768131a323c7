"""The feed's request limiter (streams/logic/calendar/limits.py): per Google user and per
project buckets, Graph's 4 requests at once per mailbox, a provider's throttle holding back
only its own key, idle keys forgotten."""

from __future__ import annotations

import pytest
from streams.logic.calendar.limits import (
    CALDAV_HOST,
    GOOGLE_PROJECT,
    GOOGLE_USER,
    GRAPH_MAILBOX,
    FeedRates,
    Limit,
    Limiter,
    account_slot,
    slots,
)

T0 = 1000.0


def admitted(limiter: Limiter, wanted: tuple[tuple[str, str], ...], now: float, n: int) -> int:
    return sum(limiter.try_acquire(wanted, now) == 0.0 for _ in range(n))


def one_request(limiter: Limiter, wanted: tuple[tuple[str, str], ...], now: float) -> None:
    assert limiter.try_acquire(wanted, now) == 0.0
    limiter.release(wanted, now)


def google_limiter(user: Limit, project: Limit) -> Limiter:
    return Limiter({GOOGLE_USER: user, GOOGLE_PROJECT: project})


def test_a_google_user_gets_its_burst_then_waits_for_its_rate() -> None:
    limiter = google_limiter(Limit(1.0, 5), Limit(100.0, 100))
    assert admitted(limiter, slots("google", "u1"), T0, 8) == 5
    assert limiter.try_acquire(slots("google", "u1"), T0) == pytest.approx(1.0)
    assert admitted(limiter, slots("google", "u1"), T0 + 2.0, 3) == 2


def test_one_google_users_bucket_does_not_hold_back_another() -> None:
    limiter = google_limiter(Limit(1.0, 2), Limit(100.0, 100))
    admitted(limiter, slots("google", "u1"), T0, 5)
    assert admitted(limiter, slots("google", "u2"), T0, 2) == 2


def test_the_project_bucket_caps_every_user_together() -> None:
    limiter = google_limiter(Limit(10.0, 10), Limit(1.0, 6))
    got = sum(admitted(limiter, slots("google", f"u{n}"), T0, 10) for n in range(3))
    assert got == 6
    assert limiter.try_acquire(slots("google", "u9"), T0) == pytest.approx(1.0)


def test_a_refused_request_takes_no_token_from_its_other_slots() -> None:
    limiter = google_limiter(Limit(1.0, 3), Limit(1.0, 1))
    assert admitted(limiter, slots("google", "u1"), T0, 3) == 1  # the project said no twice
    assert admitted(limiter, slots("google", "u1"), T0 + 1.0, 1) == 1  # u1 still had 2 left
    assert admitted(limiter, slots("google", "u1"), T0 + 2.0, 1) == 1


def test_a_graph_mailbox_has_at_most_four_requests_in_flight() -> None:
    limiter = Limiter(FeedRates().limits())
    box = slots("graph", "mailbox-1")
    assert admitted(limiter, box, T0, 6) == 4
    assert limiter.try_acquire(box, T0) is None  # wait for a release, not for time
    limiter.release(box, T0)
    assert limiter.try_acquire(box, T0) == 0.0
    assert limiter.try_acquire(slots("graph", "mailbox-2"), T0) == 0.0


def test_graph_admits_at_most_burst_plus_rate_in_ten_minutes() -> None:
    rates = FeedRates(graph_requests_per_window=600, graph_window_s=600, graph_burst=20)
    limiter = Limiter(rates.limits())
    box = slots("graph", "mailbox-1")
    total = 0
    for second in range(600):
        for _ in range(5):
            if limiter.try_acquire(box, T0 + second) == 0.0:
                total += 1
                limiter.release(box, T0 + second)
    assert total <= 20 + 600


def test_a_retry_after_delays_that_key_alone() -> None:
    limiter = google_limiter(Limit(10.0, 10), Limit(100.0, 100))
    assert limiter.throttled(account_slot("google", "u1"), 30.0, T0) == 30.0
    assert limiter.try_acquire(slots("google", "u1"), T0 + 1) == pytest.approx(29.0)
    assert limiter.try_acquire(slots("google", "u2"), T0 + 1) == 0.0
    assert limiter.try_acquire(slots("google", "u1"), T0 + 30) == 0.0


def test_throttles_in_a_row_back_off_further_until_a_success() -> None:
    limiter = google_limiter(Limit(10.0, 10), Limit(100.0, 100))
    slot, now, waits = account_slot("google", "u1"), T0, []
    for _ in range(4):
        waits.append(limiter.throttled(slot, 0.0, now))
        now += waits[-1]
    assert waits == [1.0, 2.0, 4.0, 8.0]
    limiter.succeeded(slot)
    assert limiter.throttled(slot, 0.0, now) == 1.0


def test_the_backoff_is_truncated() -> None:
    limiter = Limiter({GOOGLE_USER: Limit(1.0, 1)}, max_backoff_s=64.0)
    slot, now = account_slot("google", "u1"), T0
    for _ in range(12):
        now += limiter.throttled(slot, 0.0, now)
    assert limiter.throttled(slot, 0.0, now) == 64.0


def test_idle_keys_are_dropped_and_busy_ones_kept() -> None:
    limiter = Limiter(FeedRates().limits())
    for n in range(100):
        one_request(limiter, slots("google", f"u{n}"), T0)
    limiter.try_acquire(slots("graph", "busy"), T0)  # still in flight
    limiter.throttled(account_slot("google", "held"), 600.0, T0)  # waiting out a Retry-After
    assert len(limiter) > 100
    limiter.sweep(T0 + 60)  # every google bucket saved up its burst again
    assert len(limiter) == 2


def test_try_acquire_sweeps_by_itself() -> None:
    limiter = Limiter(FeedRates().limits(), sweep_every_s=60)
    for n in range(50):
        one_request(limiter, slots("google", f"u{n}"), T0)
    limiter.try_acquire(slots("google", "late"), T0 + 120)
    assert len(limiter) == 2  # late's user slot and the project's


def test_a_dropped_key_starts_as_it_would_have_been() -> None:
    limiter = google_limiter(Limit(1.0, 3), Limit(100.0, 100))
    for _ in range(3):
        one_request(limiter, slots("google", "u1"), T0)
    limiter.sweep(T0 + 10)
    assert len(limiter) == 0
    assert admitted(limiter, slots("google", "u1"), T0 + 10, 5) == 3


def test_a_request_in_flight_keeps_its_key() -> None:
    limiter = google_limiter(Limit(1.0, 3), Limit(100.0, 100))
    limiter.try_acquire(slots("google", "u1"), T0)
    limiter.sweep(T0 + 3600)
    assert len(limiter) == 2


def test_caldav_requests_to_one_server_are_capped_across_accounts() -> None:
    limiter = Limiter(FeedRates(caldav_host_concurrency=3).limits())
    got = sum(
        limiter.try_acquire(slots("caldav", f"a{n}", "caldav.icloud.com"), T0) == 0.0
        for n in range(5)
    )
    assert got == 3
    assert limiter.try_acquire(slots("caldav", "a9", "other.example"), T0) == 0.0
    assert (CALDAV_HOST, "caldav.icloud.com") in slots("caldav", "a1", "caldav.icloud.com")


def test_a_graph_throttle_is_charged_to_the_mailbox() -> None:
    assert account_slot("graph", "m1") == (GRAPH_MAILBOX, "m1")
    assert account_slot("google", "u1") == (GOOGLE_USER, "u1")
