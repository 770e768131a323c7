"""The worker on the real broker: a CDC record reaches every expected destination topic."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from streams import topics
from streams.dev.cdc_like import produce_changes
from streams.dev.demo import worker_process
from streams.kafka.codec import TopicCodecs
from streams.logic.normalize import normalize_change
from streams.logic.routing import load_rules, route
from streams.settings import Settings

from tests.integration.agents_support import (
    SOURCE,
    WEDDING,
    DeliveryReader,
    date_change,
    state_changes,
    state_of,
    wait_for_wedding_state,
    wedding_rows,
)

pytestmark = pytest.mark.integration

_VOLATILE = ("routed_at_ms",)


def test_wedding_date_change_fans_out_to_every_vendor_channel_and_system(
    kafka_bootstrap: str, settings: Settings, codecs: TopicCodecs
) -> None:
    prefix = f"{settings.app_id}-"
    wedding = f"{prefix}{WEDDING}"
    changes = state_changes(wedding_rows(wedding, prefix))
    produce_changes(kafka_bootstrap, codecs, changes)
    reader = DeliveryReader(kafka_bootstrap, codecs)
    with worker_process(kafka_bootstrap, settings) as worker:
        wait_for_wedding_state(kafka_bootstrap, settings.app_id, prefix)
        moved = date_change(wedding, lsn=100, old="2027-06-12", new="2027-06-19")
        produce_changes(kafka_bootstrap, codecs, [moved])
        (event,) = [
            e for e in normalize_change(moved, SOURCE) if e["event_type"] != "record.changed"
        ]
        expected = route(event, state_of(changes), load_rules(), 0)
        wanted = {d.record["delivery_id"]: d for d in expected}
        try:
            reader.read_until(
                lambda got: wanted.keys() <= {r["delivery_id"] for _, r in got}, timeout=60
            )
        finally:
            reader.close()
        assert worker.poll() is None
    got = {r["delivery_id"]: (dest, r) for dest, r in reader.records if r["delivery_id"] in wanted}
    kinds = Counter(dest for dest, _ in got.values())
    assert kinds == {
        topics.Destination.EMAIL: 2, topics.Destination.INAPP: 2, topics.Destination.SLACK: 1,
        topics.Destination.SMS: 1, topics.Destination.CALENDAR: 2, topics.Destination.CRM: 2,
    }  # fmt: skip
    for delivery_id, delivery in wanted.items():
        dest, record = got[delivery_id]
        assert dest == delivery.destination
        drop = {k: v for k, v in record.items() if k not in _VOLATILE}
        want = {k: v for k, v in delivery.record.items() if k not in _VOLATILE}
        assert drop["event_id"] == want["event_id"]
        assert want == drop
    crm = [r for d, r in got.values() if d is topics.Destination.CRM]
    assert {r["crm_kind"] for r in crm} == {"photography_crm", "venue_booking"}
    photo = next(r for r in crm if r["crm_kind"] == "photography_crm")
    assert photo["payload"]["wedding_date"] == "2027-06-19"
    assert photo["payload"]["client_name"] == "Alex & Sam"
    assert time.time() * 1000 - event["source_ts_ms"] < 120_000
