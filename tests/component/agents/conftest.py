"""Fixtures for the agent tests: a Faust app with the in-memory store and every agent except
the routing engine registered, and the fake producer (`Wire`). No broker, no ports."""

from __future__ import annotations

import uuid

import faust
import pytest
from streams.agents import Agents, register_all
from streams.agents.app import Context
from streams.kafka.codec import TopicCodecs
from streams.settings import Settings

from tests.component.agents.harness import Wire

UNREACHABLE = "localhost:1"  # never contacted: agents run in their test context


@pytest.fixture
def app_id() -> str:
    return f"wedsync-agents-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    wire = Wire()
    wire.install(monkeypatch)
    return wire


@pytest.fixture
def app(app_id: str) -> faust.App:
    return faust.App(app_id, broker=f"kafka://{UNREACHABLE}", store="memory://")


@pytest.fixture
def agents(app: faust.App, app_id: str, codecs: TopicCodecs, wire: Wire) -> Agents:
    settings = Settings(
        kafka_bootstrap_servers=UNREACHABLE, schema_registry_url=None, app_id=app_id
    )
    return register_all(
        app, Context(settings=settings, codecs=codecs, output=wire), with_route=False
    )
