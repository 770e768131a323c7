"""The CDC source against the platform's DDL: the source contract refuses a database that
lacks what the pipeline reads (at start and when a relation changes while streaming), a
mapping lets the platform's names differ, a change that cannot be decoded is dead-lettered
and the stream goes on, and an unchanged TOAST column is left out, never emptied."""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Message
from streams import topics
from streams.errors import ContractViolation
from streams.kafka.codec import TopicCodecs
from streams.kafka.deadletter import header_map
from streams.logic.state import fold_row

from tests.integration.cdc_support import PlatformDb, read_topic
from tests.pg import wait_until

pytestmark = pytest.mark.integration


def test_a_database_without_a_contract_column_is_refused_naming_it(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    with platform.connect() as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE wedding_vendors RENAME COLUMN vendor_id TO supplier_id")
    with pytest.raises(ContractViolation, match=r"wedding_vendors\.vendor_id: missing"):
        platform.start_cdc(kafka_bootstrap, codecs)


def test_a_mapping_lets_the_platform_name_a_column_differently(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs, tmp_path: Path
) -> None:
    with platform.connect() as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE wedding_vendors RENAME COLUMN vendor_id TO supplier_id")
        mapping = tmp_path / "contract.toml"
        mapping.write_text('[tables.wedding_vendors]\ncolumns = { vendor_id = "supplier_id" }\n')
        platform.start_cdc(kafka_bootstrap, codecs, platform.cdc_config(contract_file=mapping))
        cur.execute("INSERT INTO suppliers (business_name) VALUES ('V') RETURNING id")
        (supplier,) = cur.fetchone()
        cur.execute("INSERT INTO wedding_details (couple_id) VALUES (gen_random_uuid()) "
                    "RETURNING id")  # fmt: skip
        (wedding,) = cur.fetchone()
        cur.execute("INSERT INTO wedding_vendors (wedding_id, supplier_id) VALUES (%s, %s) "
                    "RETURNING id", (wedding, supplier))  # fmt: skip
        (link,) = cur.fetchone()
    (msg,) = read_topic(kafka_bootstrap, topics.INGEST_STATE,
                        lambda m: m.key() == f"wedding_vendors:{link}".encode())  # fmt: skip
    change = codecs[topics.INGEST_STATE].decode(msg.value())
    assert change["after"]["vendor_id"] == str(supplier)
    assert "supplier_id" not in change["after"]


def test_a_column_dropped_while_streaming_stops_the_source_naming_it(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    cdc = platform.start_cdc(kafka_bootstrap, codecs)
    with platform.connect() as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE webhook_endpoints DROP COLUMN subscribed_events")
        cur.execute("INSERT INTO suppliers (business_name) VALUES ('V') RETURNING id")
        (supplier,) = cur.fetchone()
        cur.execute("INSERT INTO webhook_endpoints (supplier_id, endpoint_url, secret_key) "
                    "VALUES (%s, 'https://h.example', 'k')", (supplier,))  # fmt: skip
    assert wait_until(lambda: not cdc.alive, timeout=30)
    with pytest.raises(ContractViolation, match=r"webhook_endpoints\.subscribed_events: missing"):
        cdc.stop()


def test_an_undecodable_change_is_dead_lettered_and_the_stream_goes_on(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    platform.start_cdc(kafka_bootstrap, codecs)
    with platform.connect() as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO suppliers (business_name) VALUES ('V') RETURNING id")
        (supplier,) = cur.fetchone()
        # a two-dimensional text[]: valid in PostgreSQL, not a list of event names
        cur.execute("INSERT INTO webhook_endpoints (supplier_id, endpoint_url, secret_key, "
                    "subscribed_events) VALUES (%s, 'https://h.example', 'k', "
                    "'{{a,b},{c,d}}') RETURNING id", (supplier,))  # fmt: skip
        cur.execute("INSERT INTO suppliers (business_name) VALUES ('after') RETURNING id")
        (later,) = cur.fetchone()

    def ours(m: Message) -> bool:
        table = header_map(m.headers()).get("wedsync.dlq.table")
        return table == "public.webhook_endpoints" and b"{{a,b},{c,d}}" in (m.value() or b"")

    (dead,) = read_topic(kafka_bootstrap, topics.INGEST_DLQ, ours)
    headers = header_map(dead.headers())
    assert headers["wedsync.dlq.error_class"] == "DecodeError"
    assert "multi-dimensional" in headers["wedsync.dlq.reason"]
    assert "/" in headers["wedsync.dlq.lsn"]
    read_topic(kafka_bootstrap, topics.INGEST_CDC,
               lambda m: m.key() == f"suppliers:{later}".encode())  # fmt: skip


def test_an_unchanged_toast_column_is_left_out_and_the_state_keeps_it(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    rng = random.Random(3)
    noise = "".join(rng.choice(string.ascii_letters) for _ in range(20_000))  # incompressible
    prefs = json.dumps({"realtime_channels": ["slack"], "slack_channel": "C1", "note": noise})
    with platform.connect() as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE suppliers REPLICA IDENTITY DEFAULT")
        cur.execute("INSERT INTO suppliers (business_name, notification_preferences) "
                    "VALUES ('Opted out of email', %s) RETURNING id", (prefs,))  # fmt: skip
        (supplier,) = cur.fetchone()
        platform.start_cdc(kafka_bootstrap, codecs)
        cur.execute("UPDATE suppliers SET business_name = 'Renamed' WHERE id = %s", (supplier,))
    key = f"suppliers:{supplier}".encode()
    snapshot, update = read_topic(kafka_bootstrap, topics.INGEST_STATE,
                                  lambda m: m.key() == key, count=2)  # fmt: skip
    decode: Callable[[bytes | None], Any] = codecs[topics.INGEST_STATE].decode
    first, second = decode(snapshot.value()), decode(update.value())
    assert second["op"] == "u" and "notification_preferences" not in second["after"]
    row = fold_row(fold_row(None, first), second)
    assert row is not None
    assert row["business_name"] == "Renamed"
    assert json.loads(str(row["notification_preferences"])) == json.loads(prefs)
