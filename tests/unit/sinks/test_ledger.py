"""The delivery ledger's fold and decisions (streams.logic.ledger) and the offset tracker."""

from __future__ import annotations

from typing import Any

from connectors.sinks.tracker import OffsetTracker
from streams.logic.ledger import LedgerState
from streams.topics import DELIVER, Destination

T = DELIVER[Destination.SLACK].deliver.name


def result(outcome: str, *, delivery: str = "d1", offset: int = 5, version: int = 10,
           destination: str = "slack", target: str = "slack:C1") -> dict[str, Any]:  # fmt: skip
    return {
        "delivery_id": delivery, "destination": destination, "target": target,
        "outcome": outcome, "aggregate_id": "w1", "aggregate_version": version,
        "event_type": "wedding.date_changed",
        "source_topic": T, "source_partition": 0, "source_offset": offset,
    }  # fmt: skip


def record(delivery: str = "d1", version: int = 10,
           event_type: str = "wedding.date_changed") -> dict[str, Any]:  # fmt: skip
    return {"delivery_id": delivery, "aggregate_id": "w1", "aggregate_version": version,
            "event_type": event_type}  # fmt: skip


def test_a_record_with_a_result_at_its_position_was_processed() -> None:
    ledger = LedgerState("slack")
    ledger.apply(result("retry_scheduled", offset=5))
    assert ledger.decide(record(), "slack:C1", (T, 0, 5)) == "processed"


def test_a_delivered_delivery_read_at_another_position_is_a_duplicate() -> None:
    ledger = LedgerState("slack")
    ledger.apply(result("delivered", offset=5))
    assert ledger.decide(record(), "slack:C1", (T, 0, 6)) == "delivered"


def test_a_dead_lettered_delivery_may_be_delivered_again_by_a_replay() -> None:
    ledger = LedgerState("slack")
    ledger.apply(result("dead_lettered", offset=5))
    assert ledger.decide(record(), "slack:C1", (T, 0, 6)) == "deliver"


def test_an_older_version_than_one_delivered_to_the_target_is_stale() -> None:
    ledger = LedgerState("slack")
    ledger.apply(result("delivered", delivery="new", version=20))
    assert ledger.decide(record("old", version=10), "slack:C1", (T, 0, 9)) == "stale"


def test_the_same_aggregate_to_another_target_is_not_stale() -> None:
    ledger = LedgerState("slack")
    ledger.apply(result("delivered", delivery="new", version=20))
    assert ledger.decide(record("old", version=10), "slack:C2", (T, 0, 9)) == "deliver"


def test_another_event_type_of_the_same_aggregate_is_not_stale() -> None:
    ledger = LedgerState("slack")
    ledger.apply(result("delivered", delivery="new", version=20))
    older = record("old", version=10, event_type="client.profile_updated")
    assert ledger.decide(older, "slack:C1", (T, 0, 9)) == "deliver"


def test_a_failed_newer_version_does_not_make_an_older_one_stale() -> None:
    ledger = LedgerState("slack")
    ledger.apply(result("dead_lettered", delivery="new", version=20))
    assert ledger.decide(record("old", version=10), "slack:C1", (T, 0, 9)) == "deliver"


def test_results_of_other_destinations_are_ignored() -> None:
    ledger = LedgerState("slack")
    ledger.apply(result("delivered", destination="email"))
    assert ledger.decide(record(), "slack:C1", (T, 0, 6)) == "deliver"


def test_the_commit_position_stops_at_the_lowest_unfinished_offset() -> None:
    tracker = OffsetTracker()
    for offset in (3, 4, 5):
        tracker.add((T, 0), offset)
    tracker.done((T, 0), 5)
    tracker.done((T, 0), 3)
    assert tracker.committable() == {(T, 0): 4}


def test_the_commit_position_is_past_the_last_when_all_finished() -> None:
    tracker = OffsetTracker()
    for offset in (3, 4):
        tracker.add((T, 0), offset)
        tracker.done((T, 0), offset)
    assert tracker.committable() == {(T, 0): 5}


def test_a_committed_position_is_not_offered_again() -> None:
    tracker = OffsetTracker()
    tracker.add((T, 0), 3)
    tracker.done((T, 0), 3)
    tracker.mark_committed(tracker.committable())
    assert tracker.committable() == {}


def test_customer_webhooks_get_every_event_even_an_older_one() -> None:
    """Customer webhooks are an event log (Standard Webhooks: every message, receivers order
    by timestamp); six form responses of one supplier share its aggregate, and skipping the
    older ones after a retry lost five of them in `make run`."""
    ledger = LedgerState("webhook")
    ledger.apply(result("delivered", delivery="new", version=20, destination="webhook",
                        target="webhook:ep-1"))  # fmt: skip
    assert ledger.decide(record("old", version=10), "webhook:ep-1", (T, 0, 9)) == "deliver"
