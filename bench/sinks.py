"""One sink process's delivery rate against a plain aiohttp loop making the same requests.

The endpoint is a separate process answering 200 after 10 ms. The project's figure is one
sink runtime (the webhook connector: Standard Webhooks signing, outbound policy checks and
audit line, the ledger record per attempt, offsets committed after the ledger is flushed) in
its own process, reading pre-produced deliveries from a fresh embedded broker; it is timed
from its first delivery to its last (the consumer group's join is not counted). The
baseline is a plain aiohttp client in its own process POSTing the same bodies with the same
concurrency and nothing else. Both run at concurrency 50 and 200; the sink process reports
its resident memory at the end (VmRSS) and its peak (VmHWM). Every process (endpoint, sink,
baseline, broker) has a session of its own, so Linux's autogroups give each its own share of
the CPU, as containers of their own would (`bench.servers.children`).

`run()` returns the lines to print; `make bench` calls it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from streams.settings import REPO_ROOT

ON_BROKER = True  # `make bench` runs this suite on each engine (bench.engines)
DELIVERIES = 6000
LEVELS = (50, 200)
ANSWER_AFTER_S = 0.010

_ENDPOINT = """
import asyncio, sys
from aiohttp import web
async def ok(request):
    await request.read()
    await asyncio.sleep(float(sys.argv[2]))
    return web.Response(text="ok")
app = web.Application()
app.router.add_post("/hook", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def _body(n: int) -> str:
    return json.dumps({"type": "form_responses.insert", "n": n, "note": "x" * 300})


def baseline_main(url: str, concurrency: int) -> None:
    """The baseline client: POST every body with `concurrency` workers, print req/s."""
    import aiohttp

    async def main() -> tuple[float, float]:
        bodies = iter([_body(n) for n in range(DELIVERIES)])
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker() -> None:
                for body in bodies:
                    headers = {"content-type": "application/json", "webhook-id": "x"}
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()

            started, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            cpu = time.process_time() - cpu
            return DELIVERIES / (time.perf_counter() - started), cpu / DELIVERIES

    rate, cpu = asyncio.run(main())
    print(json.dumps({"rate": rate, "cpu_ms": cpu * 1000}))


def sink_main(bootstrap: str, url: str, concurrency: int) -> None:
    """The project's process: produce the deliveries, run one webhook sink until all are
    delivered, print its rate and memory."""
    from confluent_kafka import Producer
    from connectors.sinks.credentials import MemoryCredentialStore
    from connectors.sinks.outbound import OutboundPolicy
    from connectors.sinks.runtime import SinkRuntime
    from connectors.sinks.settings import SinkSettings
    from connectors.sinks.webhook.config import WebhookConfig
    from connectors.sinks.webhook.sink import WebhookSink
    from streams.dev.local import WEBHOOK_SECRET
    from streams.kafka.codec import TopicCodecs
    from streams.kafka.registry import EmbeddedRegistry
    from streams.kafka.schema_store import SchemaStore
    from streams.topics import DELIVER, Destination

    store = SchemaStore(REPO_ROOT / "schemas")
    codecs = TopicCodecs(store, EmbeddedRegistry(store))
    topic = DELIVER[Destination.WEBHOOK].deliver
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for n in range(DELIVERIES):
        record = {
            "delivery_id": f"bench-{concurrency}-{n}", "event_id": f"e-{n}",
            "event_type": "record.changed", "aggregate_id": f"a-{n}", "aggregate_version": n,
            "source_ts_ms": 1, "routed_at_ms": 1, "recipient_id": None, "integration_id": None,
            "attempt": 0, "endpoint_id": "ep-bench", "endpoint_url": url,
            "event_name": "form_responses.insert", "body_json": _body(n),
        }  # fmt: skip
        producer.produce(topic.name, codecs[topic].encode(record), record["aggregate_id"].encode())
        producer.poll(0)
    producer.flush(60)
    credentials = MemoryCredentialStore(
        {("webhook_endpoint", "ep-bench"): {"secret_key": WEBHOOK_SECRET, "endpoint_url": url}}
    )
    policy = OutboundPolicy.loopback_for_tests(url, max_connections=concurrency)
    connector = WebhookSink(
        WebhookConfig(rate_per_s=1e9, burst=1_000_000_000, concurrency=concurrency), policy
    )
    runtime = SinkRuntime(
        connector, bootstrap=bootstrap, codecs=codecs, credentials=credentials,
        settings=SinkSettings(concurrency=concurrency),
    )  # fmt: skip

    async def main() -> tuple[float, float]:
        stop = asyncio.Event()
        task = asyncio.create_task(runtime.run(stop))
        while runtime.delivered == 0:
            await asyncio.sleep(0.005)
        started = time.perf_counter()
        cpu, loop_cpu = time.process_time(), time.thread_time()
        while runtime.delivered < DELIVERIES and not task.done():
            await asyncio.sleep(0.005)
        seconds = time.perf_counter() - started
        cpu, loop_cpu = time.process_time() - cpu, time.thread_time() - loop_cpu
        stop.set()
        await task
        return (DELIVERIES - 1) / seconds, cpu / (DELIVERIES - 1), loop_cpu / (DELIVERIES - 1)

    rate, cpu, loop_cpu = asyncio.run(main())
    with open("/proc/self/status") as proc:
        status = proc.read()
    mem = {k: int(line.split()[1]) for line in status.splitlines()
           for k in ("VmRSS", "VmHWM") if line.startswith(k + ":")}  # fmt: skip
    print(json.dumps({"rate": rate, "cpu_ms": cpu * 1000, "loop_cpu_ms": loop_cpu * 1000, **mem}))


@contextlib.contextmanager
def endpoint(answer_after_s: float) -> Iterator[str]:
    """The loopback endpoint (`_ENDPOINT`) in its own process and session, answering after
    `answer_after_s`: its URL once it listens; stopped on the way out."""
    from streams.dev.broker import free_port

    from bench.servers import wait_listening

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _ENDPOINT, str(port), str(answer_after_s)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_listening(port)
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        proc.terminate()
        proc.wait(10)


def _child(code: str, *args: Any) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], cwd=REPO_ROOT, capture_output=True,
        timeout=600, check=False, start_new_session=True,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"bench child failed: {out.stderr.decode()[-2000:]}")
    return dict(json.loads(out.stdout.decode().strip().splitlines()[-1]))


def sink_topics() -> list[Any]:
    """What one webhook sink reads and writes, as deployed: its deliver, retry and dead-letter
    topics, the results and the compacted ledger."""
    from streams.topics import DELIVER, DELIVERY_RESULTS, LEDGER, Destination

    webhook = DELIVER[Destination.WEBHOOK]
    return [webhook.deliver, webhook.retry, webhook.dlq, DELIVERY_RESULTS,
            LEDGER[Destination.WEBHOOK]]  # fmt: skip


def run() -> list[str]:
    from streams.kafka.admin import create_topics

    from bench.engines import broker as bench_broker

    lines = [
        f"sinks: {DELIVERIES} webhook deliveries to a loopback endpoint answering after "
        f"{ANSWER_AFTER_S * 1000:.0f} ms; sink and baseline each in their own process"
    ]
    with endpoint(ANSWER_AFTER_S) as url:
        for concurrency in LEVELS:
            base = _child(
                "import sys; from bench.sinks import baseline_main; "
                "baseline_main(sys.argv[1], int(sys.argv[2]))", url, concurrency,
            )  # fmt: skip
            with bench_broker() as broker:  # a fresh broker per phase (FACTS.md)
                create_topics(broker.bootstrap_servers, sink_topics())
                sink = _child(
                    "import sys; from bench.sinks import sink_main; "
                    "sink_main(sys.argv[1], sys.argv[2], int(sys.argv[3]))",
                    broker.bootstrap_servers, url, concurrency,
                )  # fmt: skip
            lines += [
                f"  concurrency {concurrency}:",
                f"    plain aiohttp loop:       {base['rate']:7.0f} requests/s "
                f"({base['cpu_ms']:.2f} ms CPU each)",
                f"    one sink process:         {sink['rate']:7.0f} deliveries/s "
                f"({sink['cpu_ms']:.2f} ms CPU each, {sink['loop_cpu_ms']:.2f} on the event loop's "
                f"thread; RSS {sink['VmRSS'] / 1024:.0f} MiB at the "
                f"end, peak {sink['VmHWM'] / 1024:.0f} MiB)",
                f"    ratio sink/plain loop:    {sink['rate'] / base['rate']:.2f}  "
                f"(target >= 0.75)",
            ]
    return lines


if __name__ == "__main__":
    for line in run():
        print(line)
