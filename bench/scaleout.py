"""Sink scale-out: one, then two webhook sink processes in one consumer group on one topic.

A sink is bound by its providers' answers long before its CPU: here each process may have
`CONCURRENCY` calls in flight to an endpoint answering after `ANSWER_AFTER_S`, so one
process tops out near CONCURRENCY / ANSWER_AFTER_S deliveries a second while the machine
still has CPU to spare. Adding a process to the group should add its own in-flight calls:
the figure is two processes' rate against one's (target at least 1.7x), and the CPU each
delivery cost as processes are added (the processes' own utime + stime from /proc over the
measured stretch, divided by the deliveries).

Each phase runs on a fresh broker: the deliveries are produced only once every process said
it holds partitions (the group's join and rebalance are not counted), and the rate is the
results' `completed_at_ms` span (first to last delivered). The machine's idle share over the
stretch is printed beside it: with no idle CPU left, the ratio says nothing about the sink.

`run()` returns the lines to print; `make bench` calls it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import Any

from streams.settings import REPO_ROOT

from bench import cpu
from bench.sinks import _body, endpoint, sink_topics

ON_BROKER = True  # `make bench` runs this suite on each engine (bench.engines)
DELIVERIES = 4000
CONCURRENCY = 20
ANSWER_AFTER_S = 0.050
PROCESSES = (1, 2)


def sink_child(bootstrap: str, url: str, concurrency: int) -> None:
    """One webhook sink process until SIGTERM (the runtime drains, then it exits)."""
    import asyncio

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

    store = SchemaStore(REPO_ROOT / "schemas")
    codecs = TopicCodecs(store, EmbeddedRegistry(store))
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

    async def report_assigned() -> None:  # the parent waits for every child's line
        while getattr(runtime, "consumer", None) is None or not runtime.consumer.assignment():
            await asyncio.sleep(0.02)
        print("assigned", flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        reporter = asyncio.create_task(report_assigned())
        await runtime.run(stop)
        reporter.cancel()

    asyncio.run(main())


def _all_assigned(children: list[subprocess.Popen[str]], timeout: float) -> None:
    """Wait until every child said its consumer holds partitions: the last one to say so
    got them from the rebalance that also shrank the others'."""
    import selectors

    waiting = {c.stdout: c for c in children if c.stdout is not None}
    with selectors.DefaultSelector() as selector:
        for stream in waiting:
            selector.register(stream, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(waiting)} sink process(es) never held partitions")
            for key, _ in selector.select(left):
                line = key.fileobj.readline()  # type: ignore[union-attr]
                if not line:
                    raise RuntimeError("a sink process exited before holding partitions")
                if line.strip() == "assigned":
                    selector.unregister(key.fileobj)
                    waiting.pop(key.fileobj)  # type: ignore[arg-type]


def _produce(bootstrap: str, codecs: Any, url: str, tag: str) -> None:
    from confluent_kafka import Producer
    from streams.topics import DELIVER, Destination

    topic = DELIVER[Destination.WEBHOOK].deliver
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for n in range(DELIVERIES):
        record = {
            "delivery_id": f"scale-{tag}-{n}", "event_id": f"e-{n}",
            "event_type": "record.changed", "aggregate_id": f"a-{n}", "aggregate_version": n,
            "source_ts_ms": 1, "routed_at_ms": 1, "recipient_id": None, "integration_id": None,
            "attempt": 0, "endpoint_id": "ep-bench", "endpoint_url": url,
            "event_name": "form_responses.insert", "body_json": _body(n),
        }  # fmt: skip
        producer.produce(topic.name, codecs[topic].encode(record), record["aggregate_id"].encode())
        producer.poll(0)
    producer.flush(60)


def _delivered_span(bootstrap: str, codecs: Any, timeout: float) -> tuple[int, int]:
    """Wait for every delivery's result; (first, last) completed_at_ms of them."""
    from confluent_kafka import Consumer, TopicPartition
    from streams.topics import DELIVERY_RESULTS

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-scale-reader",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 50})  # fmt: skip
    consumer.assign([TopicPartition(DELIVERY_RESULTS.name, p, 0)
                     for p in range(DELIVERY_RESULTS.partitions)])  # fmt: skip
    done: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(done) < DELIVERIES:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(done)} of {DELIVERIES} delivered in {timeout:.0f} s")
            for msg in consumer.consume(1000, 0.2):
                if msg.error():
                    continue
                result = codecs[DELIVERY_RESULTS].decode(msg.value())
                if result["outcome"] == "delivered":
                    done.setdefault(result["delivery_id"], result["completed_at_ms"])
    finally:
        consumer.close()
    return min(done.values()), max(done.values())


def _phase(processes: int, url: str) -> dict[str, float]:
    from streams.kafka.admin import create_topics
    from streams.kafka.codec import TopicCodecs
    from streams.kafka.registry import EmbeddedRegistry
    from streams.kafka.schema_store import SchemaStore

    from bench.engines import broker as bench_broker

    store = SchemaStore(REPO_ROOT / "schemas")
    codecs = TopicCodecs(store, EmbeddedRegistry(store))
    with bench_broker() as broker:
        bootstrap = broker.bootstrap_servers
        create_topics(bootstrap, sink_topics())
        code = (
            "import sys; from bench.scaleout import sink_child; "
            "sink_child(sys.argv[1], sys.argv[2], int(sys.argv[3]))"
        )
        argv = [sys.executable, "-c", code, bootstrap, url, str(CONCURRENCY)]
        children = [
            subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
                             stderr=subprocess.DEVNULL, start_new_session=True)
            for _ in range(processes)
        ]  # fmt: skip
        try:
            _all_assigned(children, timeout=120)
            used = sum(cpu.process_seconds(c.pid) for c in children)
            machine = cpu.Machine.now()
            _produce(bootstrap, codecs, url, str(processes))
            first, last = _delivered_span(bootstrap, codecs, timeout=300)
            used = sum(cpu.process_seconds(c.pid) for c in children) - used
            idle = cpu.Machine.now().since(machine).idle
        finally:
            for child in children:
                child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(30)
                except subprocess.TimeoutExpired:
                    child.kill()
    return {
        "rate": (DELIVERIES - 1) / max((last - first) / 1000, 1e-3),
        "cpu_ms": used * 1000 / DELIVERIES,
        "idle": idle,
    }


def run() -> list[str]:
    lines = [
        f"scale-out: {DELIVERIES} webhook deliveries, {CONCURRENCY} in flight per process, "
        f"to an endpoint answering after {ANSWER_AFTER_S * 1000:.0f} ms (one process's "
        f"ceiling ~{CONCURRENCY / ANSWER_AFTER_S:.0f}/s)"
    ]
    with endpoint(ANSWER_AFTER_S) as url:
        figures = {n: _phase(n, url) for n in PROCESSES}
    for n, f in figures.items():
        lines.append(
            f"  {n} process{'es' if n > 1 else '':<2} {f['rate']:7.0f} deliveries/s, "
            f"{f['cpu_ms']:.2f} ms CPU per delivery, machine idle {f['idle']:.0%}"
        )
    ratio = figures[2]["rate"] / figures[1]["rate"]
    verdict = "met" if ratio >= 1.7 else f"missed by {1.7 - ratio:.2f}"
    lines.append(f"  ratio two / one: {ratio:.2f}  (target >= 1.7: {verdict})")
    return lines


if __name__ == "__main__":
    print(json.dumps(run()))
