"""Shared fixtures. `kafka_bootstrap` is a real broker: KAFKA_BOOTSTRAP_SERVERS when set,
else the embedded Tansu broker, started once per session and always stopped."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from streams.kafka.admin import create_topics
from streams.kafka.broker import kafka_broker
from streams.kafka.codec import TopicCodecs
from streams.kafka.registry import EmbeddedRegistry
from streams.kafka.schema_store import SchemaStore
from streams.settings import REPO_ROOT, Settings


@pytest.fixture(scope="session")
def schema_store() -> SchemaStore:
    return SchemaStore(REPO_ROOT / "schemas")


@pytest.fixture(scope="session")
def codecs(schema_store: SchemaStore) -> TopicCodecs:
    return TopicCodecs(schema_store, EmbeddedRegistry(schema_store))


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real Kafka-protocol broker with every catalog topic created."""
    with kafka_broker(os.environ.get("KAFKA_BOOTSTRAP_SERVERS")) as bootstrap:
        create_topics(bootstrap)
        yield bootstrap


@pytest.fixture
def unique_id() -> str:
    """A fresh suffix for consumer groups and app ids, so tests never share offsets."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def settings(kafka_bootstrap: str, unique_id: str) -> Settings:
    return Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        schema_registry_url=None,
        app_id=f"wedsync-test-{unique_id}",
    )
