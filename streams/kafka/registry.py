"""Schema ids: where the 4-byte id in the Confluent wire format comes from.

Two registries with one small interface:

* `EmbeddedRegistry` needs no server. A schema's id is derived from the SHA-256 of its
  Parsing Canonical Form, so every process (and every machine) gives the same schema the same
  id, and any process that has the `schemas/` tree can resolve any id we ever wrote.
* `ConfluentRegistry` speaks the Confluent Schema Registry REST API through confluent-kafka's
  own client (register under `<topic>-value`, fetch by id; both cached). Used when
  `SCHEMA_REGISTRY_URL` is set; `mock://` URLs give confluent-kafka's in-process mock.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any, Protocol

from fastavro.schema import to_parsing_canonical_form

from streams.errors import DecodeError, SchemaError
from streams.kafka.schema_store import SchemaStore, parse_schema


class Registry(Protocol):
    def register(self, subject: str, schema: dict[str, Any]) -> int:
        """Return the id of `schema` under `subject`, registering it when new."""
        ...

    def lookup(self, schema_id: int) -> dict[str, Any]:
        """Return the fastavro-parsed writer schema for `schema_id`; DecodeError if unknown."""
        ...


def fingerprint_id(schema: dict[str, Any]) -> int:
    """A stable positive 31-bit id from the schema's canonical form."""
    canonical = to_parsing_canonical_form(schema).encode()
    return int.from_bytes(hashlib.sha256(canonical).digest()[:4], "big") & 0x7FFFFFFF


class EmbeddedRegistry:
    """Serverless registry: ids are canonical-form fingerprints; every schema file is known."""

    def __init__(self, store: SchemaStore | None = None) -> None:
        self._by_id: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()
        if store is not None:
            for version in store.all_versions():
                self._add(version.raw)

    def _add(self, raw: dict[str, Any]) -> int:
        schema_id = fingerprint_id(raw)
        with self._lock:
            known = self._by_id.get(schema_id)
            if known is None:
                self._by_id[schema_id] = parse_schema(raw)
            elif to_parsing_canonical_form(known) != to_parsing_canonical_form(raw):
                raise SchemaError(f"schema id collision on {schema_id}; rename a record type")
        return schema_id

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        return self._add(schema)

    def lookup(self, schema_id: int) -> dict[str, Any]:
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise DecodeError(
                f"unknown schema id {schema_id}: not one of the schemas under schemas/; "
                "was it written by another registry (set SCHEMA_REGISTRY_URL)?"
            ) from None


class ConfluentRegistry:
    """A Confluent Schema Registry, through confluent-kafka's client, with local caches."""

    def __init__(
        self, url: str, basic_auth_user_info: str | None = None, *, client: Any = None
    ) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        conf: dict[str, Any] = {"url": url}
        if basic_auth_user_info:
            conf["basic.auth.user.info"] = basic_auth_user_info
        self.client = client or SchemaRegistryClient.new_client(conf)
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, dict[str, Any]] = {}

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        from confluent_kafka.schema_registry import Schema
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        text = json.dumps(schema)
        cache_key = (subject, to_parsing_canonical_form(schema))
        if cache_key not in self._ids:
            try:
                schema_id = self.client.register_schema(subject, Schema(text, "AVRO"))
            except SchemaRegistryError as exc:
                raise SchemaError(f"registry refused {subject}: {exc}") from exc
            self._ids[cache_key] = schema_id
            self._schemas[schema_id] = parse_schema(schema)
        return self._ids[cache_key]

    def lookup(self, schema_id: int) -> dict[str, Any]:
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        if schema_id not in self._schemas:
            try:
                found = self.client.get_schema(schema_id)
            except SchemaRegistryError as exc:
                if exc.http_status_code == 404:
                    raise DecodeError(f"unknown schema id {schema_id}: {exc}") from exc
                raise SchemaError(f"registry lookup of id {schema_id} failed: {exc}") from exc
            self._schemas[schema_id] = parse_schema(json.loads(str(found.schema_str)))
        return self._schemas[schema_id]
