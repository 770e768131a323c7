"""The InboundWebhook record (`schemas/ingest/inbound_webhook`) written by hand, for the
gateway's request path. Pure: a record in, Avro bytes out.

The record is flat (strings, an enum, a map of strings, bytes, longs), so writing it field by
field costs a third of fastavro's generic walk. `WebhookWriter.of(schema)` is None when the
schema is not that record (a field added, moved or retyped): the gateway then encodes with
the codec, as before. Avro binary as in `connectors/sources/postgres_cdc/avro.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.sources.postgres_cdc.avro import avro_long

__all__ = ["WebhookWriter"]

FIELDS = (("event_id", "string"), ("source", "string"), ("verification", "enum"),
          ("delivery_id", "string"), ("headers", "map"), ("content_type", "string"),
          ("body", "bytes"), ("received_at_ms", "long"), ("source_ts_ms", "long"))  # fmt: skip


def _kind(schema: Any) -> str | None:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, dict):
        if schema.get("type") == "map" and schema.get("values") == "string":
            return "map"
        if schema.get("type") == "enum":
            return "enum"
    return None


def _bytes(raw: bytes) -> bytes:
    return avro_long(len(raw)) + raw


class WebhookWriter:
    """Writes InboundWebhook records (without the 5-byte framing) for one schema."""

    def __init__(self, symbols: list[str]) -> None:
        self._symbols = {s: avro_long(i) for i, s in enumerate(symbols)}

    @classmethod
    def of(cls, schema: Mapping[str, Any]) -> WebhookWriter | None:
        try:
            fields = [(f["name"], _kind(f["type"])) for f in schema["fields"]]
        except (KeyError, TypeError):
            return None
        if tuple(fields) != FIELDS:
            return None
        return cls(list(schema["fields"][2]["type"]["symbols"]))

    def write(self, record: Mapping[str, Any]) -> bytes:
        """The record's Avro body; ValueError/TypeError for a value the schema cannot hold
        (as fastavro raises), e.g. a lone surrogate in a string or an unknown symbol."""
        symbol = self._symbols.get(record["verification"])
        if symbol is None:
            raise ValueError(f"{record['verification']!r} is not a verification symbol")
        headers = record["headers"]
        parts = [_bytes(record["event_id"].encode()), _bytes(record["source"].encode()), symbol,
                 _bytes(record["delivery_id"].encode())]  # fmt: skip
        if headers:
            parts.append(avro_long(len(headers)))
            for name, value in headers.items():
                parts.append(_bytes(name.encode()))
                parts.append(_bytes(value.encode()))
        parts.append(b"\x00")
        body = record["body"]
        if not isinstance(body, bytes):
            raise TypeError("body must be bytes")
        received, source_ts = record["received_at_ms"], record["source_ts_ms"]
        parts += (_bytes(record["content_type"].encode()), _bytes(body), avro_long(received),
                  avro_long(source_ts))  # fmt: skip
        return b"".join(parts)
