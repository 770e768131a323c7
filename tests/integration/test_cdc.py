"""The PostgreSQL CDC source end to end: a throwaway PostgreSQL, the real broker, the codec.

Every test uses its own tables, publication, slot and consumer group; the CDC topic is shared
by the session, so reads keep only the events of the test's own tables.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from connectors.sources.postgres_cdc.config import PostgresCdcConfig
from connectors.sources.postgres_cdc.source import PostgresCdcSource, make_producer
from streams.background import Background
from streams.kafka.codec import TopicCodecs
from streams.settings import REPO_ROOT
from streams.topics import INGEST_CDC

from tests.integration.cdc_support import running as start_running
from tests.pg import PostgresServer, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def suffix() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def db(postgres: PostgresServer) -> Iterator[Any]:
    conn = psycopg2.connect(postgres.dsn)
    conn.autocommit = True
    yield conn
    conn.close()


def cdc_config(postgres: PostgresServer, suffix: str, **fields: Any) -> PostgresCdcConfig:
    return PostgresCdcConfig(
        host=postgres.host,
        port=postgres.port,
        user=postgres.user,
        dbname=postgres.dbname,
        slot_name=f"slot_{suffix}",
        publication=f"pub_{suffix}",
        heartbeat_interval_s=0.5,
        **fields,
    )


@pytest.fixture
def start_source(
    kafka_bootstrap: str, codecs: TopicCodecs
) -> Iterator[Callable[[PostgresCdcConfig], Background]]:
    running: list[Background] = []

    def start(config: PostgresCdcConfig) -> Background:
        producer = make_producer(kafka_bootstrap, max_record_bytes=config.max_record_bytes)
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        source = PostgresCdcSource(config, producer, codecs, admin=admin)
        running.append(start_running(source))
        return running[-1]

    yield start
    for r in running:
        r.stop()


class Reader:
    """Reads the CDC topic from the start with its own group, keeping some tables' events."""

    def __init__(self, bootstrap: str, codecs: TopicCodecs, tables: set[str]) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"test-cdc-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
            }
        )
        # assign, not subscribe: no group rebalance to wait for
        self.consumer.assign(
            [
                TopicPartition(INGEST_CDC.name, p, OFFSET_BEGINNING)
                for p in range(INGEST_CDC.partitions)
            ]
        )
        self.codec = codecs[INGEST_CDC]
        self.tables = tables
        self.events: list[tuple[bytes, dict[str, Any]]] = []

    def read_until(
        self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not done(self.values()) and time.monotonic() < deadline:
            for msg in self.consumer.consume(1000, timeout=0.2):
                if msg.error():
                    continue
                event = self.codec.decode(msg.value())
                if event["source"]["table"] in self.tables:
                    self.events.append((msg.key(), event))
        return self.values()

    def values(self) -> list[dict[str, Any]]:
        return [event for _, event in self.events]

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture
def reader(kafka_bootstrap: str, codecs: TopicCodecs) -> Iterator[Callable[..., Reader]]:
    made: list[Reader] = []

    def make(*tables: str) -> Reader:
        made.append(Reader(kafka_bootstrap, codecs, set(tables)))
        return made[-1]

    yield make
    for r in made:
        r.close()


def has(n: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda events: len(events) >= n


def slot_confirmed(db: Any, slot: str) -> int:
    with db.cursor() as cur:
        cur.execute(
            "SELECT confirmed_flush_lsn - '0/0'::pg_lsn FROM pg_replication_slots "
            "WHERE slot_name = %s",
            (slot,),
        )
        row = cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0


def test_snapshot_rows_arrive_as_reads_then_changes_stream(
    postgres, db, suffix, start_source, reader
):
    table = f"vendors_{suffix}"
    with db.cursor() as cur:
        cur.execute(
            f"CREATE TABLE {table} (id int PRIMARY KEY, name text, active bool, "
            "rating float8, tags text[], prefs jsonb)"
        )
        cur.execute(
            f"INSERT INTO {table} VALUES (1, 'Oak Barn', true, 4.5, '{{a,b}}', "
            """'{"realtime_channels": ["email"]}'), (2, 'Elm Hall', false, NULL, NULL, NULL)"""
        )
    start_source(cdc_config(postgres, suffix, tables=(table,)))
    r = reader(table)
    snapshot = r.read_until(has(2))
    assert sorted(e["after"]["id"] for e in snapshot) == [1, 2]
    assert {e["op"] for e in snapshot} == {"r"}
    assert all(e["source"]["snapshot"] for e in snapshot)
    first = next(e for e in snapshot if e["after"]["id"] == 1)
    assert first["after"] == {
        "id": 1,
        "name": "Oak Barn",
        "active": True,
        "rating": 4.5,
        "tags": ["a", "b"],
        "prefs": '{"realtime_channels": ["email"]}',
    }
    assert first["primary_key"] == ["id"]
    with db.cursor() as cur:
        cur.execute(f"INSERT INTO {table} (id, name) VALUES (3, 'Pine Lodge')")
    events = r.read_until(has(3))
    assert events[2]["op"] == "c" and events[2]["after"]["id"] == 3
    assert not events[2]["source"]["snapshot"]


def test_insert_update_delete_with_full_replica_identity(
    postgres, db, suffix, start_source, reader
):
    table = f"wedding_details_{suffix}"
    with db.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id text PRIMARY KEY, wedding_date date, guests int)")
        cur.execute(f"ALTER TABLE {table} REPLICA IDENTITY FULL")
    start_source(cdc_config(postgres, suffix, tables=(table,)))
    r = reader(table)
    with db.cursor() as cur:
        wait_until(lambda: slot_confirmed(db, f"slot_{suffix}") > 0)
        cur.execute(f"INSERT INTO {table} VALUES ('w-1', '2027-06-12', 80)")
        cur.execute(f"UPDATE {table} SET wedding_date = '2027-06-19' WHERE id = 'w-1'")
        cur.execute(f"DELETE FROM {table} WHERE id = 'w-1'")
    keys_and_events = r.read_until(has(3)) and r.events
    ops = [e["op"] for _, e in keys_and_events]
    assert ops == ["c", "u", "d"]
    (k1, c), (_, u), (_, d) = keys_and_events
    assert k1 == f"{table}:w-1".encode()
    assert c["before"] is None and c["after"] == {
        "id": "w-1",
        "wedding_date": "2027-06-12",
        "guests": 80,
    }
    assert u["before"]["wedding_date"] == "2027-06-12"
    assert u["after"]["wedding_date"] == "2027-06-19"
    assert d["before"] == {"id": "w-1", "wedding_date": "2027-06-19", "guests": 80}
    assert d["after"] is None
    assert c["source"]["lsn"] < u["source"]["lsn"] < d["source"]["lsn"]
    assert c["source"]["tx_id"] != u["source"]["tx_id"]
    assert c["event_id"] == f"postgres:{c['source']['lsn']}:{table}:w-1"
    assert abs(c["source_ts_ms"] - time.time() * 1000) < 60_000


def test_default_replica_identity_delete_carries_only_the_key(
    postgres, db, suffix, start_source, reader
):
    table = f"suppliers_{suffix}"
    with db.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, name text)")
        cur.execute(f"INSERT INTO {table} VALUES (7, 'Snap Studio')")
    start_source(cdc_config(postgres, suffix, tables=(table,), snapshot=False))
    r = reader(table)
    wait_until(lambda: slot_confirmed(db, f"slot_{suffix}") > 0)
    with db.cursor() as cur:
        cur.execute(f"DELETE FROM {table} WHERE id = 7")
    (event,) = r.read_until(has(1))
    assert event["op"] == "d"
    assert event["before"] == {"id": 7}


def test_excluded_columns_never_leave_the_database(postgres, db, suffix, start_source, reader):
    table = f"core_fields_{suffix}"
    with db.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, partner_name text, phone text)")
        cur.execute(f"ALTER TABLE {table} REPLICA IDENTITY FULL")
        cur.execute(f"INSERT INTO {table} VALUES (1, 'Sam', '+44 7700 900000')")
    config = cdc_config(
        postgres, suffix, tables=(table,), exclude_columns={table: frozenset({"phone"})}
    )
    start_source(config)
    r = reader(table)
    r.read_until(has(1))
    with db.cursor() as cur:
        cur.execute(f"UPDATE {table} SET partner_name = 'Samira', phone = '+44 7700 900001'")
    events = r.read_until(has(2))
    assert [e["op"] for e in events] == ["r", "u"]
    for event in events:
        for image in (event["before"], event["after"]):
            assert image is None or "phone" not in image
    assert events[1]["after"] == {"id": 1, "partner_name": "Samira"}


def test_table_filter_skips_other_tables_and_still_confirms(
    postgres, db, suffix, start_source, reader
):
    wanted, other = f"form_responses_{suffix}", f"audit_log_{suffix}"
    with db.cursor() as cur:
        for table in (wanted, other):
            cur.execute(f"CREATE TABLE {table} (id int PRIMARY KEY)")
        # the publication covers both tables; the source's filter keeps one
        cur.execute(f"CREATE PUBLICATION pub_{suffix} FOR TABLE {wanted}, {other}")
    start_source(cdc_config(postgres, suffix, tables=(wanted,)))
    r = reader(wanted, other)
    slot = f"slot_{suffix}"
    wait_until(lambda: slot_confirmed(db, slot) > 0)
    with db.cursor() as cur:
        cur.execute(f"INSERT INTO {other} SELECT generate_series(1, 50)")
        cur.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
        after_other = int(cur.fetchone()[0])
        cur.execute(f"INSERT INTO {wanted} VALUES (1)")
    events = r.read_until(has(1))
    time.sleep(0.5)
    events = r.read_until(has(2), timeout=1.0)
    assert [e["source"]["table"] for e in events] == [wanted]
    assert wait_until(lambda: slot_confirmed(db, slot) >= after_other)


def test_idle_database_does_not_pin_wal(postgres, db, suffix, start_source):
    table = f"idle_{suffix}"
    with db.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id int PRIMARY KEY)")
    start_source(cdc_config(postgres, suffix, tables=(table,), snapshot=False))
    slot = f"slot_{suffix}"
    wait_until(lambda: slot_confirmed(db, slot) > 0)
    with db.cursor() as cur:  # WAL written by tables outside the publication
        cur.execute(f"CREATE TABLE unrelated_{suffix} AS SELECT generate_series(1, 1000) AS n")
        cur.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
        wal_now = int(cur.fetchone()[0])
    assert wait_until(lambda: slot_confirmed(db, slot) >= wal_now, timeout=15)


def test_a_restarted_source_makes_its_first_changes_wait_for_the_state_before_its_start(
    postgres, db, suffix, start_source, reader
):
    """A restarted source cannot know which state changes before its start the routing
    state has folded, so its first changes name the slot's position as their state_lsn (and
    a heartbeat past it follows): routing waits for it instead of not waiting at all."""
    table = f"form_responses_{suffix}"
    with db.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, answer text)")
    config = cdc_config(postgres, suffix, tables=(table,), snapshot=False)
    first = start_source(config)
    r = reader(table)
    wait_until(lambda: slot_confirmed(db, f"slot_{suffix}") > 0)
    with db.cursor() as cur:
        cur.execute(f"INSERT INTO {table} VALUES (1, 'yes')")
    r.read_until(has(1))
    first.stop()
    restart_at = slot_confirmed(db, f"slot_{suffix}")
    with db.cursor() as cur:
        cur.execute(f"INSERT INTO {table} VALUES (2, 'no')")
    start_source(config)
    _, after = r.read_until(has(2))
    assert after["source"]["state_lsn"] is not None
    assert restart_at <= after["source"]["state_lsn"] < after["source"]["commit_lsn"]


# ---- crash: kill -9 mid-stream, restart, compare the database with the topic ------------
def _spawn_cdc(
    postgres: PostgresServer, bootstrap: str, suffix: str, table: str, log: Any
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "WEDSYNC_CDC_HOST": postgres.host,
        "WEDSYNC_CDC_PORT": str(postgres.port),
        "WEDSYNC_CDC_USER": postgres.user,
        "WEDSYNC_CDC_DBNAME": postgres.dbname,
        "WEDSYNC_CDC_SLOT_NAME": f"slot_{suffix}",
        "WEDSYNC_CDC_PUBLICATION": f"pub_{suffix}",
        "WEDSYNC_CDC_HEARTBEAT_INTERVAL_S": "0.5",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "streams.app.cli", "cdc", "--table", table],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


def test_kill_9_mid_stream_loses_no_change(postgres, kafka_bootstrap, db, suffix, reader, tmp_path):
    table = f"journey_progress_{suffix}"
    with db.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, pct int)")
        cur.execute(f"INSERT INTO {table} (id, pct) SELECT g, 0 FROM generate_series(1, 20) g")
    stop_writer = threading.Event()
    written = []

    def writer() -> None:  # many small transactions, each recorded once committed
        conn = psycopg2.connect(postgres.dsn)
        conn.autocommit = False
        n = 0
        with conn.cursor() as cur:
            while not stop_writer.is_set() and n < 50_000:
                n += 1
                row = n % 20 + 1
                cur.execute(f"UPDATE {table} SET pct = %s WHERE id = %s", (n, row))
                conn.commit()
                written.append((row, n))
        conn.close()

    log = (tmp_path / "cdc.log").open("wb")
    proc = _spawn_cdc(postgres, kafka_bootstrap, suffix, table, log)
    procs = [proc]
    try:
        r = reader(table)
        r.read_until(has(20))  # the snapshot is in
        thread = threading.Thread(target=writer)
        thread.start()
        r.read_until(has(20 + 300), timeout=60)  # streaming is well under way
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        killed_at = len(written)
        before_restart = len(r.events)
        proc = _spawn_cdc(postgres, kafka_bootstrap, suffix, table, log)
        procs.append(proc)
        r.read_until(has(before_restart + 300), timeout=60)  # the restarted source streams
        stop_writer.set()
        thread.join(timeout=120)
        assert not thread.is_alive()
        assert killed_at < len(written), "the writer must keep writing across the crash"
        expected = {(row, pct) for row, pct in written}
        seen: set[tuple[int, int]] = set()

        def complete(events: list[dict[str, Any]]) -> bool:
            seen.update((e["after"]["id"], e["after"]["pct"]) for e in events if e["op"] == "u")
            return expected <= seen

        r.read_until(complete, timeout=90)
        missing = expected - seen
        assert not missing, f"{len(missing)} changes lost, e.g. {sorted(missing)[:5]}"
        ids = [e["event_id"] for e in r.values()]
        assert len(set(ids)) == len(expected) + 20  # duplicates share their event_id
        assert before_restart < len(written) + 20
        with db.cursor() as cur:  # the topic's last value per row is the table's content
            cur.execute(f"SELECT id, pct FROM {table}")
            final = dict(cur.fetchall())
        last = {e["after"]["id"]: e["after"]["pct"] for e in r.values()}
        assert last == final
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, (tmp_path / "cdc.log").read_text()
    finally:
        log.close()
        stop_writer.set()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
