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

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from fastavro.schema import to_parsing_canonical_form

from streams.errors import DecodeError, SchemaError, SchemaRegistryRefused
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
    """A Confluent Schema Registry, through confluent-kafka's client, with local caches.

    `conf` is the client's configuration in confluent-kafka's names (`url`,
    `basic.auth.user.info`, `ssl.ca.location`, `ssl.certificate.location`,
    `ssl.key.location`, `ssl.key.password`: `Settings.schema_registry()`), or only a URL.
    An untrusted certificate, refused credentials or a refused client certificate is a
    SchemaRegistryRefused naming the setting to fix; `check()` asks once at start."""

    def __init__(
        self, conf: Mapping[str, str] | str, basic_auth_user_info: str | None = None, *,
        client: Any = None,
    ) -> None:  # fmt: skip
        from confluent_kafka.schema_registry import SchemaRegistryClient

        self.conf: dict[str, str] = {"url": conf} if isinstance(conf, str) else dict(conf)
        if basic_auth_user_info:
            self.conf["basic.auth.user.info"] = basic_auth_user_info
        self.client = client or SchemaRegistryClient.new_client(dict(self.conf))
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, dict[str, Any]] = {}

    def check(self) -> None:
        """Ask the registry once (its subjects): SchemaRegistryRefused when it cannot be used
        as configured, naming the setting; nothing is registered."""
        try:
            with refused_by_registry(self.conf):
                self.client.get_subjects()
        except SchemaRegistryRefused:
            raise
        except Exception as exc:  # transport errors after the client's own retries
            raise SchemaRegistryRefused(
                f"the Schema Registry at {_shown(self.conf['url'])} did not answer ({exc}): "
                "check SCHEMA_REGISTRY_URL"
            ) from None

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        from confluent_kafka.schema_registry import Schema
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        text = json.dumps(schema)
        cache_key = (subject, to_parsing_canonical_form(schema))
        if cache_key not in self._ids:
            try:
                with refused_by_registry(self.conf):
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
                with refused_by_registry(self.conf):
                    found = self.client.get_schema(schema_id)
            except SchemaRegistryError as exc:
                if exc.http_status_code == 404:
                    raise DecodeError(f"unknown schema id {schema_id}: {exc}") from exc
                raise SchemaError(f"registry lookup of id {schema_id} failed: {exc}") from exc
            self._schemas[schema_id] = parse_schema(json.loads(str(found.schema_str)))
        return self._schemas[schema_id]


def _shown(url: str) -> str:
    """`url` without credentials in it (a URL may carry user:password)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@contextlib.contextmanager
def refused_by_registry(conf: Mapping[str, str]) -> Iterator[None]:
    """Turn what a misconfiguration looks like to the registry client (a TLS failure, 401,
    403) into SchemaRegistryRefused naming the SCHEMA_REGISTRY_* setting to fix."""
    import ssl

    from confluent_kafka.schema_registry.error import SchemaRegistryError

    url = _shown(conf["url"])
    try:
        yield
    except SchemaRegistryError as exc:
        if exc.http_status_code == 401:
            raise SchemaRegistryRefused(
                f"the Schema Registry at {url} refused the credentials (401): set "
                "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO to 'user:password' of a registry user"
            ) from None
        if exc.http_status_code == 403:
            raise SchemaRegistryRefused(
                f"the Schema Registry at {url} refused this user (403): grant the user of "
                "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO read and write on the wedsync subjects"
            ) from None
        raise
    except Exception as exc:
        text = f"{exc} {exc.__cause__ or ''} {exc.__context__ or ''}".upper()
        if "CERTIFICATE_VERIFY_FAILED" in text:
            raise SchemaRegistryRefused(
                f"the Schema Registry's certificate at {url} is not signed by a CA this "
                "process trusts, or not for that host: set SCHEMA_REGISTRY_SSL_CA_LOCATION "
                "to the PEM file of the CA that signed it"
            ) from None
        if "CERTIFICATE_REQUIRED" in text or "BAD_CERTIFICATE" in text:
            raise SchemaRegistryRefused(
                f"the Schema Registry at {url} refused this process's TLS client (it asks for "
                "a client certificate it trusts): set SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION "
                "and SCHEMA_REGISTRY_SSL_KEY_LOCATION"
            ) from None
        closed = "SERVER DISCONNECTED" in text or isinstance(exc.__context__, ssl.SSLError)
        if closed and url.startswith("https") and "ssl.certificate.location" not in conf:
            raise SchemaRegistryRefused(
                f"the Schema Registry at {url} closed the TLS connection without answering: "
                "when it requires client certificates (mutual TLS), set "
                "SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION and SCHEMA_REGISTRY_SSL_KEY_LOCATION; "
                "otherwise check SCHEMA_REGISTRY_URL"
            ) from None
        raise
