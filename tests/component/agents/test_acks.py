"""Agents ack a record only after it was processed (or dead-lettered): a failure that is not
the record's fault crashes the worker and leaves the record unacked, so it is processed
again after restart. (Faust's `take_events` acked the whole batch in a `finally`.)"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from streams import topics
from streams.agents import Agents
from streams.dev.samples import change_event
from streams.kafka.codec import TopicCodecs
from streams.topics import change_key

from tests.component.agents.harness import Wire

WEDDING = "6b1f9c1e-2f43-4c1d-9a55-0c8a2b9f1a01"


def _moved(codecs: TopicCodecs) -> tuple[bytes, bytes]:
    before = {"id": WEDDING, "couple_id": "c-1", "wedding_date": "2027-06-12"}
    change = change_event("wedding_details", "u", lsn=9, before=before,
                          after={**before, "wedding_date": "2027-06-19"})  # fmt: skip
    return codecs[topics.INGEST_CDC].encode(change), change_key(change)


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_a_processed_record_is_acked(agents: Agents, wire: Wire, codecs: TopicCodecs) -> None:
    value, key = _moved(codecs)
    async with agents.normalize["normalize"].test_context() as context:
        event = await context.put(value, key=key, wait=False)
        await _until(lambda: event.message.acked)
    assert wire.to(topics.EVENTS.name)


async def test_a_record_whose_send_fails_is_not_acked_and_the_worker_crashes(
    app: faust.App,
    agents: Agents,
    codecs: TopicCodecs,
    wire: Wire,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts: list[str] = []

    def broken_send(topic: str, *_: Any) -> None:
        attempts.append(topic)
        raise ConnectionError("the broker went away")

    crashes: list[BaseException] = []

    async def crash(reason: BaseException) -> None:
        crashes.append(reason)

    monkeypatch.setattr(wire, "send", broken_send)
    monkeypatch.setattr(app, "crash", crash)
    value, key = _moved(codecs)
    async with agents.normalize["normalize"].test_context() as context:
        event = await context.put(value, key=key, wait=False)
        await _until(lambda: attempts)
        await asyncio.sleep(0.1)
        assert not event.message.acked
    assert attempts == [topics.EVENTS.name]
    assert [type(c) for c in crashes] == [ConnectionError]
