"""The ack tracker: a WAL position is confirmable only when everything up to it is in Kafka."""

from __future__ import annotations

from connectors.sources.postgres_cdc.acks import AckTracker


def test_committed_transaction_is_confirmable_once_every_event_is_acked():
    tracker = AckTracker()
    tx = tracker.begin()
    tracker.sent(tx)
    tracker.sent(tx)
    tracker.commit(tx, 100)
    tracker.acked(tx)
    assert tracker.advance() == 0
    tracker.acked(tx)
    assert tracker.advance() == 100


def test_uncommitted_transaction_is_not_confirmable():
    tracker = AckTracker()
    tx = tracker.begin()
    tracker.sent(tx)
    tracker.acked(tx)
    assert tracker.advance() == 0


def test_later_transaction_waits_for_an_earlier_unacked_one():
    tracker = AckTracker()
    first, second = tracker.begin(), tracker.begin()
    tracker.sent(first)
    tracker.commit(first, 100)
    tracker.commit(second, 200)  # no events (filtered): acked trivially
    assert tracker.advance() == 0
    tracker.acked(first)
    assert tracker.advance() == 200


def test_failed_delivery_freezes_the_confirmable_position():
    tracker = AckTracker()
    first = tracker.begin()
    tracker.commit(first, 100)
    assert tracker.advance() == 100
    second = tracker.begin()
    tracker.sent(second)
    tracker.sent(second)
    tracker.commit(second, 200)
    tracker.acked(second, "_MSG_TIMED_OUT")
    tracker.acked(second)
    assert tracker.advance() == 100
    assert tracker.failure == "_MSG_TIMED_OUT"
    assert not tracker.idle


def test_idle_when_every_transaction_is_released():
    tracker = AckTracker()
    assert tracker.idle
    tx = tracker.begin()
    assert not tracker.idle
    tracker.commit(tx, 10)
    tracker.advance()
    assert tracker.idle
