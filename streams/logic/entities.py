"""Which deliveries are versions of one entity's state: THE declaration the delivery ledger
(`streams.logic.ledger`) reads to decide staleness. Pure.

A delivery can be superseded only by a newer version of the same entity state, delivered to
the same target: then the older one, sent after it, would tell the receiver something no
longer true (a calendar moved back to the old date, a CRM given last week's timeline). An
event type is an *entity* version when every event of it carries the entity's state as of
its `aggregate_version` (the source LSN or the provider's sequence), so the newest one says
all the older ones did. Every other event type is a *fact*: news that a newer event does not
repeat (a form response, a milestone, a double-booking notice, the fields one profile edit
changed). Facts are never stale, however many newer facts of the same supplier or couple went
out while one waited for a retry.

    event type                    kind    entity (key: the event's aggregate_id)
    wedding.date_changed          entity  wedding: its date and day timeline (each event
                                          carries them all; calendars upsert one event per
                                          wedding and integration)
    booking.changed               entity  booking: the CRM booking's times and status
    vendor.status_changed         entity  vendor_status: the supplier's current status
    form.response_received        fact    (aggregate: the supplier)
    journey.milestone_completed   fact    (aggregate: the supplier)
    booking.conflict_detected     fact    (aggregate: the supplier; one notice per conflict)
    booking.conflict_possible     fact    (the vendor's own calendar: tentative or all-day free)
    booking.conflict_resolved     fact    (a private event that collided moved or went)
    calendar.drift_detected       fact    (a vendor moved or deleted our event in their calendar)
    calendar.protection_degraded  fact    (a vendor's calendar cannot be read, a wedding soon)
    booking.updated               fact    (aggregate: the booking; "moved from X to Y" is
                                          news a later move does not repeat)
    client.profile_updated        fact    (aggregate: the couple; names the changed fields
                                          only, so a newer notice does not repeat an older's)
    record.changed                fact    (customer webhooks' event log)

An event type not declared is a fact: forgetting one can repeat news, never lose it
(`tests/unit/logic/test_ledger_supersede.py` checks that every routed event type is
declared). Two event types that declare the same entity name supersede each other, so a
new event type carrying the whole wedding state would name "wedding" too.

Destinations that are event logs get every delivery as a fact, whatever its event type:
customer webhooks (Standard Webhooks delivers every message; receivers order by timestamp).
"""

from __future__ import annotations

ENTITY_OF: dict[str, str] = {
    "wedding.date_changed": "wedding",
    "booking.changed": "booking",
    "vendor.status_changed": "vendor_status",
}
FACTS = frozenset({
    "form.response_received",
    "journey.milestone_completed",
    "booking.conflict_detected",
    "booking.conflict_possible",
    "booking.conflict_resolved",
    "calendar.drift_detected",
    "calendar.protection_degraded",
    "booking.updated",
    "client.profile_updated",
    "record.changed",
})  # fmt: skip
DECLARED = frozenset(ENTITY_OF) | FACTS
EVENT_LOGS = frozenset({"webhook"})  # destinations that get every delivery, in any order

EntityKey = tuple[str, str]  # (entity name, aggregate id)


def entity_of(destination: str, event_type: str, aggregate_id: str) -> EntityKey | None:
    """The entity state a delivery of `event_type` about `aggregate_id` to `destination` is a
    version of; None when it is a fact (never superseded)."""
    if destination in EVENT_LOGS:
        return None
    name = ENTITY_OF.get(event_type)
    return None if name is None else (name, aggregate_id)
