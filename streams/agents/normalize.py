"""Agent: CDC change events (wedsync.ingest.cdc) -> domain events (wedsync.events).

Input is read as raw bytes and decoded here, not by Faust, so that a record that does not
decode goes to the dead-letter topic with its reason instead of being logged and skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streams import metrics, topics
from streams.deadletter import dead_letter_headers
from streams.faust_codec import register_codec
from streams.logic.normalize import normalize_change
from streams.models import ChangeEvent, SourceRef

if TYPE_CHECKING:
    import faust

    from streams.app import Context

STAGE = "normalize"


def register(app: faust.App, context: Context) -> Any:
    codec = context.codecs[topics.INGEST_CDC]
    source = app.topic(topics.INGEST_CDC.name, key_serializer="raw", value_serializer="raw")
    events = app.topic(
        topics.EVENTS.name,
        key_serializer="raw",
        value_serializer=register_codec(context.codecs, topics.EVENTS),
    )
    dlq = app.topic(topics.EVENTS_DLQ.name, key_serializer="raw", value_serializer="raw")

    @app.agent(source, name=STAGE)
    async def normalize(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            metrics.RECORDS_IN.labels(STAGE).inc()
            try:
                change: ChangeEvent = codec.decode(message.value)  # type: ignore[assignment]
                ref = SourceRef(
                    kind="cdc",
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    lsn=change["source"]["lsn"],
                    delivery_id=None,
                    table=change["source"]["table"],
                )
                out = normalize_change(change, ref)
            except Exception as exc:  # a bad record is data, not a crash: dead-letter it
                metrics.DEAD_LETTERS.labels(STAGE, type(exc).__name__).inc()
                headers = dead_letter_headers(
                    stage=STAGE,
                    error=exc,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                )
                await dlq.send(key=message.key, value=message.value, headers=headers)
                continue
            for domain_event in out:
                await events.send(key=domain_event["aggregate_id"].encode(), value=domain_event)
                metrics.RECORDS_OUT.labels(STAGE).inc()

    return normalize
