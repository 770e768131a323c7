"""Ingest gateway throughput against a bare HTTP server, measured in the same run.

The gateway (Standard Webhooks verification, Avro encoding, produce and wait for Kafka's ack
on the embedded broker) and a bare aiohttp server that answers 200 without verifying or
producing are each sent the same pre-signed requests over loopback by one aiohttp client
with `CONCURRENCY` connections. The client runs in a separate process (so the servers' event
loop is theirs alone); on a small machine it still competes for the same cores, which is why
the ratio, not either absolute figure, is the number to watch.

`run()` returns the lines to print; `make bench` calls it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
from aiohttp import web
from connectors.sources.webhooks.config import parse_gateway_config
from connectors.sources.webhooks.gateway import running_gateway
from standardwebhooks.webhooks import Webhook
from streams.admin import create_topics
from streams.broker import EmbeddedBroker, free_port
from streams.codec import TopicCodecs
from streams.registry import EmbeddedRegistry
from streams.schema_store import SchemaStore
from streams.settings import REPO_ROOT
from streams.topics import INGEST_WEBHOOKS

REQUESTS = 3000
WARMUP = 200
CONCURRENCY = 32
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
    """Run `client_main` in a fresh interpreter (not multiprocessing: no __main__ re-import)."""
    code = "import sys; from bench.ingest import client_main; client_main(sys.argv[1], sys.argv[2])"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, url, prefix, cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"bench client exited with {process.returncode}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    return float(result["seconds"]), {int(k): v for k, v in result["statuses"].items()}


@contextlib.asynccontextmanager
async def _bare_server() -> AsyncIterator[int]:
    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "stored"})

    app = web.Application()
    app.router.add_post("/webhooks/{source}", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


async def _measure(bootstrap: str) -> list[str]:
    store = SchemaStore(REPO_ROOT / "schemas")
    codecs = TopicCodecs(store, EmbeddedRegistry(store))
    config = parse_gateway_config(
        {"sources": {"bench": {"method": "standard_webhooks", "secrets": [SECRET],
                               "rate_per_second": 1e9, "burst": 1_000_000_000}}},
        {},
    )  # fmt: skip
    async with _bare_server() as port:
        bare_s, bare_status = await _client(f"http://127.0.0.1:{port}/webhooks/bench", "bare")
    async with running_gateway(config, bootstrap, codecs, port=free_port()) as (_, port):
        gw_s, gw_status = await _client(f"http://127.0.0.1:{port}/webhooks/bench", "gw")
    bare_rps, gw_rps = REQUESTS / bare_s, REQUESTS / gw_s
    return [
        f"ingest: {REQUESTS} POSTs of {len(BODY)} B, concurrency {CONCURRENCY}, loopback, "
        "client in its own process",
        f"  bare aiohttp server (200, no verify/produce): {bare_rps:8.0f} req/s  {bare_status}",
        f"  ingest gateway (verify + Avro + acked produce): {gw_rps:8.0f} req/s  {gw_status}",
        f"  ratio gateway/bare: {gw_rps / bare_rps:.2f}",
    ]


def run() -> list[str]:
    """Start an embedded broker, measure both servers, stop it; the report lines."""
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap_servers, [INGEST_WEBHOOKS])
        return asyncio.run(_measure(broker.bootstrap_servers))


if __name__ == "__main__":
    for line in run():
        print(line)
