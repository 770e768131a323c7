"""Agents: CDC change events and verified webhooks -> domain events (wedsync.events).

    wedsync.ingest.cdc       --normalize---------> wedsync.events  (key: aggregate id)
    wedsync.ingest.webhooks  --normalize-webhooks-> wedsync.events
    (undecodable / failing records)             -> wedsync.events.dlq

Input is read as raw bytes and decoded here, not by Faust, so that a record that does not
decode goes to the dead-letter topic with its reason instead of being logged and skipped.

Each record is acked only after its events were handed to the output (or it was
dead-lettered): `streams.agents.common.each_acked`. Faust's `take_events` batching acked a
whole batch even when the agent body raised, which lost records; sends are buffered by
the output's producer (`streams.kafka.faust_output`), flushed before every commit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from streams import metrics, topics
from streams.agents.common import dead_letter, each_acked, raw_topic, source_ref
from streams.kafka.codec import AvroCodec
from streams.logic.normalize import normalize_change, normalize_webhook
from streams.models import ChangeEvent, DomainEvent, InboundWebhook

if TYPE_CHECKING:
    import faust
    from faust.types import EventT, Message

    from streams.agents.app import Context

STAGE = "normalize"

Normalizer = Callable[[AvroCodec, "Message"], list[DomainEvent]]


def _from_cdc(codec: AvroCodec, message: Message) -> list[DomainEvent]:
    change: ChangeEvent = codec.decode(message.value)  # type: ignore[assignment]
    source = change["source"]
    ref = source_ref(
        "cdc", message, lsn=source["lsn"], commit_lsn=source["commit_lsn"],
        state_lsn=source["state_lsn"], table=source["table"],
    )  # fmt: skip
    return normalize_change(change, ref)


def _from_webhook(codec: AvroCodec, message: Message) -> list[DomainEvent]:
    webhook: InboundWebhook = codec.decode(message.value)  # type: ignore[assignment]
    return normalize_webhook(
        webhook, source_ref("webhook", message, delivery_id=webhook["delivery_id"])
    )


def register(app: faust.App, context: Context) -> dict[str, Any]:
    """Register both normalize agents; returns them and their output topics (for tests)."""
    output, events, dlq = context.output, context.codecs[topics.EVENTS], topics.EVENTS_DLQ.name

    def agent(name: str, source: topics.Topic, normalize: Normalizer) -> Any:
        codec = context.codecs[source]

        async def handle(event: EventT) -> None:
            metrics.RECORDS_IN.labels(STAGE).inc()
            try:
                out = normalize(codec, event.message)
            except Exception as exc:  # a bad record is data: dead-letter it
                dead_letter(output, dlq, STAGE, event.message, exc)
                return
            for domain_event in out:
                key = domain_event["aggregate_id"].encode()
                output.send(topics.EVENTS.name, key, events.encode(domain_event))
            metrics.RECORDS_OUT.labels(STAGE).inc(len(out))

        async def run(stream: faust.StreamT[bytes]) -> None:
            await each_acked(app, stream, name, handle)

        run.__name__ = name.replace("-", "_")
        return app.agent(raw_topic(app, source.name), name=name)(run)

    return {
        "normalize": agent(STAGE, topics.INGEST_CDC, _from_cdc),
        "normalize_webhooks": agent(f"{STAGE}-webhooks", topics.INGEST_WEBHOOKS, _from_webhook),
    }
