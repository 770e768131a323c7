"""Every delivery route() emits encodes with its destination's Avro schema."""

from __future__ import annotations

import json

from streams.kafka.codec import TopicCodecs
from streams.logic.routing import load_rules, route
from streams.topics import DELIVER

from tests.unit.logic.factories import date_changed, event, state_with, wedding_state


def test_fan_out_records_round_trip_through_their_avro_schemas(codecs: TopicCodecs) -> None:
    state = wedding_state()
    state.suppliers["s-venue"] = {
        **state.suppliers["s-venue"],
        "realtime_channels": ["email", "slack", "sms", "inapp"],
    }
    deliveries = route(date_changed(), state, load_rules(), 1)
    assert len({d.destination for d in deliveries}) == 6
    for delivery in deliveries:
        codec = codecs[DELIVER[delivery.destination].deliver]
        assert codec.decode(codec.encode(delivery.record)) == delivery.record


def test_webhook_record_round_trips_through_its_avro_schema(codecs: TopicCodecs) -> None:
    state = state_with(
        (
            "webhook_endpoints",
            {
                "id": "we",
                "supplier_id": "s",
                "endpoint_url": "https://h.example",
                "subscribed_events": json.dumps(["form_responses.insert"]),
                "is_active": True,
            },
        )
    )
    ev = event("record.changed", {"table": "form_responses", "op": "insert", "supplier_id": "s"})
    (delivery,) = route(ev, state, load_rules(), 1)
    codec = codecs[DELIVER[delivery.destination].deliver]
    assert codec.decode(codec.encode(delivery.record)) == delivery.record


def test_normalized_events_round_trip_through_the_domain_event_schema(
    codecs: TopicCodecs,
) -> None:
    from streams.dev.samples import demo_changes
    from streams.logic.normalize import normalize_change
    from streams.topics import EVENTS

    from tests.unit.logic.factories import CDC_REF

    codec = codecs[EVENTS]
    events = [e for c in demo_changes() for e in normalize_change(c, CDC_REF)]
    assert events
    for ev in events:
        assert codec.decode(codec.encode(ev)) == ev
