"""A secured Apache Kafka per test module (`KafkaCluster(secured=True)`: SASL_SSL with
SCRAM, ACLs enforced, an admin super user) and the integration tier's PostgreSQL fixtures.
Never skipped: a cluster that cannot start fails the module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from streams.dev.kraft import KafkaCluster

from tests.integration.conftest import platform, postgres

__all__ = ["platform", "postgres", "secured_cluster"]


@pytest.fixture(scope="module")
def secured_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    cluster = KafkaCluster(secured=True, base_dir=tmp_path_factory.mktemp("secured-kafka"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
