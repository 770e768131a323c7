"""The state agent in Faust's test context: CDC of the state tables folded into the routing
GlobalTables (read back from the tables), each assignment written to the table's changelog
(what a restarted worker recovers from), bad records dead-lettered.

See `harness` for the fake producer and for why `put` does not wait and `settle` does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from streams import deadletter, topics
from streams.agents import Agents
from streams.codec import TopicCodecs
from streams.models import ChangeEvent, ColumnValue
from streams.samples import change_event
from streams.topics import change_key

from tests.component.agents.harness import Driver, Wire, driving, events_sent

SUPPLIER: dict[str, ColumnValue] = {
    "id": "s-photo",
    "business_name": "Photo Ltd",
    "email": "photo@x.io",
    "phone": "+447700900001",
    "slack_channel_id": "C-photo",
    "notification_preferences": json.dumps({"realtime_channels": ["email", "sms"]}),
}
VENDOR_LINK: dict[str, ColumnValue] = {
    "id": "wv-1",
    "wedding_id": "w-1",
    "supplier_id": "s-photo",
    "vendor_type": "photographer",
}
ENDPOINT: dict[str, ColumnValue] = {
    "id": "we-1",
    "supplier_id": "s-photo",
    "endpoint_url": "https://hooks.example/wedsync",
    "subscribed_events": json.dumps(["form_responses.insert"]),
    "is_active": True,
    "secret_key": "whsec_never_in_state",
}


@pytest.fixture
async def state(agents: Agents, wire: Wire) -> AsyncIterator[Driver]:
    async with driving(agents.state_agent, wire) as driver:
        yield driver


async def put_change(driver: Driver, codecs: TopicCodecs, change: ChangeEvent) -> None:
    await driver.put(codecs[topics.INGEST_CDC].encode(change), change_key(change))


async def test_supplier_insert_lands_in_the_suppliers_table(
    state: Driver, agents: Agents, codecs: TopicCodecs
) -> None:
    await put_change(state, codecs, change_event("suppliers", "c", after=SUPPLIER, lsn=1))
    await state.settle()
    supplier = agents.state.suppliers["s-photo"]
    assert supplier["email"] == "photo@x.io"
    assert supplier["realtime_channels"] == ["email", "sms"]


async def test_snapshot_read_lands_in_the_table(
    state: Driver, agents: Agents, codecs: TopicCodecs
) -> None:
    await put_change(state, codecs, change_event("suppliers", "r", after=SUPPLIER, lsn=1))
    await state.settle()
    assert agents.state.suppliers["s-photo"]["supplier_id"] == "s-photo"


async def test_wedding_vendor_insert_lands_under_its_wedding(
    state: Driver, agents: Agents, codecs: TopicCodecs
) -> None:
    await put_change(state, codecs, change_event("wedding_vendors", "c", after=VENDOR_LINK, lsn=1))
    await state.settle()
    assert agents.state.wedding_vendors["w-1"] == {
        "wv-1": {"supplier_id": "s-photo", "vendor_type": "photographer"}
    }


async def test_webhook_endpoint_insert_lands_under_its_supplier_without_the_secret(
    state: Driver, agents: Agents, codecs: TopicCodecs
) -> None:
    await put_change(state, codecs, change_event("webhook_endpoints", "c", after=ENDPOINT, lsn=1))
    await state.settle()
    endpoint = agents.state.webhook_endpoints["s-photo"]["we-1"]
    assert endpoint["subscribed_events"] == ["form_responses.insert"]
    assert "whsec_never_in_state" not in json.dumps(dict(agents.state.webhook_endpoints))


async def test_integration_insert_lands_under_its_supplier(
    state: Driver, agents: Agents, codecs: TopicCodecs
) -> None:
    row = {"id": "si-1", "supplier_id": "s-photo", "integration_type": "photography_crm",
           "webhook_url": "https://crm.example/hook", "is_active": True}  # fmt: skip
    await put_change(state, codecs, change_event("supplier_integrations", "c", after=row, lsn=1))
    await state.settle()
    crm = agents.state.integrations["s-photo"]["supplier_integrations:si-1"]
    assert (crm["integration_type"], crm["endpoint_url"]) == (
        "photography_crm",
        "https://crm.example/hook",
    )


async def test_table_assignments_are_written_to_the_changelog(
    state: Driver, agents: Agents, codecs: TopicCodecs, wire: Wire, app_id: str
) -> None:
    await put_change(state, codecs, change_event("wedding_vendors", "c", after=VENDOR_LINK, lsn=1))
    await state.settle()
    assert wire.changelog(app_id, "wedding_vendors") == {
        "w-1": {"wv-1": {"supplier_id": "s-photo", "vendor_type": "photographer"}}
    }


async def test_supplier_delete_removes_the_entry(
    state: Driver, agents: Agents, codecs: TopicCodecs, wire: Wire, app_id: str
) -> None:
    await put_change(state, codecs, change_event("suppliers", "c", after=SUPPLIER, lsn=1))
    await put_change(state, codecs, change_event("suppliers", "d", before=SUPPLIER, lsn=2))
    await state.settle()
    assert "s-photo" not in agents.state.suppliers
    assert wire.changelog(app_id, "suppliers") == {"s-photo": None}


async def test_last_vendor_link_delete_removes_the_wedding(
    state: Driver, agents: Agents, codecs: TopicCodecs
) -> None:
    await put_change(state, codecs, change_event("wedding_vendors", "c", after=VENDOR_LINK, lsn=1))
    await put_change(state, codecs, change_event("wedding_vendors", "d", before=VENDOR_LINK, lsn=2))
    await state.settle()
    assert "w-1" not in agents.state.wedding_vendors


async def test_vendor_moved_to_another_wedding_leaves_the_old_one(
    state: Driver, agents: Agents, codecs: TopicCodecs
) -> None:
    moved = {**VENDOR_LINK, "wedding_id": "w-2"}
    await put_change(state, codecs, change_event("wedding_vendors", "c", after=VENDOR_LINK, lsn=1))
    await put_change(
        state, codecs, change_event("wedding_vendors", "u", before=VENDOR_LINK, after=moved, lsn=2)
    )
    await state.settle()
    assert "w-1" not in agents.state.wedding_vendors
    assert set(agents.state.wedding_vendors["w-2"]) == {"wv-1"}


async def test_record_of_a_table_that_is_not_state_is_ignored(
    state: Driver, agents: Agents, codecs: TopicCodecs, wire: Wire
) -> None:
    row = {"id": "fr-1", "supplier_id": "s-photo"}
    await put_change(state, codecs, change_event("form_responses", "c", after=row, lsn=1))
    await state.settle()
    assert wire.sent == []
    assert all(not dict(getattr(agents.state, t)) for t in agents.state.__dataclass_fields__)


async def test_undecodable_record_of_a_table_that_is_not_state_is_skipped(
    state: Driver, wire: Wire
) -> None:
    await state.put(b"garbage", b"form_responses:fr-1")
    await state.settle()
    assert wire.sent == []


async def test_bad_state_record_is_dead_lettered_and_the_next_one_applied(
    state: Driver, agents: Agents, codecs: TopicCodecs, wire: Wire
) -> None:
    await state.put(b"garbage", b"suppliers:s-bad")
    await put_change(state, codecs, change_event("suppliers", "c", after=SUPPLIER, lsn=2))
    await state.settle()
    ((dead,),) = [wire.to(topics.EVENTS_DLQ.name)]
    assert (dead.key, dead.value) == (b"suppliers:s-bad", b"garbage")
    assert dead.headers[deadletter.H_STAGE] == "state"
    assert dead.headers[deadletter.H_ERROR_CLASS] == "DecodeError"
    assert "s-photo" in agents.state.suppliers


async def test_state_agent_emits_no_domain_events(
    state: Driver, codecs: TopicCodecs, wire: Wire
) -> None:
    before = {**SUPPLIER, "status": "active"}
    paused = change_event(
        "suppliers", "u", before=before, after={**before, "status": "paused"}, lsn=3
    )
    await put_change(state, codecs, paused)
    await state.settle()
    assert events_sent(wire, codecs) == []
