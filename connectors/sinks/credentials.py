"""Secrets a sink needs, read from the platform database when delivering.

Secrets (`api_key`, `secret_key`, `api_credentials`, OAuth refresh tokens kept in
`api_key`) never travel in a Kafka record: a delivery names its integration or endpoint by
id and the sink looks the secret up here. Lookups are cached for `ttl_s` seconds;
`invalidate()` drops one entry (after a 401, before the one refresh the runtime allows).

Where each kind lives (DOMAIN.md):

    integration          supplier_integrations | venue_integrations | email_integrations, by id
    webhook_endpoint     webhook_endpoints, by id (secret_key)
    supplier_integration supplier_integrations, by "<supplier id>:<integration_type>" (Slack)

A `Credential` never shows its values in repr/str, so it cannot leak into a log line or an
exception message by accident.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Mapping
from typing import Any, Literal, Protocol

from streams.errors import FatalError
from streams.logic.urls import is_redacted

Kind = Literal["integration", "webhook_endpoint", "supplier_integration"]


class MissingCredential(FatalError):
    """No row, or the row lacks the secret: connect the integration, then replay."""


async def endpoint_url(
    store: CredentialStore, kind: Kind, key: str, record_url: str, column: str
) -> str:
    """Where to call: the record's URL, or, when the source left it redacted (the URL
    carried a credential: `streams.logic.urls`), the row's `column` read from the database
    like any secret; MissingCredential naming the row (never a value) when it has none."""
    if not is_redacted(record_url):
        return record_url
    credential = await store.get(kind, key)
    return credential.secret(column, f"{kind.replace('_', ' ')} {key}")


class Credential:
    """Column values of one integration or endpoint row (secrets included), redacted in
    repr. `fingerprint` changes when the stored secret changes (a reconnect)."""

    __slots__ = ("_fingerprint", "_values")

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        """A digest of the row, made on first use (most deliveries never ask)."""
        if self._fingerprint is None:
            blob = json.dumps(self._values, sort_keys=True, default=str).encode()
            self._fingerprint = hashlib.blake2b(blob, digest_size=8).hexdigest()
        return self._fingerprint

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name, default)

    def secret(self, name: str, what: str) -> str:
        """The non-empty text value of column `name`; MissingCredential naming `what` (an
        id, never the value) otherwise. A jsonb column's nested key: `api_credentials.api_key`."""
        value: Any = self._values
        for part in name.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if not isinstance(value, str) or not value:
            raise MissingCredential(f"{what}: no {name} stored; connect it, then replay")
        return value

    def __repr__(self) -> str:
        return f"Credential(<{len(self._values)} columns redacted>)"

    __str__ = __repr__


class CredentialStore(Protocol):
    async def get(self, kind: Kind, key: str) -> Credential:
        """The row for `key`; MissingCredential when there is none (or it is inactive)."""
        ...

    def invalidate(self, kind: Kind, key: str) -> None:
        """Forget the cached row, so the next `get` reads the database."""
        ...


class MemoryCredentialStore:
    """A dict-backed store (tests and `wedsync fake` demos); `set` plays a reconnect."""

    def __init__(self, rows: Mapping[tuple[str, str], Mapping[str, Any]] | None = None) -> None:
        self.rows: dict[tuple[str, str], dict[str, Any]] = {
            k: dict(v) for k, v in (rows or {}).items()
        }
        self.reads = 0

    def set(self, kind: Kind, key: str, values: Mapping[str, Any]) -> None:
        self.rows[(kind, key)] = dict(values)

    async def get(self, kind: Kind, key: str) -> Credential:
        self.reads += 1
        row = self.rows.get((kind, key))
        if row is None:
            raise MissingCredential(f"{kind} {key}: not found or inactive")
        return Credential(row)

    def invalidate(self, kind: Kind, key: str) -> None:
        return None


_QUERIES: dict[str, str] = {
    "integration": """
        SELECT 'supplier_integrations' AS source_table, integration_type, webhook_url, api_key,
               NULL::jsonb AS api_credentials, settings
          FROM supplier_integrations WHERE id::text = %(key)s AND is_active
        UNION ALL
        SELECT 'venue_integrations', 'venue_booking', webhook_url, api_credentials->>'api_key',
               api_credentials, notification_preferences
          FROM venue_integrations WHERE id::text = %(key)s AND is_active
        UNION ALL
        SELECT 'email_integrations', platform_type, webhook_url, api_key, NULL, trigger_settings
          FROM email_integrations WHERE id::text = %(key)s AND is_active
        LIMIT 1""",
    "webhook_endpoint": """
        SELECT endpoint_url, secret_key FROM webhook_endpoints
         WHERE id::text = %(key)s AND is_active""",
    "supplier_integration": """
        SELECT integration_type, webhook_url, api_key, settings FROM supplier_integrations
         WHERE supplier_id::text = split_part(%(key)s, ':', 1)
           AND integration_type = split_part(%(key)s, ':', 2) AND is_active
         ORDER BY id LIMIT 1""",  # DOMAIN.md's columns only: no created_at to prefer by
}


class PostgresCredentialStore:
    """Reads the platform database (psycopg2, one connection, queries serialized in a
    worker thread) and caches rows for `ttl_s` seconds."""

    def __init__(self, dsn: str, *, ttl_s: float = 30.0) -> None:
        self._dsn = dsn
        self._ttl = ttl_s
        self._cache: dict[tuple[str, str], tuple[float, Credential]] = {}
        self._conn: Any = None
        self._lock = threading.Lock()  # one connection; callers may be on several event loops

    async def get(self, kind: Kind, key: str) -> Credential:
        hit = self._cache.get((kind, key))
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        row = await asyncio.to_thread(self._locked_query, kind, key)
        if row is None:
            raise MissingCredential(f"{kind} {key}: not found or inactive")
        credential = Credential(row)
        self._cache[(kind, key)] = (now + self._ttl, credential)
        return credential

    def invalidate(self, kind: Kind, key: str) -> None:
        self._cache.pop((kind, key), None)

    def _locked_query(self, kind: str, key: str) -> dict[str, Any] | None:
        with self._lock:
            return self._query(kind, key)

    def _query(self, kind: str, key: str) -> dict[str, Any] | None:
        import psycopg2
        import psycopg2.extras

        for attempt in (1, 2):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg2.connect(self._dsn)
                    self._conn.autocommit = True
                with self._conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                    cur.execute(_QUERIES[kind], {"key": key})
                    row = cur.fetchone()
                return dict(row) if row is not None else None
            except psycopg2.OperationalError:
                self._conn = None
                if attempt == 2:
                    raise
        return None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
