"""Dead-letter records: the original bytes, untouched, with the reason in headers.

A dead-letter record can be replayed onto its source topic as it is: value and key are the
original ones; everything we know about the failure travels in `wedsync.dlq.*` headers.
"""

from __future__ import annotations

import time
from typing import Any

H_REASON = "wedsync.dlq.reason"
H_ERROR_CLASS = "wedsync.dlq.error_class"
H_STAGE = "wedsync.dlq.stage"
H_TOPIC = "wedsync.dlq.source_topic"
H_PARTITION = "wedsync.dlq.source_partition"
H_OFFSET = "wedsync.dlq.source_offset"
H_FAILED_AT = "wedsync.dlq.failed_at_ms"

_MAX_REASON = 1000


def dead_letter_headers(
    *,
    stage: str,
    error: BaseException,
    topic: str,
    partition: int,
    offset: int,
    now_ms: int | None = None,
) -> list[tuple[str, bytes]]:
    """Headers that say where a record came from and why it could not be processed."""
    failed_at = int(time.time() * 1000) if now_ms is None else now_ms
    return [
        (H_REASON, str(error)[:_MAX_REASON].encode()),
        (H_ERROR_CLASS, type(error).__name__.encode()),
        (H_STAGE, stage.encode()),
        (H_TOPIC, topic.encode()),
        (H_PARTITION, str(partition).encode()),
        (H_OFFSET, str(offset).encode()),
        (H_FAILED_AT, str(failed_at).encode()),
    ]


def header_map(headers: object) -> dict[str, str]:
    """Kafka headers (a list of pairs or a dict, as clients give them) as a dict of text,
    last value winning, for reading dead letters."""
    if not headers:
        return {}
    pairs = headers.items() if isinstance(headers, dict) else headers
    out: dict[str, str] = {}
    for key, value in pairs:  # type: ignore[attr-defined]
        raw = value.encode() if isinstance(value, str) else (value or b"")
        out[str(key)] = raw.decode(errors="replace")
    return out


def dead_letter_message(
    producer: Any, dlq_topic: str, stage: str, msg: Any, error: BaseException
) -> None:
    """Send a consumed record (a confluent-kafka Message) as it arrived to `dlq_topic`, the
    reason in headers, and count it. For readers outside a counted batch (state changelog,
    seen markers); the caller's producer delivers it with its next poll or flush."""
    from streams import metrics

    metrics.DEAD_LETTERS.labels(stage, type(error).__name__).inc()
    headers = dead_letter_headers(
        stage=stage, error=error, topic=msg.topic() or "", partition=msg.partition() or 0,
        offset=msg.offset() or 0,
    )  # fmt: skip
    producer.produce(dlq_topic, msg.value(), msg.key(), headers=headers)
