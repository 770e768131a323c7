"""What the protocol tests (tests/secure/test_protocols.py, test_oauthbearer.py) do on each
listener: a topic and group its principal may use, a record through confluent-kafka, one
through Faust's aiokafka with the credentials the worker gives Faust, and `wedsync sla`
started on the connection."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from streams.dev.broker import free_port
from streams.kafka.connection import KafkaConnection, client_config

from tests.integration.inapp.support import wait_ready
from tests.secure.support import kafka_env

TOPIC, GROUP = "protocols.roundtrip", "protocols-"


def roundtrip_acls(principal: str) -> list[AclBinding]:
    """READ, WRITE and DESCRIBE on TOPIC, READ on groups prefixed GROUP."""
    allow = AclPermissionType.ALLOW
    return [
        AclBinding(ResourceType.TOPIC, TOPIC, ResourcePatternType.LITERAL, f"User:{principal}",
                   "*", op, allow)
        for op in (AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE)
    ] + [AclBinding(ResourceType.GROUP, GROUP, ResourcePatternType.PREFIXED, f"User:{principal}",
                    "*", AclOperation.READ, allow)]  # fmt: skip


def through_confluent_kafka(conn: KafkaConnection) -> bool:
    """A record produced on `conn` is read back on it (bounded: 60 polls of 1 s)."""
    value = uuid.uuid4().bytes
    producer = Producer(client_config(conn))
    producer.produce(TOPIC, value)
    assert producer.flush(30) == 0
    consumer = Consumer(client_config(conn, {"group.id": f"{GROUP}{uuid.uuid4()}",
                                             "auto.offset.reset": "earliest"}))  # fmt: skip
    consumer.subscribe([TOPIC])
    try:
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is not None and message.error() is None and message.value() == value:
                return True
        return False
    finally:
        consumer.close()


def through_faust_aiokafka(conn: KafkaConnection) -> bool:
    """The same with aiokafka and `conn.faust_credentials()` (bounded: 60 s)."""
    auth = dict(credentials_to_aiokafka_auth(conn.faust_credentials()))
    value = uuid.uuid4().bytes

    async def roundtrip() -> bool:
        producer = AIOKafkaProducer(bootstrap_servers=conn.bootstrap_servers, **auth)
        await producer.start()
        try:
            await producer.send_and_wait(TOPIC, value)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(TOPIC, bootstrap_servers=conn.bootstrap_servers,
                                    group_id=f"{GROUP}{uuid.uuid4()}",
                                    auto_offset_reset="earliest", **auth)  # fmt: skip
        await consumer.start()
        try:
            async with asyncio.timeout(60):
                async for message in consumer:
                    if message.value == value:
                        return True
        finally:
            await consumer.stop()
        return False

    return asyncio.run(roundtrip())


def sla_on(conn: KafkaConnection) -> tuple[int, str]:
    """`wedsync sla` on `conn` until its /healthz answers, then SIGTERM: (exit code, the end
    of its stderr)."""
    port = free_port()
    env = {**os.environ, **kafka_env(conn), "WEDSYNC_METRICS_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "streams.app.cli", "sla"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        wait_ready(f"http://127.0.0.1:{port}/healthz", timeout=90)
        assert proc.poll() is None
    finally:
        proc.terminate()
        code = proc.wait(30)
    assert proc.stderr is not None
    return code, proc.stderr.read().decode()[-3000:]
