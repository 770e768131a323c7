"""Agent: state-table changes -> routing-state rows (one Faust table, one writer).

    wedsync.ingest.state (ONE partition: state-table changes and CDC heartbeats, commit order)
        --state--> Table state_rows ('<table>:<pk>' -> the row's contract columns)
                   + '~watermark' -> {"lsn": last heartbeat commit LSN}
                   (changelog `<app id>-state_rows-changelog`, read by the routing process)

One partition means one consumer folds every state row, whatever the number of workers, so
no read-modify-write of a shared key can lose an update (the earlier design keyed state by
wedding/supplier on several partitions, and two workers overwrote each other's entries).
State changes are rare next to events, so one ordered log is not a bottleneck, and it gives
the watermark for free: after folding a heartbeat of commit LSN L, every state change
committed at or before L is in the table, and the watermark record is written to the
changelog after those rows, so a reader that has read the watermark has read the rows.

Acks: the stream is `noack`; an event is acked only after its fold (and any dead letter) is
done. A failure that is not about the record (the producer, the table) crashes the worker
without acking, so the record is folded again after restart (Faust's `take_events` acks a
whole batch even when the body raises, which lost records).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import faust

from streams import metrics, topics
from streams.agents.common import dead_letter, each_acked
from streams.logic.state import WATERMARK_KEY, fold_row

if TYPE_CHECKING:
    from faust.types import EventT, TableT

    from streams.agents.app import Context

STAGE = "state"


def state_table(app: faust.App) -> TableT[Any, Any]:
    """The routing-state rows of `app` (JSON keys and values), on one partition."""
    return app.Table(
        topics.STATE_ROWS_TABLE,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
        partitions=topics.INGEST_STATE.partitions,
        help="routing state: '<table>:<pk>' -> row; '~watermark' -> folded commit LSN",
    )


def register(app: faust.App, context: Context, rows: Any) -> Any:
    codec = context.codecs[topics.INGEST_STATE]
    output = context.output
    source = app.topic(
        topics.INGEST_STATE.name,
        key_serializer="raw",
        value_serializer="raw",
        partitions=topics.INGEST_STATE.partitions,
    )

    async def fold(event: EventT) -> None:
        try:
            change: Any = codec.decode(event.message.value)
            if change["op"] == "h":
                lsn = int(change["source"]["commit_lsn"] or 0)
                if lsn > int((rows.get(WATERMARK_KEY) or {}).get("lsn", 0)):
                    rows[WATERMARK_KEY] = {"lsn": lsn}
                return
            key = (event.message.key or b"").decode()
            row = fold_row(rows.get(key), change)
            if row is not None:
                rows[key] = row
            elif key in rows:
                del rows[key]
            metrics.RECORDS_IN.labels(STAGE).inc()
        except Exception as exc:  # a bad record is data: dead-letter it
            dead_letter(output, topics.INGEST_DLQ.name, STAGE, event.message, exc)

    @app.agent(source, name=STAGE)
    async def state(stream: faust.StreamT[bytes]) -> None:
        await each_acked(app, stream, STAGE, fold)

    return state
