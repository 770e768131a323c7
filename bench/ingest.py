"""Ingest gateway throughput against a bare HTTP server, measured in the same run.

The gateway (Standard Webhooks verification, Avro encoding, produce and wait for Kafka's ack
on Apache Kafka, one KRaft node) and a bare aiohttp server that answers 200 without verifying or
producing are each sent the same pre-signed requests over loopback by one aiohttp client
with `CONCURRENCY` connections. The client runs in a separate process (so the servers' event
loop is theirs alone); on a small machine it still competes for the same cores, which is why
the ratio, not either absolute figure, is the number to watch.

`run()` returns the lines to print; `make bench` calls it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime

import aiohttp
from connectors.sources.webhooks.config import parse_gateway_config
from connectors.sources.webhooks.gateway import running_gateway
from standardwebhooks.webhooks import Webhook
from streams.dev.broker import free_port
from streams.kafka.admin import create_topics
from streams.kafka.codec import TopicCodecs
from streams.kafka.registry import EmbeddedRegistry
from streams.kafka.schema_store import SchemaStore
from streams.settings import REPO_ROOT
from streams.topics import INGEST_CDC, INGEST_STATE, INGEST_WEBHOOKS

from bench import cpu
from bench.bare import bare_server, run_client
from bench.engines import broker as bench_broker

REQUESTS = 3000
WARMUP = 200
CONCURRENCY = 32
ROUNDS = 4

ON_BROKER = True  # `make bench` runs this suite on each engine (bench.engines)
SECRET = "whsec_" + base64.b64encode(b"bench-secret-bench-secret-32byte").decode()
BODY = b'{"type":"booking.confirmed","wedding_id":"w-2027-0612","guests":120,"note":"' + (
    b"x" * 300
) + b'"}'  # fmt: skip

Request = tuple[bytes, dict[str, str]]


def _requests(prefix: str, count: int) -> list[Request]:
    signer, when = Webhook(SECRET), datetime.now(tz=UTC)
    ts = str(int(when.timestamp()))
    out = []
    for i in range(count):
        msg_id = f"{prefix}-{i}"
        signature = signer.sign(msg_id, when, BODY.decode())
        headers = {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": signature,
                   "content-type": "application/json"}  # fmt: skip
        out.append((BODY, headers))
    return out


async def _blast(url: str, requests: list[Request]) -> tuple[float, dict[int, int]]:
    """Send every request with CONCURRENCY workers; (seconds taken, count per status)."""
    statuses: dict[int, int] = {}
    queue = iter(requests)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for body, headers in queue:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return time.perf_counter() - started, statuses


def client_main(url: str, prefix: str) -> None:
    """The client process: warm up, time REQUESTS requests, print the result as JSON."""
    asyncio.run(_blast(url, _requests(f"{prefix}-warm", WARMUP)))
    seconds, statuses = asyncio.run(_blast(url, _requests(prefix, REQUESTS)))
    print(json.dumps({"seconds": seconds, "statuses": statuses}))


async def _client(url: str, prefix: str) -> tuple[float, dict[int, int]]:
    result = await run_client("bench.ingest", url, prefix)
    return float(result["seconds"]), {int(k): v for k, v in result["statuses"].items()}


async def _measure(bootstrap: str, broker_pids: tuple[int, ...]) -> list[str]:
    store = SchemaStore(REPO_ROOT / "schemas")
    codecs = TopicCodecs(store, EmbeddedRegistry(store))
    config = parse_gateway_config(
        {"sources": {"bench": {"method": "standard_webhooks", "secrets": [SECRET],
                               "rate_per_second": 1e9, "burst": 1_000_000_000}}},
        {},
    )  # fmt: skip
    bare: list[float] = []
    gateway: list[float] = []
    windows: dict[str, list[cpu.Window]] = {"bare": [], "gateway": []}
    brokers = [(pid, "broker") for pid in broker_pids]
    statuses: dict[str, dict[int, int]] = {"bare": {}, "gateway": {}}
    async with (
        bare_server() as bare_port,
        running_gateway(config, bootstrap, codecs, port=free_port()) as (_, gw_port),
    ):
        for port in (bare_port, gw_port):  # untimed: a fresh broker JIT-compiles its produce
            await _client(f"http://127.0.0.1:{port}/webhooks/bench", f"warm-{port}")  # path
        for i in range(ROUNDS):  # alternate, so a burst of load elsewhere hits both alike
            for name, port, figures in (("bare", bare_port, bare), ("gateway", gw_port, gateway)):
                url = f"http://127.0.0.1:{port}/webhooks/bench"
                roots = cpu.roots(f"{name} server (this process)", brokers)
                with cpu.Window(roots, ended="load client (its start-up included)") as window:
                    seconds, counts = await _client(url, f"{name}-{i}")
                windows[name].append(window)
                figures.append(REQUESTS / seconds)
                for status, n in counts.items():
                    statuses[name][status] = statuses[name].get(status, 0) + n
    best_bare, best_gw = max(bare), max(gateway)
    return [
        f"ingest: {REQUESTS} POSTs of {len(BODY)} B, concurrency {CONCURRENCY}, loopback, "
        f"client in its own process, best of {ROUNDS} alternating rounds",
        f"  bare aiohttp server (200, no verify/produce):   {best_bare:6.0f} req/s  "
        f"(rounds {', '.join(f'{x:.0f}' for x in bare)}; {statuses['bare']})",
        f"  ingest gateway (verify + Avro + acked produce): {best_gw:6.0f} req/s  "
        f"(rounds {', '.join(f'{x:.0f}' for x in gateway)}; {statuses['gateway']})",
        f"  ratio gateway/bare: {best_gw / best_bare:.2f}",
        *(line for name in ("bare", "gateway") for line in
          cpu.combined(windows[name], (WARMUP + REQUESTS) * ROUNDS, "request", title=name)),
    ]  # fmt: skip


def run() -> list[str]:
    """Start a broker, measure both servers, stop it; the report lines."""
    with bench_broker() as running:
        bootstrap = running.bootstrap_servers
        create_topics(bootstrap, [INGEST_WEBHOOKS, INGEST_CDC, INGEST_STATE])
        return asyncio.run(_measure(bootstrap, running.pids))


if __name__ == "__main__":
    for line in run():
        print(line)
