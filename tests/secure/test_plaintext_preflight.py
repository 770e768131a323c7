"""Where nothing is enforced the preflight passes at once: Apache Kafka on PLAINTEXT without
an authorizer (every operation allowed), the embedded Tansu broker (no operations reported),
and a PLAINTEXT cluster whose topics a process is about to create. Where no broker answers,
it says so within its bound."""

from __future__ import annotations

import time
import uuid

import pytest
from streams.dev.broker import EmbeddedBroker
from streams.errors import BrokerUnavailable
from streams.kafka.access import ROLES, check_access

pytestmark = pytest.mark.integration

QUICK_S = 3.0


def _timed(bootstrap: str, role: str, app_id: str) -> float:
    started = time.monotonic()
    check_access(bootstrap, role, app_id)
    return time.monotonic() - started


@pytest.mark.parametrize("role", ROLES)
def test_apache_kafka_without_an_authorizer_passes_quickly(kafka_bootstrap: str, role: str) -> None:
    assert _timed(kafka_bootstrap, role, f"plain-{uuid.uuid4().hex[:6]}") < QUICK_S


@pytest.mark.parametrize("role", ROLES)
def test_the_embedded_broker_passes_quickly(tansu_bootstrap: str, role: str) -> None:
    assert _timed(tansu_bootstrap, role, "wedsync") < QUICK_S


def test_a_broker_without_the_topics_yet_passes_quickly() -> None:
    with EmbeddedBroker() as broker:  # what `wedsync worker` meets before it creates them
        assert _timed(broker.bootstrap_servers, "worker", "wedsync") < QUICK_S


def test_no_broker_answering_is_broker_unavailable_within_the_bound() -> None:
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match=r"KAFKA_BOOTSTRAP_SERVERS=127\.0\.0\.1:1 "):
        check_access("127.0.0.1:1", "sla", "wedsync", timeout=2.0)
    assert time.monotonic() - started < QUICK_S
