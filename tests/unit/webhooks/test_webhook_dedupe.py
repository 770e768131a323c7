"""The delivery-id window and the token bucket (pure, clock passed in)."""

from __future__ import annotations

from connectors.sources.webhooks.dedupe import DedupeWindow
from streams.logic.ratelimit import TokenBucket


def test_an_id_is_not_seen_before_it_is_marked() -> None:
    assert not DedupeWindow(60).seen("a", 0.0)


def test_a_marked_id_is_seen_within_the_window() -> None:
    window = DedupeWindow(60)
    window.mark("a", 0.0)
    assert window.seen("a", 59.0)


def test_a_marked_id_is_forgotten_after_the_window() -> None:
    window = DedupeWindow(60)
    window.mark("a", 0.0)
    assert not window.seen("a", 60.5)


def test_marking_again_extends_the_window() -> None:
    window = DedupeWindow(60)
    window.mark("a", 0.0)
    window.mark("a", 50.0)
    assert window.seen("a", 100.0)


def test_the_window_drops_the_oldest_ids_beyond_max_entries() -> None:
    window = DedupeWindow(60, max_entries=2)
    for i, key in enumerate("abc"):
        window.mark(key, float(i))
    assert (window.seen("a", 3.0), window.seen("c", 3.0), len(window)) == (False, True, 2)


def test_expired_ids_are_removed_from_memory() -> None:
    window = DedupeWindow(10)
    window.mark("a", 0.0)
    window.mark("b", 20.0)
    assert len(window) == 1


def test_bucket_admits_a_burst() -> None:
    bucket = TokenBucket(rate=1, burst=3, now=0.0)
    assert [bucket.try_acquire(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]


def test_bucket_refuses_beyond_the_burst_and_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate=2, burst=1, now=0.0)
    bucket.try_acquire(0.0)
    assert bucket.try_acquire(0.0) == 0.5


def test_bucket_refills_at_the_rate() -> None:
    bucket = TokenBucket(rate=2, burst=1, now=0.0)
    bucket.try_acquire(0.0)
    assert bucket.try_acquire(0.5) == 0.0


def test_retry_after_is_at_least_one_whole_second() -> None:
    assert (TokenBucket.retry_after_header(0.01), TokenBucket.retry_after_header(2.2)) == ("1", "3")
