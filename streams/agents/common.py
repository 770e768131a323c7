"""What every Faust agent shares: the dead-letter step and the source reference of a record.

A bad record is data, not a crash: `dead_letter` counts it in `streams.metrics` and sends the
original key and bytes, untouched, to the stage's dead-letter topic with the reason in
headers (`streams.kafka.deadletter`). The send is buffered (not awaited to the broker's ack), like
every agent send (`streams.kafka.faust_output`); the worker commits the source offset only
after its outputs are flushed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, cast

from streams import metrics
from streams.kafka.deadletter import dead_letter_headers
from streams.kafka.faust_output import Output
from streams.models import SourceRef

if TYPE_CHECKING:
    import faust
    from faust.types import EventT, Message

log = logging.getLogger(__name__)


async def each_acked(
    app: faust.App,
    stream: faust.StreamT[Any],
    stage: str,
    handle: Callable[[EventT], Awaitable[None]],
) -> None:
    """Call `handle` on every event of `stream` and ack the event only after it returns.

    `handle` dead-letters bad records itself; anything it raises is not the record's fault
    (the producer, a table): the worker crashes WITHOUT acking the event, so it is processed
    again after restart. (Faust's own iteration and `take_events` ack in a `finally`, so an
    exception in an agent body acked, and lost, the records being processed.)"""
    acking = cast("faust.Stream[Any]", stream).noack()
    async for event in acking.events():
        try:
            await handle(event)
        except Exception as exc:
            log.critical("%s: stopping the worker without acking %s: %r", stage,
                         event.message.tp, exc)  # fmt: skip
            await app.crash(exc)
            raise
        await acking.ack(event)


def dead_letter(
    output: Output, dlq: str, stage: str, message: Message, error: BaseException
) -> None:
    """Send `message` as it arrived to the topic `dlq`, with `error` in the headers; count it."""
    metrics.DEAD_LETTERS.labels(stage, type(error).__name__).inc()
    headers = dead_letter_headers(
        stage=stage,
        error=error,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
    )
    output.send(dlq, message.key, message.value, headers)


def source_ref(
    kind: Literal["cdc", "webhook"],
    message: Message,
    *,
    lsn: int | None = None,
    commit_lsn: int | None = None,
    state_lsn: int | None = None,
    delivery_id: str | None = None,
    table: str | None = None,
) -> SourceRef:
    """Where a domain event came from: the input record's position (and LSN/delivery id)."""
    return SourceRef(
        kind=kind,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        lsn=lsn,
        commit_lsn=commit_lsn,
        state_lsn=state_lsn,
        delivery_id=delivery_id,
        table=table,
    )


def raw_topic(app: faust.App, name: str) -> faust.TopicT:
    """A topic read or written as raw bytes (decoding is the agent's job, so failures are
    dead-lettered instead of logged and skipped by Faust)."""
    return app.topic(name, key_serializer="raw", value_serializer="raw")
