"""When the delivery ledger supersedes a delivery (streams.logic.ledger, streams.logic.entities):
only a newer version of the same entity state, delivered to the same target, makes one stale;
distinct facts of one supplier never supersede each other, however late a retry comes."""

from __future__ import annotations

from typing import Any

import pytest
from streams.logic import entities
from streams.logic.ledger import LedgerState
from streams.logic.rules import load_rules
from streams.topics import DELIVER, Destination

TOPIC = DELIVER[Destination.EMAIL].retry.name
TARGET = "email:supplier-1"


def delivered(delivery: str, event_type: str, aggregate: str, version: int) -> dict[str, Any]:
    """The ledger record of a delivery that went out to TARGET."""
    return {
        "delivery_id": delivery, "destination": "email", "target": TARGET,
        "outcome": "delivered", "event_type": event_type, "aggregate_id": aggregate,
        "aggregate_version": version, "source_topic": DELIVER[Destination.EMAIL].deliver.name,
        "source_partition": 0, "source_offset": version,
    }  # fmt: skip


def retried(delivery: str, event_type: str, aggregate: str, version: int) -> dict[str, Any]:
    return {"delivery_id": delivery, "event_type": event_type, "aggregate_id": aggregate,
            "aggregate_version": version}  # fmt: skip


def after_newer(event_type: str, aggregate: str = "supplier-1") -> LedgerState:
    """A ledger where a newer delivery of `event_type` (version 200) went out to TARGET."""
    ledger = LedgerState("email")
    ledger.apply(delivered("newer", event_type, aggregate, 200))
    return ledger


def test_a_retried_form_response_is_delivered_after_a_newer_one_of_the_same_supplier() -> None:
    ledger = after_newer("form.response_received")
    older = retried("older", "form.response_received", "supplier-1", 100)
    assert ledger.decide(older, TARGET, (TOPIC, 0, 7)) == "deliver"


def test_a_retried_milestone_is_delivered_after_a_newer_one_of_the_same_supplier() -> None:
    ledger = after_newer("journey.milestone_completed")
    older = retried("older", "journey.milestone_completed", "supplier-1", 100)
    assert ledger.decide(older, TARGET, (TOPIC, 0, 7)) == "deliver"


def test_a_retried_booking_notice_is_delivered_after_a_newer_one_of_the_same_supplier() -> None:
    ledger = after_newer("booking.conflict_detected")
    older = retried("older", "booking.conflict_detected", "supplier-1", 100)
    assert ledger.decide(older, TARGET, (TOPIC, 0, 7)) == "deliver"


def test_a_retried_profile_update_is_delivered_after_a_newer_one_of_the_same_couple() -> None:
    """Each profile notice names the fields that changed in it: a newer one does not carry
    the older one's, so skipping the older would lose what it says."""
    ledger = after_newer("client.profile_updated", aggregate="couple-1")
    older = retried("older", "client.profile_updated", "couple-1", 100)
    assert ledger.decide(older, TARGET, (TOPIC, 0, 7)) == "deliver"


def test_an_older_wedding_date_change_is_stale_after_a_newer_one_of_the_same_wedding() -> None:
    ledger = after_newer("wedding.date_changed", aggregate="wedding-1")
    older = retried("older", "wedding.date_changed", "wedding-1", 100)
    assert ledger.decide(older, TARGET, (TOPIC, 0, 7)) == "stale"


def test_a_stale_wedding_date_change_names_the_delivery_that_superseded_it() -> None:
    ledger = after_newer("wedding.date_changed", aggregate="wedding-1")
    older = retried("older", "wedding.date_changed", "wedding-1", 100)
    assert ledger.superseded_by(older, TARGET) == "newer"


def test_a_delivery_that_is_not_stale_is_superseded_by_nothing() -> None:
    ledger = after_newer("form.response_received")
    older = retried("older", "form.response_received", "supplier-1", 100)
    assert ledger.superseded_by(older, TARGET) is None


def test_an_older_version_of_one_booking_is_stale_after_a_newer_one() -> None:
    ledger = after_newer("booking.changed", aggregate="booking-1")
    older = retried("older", "booking.changed", "booking-1", 100)
    assert ledger.decide(older, TARGET, (TOPIC, 0, 7)) == "stale"


def test_another_booking_of_the_same_supplier_is_not_stale() -> None:
    ledger = after_newer("booking.changed", aggregate="booking-2")
    older = retried("older", "booking.changed", "booking-1", 100)
    assert ledger.decide(older, TARGET, (TOPIC, 0, 7)) == "deliver"


def test_the_newest_delivered_version_is_the_one_named() -> None:
    ledger = after_newer("wedding.date_changed", aggregate="wedding-1")
    ledger.apply(delivered("newest", "wedding.date_changed", "wedding-1", 300))
    ledger.apply(delivered("between", "wedding.date_changed", "wedding-1", 250))
    older = retried("older", "wedding.date_changed", "wedding-1", 100)
    assert ledger.superseded_by(older, TARGET) == "newest"


@pytest.mark.parametrize("event_type", sorted(load_rules().by_event_type))
def test_every_routed_event_type_declares_whether_it_is_an_entity_or_a_fact(
    event_type: str,
) -> None:
    assert event_type in entities.DECLARED


def test_an_undeclared_event_type_is_a_fact() -> None:
    assert entities.entity_of("email", "something.new", "supplier-1") is None
