"""The brokers a benchmark runs on: every suite that needs one runs once per engine.

`kafka` is Apache Kafka itself (one KRaft node from Maven Central's jars, data on disk,
`streams.dev.kraft`): the figures judged against the targets. `tansu` is the embedded
broker `make run` uses (memory storage): printed beside them, because that is what a newcomer
sees first. `make bench` runs both; `BENCH_ENGINES=kafka python -m bench routing` one.

A suite opens its broker with `broker()`, which starts the engine `bench.__main__` chose for
this pass (`BENCH_ENGINE`, default `kafka`). Each `with broker()` is a fresh one, so one
phase's leftovers never slow the next.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

ENGINES = ("kafka", "tansu")
TITLES = {
    "kafka": "Apache Kafka {version} (one KRaft node, data on disk)",
    "tansu": "Tansu (the embedded broker of `make run`, memory storage)",
}


def chosen() -> tuple[str, ...]:
    """The engines of this `make bench`: `BENCH_ENGINES` (comma-separated), else both."""
    names = tuple(n.strip() for n in os.environ.get("BENCH_ENGINES", "").split(",") if n.strip())
    unknown = [n for n in names if n not in ENGINES]
    if unknown:
        raise SystemExit(f"BENCH_ENGINES={','.join(names)}: use {' or '.join(ENGINES)}")
    return names or ENGINES


def current() -> str:
    return os.environ.get("BENCH_ENGINE", ENGINES[0])


def title(engine: str) -> str:
    from streams.dev.kraft import KAFKA_VERSION

    return TITLES[engine].format(version=KAFKA_VERSION)


@dataclass
class Broker:
    """A running broker: where clients connect and which processes are the broker (for the
    suites that report the broker's own CPU)."""

    engine: str
    bootstrap_servers: str
    pids: tuple[int, ...]


@contextlib.contextmanager
def broker(engine: str | None = None) -> Iterator[Broker]:
    """A fresh broker of `engine` (default: this pass's) for the duration."""
    engine = engine or current()
    if engine == "kafka":
        from streams.dev.kraft import KafkaCluster

        with KafkaCluster(nodes=1) as cluster:
            pids = tuple(n.process.pid for n in cluster.members if n.process is not None)
            yield Broker(engine, cluster.bootstrap_servers, pids)
        return
    if engine == "tansu":
        from streams.dev.broker import EmbeddedBroker

        with EmbeddedBroker() as embedded:
            assert embedded.process is not None
            yield Broker(engine, embedded.bootstrap_servers, (embedded.process.pid,))
        return
    raise ValueError(f"unknown bench engine {engine!r}: use {' or '.join(ENGINES)}")
