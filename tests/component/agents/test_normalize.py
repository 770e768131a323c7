"""The normalize agents in Faust's test context: CDC change events and verified webhooks in,
domain events on wedsync.events out, bad records to wedsync.events.dlq.

Records are put as raw bytes encoded with the real codec, the way they arrive from Kafka;
what the agents send is read back from the fake producer (`harness.Wire`) and decoded with
the domain event schema. See `harness` for why `put` does not wait and how `settle` does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY
from streams import metrics, topics
from streams.agents import Agents
from streams.dev.samples import change_event
from streams.dev.samples import inbound_webhook as webhook
from streams.kafka import deadletter
from streams.kafka.codec import TopicCodecs
from streams.topics import change_key

from tests.component.agents.harness import Driver, Wire, driving, events_sent

WEDDING = "w-2027-0612"
GOOGLE = {
    "x-goog-channel-id": "chan-1",
    "x-goog-resource-id": "res-1",
    "x-goog-resource-state": "exists",
    "x-goog-message-number": "17",
}


@pytest.fixture
async def cdc(agents: Agents, wire: Wire) -> AsyncIterator[Driver]:
    async with driving(agents.normalize["normalize"], wire) as driver:
        yield driver


@pytest.fixture
async def webhooks(agents: Agents, wire: Wire) -> AsyncIterator[Driver]:
    async with driving(agents.normalize["normalize_webhooks"], wire) as driver:
        yield driver


async def put_change(driver: Driver, codecs: TopicCodecs, change: object) -> None:
    await driver.put(codecs[topics.INGEST_CDC].encode(change), change_key(change))  # type: ignore[arg-type]


async def put_webhook(driver: Driver, codecs: TopicCodecs, body: bytes, **kw: object) -> None:
    record = webhook(body, **kw)  # type: ignore[arg-type]
    key = f"{record['source']}:{record['delivery_id']}".encode()
    await driver.put(codecs[topics.INGEST_WEBHOOKS].encode(record), key)


def date_change(lsn: int, old: str, new: str, venue: str = "Oak Barn") -> object:
    before = {"id": WEDDING, "wedding_date": old, "venue_name": "Oak Barn"}
    return change_event(
        "wedding_details", "u", lsn=lsn, before=before,
        after={**before, "wedding_date": new, "venue_name": venue},
    )  # fmt: skip


async def test_wedding_date_change_yields_date_changed_keyed_by_wedding(
    cdc: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    await put_change(cdc, codecs, date_change(lsn=41, old="2027-06-12", new="2027-06-19"))
    await cdc.settle()
    sent = {e["event_type"]: (key, e) for key, e in events_sent(wire, codecs)}
    assert sent.keys() == {"wedding.date_changed", "record.changed"}
    key, event = sent["wedding.date_changed"]
    assert key == WEDDING.encode()
    assert (event["aggregate_type"], event["aggregate_id"]) == ("wedding", WEDDING)
    assert (event["payload"]["old_date"], event["payload"]["new_date"]) == (
        "2027-06-12",
        "2027-06-19",
    )


async def test_domain_event_carries_lsn_as_version_and_the_input_position(
    cdc: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    await put_change(cdc, codecs, date_change(lsn=41, old="2027-06-12", new="2027-06-19"))
    await cdc.settle()
    _, event = events_sent(wire, codecs)[0]
    assert event["aggregate_version"] == 41
    assert event["source"]["kind"] == "cdc"
    assert event["source"]["topic"] == topics.INGEST_CDC.name
    assert (event["source"]["offset"], event["source"]["lsn"]) == (0, 41)
    assert event["source"]["table"] == "wedding_details"


async def test_form_response_insert_yields_response_received_keyed_by_supplier(
    cdc: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    row = {"id": "fr-1", "form_id": "f-7", "supplier_id": "s-photo", "client_id": "c-1"}
    await put_change(cdc, codecs, change_event("form_responses", "c", after=row, lsn=5))
    await cdc.settle()
    received = [(k, e) for k, e in events_sent(wire, codecs)
                if e["event_type"] == "form.response_received"]  # fmt: skip
    assert [(k, e["payload"]["form_response_id"]) for k, e in received] == [(b"s-photo", "fr-1")]


async def test_wedding_update_without_date_change_yields_no_date_changed(
    cdc: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    moved_venue = date_change(lsn=42, old="2027-06-12", new="2027-06-12", venue="Elm Hall")
    await put_change(cdc, codecs, moved_venue)
    await cdc.settle()
    assert [e["event_type"] for _, e in events_sent(wire, codecs)] == ["record.changed"]


async def test_supplier_update_without_status_change_yields_nothing(
    cdc: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    before = {"id": "s-photo", "status": "active", "business_name": "Photo Ltd"}
    renamed = change_event(
        "suppliers", "u", lsn=6, before=before, after={**before, "business_name": "Photo plc"}
    )
    await put_change(cdc, codecs, renamed)
    await cdc.settle()
    assert wire.sent == []


async def test_supplier_status_change_yields_vendor_status_changed(
    cdc: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    before = {"id": "s-photo", "status": "active"}
    paused = change_event(
        "suppliers", "u", lsn=7, before=before, after={**before, "status": "paused"}
    )
    await put_change(cdc, codecs, paused)
    await cdc.settle()
    ((key, event),) = events_sent(wire, codecs)
    assert (key, event["event_type"]) == (b"s-photo", "vendor.status_changed")
    assert (event["payload"]["old_status"], event["payload"]["new_status"]) == ("active", "paused")


async def test_undecodable_record_is_dead_lettered_with_original_bytes_and_reason(
    cdc: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    garbage = b"\x00\x00\x00\x00\x01not avro at all"
    await cdc.put(garbage, b"form_responses:fr-9")
    await cdc.settle()
    ((dead,),) = [wire.to(topics.EVENTS_DLQ.name)]
    assert (dead.key, dead.value) == (b"form_responses:fr-9", garbage)
    assert dead.headers[deadletter.H_ERROR_CLASS] == "DecodeError"
    assert dead.headers[deadletter.H_REASON]
    assert dead.headers[deadletter.H_STAGE] == "normalize"
    assert dead.headers[deadletter.H_TOPIC] == topics.INGEST_CDC.name
    assert dead.headers[deadletter.H_OFFSET] == "0"
    assert events_sent(wire, codecs) == []


async def test_agent_keeps_processing_after_a_dead_letter(
    cdc: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    await cdc.put(b"garbage", b"wedding_details:w-1")
    await put_change(cdc, codecs, date_change(lsn=43, old="2027-06-12", new="2027-06-19"))
    await cdc.settle()
    assert len(wire.to(topics.EVENTS_DLQ.name)) == 1
    assert "wedding.date_changed" in {e["event_type"] for _, e in events_sent(wire, codecs)}


async def test_google_calendar_webhook_yields_calendar_event_changed(
    webhooks: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    await put_webhook(webhooks, codecs, b"", headers=GOOGLE, source="google-calendar")
    await webhooks.settle()
    ((key, event),) = events_sent(wire, codecs)
    assert (key, event["event_type"]) == (b"chan-1", "calendar.event_changed")
    assert event["aggregate_version"] == 17
    assert event["source"]["kind"] == "webhook"
    assert event["source"]["delivery_id"] == "d-1"


async def test_graph_webhook_yields_one_event_per_notification(
    webhooks: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    note = {"subscriptionId": "sub-1", "changeType": "updated", "resource": "me/events/1"}
    body = json.dumps({"value": [note, {**note, "changeType": "deleted"}]}).encode()
    await put_webhook(webhooks, codecs, body, source="graph")
    await webhooks.settle()
    sent = events_sent(wire, codecs)
    assert [e["payload"]["change_type"] for _, e in sent] == ["updated", "deleted"]
    assert {e["event_type"] for _, e in sent} == {"calendar.event_changed"}


async def test_crm_booking_webhook_yields_booking_changed(
    webhooks: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    body = {"event": "booking.updated", "sequence": 3,
            "data": {"id": "bk-1", "vendor_id": "s-photo", "start": "2027-06-12T10:00",
                     "end": "2027-06-12T14:00", "timezone": "Europe/London"}}  # fmt: skip
    await put_webhook(webhooks, codecs, json.dumps(body).encode())
    await webhooks.settle()
    ((key, event),) = events_sent(wire, codecs)
    assert (key, event["event_type"], event["aggregate_version"]) == (
        b"bk-1",
        "booking.changed",
        3,
    )
    assert event["payload"]["supplier_id"] == "s-photo"


async def test_webhook_body_that_is_not_json_is_dead_lettered(
    webhooks: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    await put_webhook(webhooks, codecs, b"<xml>nope</xml>")
    await webhooks.settle()
    ((dead,),) = [wire.to(topics.EVENTS_DLQ.name)]
    assert dead.key == b"honeybook:d-1"
    assert codecs[topics.INGEST_WEBHOOKS].decode(dead.value)["body"] == b"<xml>nope</xml>"
    assert dead.headers[deadletter.H_ERROR_CLASS] == "PoisonMessage"
    assert dead.headers[deadletter.H_STAGE] == "normalize"
    assert dead.headers[deadletter.H_TOPIC] == topics.INGEST_WEBHOOKS.name


async def test_dead_letters_are_counted_by_stage_and_error_class(cdc: Driver) -> None:
    labels = {"stage": "normalize", "reason": "DecodeError"}
    metrics.export("worker")  # what `wedsync worker` exports
    before = REGISTRY.get_sample_value("wedsync_dead_letters_total", labels) or 0.0
    await cdc.put(b"garbage", b"wedding_details:w-1")
    await cdc.settle()  # the barrier is a dead letter too
    after = REGISTRY.get_sample_value("wedsync_dead_letters_total", labels)
    assert after == before + 2


async def test_google_sync_handshake_yields_nothing(
    webhooks: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    await put_webhook(webhooks, codecs, b"", headers={**GOOGLE, "x-goog-resource-state": "sync"})
    await webhooks.settle()
    assert wire.sent == []
