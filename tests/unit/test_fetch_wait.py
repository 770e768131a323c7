"""How long a consumer's fetch may wait at the broker (`streams.kafka.connection`): Kafka's
500 ms by default (it answers as soon as data arrives), the embedded broker's 10 ms (it
answers only after the whole wait), a component's own setting over both."""

from __future__ import annotations

import pytest
from streams.errors import ConfigurationError
from streams.kafka.connection import (
    EMBEDDED_FETCH_WAIT_MS,
    FETCH_WAIT_ENV,
    KafkaConnection,
    client_config,
    connection,
    consumer_config,
    holds_fetches,
)
from streams.settings import Settings, load_settings


def test_a_consumer_waits_as_long_as_kafkas_own_consumers_by_default() -> None:
    assert consumer_config("127.0.0.1:9092", {"group.id": "g"})["fetch.wait.max.ms"] == 500


def test_a_settings_wait_reaches_every_consumer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FETCH_WAIT_ENV, "40")
    kafka = Settings().kafka("kafka-1:9092")
    assert consumer_config(kafka, {"group.id": "g"})["fetch.wait.max.ms"] == 40


def test_unset_the_settings_wait_is_kafkas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FETCH_WAIT_ENV, raising=False)
    assert Settings().kafka("kafka-1:9092").fetch_wait_ms == 500


def test_a_broker_that_holds_fetches_is_asked_with_a_short_wait() -> None:
    holds_fetches("127.0.0.1:19092")
    assert connection("127.0.0.1:19092").fetch_wait_ms == EMBEDDED_FETCH_WAIT_MS
    assert connection("127.0.0.1:19093").fetch_wait_ms == 500


def test_a_components_own_wait_wins() -> None:
    kafka = KafkaConnection(bootstrap_servers="kafka-1:9092", fetch_wait_ms=500)
    assert consumer_config(kafka, {"group.id": "g"}, fetch_wait_ms=7)["fetch.wait.max.ms"] == 7


def test_a_producer_is_not_given_a_consumers_option() -> None:
    kafka = KafkaConnection(bootstrap_servers="kafka-1:9092")
    assert "fetch.wait.max.ms" not in client_config(kafka, {"linger.ms": 5})


@pytest.mark.parametrize("value", ["0", "soon", "-5", "600000"])
def test_a_wrong_wait_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(FETCH_WAIT_ENV, value)
    with pytest.raises(ConfigurationError, match=FETCH_WAIT_ENV):
        load_settings()


def test_unset_the_settings_wait_is_the_embedded_brokers_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(FETCH_WAIT_ENV, raising=False)
    holds_fetches("127.0.0.1:19094")
    assert Settings().kafka("127.0.0.1:19094").fetch_wait_ms == EMBEDDED_FETCH_WAIT_MS
