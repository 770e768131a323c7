"""A change of a contract table that cannot be carried is a dead letter that finds and replays
it (table, key, LSN, the failing column and the reason, the non-secret columns) and never
holds a secret column: not in its value, not in its headers, not as raw pgoutput bytes."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from confluent_kafka import Message
from connectors.sources.postgres_cdc.snapshot import parse_lsn
from streams import topics
from streams.kafka.codec import TopicCodecs
from streams.kafka.deadletter import header_map

from tests.integration.cdc_support import PlatformDb, read_topic

pytestmark = pytest.mark.integration

TWO_D = "{{form_responses.insert,journey_progress.update},{a,b}}"  # the schema's arrays are flat


def secret() -> str:
    """A distinctive secret, so finding it anywhere means it leaked."""
    return f"whsec_{secrets.token_hex(16)}"


def dead_letter_of(endpoint: object) -> Any:
    """The dead letter of one webhook_endpoints row: its table, and its id in the value."""
    return lambda m: (
        header_map(m.headers()).get("wedsync.dlq.table") == "public.webhook_endpoints"
        and str(endpoint).encode() in (m.value() or b"")
    )


def leaked(message: Message, *values: str) -> list[str]:
    """The secrets found in the record's value, key or headers (bytes, as Kafka holds them)."""
    blobs = [message.value() or b"", message.key() or b""]
    blobs += [name.encode() + (value or b"") for name, value in message.headers() or []]
    return [v for v in values if any(v.encode() in blob for blob in blobs)]


def new_supplier(cur: Any) -> str:
    cur.execute("INSERT INTO suppliers (business_name) VALUES ('Oak Barn') RETURNING id")
    return str(cur.fetchone()[0])


def test_a_dead_lettered_insert_holds_no_secret(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    key = secret()
    platform.start_cdc(kafka_bootstrap, codecs)
    with platform.connect() as conn, conn.cursor() as cur:
        supplier = new_supplier(cur)
        cur.execute("INSERT INTO webhook_endpoints (supplier_id, endpoint_url, secret_key, "
                    "subscribed_events) VALUES (%s, 'https://h.example', %s, %s) RETURNING id",
                    (supplier, key, TWO_D))  # fmt: skip
        (endpoint,) = cur.fetchone()
    (dead,) = read_topic(kafka_bootstrap, topics.INGEST_DLQ,
                         dead_letter_of(endpoint))  # fmt: skip
    assert leaked(dead, key) == []


def test_a_dead_lettered_update_holds_neither_the_old_nor_the_new_secret(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    old, new = secret(), secret()
    platform.start_cdc(kafka_bootstrap, codecs)
    with platform.connect() as conn, conn.cursor() as cur:
        supplier = new_supplier(cur)
        cur.execute("INSERT INTO webhook_endpoints (supplier_id, endpoint_url, secret_key) "
                    "VALUES (%s, 'https://h.example', %s) RETURNING id",
                    (supplier, old))  # fmt: skip
        (endpoint,) = cur.fetchone()
        cur.execute("UPDATE webhook_endpoints SET secret_key = %s, subscribed_events = %s "
                    "WHERE id = %s", (new, TWO_D, endpoint))  # fmt: skip
    (dead,) = read_topic(kafka_bootstrap, topics.INGEST_DLQ,
                         dead_letter_of(endpoint))  # fmt: skip
    assert leaked(dead, old, new) == []


def test_a_dead_letter_names_the_column_and_carries_the_non_secret_columns_to_replay_it(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    platform.start_cdc(kafka_bootstrap, codecs)
    with platform.connect() as conn, conn.cursor() as cur:
        supplier = new_supplier(cur)
        cur.execute("SELECT pg_current_wal_lsn()::text")
        (before_lsn,) = cur.fetchone()
        cur.execute("INSERT INTO webhook_endpoints (supplier_id, endpoint_url, secret_key, "
                    "subscribed_events) VALUES (%s, 'https://h.example/in', %s, %s) "
                    "RETURNING id", (supplier, secret(), TWO_D))  # fmt: skip
        (endpoint,) = cur.fetchone()
        cur.execute("SELECT pg_current_wal_lsn()::text")
        (after_lsn,) = cur.fetchone()
    (dead,) = read_topic(kafka_bootstrap, topics.INGEST_DLQ,
                         dead_letter_of(endpoint))  # fmt: skip
    headers = header_map(dead.headers())
    value = json.loads(dead.value())
    assert (headers["wedsync.dlq.key"], headers["wedsync.dlq.column"]) == (
        f"webhook_endpoints:{endpoint}",
        "subscribed_events",
    )
    assert "multi-dimensional" in headers["wedsync.dlq.reason"]
    # The change's own WAL position: at or after the flushed end of the last commit
    # before it, and before the end of its own transaction.
    assert parse_lsn(before_lsn) <= parse_lsn(headers["wedsync.dlq.lsn"]) < parse_lsn(after_lsn)
    assert (value["op"], value["before"]) == ("c", None)
    assert value["after"] == {
        "id": str(endpoint),
        "supplier_id": supplier,
        "endpoint_url": "https://h.example/in",
        "subscribed_events": TWO_D,
        "is_active": "t",
    }


def test_a_dead_lettered_snapshot_row_holds_no_secret(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    key = secret()
    with platform.connect() as conn, conn.cursor() as cur:
        supplier = new_supplier(cur)
        cur.execute("INSERT INTO webhook_endpoints (supplier_id, endpoint_url, secret_key, "
                    "subscribed_events) VALUES (%s, 'https://h.example', %s, %s) RETURNING id",
                    (supplier, key, TWO_D))  # fmt: skip
        (endpoint,) = cur.fetchone()
    platform.start_cdc(kafka_bootstrap, codecs)  # the row is read by the snapshot
    (dead,) = read_topic(kafka_bootstrap, topics.INGEST_DLQ, dead_letter_of(endpoint))
    assert (json.loads(dead.value())["op"], leaked(dead, key)) == ("r", [])
