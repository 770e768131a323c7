"""What a sink keeps in the compacted ledger and where its start reads the results from
(streams.logic.ledger: `kept_keys`, `apply_kept`, `window_start_ms`)."""

from __future__ import annotations

from typing import Any

from streams.logic.ledger import SEP, LedgerState, window_start_ms
from streams.topics import DELIVER, Destination

T = DELIVER[Destination.SLACK].deliver.name
HOUR_MS = 3_600_000


def result(outcome: str = "delivered", *, delivery: str = "d1", version: int = 10,
           event_type: str = "wedding.date_changed",
           offset: int = 5) -> dict[str, Any]:  # fmt: skip
    return {
        "delivery_id": delivery, "destination": "slack", "target": "slack:C1",
        "outcome": outcome, "aggregate_id": "w1", "aggregate_version": version,
        "event_type": event_type, "source_topic": T, "source_partition": 0,
        "source_offset": offset,
    }  # fmt: skip


def record(delivery: str, version: int, event_type: str = "wedding.date_changed") -> dict[str, Any]:
    return {"delivery_id": delivery, "aggregate_id": "w1", "aggregate_version": version,
            "event_type": event_type}  # fmt: skip


def folded(*results: dict[str, Any]) -> LedgerState:
    ledger = LedgerState("slack")
    for r in results:
        ledger.apply(r)
    return ledger


def test_the_newest_delivered_version_is_kept_under_its_target_and_entity() -> None:
    ledger = folded(result())
    assert ledger.kept_keys(result()) == [SEP.join(("slack:C1", "wedding", "w1"))]


def test_a_delivered_version_older_than_the_newest_is_not_kept() -> None:
    ledger = folded(result(delivery="new", version=20), result(delivery="old", version=10))
    assert ledger.kept_keys(result(delivery="old", version=10)) == []


def test_a_delivered_fact_is_not_kept() -> None:
    fact = result(event_type="form.response_received")
    assert folded(fact).kept_keys(fact) == []


def test_a_replayed_fact_that_was_delivered_is_kept_by_its_delivery() -> None:
    fact = result(event_type="form.response_received")
    assert folded(fact).kept_keys(fact, replayed=True) == [SEP.join(("replay", "d1"))]


def test_an_attempt_that_did_not_deliver_is_not_kept() -> None:
    retry = result("retry_scheduled")
    assert folded(retry).kept_keys(retry, replayed=True) == []


def test_a_kept_version_read_back_makes_an_older_one_stale() -> None:
    ledger = LedgerState("slack")
    ledger.apply_kept(result(delivery="new", version=20))
    assert ledger.decide(record("old", 10), "slack:C1", (T, 0, 9)) == "stale"


def test_a_kept_version_read_back_makes_its_copy_a_duplicate() -> None:
    ledger = LedgerState("slack")
    ledger.apply_kept(result(delivery="new", version=20))
    assert ledger.decide(record("new", 20), "slack:C1", (T, 0, 9)) == "delivered"


def test_a_kept_result_read_back_marks_no_position_processed() -> None:
    """Its record was committed long ago; the log may have been recreated since."""
    ledger = LedgerState("slack")
    ledger.apply_kept(result(delivery="new", version=20, offset=9))
    assert ledger.decide(record("other", 30), "slack:C1", (T, 0, 9)) == "deliver"


def test_with_everything_committed_the_window_is_the_copy_window() -> None:
    assert window_start_ms(10 * HOUR_MS, None, copy_window_ms=HOUR_MS, skew_ms=60_000) == (
        9 * HOUR_MS
    )


def test_an_older_uncommitted_record_widens_the_window_to_it_less_the_skew() -> None:
    start = window_start_ms(10 * HOUR_MS, 2 * HOUR_MS, copy_window_ms=HOUR_MS, skew_ms=60_000)
    assert start == 2 * HOUR_MS - 60_000


def test_a_recent_uncommitted_record_keeps_the_copy_window() -> None:
    start = window_start_ms(10 * HOUR_MS, 10 * HOUR_MS, copy_window_ms=HOUR_MS, skew_ms=60_000)
    assert start == 9 * HOUR_MS


def test_the_window_never_starts_before_time_zero() -> None:
    assert window_start_ms(1_000, 500, copy_window_ms=HOUR_MS, skew_ms=60_000) == 0
