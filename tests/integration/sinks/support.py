"""What the sink runtime tests share: a broker of their own per test (the deliver topics
are shared by every sink of a kind, so tests must not see each other's records), a scripted
connector that answers what a test tells it to, and helpers to produce deliveries and read
the ledger, retry and dead-letter topics back."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Message, Producer
from connectors.sinks.answer import Answer, ok
from connectors.sinks.base import DeliveryContext, Limits
from connectors.sinks.credentials import MemoryCredentialStore
from connectors.sinks.runtime import SinkRuntime
from connectors.sinks.settings import SinkSettings
from streams.dev.broker import EmbeddedBroker
from streams.kafka.admin import create_topics
from streams.kafka.codec import TopicCodecs
from streams.kafka.deadletter import header_map
from streams.kafka.replay import read_topic
from streams.topics import DELIVER, DELIVERY_RESULTS, Destination, Topic

SLACK = DELIVER[Destination.SLACK]

# fast schedules for tests: retries after 0.2 s, 0.4 s (3 attempts in all)
FAST = {
    "retry_schedule_s": (0.2, 0.4),
    "retry_jitter": 0.0,
    "commit_interval_s": 0.05,
    "pause_probe_s": 0.3,
    "breaker_threshold": 3,
    "breaker_cooldown_s": 1.0,
    "call_timeout_s": 5.0,
}


@contextmanager
def own_broker() -> Iterator[str]:
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap_servers)
        yield broker.bootstrap_servers


def slack_record(n: int = 0, **overrides: Any) -> dict[str, Any]:
    """A Slack delivery as routing writes it."""
    event = overrides.pop("event_id", f"evt-{n}-{uuid.uuid4().hex[:6]}")
    record = {
        "delivery_id": f"dlv-{event}",
        "event_id": event,
        "event_type": "wedding.date_changed",
        "aggregate_id": overrides.pop("aggregate_id", f"wedding-{n}"),
        "aggregate_version": overrides.pop("aggregate_version", 100 + n),
        "source_ts_ms": int(time.time() * 1000),
        "routed_at_ms": int(time.time() * 1000),
        "recipient_id": "supplier-1",
        "integration_id": None,
        "attempt": 0,
        "channel": "C0001",
        "text": f"message {n}",
        "blocks_json": "[]",
    }
    record.update(overrides)
    return record


@dataclass
class Call:
    delivery_id: str
    attempt: int
    refresh: bool
    at: float


@dataclass
class ScriptedConnector:
    """A Slack-kind connector whose answers tests script per delivery id (then OK)."""

    destination: Destination = Destination.SLACK
    script: dict[str, list[Answer]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    delay_s: float = 0.0
    limits: dict[str, Limits] = field(default_factory=dict)  # by channel
    reauth_until_reconnected: set[str] = field(default_factory=set)
    side_effects: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def target(self, record: dict[str, Any]) -> str:
        return f"slack:{record['channel']}"

    def limit(self, record: dict[str, Any]) -> tuple[str, Limits]:
        return (f"slack:{record['channel']}", self.limits.get(record["channel"], Limits()))

    def credential_key(self, record: dict[str, Any]) -> str | None:
        integration = record.get("integration_id")
        return f"integration:{integration}" if integration else None

    async def deliver(self, record: dict[str, Any], ctx: DeliveryContext) -> Answer:
        self.calls.append(Call(record["delivery_id"], ctx.attempt, ctx.refresh, time.time()))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        key = self.credential_key(record)
        if key is not None and key in self.reauth_until_reconnected:
            from connectors.sinks.answer import reauth

            return reauth("test.invalid_auth", "token revoked")
        queue = self.script.get(record["delivery_id"])
        if queue:
            return queue.pop(0)
        self.side_effects[record["delivery_id"]] += 1
        return ok(200, provider_id=f"ts-{record['delivery_id']}")

    async def aclose(self) -> None:
        return None

    def attempts_of(self, delivery_id: str) -> list[Call]:
        return [c for c in self.calls if c.delivery_id == delivery_id]


class RunningSink:
    """A SinkRuntime on its own thread and event loop; `stop()` ends it cleanly."""

    def __init__(self, runtime: SinkRuntime) -> None:
        self.runtime = runtime
        self.error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._main, daemon=True, name="sink")
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.runtime.run(self._stop))
        except BaseException as exc:
            self.error = exc

    def stop(self, timeout: float = 30.0) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the sink did not stop"
        if self.error is not None:
            raise self.error


def make_runtime(
    connector: Any,
    bootstrap: str,
    codecs: TopicCodecs,
    credentials: MemoryCredentialStore | None = None,
    **settings: Any,
) -> SinkRuntime:
    return SinkRuntime(
        connector,
        bootstrap=bootstrap,
        codecs=codecs,
        credentials=credentials or MemoryCredentialStore(),
        settings=SinkSettings(**{**FAST, **settings}),
    )


def produce(bootstrap: str, codecs: TopicCodecs, records: list[dict[str, Any]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    codec = codecs[SLACK.deliver]
    for record in records:
        producer.produce(SLACK.deliver.name, codec.encode(record), record["aggregate_id"].encode())
    assert producer.flush(10) == 0


def produce_raw(bootstrap: str, topic: str, value: bytes, key: bytes = b"k") -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, value, key)
    assert producer.flush(10) == 0


def read_all(bootstrap: str, topic: Topic) -> list[Message]:
    out: list[Message] = []
    read_topic(bootstrap, topic, out.append, timeout=20)
    return out


def results(bootstrap: str, codecs: TopicCodecs) -> list[dict[str, Any]]:
    codec = codecs[DELIVERY_RESULTS]
    rows = [codec.decode(m.value()) for m in read_all(bootstrap, DELIVERY_RESULTS)]
    return sorted(rows, key=lambda r: r["completed_at_ms"])


def outcomes(bootstrap: str, codecs: TopicCodecs, delivery_id: str) -> list[str]:
    return [r["outcome"] for r in results(bootstrap, codecs) if r["delivery_id"] == delivery_id]


def dead_letters(bootstrap: str) -> list[tuple[bytes, dict[str, str]]]:
    return [(m.value(), header_map(m.headers())) for m in read_all(bootstrap, SLACK.dlq)]


def wait_until(check: Callable[[], Any], timeout: float = 30.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout:.0f} s")
        time.sleep(every)
