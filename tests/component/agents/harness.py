"""Driving a Faust agent in its test context, with a fake producer underneath.

`Wire` is the agents' output (`streams.kafka.faust_output.Output`: what they emit) and
replaces `faust.Topic.send` and `faust.Topic.send_soon` (the two ways tables hand a changelog
record to Faust's producer) with a recorder that serializes the record exactly as the
topic would, with the topic's own key and value serializers, and keeps it instead of
producing it. What a test reads back is what would have gone on the wire: domain events as
Confluent-framed Avro, dead letters as the original bytes, table changelog records as JSON.

Why not `agent.test_context().put(value)` with its default `wait=True`: our agents batch
with `stream.take_events`, and the wrapper's "processed" signal fires when a record enters
the stream, before the batch it belongs to has been handled. So `Driver.put` does not wait,
and `Driver.settle` pushes a barrier record (undecodable bytes under a state-table key, which
every agent dead-letters) and waits for its dead letter: records are handled in order, so
every record put before the barrier has then been processed. The barrier's dead letter is
removed from the wire before the test looks at it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from faust import topics as faust_topics
from streams import topics
from streams.kafka.codec import TopicCodecs
from streams.kafka.deadletter import header_map
from streams.models import DomainEvent, PayloadValue, SourceRef

BARRIER_KEY = b"suppliers:__barrier__"
BARRIER_VALUE = b"\xffbarrier"
WAIT_S = 3.0


@dataclass(frozen=True)
class Sent:
    """One record as the producer would have written it."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]


@dataclass
class Wire:
    """Every record handed to Faust's producer, in order."""

    sent: list[Sent] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        wire = self

        def record(topic: Any, key: Any, value: Any, headers: Any, ks: Any, vs: Any) -> None:
            raw_key, headers = topic.prepare_key(key, ks, None, headers)
            raw_value, headers = topic.prepare_value(value, vs, None, headers)
            wire.sent.append(Sent(topic.get_topic_name(), raw_key, raw_value, header_map(headers)))

        async def send(
            self: Any,
            *,
            key: Any = None,
            value: Any = None,
            headers: Any = None,
            key_serializer: Any = None,
            value_serializer: Any = None,
            **_: Any,
        ) -> None:
            record(self, key, value, headers, key_serializer, value_serializer)

        def send_soon(
            self: Any,
            *,
            key: Any = None,
            value: Any = None,
            partition: int | None = None,
            headers: Any = None,
            key_serializer: Any = None,
            value_serializer: Any = None,
            **_: Any,
        ) -> Any:
            record(self, key, value, headers, key_serializer, value_serializer)
            # Tables read the partition the producer chose from the returned future.
            return SimpleNamespace(message=SimpleNamespace(partition=partition or 0))

        monkeypatch.setattr(faust_topics.Topic, "send", send)
        monkeypatch.setattr(faust_topics.Topic, "send_soon", send_soon)

    def send(self, topic: str, key: bytes | None, value: bytes | None, headers: Any = None) -> None:
        """The agents' output (`streams.kafka.faust_output.Output`): kept, not produced."""
        self.sent.append(Sent(topic, key, value, header_map(headers)))

    def to(self, topic: str) -> list[Sent]:
        return [s for s in self.sent if s.topic == topic]

    def changelog(self, app_id: str, table: str) -> dict[Any, Any]:
        """The table as a reader of its changelog topic would rebuild it (None: deleted)."""
        out: dict[Any, Any] = {}
        for s in self.to(topics.faust_changelog_name(app_id, table)):
            key = json.loads(s.key or b"null")
            out[key] = None if s.value is None else json.loads(s.value)
        return out

    async def wait_for(self, done: Callable[[list[Sent]], bool]) -> None:
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while not done(self.sent):
            assert asyncio.get_running_loop().time() < deadline, f"timed out; sent {self.sent}"
            await asyncio.sleep(0.001)


class Driver:
    """One agent running in its Faust test context, fed raw Kafka records."""

    def __init__(self, context: Any, wire: Wire) -> None:
        self.context = context
        self.wire = wire

    async def put(self, value: bytes | None, key: bytes) -> None:
        await self.context.put(value, key=key, wait=False)

    async def put_on(self, topic: str, value: bytes | None, key: bytes) -> None:
        """Put a record as read from `topic` (an agent reading several topics tells them
        apart by the message's topic; the test context names none of them)."""
        original = self.context.to_message

        def to_message(*args: Any, **kwargs: Any) -> Any:
            message = original(*args, **kwargs)
            message.topic = topic
            return message

        self.context.to_message = to_message
        try:
            await self.put(value, key)
        finally:
            self.context.to_message = original

    async def settle(self) -> None:
        """Return once every record put so far has been processed."""
        await self.put(BARRIER_VALUE, BARRIER_KEY)
        await self.wire.wait_for(lambda sent: any(s.key == BARRIER_KEY for s in sent))
        self.wire.sent[:] = [s for s in self.wire.sent if s.key != BARRIER_KEY]


@asynccontextmanager
async def driving(agent: Any, wire: Wire) -> AsyncIterator[Driver]:
    """Start `agent` in its test context (a local channel, no broker) and drive it."""
    async with agent.test_context() as context:
        yield Driver(context, wire)


def events_sent(wire: Wire, codecs: TopicCodecs) -> list[tuple[bytes | None, DomainEvent]]:
    """(key, decoded domain event) of every record sent to wedsync.events."""
    codec = codecs[topics.EVENTS]
    return [(s.key, codec.decode(s.value)) for s in wire.to(topics.EVENTS.name)]  # type: ignore[misc]


def booking_changed(
    booking_id: str,
    start: str,
    end: str,
    *,
    supplier: str | None = "s-photo",
    zone: str | None = "Europe/London",
    client: str | None = None,
    version: int = 1,
    cancelled: bool = False,
) -> DomainEvent:
    """A booking.changed event as the route engine forwards it to the conflicts agent."""
    payload: dict[str, PayloadValue] = {
        "booking_id": booking_id,
        "supplier_id": supplier,
        "wedding_id": f"w-{booking_id}",
        "client_id": client or f"c-{booking_id}",
        "starts_at": start,
        "ends_at": end,
        "time_zone": zone,
        "cancelled": cancelled,
    }
    return DomainEvent(
        event_id=f"ev-{booking_id}-{version}",
        event_type="booking.changed",
        aggregate_type="booking",
        aggregate_id=booking_id,
        aggregate_version=version,
        occurred_at_ms=1_800_000_000_000,
        correlation_id=None,
        source_ts_ms=1_800_000_000_000,
        source=SourceRef(
            kind="webhook",
            topic=topics.INGEST_WEBHOOKS.name,
            partition=0,
            offset=version,
            lsn=None,
            delivery_id=f"d-{booking_id}-{version}",
            table=None,
        ),
        payload=payload,
        organization_id=None,
    )
