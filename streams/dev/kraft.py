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

`KafkaCluster(secured=True)` (one node) is a cluster as production runs it, for the tests of
the connection settings and the ACLs (`streams.kafka.access`; the properties are
`streams.dev.kraft_secured`'s): the client listener is SASL_SSL (SCRAM-SHA-512 and
SCRAM-SHA-256, a CA and broker certificate made for the run), ACLs are enforced and `admin`
(password `admin_password`) is the super user; `users` are more SCRAM users, added by
StorageTool at format time (`--add-scram`), `add_user()` adds one later. Clients connect with
`connection(user, password)`; `ca_location` is the CA file they trust. Denied requests are
logged to `node-1/authorizer.log`. Its controller listener stays PLAINTEXT on loopback, so
`User:ANONYMOUS` is a super user there (see `streams.dev.kraft_secured`).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from streams.child import die_with_parent
from streams.dev.broker import free_port, wait_for_kafka
from streams.dev.certs import Authority
from streams.dev.kraft_secured import (
    LOG4J2_AUTHORIZER,
    SCRAM,
    make_tls,
    oauth_jvm_options,
    oauth_properties,
    scram_arguments,
    scram_safe,
    secured_properties,
)
from streams.errors import BrokerUnavailable, ConfigurationError
from streams.kafka.connection import KafkaConnection, Mechanism, client_config

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_VERSION = "4.1.1"
HEAP = "-Xmx512m -Xms128m"
PERFORMANCE = "-XX:+UseG1GC"


def jvm_options() -> list[str]:
    """Heap and GC flags; `KAFKA_HEAP_OPTS` and `KAFKA_JVM_PERFORMANCE_OPTS` replace them, as
    they do for Kafka's own `kafka-run-class.sh`."""
    heap = os.environ.get("KAFKA_HEAP_OPTS") or HEAP
    performance = os.environ.get("KAFKA_JVM_PERFORMANCE_OPTS") or PERFORMANCE
    return [*heap.split(), *performance.split()]


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
    listener_ports: dict[str, int] = field(default_factory=dict)  # a secured node's clients'

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
    secured: bool = False  # SASL_SSL + ACLs (see the module docstring); one node only
    users: dict[str, str] = field(default_factory=dict)  # SCRAM users at format: name -> password
    admin_password: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)
    oauth_jwks_url: str | None = None  # secured: an OAUTH listener checking JWTs against it
    members: list[Node] = field(default_factory=list)
    _owned_dir: bool = False
    _authority: Authority | None = field(default=None, repr=False)

    ADMIN = "admin"

    def __post_init__(self) -> None:
        if self.secured and self.nodes != 1:
            raise ConfigurationError("KafkaCluster(secured=True) runs one node")
        for name, password in {self.ADMIN: self.admin_password, **self.users}.items():
            if not scram_safe(name) or not scram_safe(password):
                raise ConfigurationError(f"SCRAM user {name!r}: use letters, digits, '-', '_'")

    @property
    def replication_factor(self) -> int:
        return 3 if self.nodes >= 3 else 1

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.address for node in self.members)

    @property
    def tls_dir(self) -> Path:
        assert self.base_dir is not None, "start the cluster first"
        return self.base_dir / "tls"

    @property
    def ca_location(self) -> Path:
        """The CA certificate clients of a secured cluster trust (`KAFKA_SSL_CA_LOCATION`)."""
        return self.tls_dir / "ca.pem"

    def connection(
        self, user: str | None = None, password: str | None = None, *,
        mechanism: Mechanism = "SCRAM-SHA-512", client_id: str = "wedsync-dev",
    ) -> KafkaConnection:  # fmt: skip
        """How a client connects: PLAINTEXT, or on a secured cluster SASL_SSL as `user`
        (default: the super user) trusting this cluster's CA."""
        if not self.secured:
            return KafkaConnection(bootstrap_servers=self.bootstrap_servers, client_id=client_id)
        if user is None:
            user, password = self.ADMIN, self.admin_password
        return KafkaConnection(
            bootstrap_servers=self.bootstrap_servers, security_protocol="SASL_SSL",
            sasl_mechanism=mechanism, sasl_username=user,
            sasl_password=SecretStr(password if password is not None else self.users[user]),
            ssl_ca_location=self.ca_location, client_id=client_id,
        )  # fmt: skip

    def listener(self, name: str) -> str:
        """The bootstrap address of a secured cluster's client listener `name` (SASL_SSL,
        MTLS: SSL with client certificates, SASLPLAIN: SASL_PLAINTEXT)."""
        return ",".join(f"127.0.0.1:{node.listener_ports[name]}" for node in self.members)

    def add_user(self, name: str, password: str, timeout: float = 15.0) -> None:
        """Create (or change) a SCRAM user for both mechanisms, as the super user, and wait
        until the broker takes the login (credentials reach it through the metadata log)."""
        from confluent_kafka.admin import (
            AdminClient,
            ScramCredentialInfo,
            ScramMechanism,
            UserScramCredentialUpsertion,
        )

        admin = AdminClient(self._admin_config())
        for mechanism in SCRAM:  # one credential of a user per request
            info = ScramCredentialInfo(getattr(ScramMechanism, mechanism.replace("-", "_")), 4096)
            change = UserScramCredentialUpsertion(name, info, password.encode())
            for future in admin.alter_user_scram_credentials([change]).values():
                future.result(timeout=timeout)
        self.users[name] = password
        probe = AdminClient(client_config(self.connection(name, password)))
        deadline = time.monotonic() + timeout
        while True:
            try:
                probe.list_topics(timeout=1)
                return
            except Exception:  # KafkaException: not authenticated yet
                if time.monotonic() > deadline:
                    raise BrokerUnavailable(f"the SCRAM login of {name} never worked") from None
                time.sleep(0.2)

    def _admin_config(self, bootstrap: str | None = None) -> dict[str, Any]:
        conn = self.connection()
        if bootstrap is not None:
            conn = conn.model_copy(update={"bootstrap_servers": bootstrap})
        return client_config(conn)

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
        if self.secured:
            for node in self.members:
                names = ("MTLS", "SASLPLAIN", *(("OAUTH",) if self.oauth_jwks_url else ()))
                others = {name: free_port() for name in names}
                node.listener_ports = {"SASL_SSL": node.broker_port, **others}
        cluster_id = _cluster_id()
        if self.secured:
            self._make_certificates()
        for node in self.members:
            node.directory.mkdir(parents=True, exist_ok=True)
            node.properties.write_text(self._server_properties(node))
            (node.directory / "log4j2.xml").write_text(
                (LOG4J2_AUTHORIZER if self.secured else _LOG4J2).format(
                    log=node.directory / "server.log", acl=node.directory / "authorizer.log"
                )
            )
        with ThreadPoolExecutor(self.nodes) as pool:
            list(pool.map(lambda n: self._format(n, jars, cluster_id), self.members))
        for node in self.members:
            self.start_node(node.node_id, wait=False)
        self._wait_listening(timeout)
        wait_for_kafka(self.connection(), timeout)
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
            java_binary(), *jvm_options(), "-Djava.awt.headless=true",
            *(oauth_jvm_options(self.oauth_jwks_url) if self.oauth_jwks_url else []),
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
            wait_for_kafka(self.connection().model_copy(update={"bootstrap_servers": node.address}),
                           timeout)  # fmt: skip

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

        admin = AdminClient(self._admin_config(self._live_bootstrap()))
        meta = admin.list_topics(topic, timeout=10).topics[topic]
        return int(meta.partitions[partition].leader)

    def active_controller(self) -> int:
        """The node id of the active KRaft controller (from DescribeCluster)."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(self._admin_config(self._live_bootstrap()))
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
        if self.secured:
            props.update(self._secured_properties(node))
        props.update(self.extra)
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _make_certificates(self) -> None:
        self._authority = make_tls(self.tls_dir)

    def _secured_properties(self, node: Node) -> dict[str, str]:
        users = {self.ADMIN: self.admin_password, **self.users}
        props = secured_properties(node.listener_ports, node.controller_port, self.tls_dir,
                                   users, self.ADMIN)  # fmt: skip
        if self.oauth_jwks_url:
            props.update(oauth_properties(self.oauth_jwks_url))
        return props

    def client_certificate(self, name: str) -> Path:
        """A PEM file with a key and a certificate for `name` (its CN: the principal
        `User:<name>` on the mutual-TLS listener), signed by this cluster's CA."""
        assert self._authority is not None, "start a secured cluster first"
        path = self.tls_dir / f"client-{name}.pem"
        if not path.exists():
            self._authority.server_keystore(path, hosts=(name,), addresses=())
        return path

    def _format(self, node: Node, jars: Path, cluster_id: str) -> None:
        command = [
            java_binary(), "-Xmx256m", "-cp", f"{jars}/*", "kafka.tools.StorageTool", "format",
            "-t", cluster_id, "-c", str(node.properties), "--ignore-formatted",
        ]  # fmt: skip
        if self.secured:
            command += scram_arguments({self.ADMIN: self.admin_password, **self.users})
        env = dict(os.environ, KAFKA_LOG4J_OPTS="")
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        if done.returncode != 0:
            raise BrokerUnavailable(
                f"kafka StorageTool format failed for node {node.node_id}: "
                f"{(done.stderr or done.stdout).strip()[-800:]}"
            )

    def _wait_listening(self, timeout: float) -> None:
        """Until every node's broker port takes connections; a node that exits first fails the
        start at once, with what its log says (a bad property, a keystore Java cannot read)."""
        deadline = time.monotonic() + timeout
        waiting = list(self.members)
        while waiting:
            for node in list(waiting):
                if node.process is not None and node.process.poll() is not None:
                    raise BrokerUnavailable(
                        f"Kafka node {node.node_id} exited at start (code "
                        f"{node.process.returncode}): {_errors_logged(node)}"
                    )
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", node.broker_port), timeout=0.5),
                ):
                    waiting.remove(node)
            if waiting and time.monotonic() > deadline:
                raise BrokerUnavailable(f"Kafka nodes {[n.node_id for n in waiting]} never "
                                        f"listened in {timeout:.0f} s")  # fmt: skip
            time.sleep(0.1)

    def _wait_brokers(self, timeout: float) -> None:
        """Until every node is registered as a broker (a replicated topic needs them all)."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(self._admin_config())
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(Exception):
                if len(admin.list_topics(timeout=2).brokers) >= self.nodes:
                    return
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"only some of {self.nodes} Kafka nodes registered")
            time.sleep(0.1)


def _errors_logged(node: Node) -> str:
    """The last error lines of a node's server.log (its causes included)."""
    log = node.directory / "server.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    said = [ln for ln in lines if "ERROR" in ln or "Caused by" in ln]
    return " | ".join(said[-6:])[-1500:] or f"nothing in {log}"
