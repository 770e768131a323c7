"""The CDC source never crash-loops on a change Kafka cannot take as it is: a value too large
for one record is cut to a bound and marked, a change that cannot fit even cut is a dead
letter, a snapshot row that cannot be converted is a dead letter, a record size limit above
the broker's stops the source at start, and a fatal producer error stops it without
confirming past what Kafka did not acknowledge. On the platform's DDL (REPLICA IDENTITY FULL
everywhere), the real broker (default `message.max.bytes`, about 1 MB) and PostgreSQL 15."""

from __future__ import annotations

import json
import logging
import random
import string
from collections.abc import Callable
from typing import Any, cast

import pytest
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from connectors.sources.postgres_cdc.source import make_producer
from prometheus_client import REGISTRY
from streams import metrics, topics
from streams.errors import BrokerUnavailable, ConfigurationError
from streams.kafka.codec import TopicCodecs
from streams.kafka.deadletter import header_map
from streams.logic.normalize import changed_columns
from streams.models import ChangeEvent

from tests.integration.cdc_support import PlatformDb, read_topic
from tests.pg import wait_until

pytestmark = pytest.mark.integration

CUT_HEADER = "wedsync.cdc.cut_columns"


def noise(n: int, seed: int = 7) -> str:
    """`n` random letters: PostgreSQL's TOAST compression cannot shrink them."""
    rng = random.Random(seed)
    return "".join(rng.choices(string.ascii_letters, k=n))


def change_of(codecs: TopicCodecs, key: str, op: str) -> Callable[[Message], bool]:
    """Accepts the CDC record of `op` on row `key` (`<table>:<id>`)."""
    decode = codecs[topics.INGEST_CDC].decode
    return lambda m: m.key() == key.encode() and decode(m.value())["op"] == op


def dead_letter_of(key: str) -> Callable[[Message], bool]:
    return lambda m: header_map(m.headers()).get("wedsync.dlq.key") == key


def insert(cur: Any, sql: str, *params: object) -> str:
    cur.execute(sql + " RETURNING id", params)
    return str(cur.fetchone()[0])


def new_supplier(cur: Any) -> str:
    return insert(cur, "INSERT INTO suppliers (business_name) VALUES ('Oak Barn')")


def new_wedding(cur: Any, special_requests: str | None = None) -> str:
    return insert(cur, "INSERT INTO wedding_details (couple_id, wedding_date, special_requests) "
                  "VALUES (gen_random_uuid(), '2027-06-12', %s)", special_requests)  # fmt: skip


def slot_confirmed(platform: PlatformDb, slot: str) -> int:
    with platform.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT confirmed_flush_lsn - '0/0'::pg_lsn FROM pg_replication_slots "
                    "WHERE slot_name = %s", (slot,))  # fmt: skip
        row = cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0


def current_lsn(cur: Any) -> int:
    cur.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
    return int(cur.fetchone()[0])


# ---- a value too large for one record is cut and marked ---------------------------------
def test_a_text_too_large_for_one_record_is_cut_to_the_bound_and_marked(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    config = platform.cdc_config()
    big = noise(1_200_000)
    with platform.connect() as conn, conn.cursor() as cur:
        wedding = new_wedding(cur)
        platform.start_cdc(kafka_bootstrap, codecs, config)
        cur.execute("UPDATE wedding_details SET special_requests = %s, wedding_date = "
                    "'2027-06-19' WHERE id = %s", (big, wedding))  # fmt: skip
    (msg,) = read_topic(kafka_bootstrap, topics.INGEST_CDC,
                        change_of(codecs, f"wedding_details:{wedding}", "u"))  # fmt: skip
    after = codecs[topics.INGEST_CDC].decode(msg.value())["after"]
    assert after["wedding_date"] == "2027-06-19"
    cut = after["special_requests"]
    assert 0 < len(cut.encode()) <= config.cut_value_bytes and big.startswith(cut)
    assert header_map(msg.headers())[CUT_HEADER] == "special_requests"


def test_a_cut_is_logged_naming_table_key_and_column_and_counted_never_the_value(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    def cuts() -> float:
        metrics.export("cdc")  # what `wedsync cdc` exports
        return REGISTRY.get_sample_value("wedsync_cdc_columns_cut_total") or 0.0

    big = noise(1_200_000, seed=11)
    with platform.connect() as conn, conn.cursor() as cur:
        wedding = new_wedding(cur)
        platform.start_cdc(kafka_bootstrap, codecs)
        before = cuts()
        with caplog.at_level(logging.WARNING, logger="connectors.sources.postgres_cdc"):
            cur.execute("UPDATE wedding_details SET venue_notes = %s WHERE id = %s",
                        (big, wedding))  # fmt: skip
            read_topic(kafka_bootstrap, topics.INGEST_CDC,
                       change_of(codecs, f"wedding_details:{wedding}", "u"))  # fmt: skip
    lines = [r.getMessage() for r in caplog.records if "venue_notes" in r.getMessage()]
    assert len(lines) == 1
    assert "wedding_details" in lines[0] and wedding in lines[0]
    assert big[:64] not in caplog.text
    assert cuts() == before + 1


def test_a_jsonb_too_large_for_one_record_keeps_its_small_members(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    small = {"realtime_channels": ["slack", "email"], "slack_channel": "C0WEDDING"}
    prefs = json.dumps({**small, "note": noise(1_100_000)})
    with platform.connect() as conn, conn.cursor() as cur:
        supplier = new_supplier(cur)
        platform.start_cdc(kafka_bootstrap, codecs)
        cur.execute("UPDATE suppliers SET notification_preferences = %s WHERE id = %s",
                    (prefs, supplier))  # fmt: skip
    key = f"suppliers:{supplier}".encode()
    decode = codecs[topics.INGEST_STATE].decode
    (msg,) = read_topic(kafka_bootstrap, topics.INGEST_STATE,
                        lambda m: m.key() == key and decode(m.value())["op"] == "u")  # fmt: skip
    after = decode(msg.value())["after"]
    assert json.loads(after["notification_preferences"]) == small
    assert header_map(msg.headers())[CUT_HEADER] == "notification_preferences"


def test_before_and_after_too_large_together_are_cut_and_still_say_the_column_changed(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    old = noise(600_000, seed=1)
    new = old[:-20] + noise(20, seed=2)  # same first 599,980 characters: the cuts are equal
    with platform.connect() as conn, conn.cursor() as cur:
        wedding = new_wedding(cur, special_requests=old)  # 600 kB: fits one record alone
        platform.start_cdc(kafka_bootstrap, codecs)
        cur.execute("UPDATE wedding_details SET special_requests = %s WHERE id = %s",
                    (new, wedding))  # fmt: skip
    (msg,) = read_topic(kafka_bootstrap, topics.INGEST_CDC,
                        change_of(codecs, f"wedding_details:{wedding}", "u"))  # fmt: skip
    change = codecs[topics.INGEST_CDC].decode(msg.value())
    assert new.startswith(change["after"]["special_requests"])
    assert "special_requests" in changed_columns(cast(ChangeEvent, change))
    assert header_map(msg.headers())[CUT_HEADER] == "special_requests"


# ---- what cannot be carried is a dead letter; the stream goes on --------------------------
def test_a_change_too_large_even_cut_is_dead_lettered_without_its_values_and_the_stream_goes_on(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    url = "https://hooks.example/" + noise(1_200_000)  # an address is never cut
    with platform.connect() as conn, conn.cursor() as cur:
        supplier = new_supplier(cur)
        platform.start_cdc(kafka_bootstrap, codecs)
        endpoint = insert(cur, "INSERT INTO webhook_endpoints (supplier_id, endpoint_url, "
                          "secret_key) VALUES (%s, %s, 'sk-never-in-kafka')",
                          supplier, url)  # fmt: skip
        later = new_supplier(cur)
    (dead,) = read_topic(kafka_bootstrap, topics.INGEST_DLQ,
                         dead_letter_of(f"webhook_endpoints:{endpoint}"))  # fmt: skip
    headers = header_map(dead.headers())
    assert headers["wedsync.dlq.table"] == "public.webhook_endpoints"
    assert "/" in headers["wedsync.dlq.lsn"]
    assert "endpoint_url" in headers["wedsync.dlq.reason"]
    assert "max_record_bytes" in headers["wedsync.dlq.reason"]
    assert not dead.value()
    assert "sk-never-in-kafka" not in json.dumps(headers)
    read_topic(kafka_bootstrap, topics.INGEST_CDC, change_of(codecs, f"suppliers:{later}", "c"))


def test_a_snapshot_row_that_cannot_be_converted_is_dead_lettered_and_the_snapshot_goes_on(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    with platform.connect() as conn, conn.cursor() as cur:
        supplier = new_supplier(cur)
        # a two-dimensional text[]: valid in PostgreSQL, not a list of event names
        bad = insert(cur, "INSERT INTO webhook_endpoints (supplier_id, endpoint_url, secret_key, "
                     "subscribed_events) VALUES (%s, 'https://h.example', 'sk-never-in-kafka', "
                     "'{{a,b},{c,d}}')", supplier)  # fmt: skip
        good = insert(cur, "INSERT INTO webhook_endpoints (supplier_id, endpoint_url, "
                      "secret_key) VALUES (%s, 'https://h.example', 'k')", supplier)  # fmt: skip
    platform.start_cdc(kafka_bootstrap, codecs)  # returns once the snapshot is done
    (dead,) = read_topic(kafka_bootstrap, topics.INGEST_DLQ,
                         dead_letter_of(f"webhook_endpoints:{bad}"))  # fmt: skip
    headers = header_map(dead.headers())
    assert headers["wedsync.dlq.table"] == "public.webhook_endpoints"
    assert headers["wedsync.dlq.error_class"] == "DecodeError"
    assert "subscribed_events" in headers["wedsync.dlq.reason"]
    assert "multi-dimensional" in headers["wedsync.dlq.reason"]
    assert "/" in headers["wedsync.dlq.lsn"]
    assert b"sk-never-in-kafka" not in (dead.value() or b"")
    read_topic(kafka_bootstrap, topics.INGEST_CDC,
               change_of(codecs, f"webhook_endpoints:{good}", "r"))  # fmt: skip


# ---- the size limit is a setting, checked against Kafka's at start --------------------------
def test_a_record_limit_above_the_brokers_stops_the_source_at_start_naming_both(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    config = platform.cdc_config(max_record_bytes=2_000_000)
    with pytest.raises(ConfigurationError) as refused:
        platform.start_cdc(kafka_bootstrap, codecs, config)
    message = str(refused.value)
    assert "WEDSYNC_CDC_MAX_RECORD_BYTES" in message and "2000000" in message
    assert "max.message.bytes" in message and "message.max.bytes" in message
    assert "1048588" in message  # the broker's default, which the topics inherit


# ---- a fatal producer error stops the source; the restart resumes without a gap ------------
class FatalAt:
    """A real producer that meets librdkafka's fatal idempotence error at the first record
    whose key starts with `prefix`: that record's delivery fails with
    OUT_OF_ORDER_SEQUENCE_NUMBER (fatal) at the next poll or flush, and every produce()
    after it raises `_FATAL`, as librdkafka's do once the producer is unusable."""

    def __init__(self, real: Producer, prefix: bytes) -> None:
        self.real, self.prefix = real, prefix
        self.failing: list[Callable[[KafkaError, Message | None], None]] = []
        self.fatal = False

    def produce(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                on_delivery: Any = None, **kw: Any) -> None:  # fmt: skip
        if self.fatal:
            raise KafkaException(KafkaError(KafkaError._FATAL, "Fatal error: Broker: Out of "
                                            "order sequence number", fatal=True))  # fmt: skip
        if key is not None and key.startswith(self.prefix):
            self.fatal = True
            self.failing.append(on_delivery)
            return
        self.real.produce(topic, value=value, key=key, on_delivery=on_delivery, **kw)

    def _fail(self) -> None:
        while self.failing:
            self.failing.pop(0)(KafkaError(KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
                                           "Broker: Out of order sequence number", fatal=True),
                                None)  # fmt: skip

    def poll(self, timeout: float = 0) -> int:
        self._fail()
        return self.real.poll(timeout)

    def flush(self, timeout: float = -1) -> int:
        self._fail()
        return self.real.flush(timeout)

    def __len__(self) -> int:
        return len(self.real) + len(self.failing)


def test_a_fatal_producer_error_stops_the_source_and_the_restart_resumes_without_a_gap(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    config = platform.cdc_config()
    producer = FatalAt(make_producer(kafka_bootstrap), prefix=b"form_responses:")
    with platform.connect() as conn, conn.cursor() as cur:
        cdc = platform.start_cdc(kafka_bootstrap, codecs, config, producer=producer)  # type: ignore[arg-type]
        supplier = new_supplier(cur)
        delivered = current_lsn(cur)
        assert wait_until(lambda: slot_confirmed(platform, config.slot_name) >= delivered)
        cur.execute("BEGIN")  # one transaction of two form responses
        responses = [insert(cur, "INSERT INTO form_responses (supplier_id, couple_id) VALUES "
                            "(%s, gen_random_uuid())", supplier) for _ in range(2)]  # fmt: skip
        cur.execute("COMMIT")
    assert wait_until(lambda: not cdc.alive, timeout=30)
    with pytest.raises(BrokerUnavailable, match="fatal") as stopped:
        cdc.stop()
    assert "restart" in str(stopped.value)
    confirmed = slot_confirmed(platform, config.slot_name)

    platform.start_cdc(kafka_bootstrap, codecs, config)  # a fresh producer, the same slot
    decode = codecs[topics.INGEST_CDC].decode
    for response in responses:
        (msg,) = read_topic(kafka_bootstrap, topics.INGEST_CDC,
                            change_of(codecs, f"form_responses:{response}", "c"))  # fmt: skip
        assert confirmed < decode(msg.value())["source"]["commit_lsn"]


# ---- done: the date change in a transaction with all of the above reaches the topic -------
def test_the_date_change_flows_in_a_transaction_with_oversized_values_and_a_bc_timestamp(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    text = noise(1_200_000, seed=3)
    prefs = json.dumps({"realtime_channels": ["email"], "note": noise(1_100_000, seed=4)})
    with platform.connect() as conn, conn.cursor() as cur:
        supplier = new_supplier(cur)
        wedding = new_wedding(cur)
        platform.start_cdc(kafka_bootstrap, codecs)
        cur.execute("BEGIN")
        cur.execute("UPDATE wedding_details SET wedding_date = '2027-07-03', special_requests "
                    "= %s WHERE id = %s", (text, wedding))  # fmt: skip
        cur.execute("UPDATE suppliers SET notification_preferences = %s WHERE id = %s",
                    (prefs, supplier))  # fmt: skip
        milestone = insert(cur, "INSERT INTO journey_progress (supplier_id, couple_id, "
                           "milestone_name, completed_at) VALUES (%s, gen_random_uuid(), "
                           "'Booked', '0044-03-15 10:00:00+00 BC')", supplier)  # fmt: skip
        cur.execute("COMMIT")
        response = insert(cur, "INSERT INTO form_responses (supplier_id, couple_id) VALUES "
                          "(%s, gen_random_uuid())", supplier)  # fmt: skip
    decode = codecs[topics.INGEST_CDC].decode
    (moved,) = read_topic(kafka_bootstrap, topics.INGEST_CDC,
                          change_of(codecs, f"wedding_details:{wedding}", "u"))  # fmt: skip
    change = decode(moved.value())
    assert (change["before"]["wedding_date"], change["after"]["wedding_date"]) == (
        "2027-06-12", "2027-07-03",
    )  # fmt: skip
    (prefs_change,) = read_topic(kafka_bootstrap, topics.INGEST_CDC,
                                 change_of(codecs, f"suppliers:{supplier}", "u"))  # fmt: skip
    assert json.loads(decode(prefs_change.value())["after"]["notification_preferences"]) == {
        "realtime_channels": ["email"]
    }
    (bc,) = read_topic(kafka_bootstrap, topics.INGEST_CDC,
                       change_of(codecs, f"journey_progress:{milestone}", "c"))  # fmt: skip
    assert decode(bc.value())["after"]["completed_at"] == "0044-03-15 10:00:00+00 BC"
    read_topic(
        kafka_bootstrap, topics.INGEST_CDC, change_of(codecs, f"form_responses:{response}", "c")
    )  # the next transaction
