"""The state agent in Faust's test context: state-table changes (wedsync.ingest.state)
folded into the `state_rows` table, one row per source row (absent columns keep their
values), each assignment written to the table's changelog (what a restarted worker and the
routing process recover from), heartbeats moving the watermark, bad records dead-lettered.

See `harness` for the fake producer and for why `put` does not wait and `settle` does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from streams import topics
from streams.agents import Agents
from streams.dev.samples import change_event
from streams.kafka import deadletter
from streams.kafka.codec import TopicCodecs
from streams.logic.state import WATERMARK_KEY
from streams.models import ChangeEvent, ColumnValue
from streams.topics import change_key

from tests.component.agents.harness import Driver, Wire, driving, events_sent

SUPPLIER: dict[str, ColumnValue] = {
    "id": "s-photo",
    "business_name": "Photo Ltd",
    "email": "photo@x.io",
    "notification_preferences": json.dumps({"realtime_channels": ["email", "sms"]}),
}
VENDOR_LINK: dict[str, ColumnValue] = {
    "id": "wv-1",
    "wedding_id": "w-1",
    "vendor_id": "s-photo",
    "vendor_type": "photographer",
}


@pytest.fixture
async def state(agents: Agents, wire: Wire) -> AsyncIterator[Driver]:
    async with driving(agents.state_agent, wire) as driver:
        yield driver


async def put_change(driver: Driver, codecs: TopicCodecs, change: ChangeEvent) -> None:
    await driver.put(codecs[topics.INGEST_STATE].encode(change), change_key(change))


async def test_supplier_insert_lands_as_its_row(
    state: Driver, agents: Agents, codecs: TopicCodecs
) -> None:
    await put_change(state, codecs, change_event("suppliers", "c", after=SUPPLIER, lsn=1))
    await state.settle()
    assert agents.state_rows["suppliers:s-photo"] == SUPPLIER


async def test_update_without_a_column_keeps_its_value(
    state: Driver, agents: Agents, codecs: TopicCodecs
) -> None:
    await put_change(state, codecs, change_event("suppliers", "c", after=SUPPLIER, lsn=1))
    renamed = {"id": "s-photo", "business_name": "Photo & Co"}  # preferences left out (TOAST)
    await put_change(state, codecs, change_event("suppliers", "u", after=renamed, lsn=2))
    await state.settle()
    row = agents.state_rows["suppliers:s-photo"]
    assert (row["business_name"], row["notification_preferences"]) == (
        "Photo & Co",
        SUPPLIER["notification_preferences"],
    )


async def test_row_assignments_are_written_to_the_changelog(
    state: Driver, codecs: TopicCodecs, wire: Wire, app_id: str
) -> None:
    await put_change(state, codecs, change_event("wedding_vendors", "c", after=VENDOR_LINK, lsn=1))
    await state.settle()
    assert wire.changelog(app_id, topics.STATE_ROWS_TABLE) == {"wedding_vendors:wv-1": VENDOR_LINK}


async def test_delete_removes_the_row_with_a_tombstone(
    state: Driver, agents: Agents, codecs: TopicCodecs, wire: Wire, app_id: str
) -> None:
    await put_change(state, codecs, change_event("suppliers", "c", after=SUPPLIER, lsn=1))
    await put_change(state, codecs, change_event("suppliers", "d", before=SUPPLIER, lsn=2))
    await state.settle()
    assert "suppliers:s-photo" not in agents.state_rows
    assert wire.changelog(app_id, topics.STATE_ROWS_TABLE) == {"suppliers:s-photo": None}


async def test_heartbeat_writes_the_watermark_after_the_rows(
    state: Driver, codecs: TopicCodecs, wire: Wire, app_id: str
) -> None:
    await put_change(state, codecs, change_event("suppliers", "c", after=SUPPLIER, lsn=1))
    beat = change_event("suppliers", "h", lsn=40)
    await state.put(codecs[topics.INGEST_STATE].encode(beat), b"~heartbeat")
    await state.settle()
    assert list(wire.changelog(app_id, topics.STATE_ROWS_TABLE).items()) == [
        ("suppliers:s-photo", SUPPLIER),
        (WATERMARK_KEY, {"lsn": 40}),
    ]


async def test_bad_state_record_is_dead_lettered_and_the_next_one_applied(
    state: Driver, agents: Agents, codecs: TopicCodecs, wire: Wire
) -> None:
    await state.put(b"garbage", b"suppliers:s-bad")
    await put_change(state, codecs, change_event("suppliers", "c", after=SUPPLIER, lsn=2))
    await state.settle()
    ((dead,),) = [wire.to(topics.INGEST_DLQ.name)]
    assert (dead.key, dead.value) == (b"suppliers:s-bad", b"garbage")
    assert dead.headers[deadletter.H_STAGE] == "state"
    assert dead.headers[deadletter.H_ERROR_CLASS] == "DecodeError"
    assert "suppliers:s-photo" in agents.state_rows


async def test_state_agent_emits_no_domain_events(
    state: Driver, codecs: TopicCodecs, wire: Wire
) -> None:
    await put_change(state, codecs, change_event("suppliers", "c", after=SUPPLIER, lsn=3))
    await state.settle()
    assert events_sent(wire, codecs) == []
