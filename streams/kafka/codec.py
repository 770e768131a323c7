"""The one codec: Avro in the Confluent wire format.

    byte 0       magic byte 0x00
    bytes 1-4    schema id, big-endian (from the registry, see `streams.kafka.registry`)
    bytes 5-     Avro binary (schemaless) encoding of the record

Any Confluent-compatible consumer reads what we write, and we read what it writes. Records
are plain dicts (what fastavro produces); `streams.models` gives them types where needed.

Decoding resolves the writer's schema (looked up by id) against our reader schema, so a
reader holding version 2 reads version-1 records. Every way the bytes can be wrong raises
`DecodeError`, which the runtime turns into a dead-letter record; it never crashes a worker.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Mapping
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import to_parsing_canonical_form

from streams.errors import DecodeError
from streams.kafka.registry import ConfluentRegistry, EmbeddedRegistry, Registry
from streams.kafka.schema_store import SchemaStore
from streams.settings import Settings
from streams.topics import Topic

MAGIC = 0
_HEADER = struct.Struct(">bI")
HEADER_SIZE = _HEADER.size

# Python type -> the Avro branch a value of that type is written as (exact types only).
_BRANCH_OF: dict[type, str] = {
    type(None): "null", bool: "boolean", int: "long", float: "double", str: "string",
    bytes: "bytes", list: "array", dict: "map",
}  # fmt: skip

Hint = Callable[[Any], Any]


def _branch_names(union: list[Any]) -> set[str]:
    return {b if isinstance(b, str) else str(b.get("type")) for b in union}


def _union_hint(union: list[Any], inner: Hint | None = None) -> Hint | None:
    """A function that tags a value with its union branch, `(branch, value)` (fastavro's
    tuple notation), so fastavro skips trying every branch. Values whose branch is not
    obvious are returned untagged and resolved by fastavro as usual. None when the union
    has a named type (records, enums) whose branch a Python type cannot tell."""
    names = _branch_names(union)
    if not names <= set(_BRANCH_OF.values()):
        return None

    def tag(value: Any) -> Any:
        branch = _BRANCH_OF.get(type(value))
        if branch not in names:
            return value
        if inner is not None and value is not None:
            value = inner(value)
        return (branch, value)

    return tag


def _map_hint(values_schema: Any) -> Hint | None:
    if not isinstance(values_schema, list):
        return None
    tag = _union_hint(values_schema)
    if tag is None:
        return None
    return lambda mapping: {k: tag(v) for k, v in mapping.items()}


def _field_hint(field_schema: Any) -> Hint | None:
    """How to tag one top-level field's value, or None to leave it to fastavro."""
    if isinstance(field_schema, dict) and field_schema.get("type") == "map":
        return _map_hint(field_schema.get("values"))
    if isinstance(field_schema, list):
        maps = [b for b in field_schema if isinstance(b, dict) and b.get("type") == "map"]
        inner = _map_hint(maps[0].get("values")) if len(maps) == 1 else None
        return _union_hint(field_schema, inner)
    return None


def compile_hints(schema: dict[str, Any]) -> list[tuple[str, Hint]]:
    """Per-field taggers for a record schema: unions of primitives and maps whose values are
    such unions. Tagging writes the same bytes ~40 % faster (fastavro otherwise validates
    the value against each union branch, and for a nullable map every value of it)."""
    hints = []
    for field in schema.get("fields", []):
        hint = _field_hint(field["type"])
        if hint is not None:
            hints.append((field["name"], hint))
    return hints


class AvroCodec:
    """Encode and decode one record type (one schema key) for one subject.

    Create one per topic and reuse it: schemas are parsed once and the writer id is
    registered once, on first use.
    """

    def __init__(self, registry: Registry, subject: str, schema: dict[str, Any]) -> None:
        self.registry = registry
        self.subject = subject
        self.schema = schema
        self._canonical = to_parsing_canonical_form(schema)
        self._id: int | None = None
        self._header = b""
        # writer id -> reader schema to resolve against (None: same schema, no resolution)
        self._readers: dict[int, dict[str, Any] | None] = {}
        self._hints = compile_hints(schema)

    @property
    def schema_id(self) -> int:
        if self._id is None:
            self._id = self.registry.register(self.subject, self.schema)
            self._header = _HEADER.pack(MAGIC, self._id)
            self._readers[self._id] = None
        return self._id

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """Serialize `record`; raises ValueError/TypeError naming the bad field if it does
        not match the schema (a programming error, not bad input)."""
        self.schema_id  # noqa: B018 - registers on first use and sets the header
        if self._hints:
            tagged = dict(record)
            for name, hint in self._hints:
                if name in tagged:
                    tagged[name] = hint(tagged[name])
            record = tagged
        buf = io.BytesIO()
        buf.write(self._header)
        schemaless_writer(buf, self.registry.lookup(self._id or 0), record)
        return buf.getvalue()

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """Deserialize one message value; DecodeError if it is not a valid record."""
        if data is None:
            raise DecodeError("empty message value (tombstone) where a record was expected")
        if len(data) < HEADER_SIZE:
            raise DecodeError(f"truncated message: {len(data)} bytes, the header alone is 5")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise DecodeError(
                f"wrong magic byte {magic:#04x}: not Confluent-framed Avro (expected 0x00)"
            )
        writer = self.registry.lookup(schema_id)
        if schema_id not in self._readers:
            same = to_parsing_canonical_form(writer) == self._canonical
            self._readers[schema_id] = None if same else self.registry.lookup(self.schema_id)
        reader = self._readers[schema_id]
        buf = io.BytesIO(data)
        buf.seek(HEADER_SIZE)
        try:
            record = schemaless_reader(buf, writer, reader)
        except Exception as exc:  # fastavro raises EOFError, ValueError, IndexError, ...
            raise DecodeError(f"corrupt Avro payload for schema id {schema_id}: {exc!r}") from exc
        if buf.tell() != len(data):
            raise DecodeError(f"trailing bytes: record ended at {buf.tell()} of {len(data)} bytes")
        if not isinstance(record, dict):
            raise DecodeError(f"schema id {schema_id} does not describe a record")
        return record


class TopicCodecs:
    """One `AvroCodec` per catalog topic, built on first use and shared.

    The registry is chosen from settings: a Confluent Schema Registry when
    `SCHEMA_REGISTRY_URL` is set, else the embedded one.
    """

    def __init__(self, store: SchemaStore, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self._codecs: dict[str, AvroCodec] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> TopicCodecs:
        store = SchemaStore(settings.schemas_dir)
        conf = settings.schema_registry()
        registry: Registry = ConfluentRegistry(conf) if conf else EmbeddedRegistry(store)
        return cls(store, registry)

    def __getitem__(self, topic: Topic) -> AvroCodec:
        codec = self._codecs.get(topic.name)
        if codec is None:
            if topic.schema is None:
                raise KeyError(f"{topic.name} carries raw bytes; it has no codec")
            codec = AvroCodec(self.registry, topic.subject, self.store.latest(topic.schema).raw)
            self._codecs[topic.name] = codec
        return codec
