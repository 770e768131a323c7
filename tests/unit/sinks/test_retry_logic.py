"""Retry schedule and breaker (streams.logic.retry): pure, clock passed in. The token bucket
(streams.logic.ratelimit) is tested in tests/unit/webhooks/test_webhook_dedupe.py."""

from __future__ import annotations

from streams.logic.retry import STANDARD_WEBHOOKS_S, Breaker, RetryPolicy


def test_the_default_schedule_spans_about_three_days() -> None:
    total = sum(RetryPolicy().schedule)
    assert 2.5 * 86_400 < total < 3.5 * 86_400


def test_the_default_schedule_is_the_standard_webhooks_one() -> None:
    assert STANDARD_WEBHOOKS_S == (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)


def test_attempts_allowed_are_one_more_than_the_retries() -> None:
    policy = RetryPolicy((1.0, 2.0))
    assert [policy.exhausted(a) for a in range(3)] == [False, False, True]


def test_delays_grow_along_the_schedule_without_jitter() -> None:
    policy = RetryPolicy((5.0, 300.0, 1800.0), jitter=0.0)
    assert [policy.delay(a) for a in range(3)] == [5.0, 300.0, 1800.0]


def test_jitter_stays_within_its_band() -> None:
    policy = RetryPolicy((100.0,), jitter=0.2)
    assert policy.delay(0, rand=lambda: 0.0) == 80.0
    assert policy.delay(0, rand=lambda: 1.0) == 120.0


def test_retry_after_is_a_floor_even_when_the_schedule_is_shorter() -> None:
    policy = RetryPolicy((5.0,), jitter=0.2)
    assert policy.delay(0, retry_after=60.0, rand=lambda: 0.0) == 60.0
    assert policy.delay(0, retry_after=60.0, rand=lambda: 1.0) == 61.0


def test_a_breaker_opens_after_the_threshold_of_consecutive_failures() -> None:
    breaker = Breaker(threshold=3, cooldown_s=10.0)
    for _ in range(2):
        breaker.failure(now=0.0)
    assert breaker.allow(1.0)
    breaker.failure(now=1.0)
    assert not breaker.allow(2.0)
    assert breaker.reopens_at() == 11.0


def test_a_success_resets_the_failure_count() -> None:
    breaker = Breaker(threshold=2)
    breaker.failure(0.0)
    breaker.success()
    breaker.failure(0.0)
    assert breaker.allow(0.0)


def test_after_the_cooldown_one_probe_goes_and_the_rest_wait() -> None:
    breaker = Breaker(threshold=1, cooldown_s=10.0)
    breaker.failure(0.0)
    assert breaker.allow(10.0)
    assert not breaker.allow(10.0)


def test_a_failed_probe_doubles_the_cooldown() -> None:
    breaker = Breaker(threshold=1, cooldown_s=10.0)
    breaker.failure(0.0)
    assert breaker.allow(10.0)
    breaker.failure(10.0)
    assert breaker.reopens_at() == 30.0


def test_a_successful_probe_closes_the_breaker() -> None:
    breaker = Breaker(threshold=1, cooldown_s=10.0)
    breaker.failure(0.0)
    breaker.allow(10.0)
    breaker.success()
    assert breaker.allow(10.0) and breaker.allow(10.0)
