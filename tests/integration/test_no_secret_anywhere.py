"""Nothing secret leaves the database: distinctive values in every secret column
(`secret_key`, `api_key`, `api_credentials`) and credentials in every endpoint URL (a
password in the userinfo, a token in the query, a token in the path) are never found in any
record of any topic on the cluster (the CDC source's and the sinks' dead letters included),
in any process's log, or on any
`/metrics` page, while `wedsync cdc`, `wedsync worker` (with its routing child) and the
webhook and CRM sinks run the platform's workflows and dead-letter the deliveries their
outbound policy refuses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from streams.dev.broker import free_port
from streams.dev.db import slot_streaming
from streams.dev.scenario import Endpoints, ids, play, seed
from streams.kafka.recovering import watermarks
from streams.settings import Settings
from streams.topics import DELIVER, INGEST_DLQ, Destination

from tests.integration.cdc_support import PlatformDb

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

COLUMN_SECRETS = ("whsec_Q7p2ColumnSecretWebhook", "sk_live_Q7p2ColumnSecretCrm",
                  "venue-Q7p2ColumnSecretApi", "mc-Q7p2ColumnSecretMarketing")  # fmt: skip
URL_SECRETS = ("Q7p2UrlPassword", "Q7p2UrlQueryToken0000001", "Q7p2UrlPathToken00000000x1",
               "Q7p2UrlMarketingToken000001")  # fmt: skip
# loopback, which the sinks' outbound policy refuses (no allow-list here): every call is a
# refusal, dead-lettered at once with the record it could not deliver
ENDPOINTS = Endpoints(
    photo_crm=f"https://studio:{URL_SECRETS[0]}@127.0.0.1:9/hook",
    venue_booking=f"https://127.0.0.1:9/bookings?token={URL_SECRETS[1]}",
    webhook=f"https://127.0.0.1:9/in/{URL_SECRETS[2]}",
    marketing=f"https://127.0.0.1:9/trigger?apikey={URL_SECRETS[3]}",
    webhook_secret=COLUMN_SECRETS[0],
)


def _seed(platform: PlatformDb, k: dict[str, str]) -> None:
    with psycopg2.connect(platform.dsn) as conn, conn.cursor() as cur:
        seed(cur, k, ENDPOINTS)
        cur.execute("UPDATE supplier_integrations SET api_key = %s WHERE api_key IS NOT NULL",
                    (COLUMN_SECRETS[1],))  # fmt: skip
        cur.execute("UPDATE venue_integrations SET api_credentials = %s::jsonb",
                    (f'{{"api_key": "{COLUMN_SECRETS[2]}"}}',))  # fmt: skip
        cur.execute("UPDATE email_integrations SET api_key = %s", (COLUMN_SECRETS[3],))
        # a row the CDC source cannot carry (a 2-D array into a flat one): a dead letter
        cur.execute(
            "INSERT INTO webhook_endpoints (supplier_id, endpoint_url, secret_key, "
            "subscribed_events) VALUES (%s, %s, %s, '{{a,b},{c,d}}')",
            (k["photo"], f"https://127.0.0.1:9/dead/{URL_SECRETS[2]}", COLUMN_SECRETS[0]),
        )


class Processes:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.metrics: dict[str, int] = {}
        self.dead_before: dict[str, int] = {}  # records in each dead-letter topic before

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        port = free_port()
        self.metrics[name] = port
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "streams.app.cli", *args],
            env={**os.environ, **env, "WEDSYNC_METRICS_PORT": str(port)},
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def pages(self) -> dict[str, str]:
        out = {}
        for name, port in self.metrics.items():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    out[name] = r.read().decode()
            except OSError:
                out[name] = ""
        return out

    def logs(self) -> dict[str, str]:
        return {p.stem: p.read_text(errors="replace") for p in self.workdir.glob("*.log")}

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def running(
    platform: PlatformDb, kafka_bootstrap: str, settings: Settings, tmp_path: Path
) -> Iterator[tuple[Processes, dict[str, str]]]:
    k = ids()
    _seed(platform, k)
    server = platform.server
    common = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "WEDSYNC_APP_ID": settings.app_id,
              "WEDSYNC_LOG_LEVEL": "info"}  # fmt: skip
    procs = Processes(tmp_path)
    procs.dead_before = {name: _records(kafka_bootstrap, name) for name in DEAD_LETTERS}
    procs.start("cdc", ["cdc"], {
        **common, "WEDSYNC_CDC_HOST": server.host, "WEDSYNC_CDC_PORT": str(server.port),
        "WEDSYNC_CDC_USER": server.user, "WEDSYNC_CDC_DBNAME": platform.dbname,
        "WEDSYNC_CDC_SLOT_NAME": f"slot_{platform.dbname}",
        "WEDSYNC_CDC_PUBLICATION": f"pub_{platform.dbname}",
    })  # fmt: skip
    procs.start("worker", ["worker", "--with-route"], {**common,
                "WEDSYNC_WEB_PORT": str(free_port())})  # fmt: skip
    for kind in ("webhook", "crm"):
        procs.start(f"sink-{kind}", ["sink", kind],
                    {**common, "WEDSYNC_SINK_PLATFORM_DSN": platform.dsn})  # fmt: skip
    try:
        yield procs, k
    finally:
        procs.stop()


DEAD_LETTERS = (INGEST_DLQ.name, DELIVER[Destination.WEBHOOK].dlq.name,
                DELIVER[Destination.CRM].dlq.name)  # fmt: skip


def _topics(bootstrap: str) -> list[str]:
    names = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    return sorted(n for n in names if not n.startswith("__"))


def _read_all(bootstrap: str) -> Iterator[tuple[str, bytes]]:
    """Every record (key, value and headers, as bytes) of every topic, to its end now."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "secret-scan-all",
                         "enable.auto.commit": False})  # fmt: skip
    try:
        meta = consumer.list_topics(timeout=10)
        parts = [TopicPartition(name, p, 0) for name in _topics(bootstrap)
                 for p in meta.topics[name].partitions]  # fmt: skip
        ends = {(tp.topic, tp.partition): watermarks(consumer, tp, 30)[1] for tp in parts}
        consumer.assign(parts)
        seen: dict[tuple[str, int], int] = {}
        deadline = time.monotonic() + 120
        while any(seen.get(tp, 0) < end for tp, end in ends.items() if end):
            assert time.monotonic() < deadline, "could not read every topic to its end"
            for msg in consumer.consume(1000, 1.0):
                if msg.error():
                    continue
                seen[(msg.topic() or "", msg.partition() or 0)] = (msg.offset() or 0) + 1
                headers = b"".join(k.encode() + (v or b"") for k, v in msg.headers() or [])
                yield msg.topic() or "", (msg.key() or b"") + (msg.value() or b"") + headers
    finally:
        consumer.close()


def _records(bootstrap: str, name: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "dlq-count"})
    try:
        meta = consumer.list_topics(name, timeout=10).topics.get(name)
        if meta is None or meta.error is not None:
            return 0
        return sum(watermarks(consumer, TopicPartition(name, p), 30)[1]
                   for p in meta.partitions)  # fmt: skip
    finally:
        consumer.close()


def test_no_secret_is_in_any_topic_log_or_metrics_page(
    running: tuple[Processes, dict[str, str]], platform: PlatformDb, kafka_bootstrap: str
) -> None:
    procs, k = running
    with psycopg2.connect(platform.dsn) as conn, conn.cursor() as cur:
        deadline = time.monotonic() + 120
        while not slot_streaming(cur, f"slot_{platform.dbname}"):  # changes after its snapshot
            assert procs.procs["cdc"].poll() is None, procs.logs()["cdc"][-2000:]
            assert time.monotonic() < deadline, "the CDC source never streamed"
            time.sleep(0.2)
        play(cur, k)
    deadline = time.monotonic() + 90
    while any(_records(kafka_bootstrap, name) <= procs.dead_before[name] for name in DEAD_LETTERS):
        dead = [n for n, p in procs.procs.items() if p.poll() is not None]
        assert not dead, f"{dead} exited:\n" + "\n".join(procs.logs()[n][-2000:] for n in dead)
        assert time.monotonic() < deadline, (
            "the refused deliveries were never dead-lettered: "
            + str(
                {
                    name: _records(kafka_bootstrap, name)
                    for name in _topics(kafka_bootstrap)
                    if "deliver" in name or "events" in name
                }
            )
            + "\n"
            + "\n".join(f"{n}: {log[-1500:]}" for n, log in procs.logs().items())
        )
        time.sleep(0.5)
    secrets = (*COLUMN_SECRETS, *URL_SECRETS)
    found = {(topic, s) for topic, data in _read_all(kafka_bootstrap) for s in secrets
             if s.encode() in data}  # fmt: skip
    assert found == set()
    for where, text in {**procs.logs(), **procs.pages()}.items():
        assert [s for s in secrets if s in text] == [], where
