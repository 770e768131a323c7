"""The record size limit against Kafka's (pure: limits.py) and in the CDC configuration."""

from __future__ import annotations

import pytest
from connectors.sources.postgres_cdc.config import PostgresCdcConfig
from connectors.sources.postgres_cdc.limits import (
    RECORD_OVERHEAD,
    KafkaLimits,
    check_record_limit,
    producer_limits,
)
from pydantic import ValidationError
from streams.errors import ConfigurationError
from streams.topics import INGEST_CDC, INGEST_DLQ

KAFKA_DEFAULT = 1_048_588
LIMITS = KafkaLimits(
    topics={INGEST_CDC.name: KAFKA_DEFAULT, INGEST_DLQ.name: KAFKA_DEFAULT},
    brokers={"1": KAFKA_DEFAULT},
)


def test_the_default_fits_kafkas_default_limits() -> None:
    assert check_record_limit(PostgresCdcConfig().max_record_bytes, LIMITS) == []


def test_a_limit_above_a_topics_is_refused_naming_the_setting_and_the_limit() -> None:
    limits = KafkaLimits(topics={INGEST_CDC.name: 500_000}, brokers={"1": KAFKA_DEFAULT})
    with pytest.raises(ConfigurationError) as refused:
        check_record_limit(600_000, limits)
    message = str(refused.value)
    assert "WEDSYNC_CDC_MAX_RECORD_BYTES" in message
    assert "topic wedsync.ingest.cdc max.message.bytes=500000" in message
    assert "broker 1" not in message  # only what it exceeds
    assert f"at most {500_000 - RECORD_OVERHEAD}" in message


def test_the_framing_counts_against_the_limit() -> None:
    with pytest.raises(ConfigurationError):
        check_record_limit(KAFKA_DEFAULT - RECORD_OVERHEAD + 1, LIMITS)
    assert check_record_limit(KAFKA_DEFAULT - RECORD_OVERHEAD, LIMITS) == []


def test_limits_kafka_did_not_report_are_returned_unchecked() -> None:
    limits = KafkaLimits(topics={INGEST_CDC.name: None}, brokers={"111": None})
    assert check_record_limit(10_000_000, limits) == [
        "topic wedsync.ingest.cdc max.message.bytes", "broker 111 message.max.bytes",
    ]  # fmt: skip


def test_the_producer_refuses_what_the_limit_refuses() -> None:
    assert producer_limits(1_000_000) == {
        "message.max.bytes": 1_000_000 + RECORD_OVERHEAD,
        "batch.size": 1_000_000 + RECORD_OVERHEAD,
    }


def test_the_cut_bound_leaves_room_for_both_images() -> None:
    with pytest.raises(ValidationError, match="cut_value_bytes"):
        PostgresCdcConfig(max_record_bytes=100_000, cut_value_bytes=50_000)


def test_the_environment_sets_the_record_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEDSYNC_CDC_MAX_RECORD_BYTES", "500000")
    assert PostgresCdcConfig().max_record_bytes == 500_000
