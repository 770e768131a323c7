"""`wedsync deliveries show <event_id>`: the chain of one event, from its source position
through routing to every provider's answer, read back from Kafka (the events topic and the
delivery ledger). A skipped delivery says why: `skipped_duplicate` (already delivered) or
`skipped_stale ... superseded by delivery <id>` (a newer version of the same entity was)."""

from __future__ import annotations

import time
from typing import Any

from streams.errors import DecodeError
from streams.kafka.codec import TopicCodecs
from streams.kafka.connection import Kafka
from streams.kafka.replay import read_topic
from streams.topics import DELIVERY_RESULTS, EVENTS, Topic


def _read(bootstrap: Kafka, topic: Topic, decode: Any, event_id: str) -> list[Any]:
    found: list[Any] = []

    def keep(msg: Any) -> None:
        try:
            record = decode(msg.value())
        except DecodeError:
            return
        if record.get("event_id") == event_id:
            found.append(record)

    read_topic(bootstrap, topic, keep)
    return found


def _ts(ms: int) -> str:
    if not ms:
        return "-"
    return time.strftime("%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def chain(bootstrap: Kafka, codecs: TopicCodecs, event_id: str) -> list[str]:
    """Lines describing the event and each attempt of each of its deliveries."""
    events = _read(bootstrap, EVENTS, codecs[EVENTS].decode, event_id)
    results = _read(bootstrap, DELIVERY_RESULTS, codecs[DELIVERY_RESULTS].decode, event_id)
    lines: list[str] = []
    if not events and not results:
        return [f"no event {event_id} on {EVENTS.name} and no delivery results for it"]
    for event in events[:1]:
        src = event["source"]
        lines.append(
            f"event {event_id} {event['event_type']} {event['aggregate_type']} "
            f"{event['aggregate_id']} v{event['aggregate_version']}"
        )
        lines.append(
            f"  source  {src['kind']} table={src.get('table') or '-'} "
            f"commit_lsn={src.get('commit_lsn')} committed {_ts(event['source_ts_ms'])}"
        )
    by_delivery: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        by_delivery.setdefault(result["delivery_id"], []).append(result)
    for delivery_id, attempts in sorted(by_delivery.items(), key=lambda kv: kv[1][0]["target"]):
        first = attempts[0]
        lines.append(
            f"  routed  {_ts(first['routed_at_ms'])} -> {first['destination']} "
            f"{first['target']} (delivery {delivery_id})"
        )
        for a in sorted(attempts, key=lambda r: (r["completed_at_ms"], r["attempt"])):
            lines.append(attempt_line(a))
    return lines


def attempt_line(a: dict[str, Any]) -> str:
    """One attempt's line: outcome, provider answer, timing, the error, and for a skip of a
    superseded delivery the newer delivery that superseded it (results written before that
    field existed have none)."""
    lag = a["completed_at_ms"] - a["source_ts_ms"] if a["source_ts_ms"] else 0
    return (
        f"    attempt {a['attempt']} {a['outcome']:<16} status={a['status_code']} "
        f"provider_id={a['provider_id'] or '-'} latency={a['latency_ms']:.0f} ms "
        f"at {_ts(a['completed_at_ms'])} (commit+{lag} ms)"
        + (f" error={a['error_class']}: {a['error_message']}" if a["error_class"] else "")
        + (f" superseded by delivery {a['superseded_by']}" if a.get("superseded_by") else "")
    )
