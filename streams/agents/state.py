"""Agent: CDC of the state tables -> routing state in Faust GlobalTables.

    wedsync.ingest.cdc (suppliers, wedding_vendors, webhook_endpoints, *_integrations)
        --state--> GlobalTables suppliers / wedding_vendors / webhook_endpoints / integrations
                   (each backed by its changelog topic `<app id>-<table>-changelog`)

Routing is keyed by the event's aggregate (a wedding), not by supplier, so every worker needs
all of the state: GlobalTables, which every worker recovers in full from their changelogs at
start-up (Faust starts app services, the routing engine among them, only after recovery).
Tables use the producer's partitioner for changelog writes, so batching (`take_events`) is
safe. The reducer is `streams.logic.state.apply_change`, which assigns new values and never
mutates in place (a Faust table persists only what is assigned).

Records whose key names a table that is not state are skipped before decoding (the CDC key
is '<table>:<primary key>'), so this agent costs little on the busy tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import faust

from streams import metrics, topics
from streams.agents.common import dead_letter, raw_topic
from streams.changelog_state import TABLE_NAMES
from streams.logic.state import STATE_TABLES, StateTables, apply_change

if TYPE_CHECKING:
    from streams.app import Context

STAGE = "state"
BATCH = 1000
WITHIN = 0.1  # state changes are rare: fewer idle wake-ups of the worker (measured ~15 % CPU idle)
_STATE_KEYS = tuple(f"{table}:".encode() for table in STATE_TABLES)


def state_tables(app: faust.App) -> StateTables:
    """The four routing-state GlobalTables of `app` (JSON keys and values)."""
    made = {
        name: app.GlobalTable(
            name,
            schema=faust.Schema(key_serializer="json", value_serializer="json"),
            use_partitioner=True,
            help=f"routing state: {name}",
        )
        for name in TABLE_NAMES
    }
    return StateTables(**made)


def register(app: faust.App, context: Context, tables: StateTables) -> Any:
    codec = context.codecs[topics.INGEST_CDC]
    dlq = raw_topic(app, topics.EVENTS_DLQ.name)

    @app.agent(raw_topic(app, topics.INGEST_CDC.name), name=STAGE)
    async def state(stream: faust.StreamT[bytes]) -> None:
        async for batch in cast("faust.Stream[bytes]", stream).take_events(BATCH, within=WITHIN):
            for event in batch:
                key = event.message.key
                if not (isinstance(key, bytes) and key.startswith(_STATE_KEYS)):
                    continue
                try:
                    change: Any = codec.decode(event.message.value)
                    apply_change(tables, change)
                except Exception as exc:  # a bad record is data: dead-letter it
                    await dead_letter(dlq, STAGE, event.message, exc)
                    continue
                metrics.RECORDS_IN.labels(STAGE).inc()

    return state
