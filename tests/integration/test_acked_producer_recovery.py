"""`connectors.producer.AckedProducer` after a fatal error of its idempotent producer
(librdkafka's own fault hook, on a real broker): a fresh client takes over by itself, and
after too many such errors it stays failed, saying so, instead of trying forever."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from connectors.producer import MAX_RENEWALS, Ack, AckedProducer
from streams.errors import BrokerUnavailable
from streams.topics import INGEST_WEBHOOKS

from tests.integration.kafka_faults import fatal_error

pytestmark = pytest.mark.integration


@pytest.fixture
async def producer(tansu_bootstrap: str) -> AsyncIterator[AckedProducer]:
    running = AckedProducer(tansu_bootstrap, ack_timeout=5.0)
    running.start()
    yield running
    await running.close(timeout=1.0)


async def send_once_possible(producer: AckedProducer, attempts: int = 200) -> Ack | None:
    """The first acknowledged send within `attempts` tries 20 ms apart (None: none was)."""
    for _ in range(attempts):
        try:
            return await producer.send(INGEST_WEBHOOKS, key=b"k", value=uuid.uuid4().bytes)
        except BrokerUnavailable:
            await asyncio.sleep(0.02)
    return None


async def test_after_a_fatal_producer_error_sends_are_acknowledged_again(
    producer: AckedProducer,
) -> None:
    assert await send_once_possible(producer, attempts=1) is not None
    assert producer._producer is not None
    fatal_error(producer._producer)
    assert await send_once_possible(producer) is not None
    assert producer.fatal is None


async def test_fatal_errors_past_the_renewal_limit_leave_the_producer_failed_saying_so(
    producer: AckedProducer,
) -> None:
    for _ in range(MAX_RENEWALS + 1):
        client = producer._producer
        assert client is not None
        fatal_error(client)
        for _ in range(200):  # until the pump saw it: a fresh client, or none
            if producer._producer is not client:
                break
            await asyncio.sleep(0.01)
    with pytest.raises(BrokerUnavailable, match="fatal error"):
        await producer.send(INGEST_WEBHOOKS, key=b"k", value=b"v")
    assert producer.fatal is not None
