"""Shared by the ingest-gateway integration tests: the configured sources, Standard Webhooks
signing, and reading back what the gateway stored. The fixtures that run the gateway are in
`gateway_fixtures.py`."""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from connectors.sources.webhooks.config import GatewayConfig, parse_gateway_config
from standardwebhooks.webhooks import Webhook
from streams.topics import Topic

WHSEC = "whsec_" + base64.b64encode(b"integration-secret-32-bytes-long").decode()
JWT_KEY = "integration-jwt-key-32-bytes-ok!"
SOURCES: dict[str, Any] = {
    "billing": {"method": "standard_webhooks", "secrets": [WHSEC]},
    "crm": {"method": "bearer", "tokens": ["crm-token"], "delivery_id_header": "x-delivery"},
    "venue": {"method": "jwt", "secret": JWT_KEY, "issuer": "venue", "audience": "wedsync"},
    "tiny": {"method": "bearer", "tokens": ["t"], "rate_per_second": 0.01, "burst": 2},
    "gcal": {"method": "google_channel", "channels": {"chan-1": "chan-token"}},
    "outlook": {"method": "graph_client_state", "client_states": ["cs-secret"]},
    "supabase": {"method": "bearer", "tokens": ["db-token"], "payload": "supabase"},
    "debezium": {"method": "bearer", "tokens": ["db-token"], "payload": "debezium"},
    "supahook": {"method": "bearer", "tokens": ["db-token"], "payload": "supabase",
                 "delivery_id_header": "x-delivery"},
}  # fmt: skip
DB = {"authorization": "Bearer db-token"}


def make_config(**overrides: Any) -> GatewayConfig:
    return parse_gateway_config({"sources": SOURCES, **overrides}, {})


def signed(body: bytes, msg_id: str, ts: float | None = None) -> dict[str, str]:
    """Standard Webhooks headers for `body`, signed with the official package."""
    when = datetime.fromtimestamp(time.time() if ts is None else ts, tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(WHSEC).sign(msg_id, when, body.decode()),
        "content-type": "application/json",
    }


def read_all(bootstrap: str, topic: Topic, group: str, want: int, key_part: str) -> list[Any]:
    """Records of `topic` whose key or value contains `key_part`: poll until `want`
    arrived, then a moment longer so duplicates would show."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic.name, p, OFFSET_BEGINNING) for p in range(6)])
    found: list[Any] = []
    deadline, quiet_until = time.monotonic() + 30, float("inf")
    try:
        while time.monotonic() < min(deadline, quiet_until):
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            if key_part in (msg.key() or b"").decode() or key_part.encode() in (msg.value() or b""):
                found.append(msg)
                if len(found) >= want and quiet_until == float("inf"):
                    quiet_until = time.monotonic() + 1.0
    finally:
        consumer.close()
    return found


async def stored(bootstrap: str, topic: Topic, group: str, key_part: str, want: int = 1) -> Any:
    return await asyncio.to_thread(read_all, bootstrap, topic, group, want, key_part)
