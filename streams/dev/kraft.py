"""Apache Kafka itself, started by us on loopback: KRaft nodes with data on disk.

The jars come from Maven Central (`deploy/kafka/pom.xml`, copied by `make kafka-jars` into
`.cache/kafka/<version>/`; `WEDSYNC_KAFKA_JARS` points elsewhere). A node is formatted with
Kafka's own `kafka.tools.StorageTool`, then started as `kafka.Kafka server.properties`:

- `KafkaCluster(nodes=1)`: one combined broker + controller; replication factor 1.
- `KafkaCluster(nodes=3)`: three combined nodes with a fixed voter set; replication factor 3
  and `min.insync.replicas=2` by default, so one broker can die without losing an acked write.

Nodes can be killed (`kill(node)`: SIGKILL, as a crash) and started again on the same ports
and data (`start_node(node)`): what the fault tests need. Topics are never created
automatically (`auto.create.topics.enable=false`): every topic comes from the catalog, so a
client that would create one with a default partition count fails loudly instead.

Every node dies with its owner (PR_SET_PDEATHSIG) and is stopped by `stop()` / the context
manager. Logs go to `<data dir>/node-<id>/server.log` (WARN and above).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from streams.errors import BrokerUnavailable, ConfigurationError
from streams.kafka.broker import die_with_parent, free_port, wait_for_kafka

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_VERSION = "4.1.1"
HEAP = "-Xmx512m"

_LOG4J2 = """\
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <File name="file" fileName="{log}"><PatternLayout pattern="[%d] %p %m (%c)%n"/></File>
  </Appenders>
  <Loggers><Root level="WARN"><AppenderRef ref="file"/></Root></Loggers>
</Configuration>
"""


def jars_dir() -> Path:
    """Where Kafka's runtime jars are; ConfigurationError naming the fix when absent."""
    configured = os.environ.get("WEDSYNC_KAFKA_JARS")
    folder = Path(configured) if configured else REPO_ROOT / ".cache" / "kafka" / KAFKA_VERSION
    if not (folder / f"kafka_2.13-{KAFKA_VERSION}.jar").exists() and not any(
        folder.glob("kafka_2.13-*.jar")
    ):
        raise ConfigurationError(
            f"Apache Kafka's jars are not in {folder}: run `make kafka-jars` (Maven fetches "
            "them from Maven Central once) or set WEDSYNC_KAFKA_JARS to a folder holding them"
        )
    return folder


def java_binary() -> str:
    home = os.environ.get("JAVA_HOME")
    candidate = Path(home) / "bin" / "java" if home else None
    if candidate and candidate.exists():
        return str(candidate)
    found = shutil.which("java")
    if not found:
        raise ConfigurationError("no `java` on PATH: Apache Kafka 4 needs Java 17 or newer")
    return found


def _cluster_id() -> str:
    """Kafka's Uuid text form: 16 random bytes, URL-safe base64 without padding; never
    starting with '-', which StorageTool's argument parser takes for an option."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


@dataclass
class Node:
    node_id: int
    broker_port: int
    controller_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    @property
    def properties(self) -> Path:
        return self.directory / "server.properties"


@dataclass
class KafkaCluster:
    """A throwaway KRaft cluster of `nodes` combined nodes. Use as a context manager."""

    nodes: int = 1
    base_dir: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)
    members: list[Node] = field(default_factory=list)
    _owned_dir: bool = False

    @property
    def replication_factor(self) -> int:
        return 3 if self.nodes >= 3 else 1

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.address for node in self.members)

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self, timeout: float = 90.0) -> str:
        jars = jars_dir()
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="wedsync-kafka-"))
            self._owned_dir = True
        self.members = [
            Node(i + 1, free_port(), free_port(), self.base_dir / f"node-{i + 1}")
            for i in range(self.nodes)
        ]
        cluster_id = _cluster_id()
        for node in self.members:
            node.directory.mkdir(parents=True, exist_ok=True)
            node.properties.write_text(self._server_properties(node))
            (node.directory / "log4j2.xml").write_text(
                _LOG4J2.format(log=node.directory / "server.log")
            )
        with ThreadPoolExecutor(self.nodes) as pool:
            list(pool.map(lambda n: self._format(n, jars, cluster_id), self.members))
        for node in self.members:
            self.start_node(node.node_id, wait=False)
        wait_for_kafka(self.bootstrap_servers, timeout)
        self._wait_brokers(timeout)
        log.info("Apache Kafka %s: %d node(s) on %s", KAFKA_VERSION, self.nodes,
                 self.bootstrap_servers)  # fmt: skip
        return self.bootstrap_servers

    def start_node(self, node_id: int, *, wait: bool = True, timeout: float = 60.0) -> None:
        """Start (or restart, on the same ports and data) one node."""
        node = self.node(node_id)
        if node.process is not None and node.process.poll() is None:
            return
        command = [
            java_binary(), HEAP, "-Xms128m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={node.directory / 'log4j2.xml'}",
            "-cp", f"{jars_dir()}/*", "kafka.Kafka", str(node.properties),
        ]  # fmt: skip
        with open(node.directory / "stdout.log", "ab") as out:
            node.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
                start_new_session=True,
            )
        if wait:
            wait_for_kafka(node.address, timeout)

    def kill(self, node_id: int) -> None:
        """SIGKILL one node (a crash: no controlled shutdown) and reap it."""
        node = self.node(node_id)
        proc, node.process = node.process, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL after 10 s) and delete owned data."""
        procs = [n.process for n in self.members if n.process is not None]
        for node in self.members:
            node.process = None
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._owned_dir and self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> KafkaCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- inspection ------------------------------------------------------------------------
    def node(self, node_id: int) -> Node:
        for node in self.members:
            if node.node_id == node_id:
                return node
        raise KeyError(node_id)

    def alive(self) -> list[int]:
        return [n.node_id for n in self.members if n.process and n.process.poll() is None]

    def leader_of(self, topic: str, partition: int = 0) -> int:
        """The node id leading `topic`'s `partition` now."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self._live_bootstrap()})
        meta = admin.list_topics(topic, timeout=10).topics[topic]
        return int(meta.partitions[partition].leader)

    def active_controller(self) -> int:
        """The node id of the active KRaft controller (from DescribeCluster)."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self._live_bootstrap()})
        described = admin.describe_cluster(request_timeout=10).result(timeout=15)
        return int(described.controller.id)

    def _live_bootstrap(self) -> str:
        live = [self.node(i).address for i in self.alive()]
        return ",".join(live) or self.bootstrap_servers

    # ---- setup -----------------------------------------------------------------------------
    def _server_properties(self, node: Node) -> str:
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.members)
        rf = self.replication_factor
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{node.broker_port},"
            f"CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.broker_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(node.directory / "data"),
            "auto.create.topics.enable": "false",
            "num.partitions": "1",
            "default.replication.factor": str(rf),
            "min.insync.replicas": "2" if rf >= 3 else "1",
            "offsets.topic.replication.factor": str(rf),
            "offsets.topic.num.partitions": "6",
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.min.isr": "2" if rf >= 3 else "1",
            "share.coordinator.state.topic.replication.factor": str(rf),
            "share.coordinator.state.topic.min.isr": "2" if rf >= 3 else "1",
            "group.initial.rebalance.delay.ms": "0",
            "unclean.leader.election.enable": "false",
            # compaction and retention visible within seconds in tests
            "log.segment.bytes": str(16 * 1024 * 1024),
            "log.cleaner.backoff.ms": "1000",
            "log.retention.check.interval.ms": "5000",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "background.threads": "4",
            "log.flush.interval.messages": str(2**62),
            "replica.lag.time.max.ms": "10000",
            "controller.quorum.election.timeout.ms": "1000",
            "controller.quorum.fetch.timeout.ms": "2000",
            "broker.session.timeout.ms": "6000",
            "broker.heartbeat.interval.ms": "1000",
        }
        props.update(self.extra)
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _format(self, node: Node, jars: Path, cluster_id: str) -> None:
        command = [
            java_binary(), "-Xmx256m", "-cp", f"{jars}/*", "kafka.tools.StorageTool", "format",
            "-t", cluster_id, "-c", str(node.properties), "--ignore-formatted",
        ]  # fmt: skip
        env = dict(os.environ, KAFKA_LOG4J_OPTS="")
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        if done.returncode != 0:
            raise BrokerUnavailable(
                f"kafka StorageTool format failed for node {node.node_id}: "
                f"{(done.stderr or done.stdout).strip()[-800:]}"
            )

    def _wait_brokers(self, timeout: float) -> None:
        """Until every node is registered as a broker (a replicated topic needs them all)."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(Exception):
                if len(admin.list_topics(timeout=2).brokers) >= self.nodes:
                    return
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"only some of {self.nodes} Kafka nodes registered")
            time.sleep(0.1)
