"""The embedded broker starts, answers Kafka, and never outlives its owner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from streams import topics
from streams.app.broker import kafka_broker
from streams.dev.broker import EmbeddedBroker
from streams.errors import ConfigurationError
from streams.kafka.admin import create_topics
from streams.settings import Settings

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); read its state
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def _wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_embedded_broker_answers_metadata_and_stops() -> None:
    broker = EmbeddedBroker()
    bootstrap = broker.start()
    assert broker.process is not None
    pid = broker.process.pid
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=5)
    assert metadata.brokers
    broker.stop()
    assert _wait_dead(pid)


def test_records_produced_are_consumed_back(kafka_bootstrap: str) -> None:
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    name = topics.SLA_HEALTH.name
    for i in range(5):
        producer.produce(name, key=b"k", value=f"v{i}".encode())
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "broker-test"})
    consumer.assign([TopicPartition(name, 0, 0)])
    values = []
    deadline = time.monotonic() + 10
    while len(values) < 5 and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and not msg.error():
            values.append(msg.value())
    consumer.close()
    assert values[-5:] == [f"v{i}".encode() for i in range(5)]


def test_topic_creation_is_idempotent(kafka_bootstrap: str) -> None:
    report = create_topics(kafka_bootstrap)
    assert report.created == []
    assert sorted(report.existing) == sorted(t.name for t in topics.ALL)


def test_created_topics_have_catalog_partitions(kafka_bootstrap: str) -> None:
    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=5)
    for t in topics.ALL:
        assert len(metadata.topics[t.name].partitions) == t.partitions


def test_configured_bootstrap_is_used_and_nothing_is_started(monkeypatch) -> None:
    started = []
    monkeypatch.setattr(EmbeddedBroker, "start", lambda self: started.append(self))
    settings = Settings(kafka_bootstrap_servers="kafka.example:9092")
    with kafka_broker(settings, "wedsync-test") as kafka:
        assert kafka.bootstrap_servers == "kafka.example:9092"
    assert started == []


def test_without_a_broker_a_production_command_refuses_to_start(monkeypatch) -> None:
    started = []
    monkeypatch.setattr(EmbeddedBroker, "start", lambda self: started.append(self))
    settings = Settings(kafka_bootstrap_servers=None, broker=None)
    with (
        pytest.raises(ConfigurationError, match="KAFKA_BOOTSTRAP_SERVERS is not set"),
        kafka_broker(settings, "wedsync-test"),
    ):
        pass
    assert started == []


def test_broker_is_stopped_when_a_test_fails(tmp_path: Path) -> None:
    """A failing test inside a session that owns a broker still leaves no broker behind."""
    pid_file = tmp_path / "pid"
    test_file = tmp_path / "test_fails.py"
    test_file.write_text(
        textwrap.dedent(f"""
        import pytest
        from streams.dev.broker import EmbeddedBroker

        @pytest.fixture(scope="session")
        def broker():
            b = EmbeddedBroker()
            b.start()
            open({str(pid_file)!r}, "w").write(str(b.process.pid))
            yield b
            b.stop()

        def test_fails(broker):
            assert False, "deliberate failure"
    """)
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout
    assert _wait_dead(int(pid_file.read_text()))


def test_broker_dies_with_a_killed_owner(tmp_path: Path) -> None:
    """kill -9 of the owning process: the kernel takes the broker down too (PDEATHSIG)."""
    code = textwrap.dedent("""
        import sys, time
        from streams.dev.broker import EmbeddedBroker
        b = EmbeddedBroker(); b.start()
        print(b.process.pid, flush=True)
        time.sleep(60)
    """)
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    broker_pid = int(owner.stdout.readline())
    assert _alive(broker_pid)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    assert _wait_dead(broker_pid)


def test_interrupted_owner_stops_its_broker() -> None:
    """Ctrl-C on `wedsync broker` stops the broker it started."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.app.cli", "broker"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "embedded Kafka broker on" in line
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert children
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0
    assert all(_wait_dead(int(pid)) for pid in children)


def test_existing_topic_with_another_partition_count_is_refused(kafka_bootstrap: str) -> None:
    name = "test.partition-count-mismatch"
    create_topics(kafka_bootstrap, [topics.Topic(name, None, key="k", fixed_partitions=2)])
    with pytest.raises(ConfigurationError, match=rf"{name} has 2, the catalog says 3"):
        create_topics(kafka_bootstrap, [topics.Topic(name, None, key="k", fixed_partitions=3)])


def test_topics_just_created_have_a_leader_for_every_partition(
    kafka_bootstrap: str, unique_id: str
) -> None:
    new = topics.app_topics(f"wedsync-leaders-{unique_id}").all
    report = create_topics(kafka_bootstrap, new)
    assert sorted(report.created) == sorted(t.name for t in new)
    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics
    assert all(p.leader >= 0 for t in new for p in metadata[t.name].partitions.values())
