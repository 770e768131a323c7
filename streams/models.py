"""Typed views of the Avro records, mirroring `schemas/` field for field.

TypedDicts cost nothing at run time: the codec hands out plain dicts and these give them
names and types for mypy. `tests/unit/test_models.py` checks that each mirrors its schema.
"""

from __future__ import annotations

from typing import Literal, TypedDict

ColumnValue = bool | int | float | str | None
PayloadValue = bool | int | float | str | list[str] | None


class ChangeSource(TypedDict):
    connector: str
    db: str
    schema: str
    table: str
    lsn: int | None
    tx_id: int | None
    ts_ms: int
    snapshot: bool


class ChangeEvent(TypedDict):
    event_id: str
    op: Literal["c", "u", "d", "r"]
    before: dict[str, ColumnValue] | None
    after: dict[str, ColumnValue] | None
    primary_key: list[str]
    source: ChangeSource
    ts_ms: int
    source_ts_ms: int


class InboundWebhook(TypedDict):
    event_id: str
    source: str
    verification: str
    delivery_id: str
    headers: dict[str, str]
    content_type: str
    body: bytes
    received_at_ms: int
    source_ts_ms: int


class SourceRef(TypedDict):
    kind: Literal["cdc", "webhook", "internal"]
    topic: str
    partition: int
    offset: int
    lsn: int | None
    delivery_id: str | None
    table: str | None


class DomainEvent(TypedDict):
    event_id: str
    event_type: str
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    occurred_at_ms: int
    correlation_id: str | None
    source_ts_ms: int
    source: SourceRef
    payload: dict[str, PayloadValue]
    organization_id: str | None
