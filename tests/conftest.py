"""Shared fixtures. `kafka_bootstrap` is a real broker: KAFKA_BOOTSTRAP_SERVERS when set,
else Apache Kafka itself (one KRaft node, `streams.dev.kraft`; `WEDSYNC_BROKER=tansu` for the
embedded Tansu broker instead), started once per test process and always stopped.
`tansu_bootstrap` is the embedded broker, for the smoke set that keeps `make run`'s default
honest."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from streams.dev.broker import EmbeddedBroker, dev_broker
from streams.kafka.admin import create_topics
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
    """A real Kafka broker with every catalog topic created: Apache Kafka by default."""
    os.environ.setdefault("WEDSYNC_BROKER", "kafka")
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        create_topics(os.environ["KAFKA_BOOTSTRAP_SERVERS"])
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        return
    with dev_broker(os.environ["WEDSYNC_BROKER"]) as bootstrap:
        create_topics(bootstrap)
        yield bootstrap


@pytest.fixture(scope="session")
def tansu_bootstrap() -> Iterator[str]:
    """The embedded Tansu broker (`make run`'s default) with every catalog topic created."""
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap_servers)
        yield broker.bootstrap_servers


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
