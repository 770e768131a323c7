"""The platform side of the fault suite: N suppliers that each want email and Slack, with a
photography-CRM integration and a customer webhook endpoint subscribed to
`form_responses.insert`, so each form response must give exactly one email, one CRM call,
one signed webhook and one Slack message; and a steady load of form responses, each tagged
`row-<its id>` in its client and form names so every receiver can tell which row it got."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg2

from tests.faults.receivers import HttpReceivers
from tests.integration.cdc_support import PlatformDb


def seed(db: PlatformDb, receivers: HttpReceivers, n: int) -> list[str]:
    """`n` suppliers with their integrations pointed at `receivers`; their ids."""
    suppliers = []
    with db.connect() as conn, conn.cursor() as cur:
        for i in range(n):
            sid, key = str(uuid.uuid4()), f"crm-key-{i}"
            secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
            prefs = {"realtime_channels": ["email", "slack"], "slack_channel": f"C{i:04d}"}
            cur.execute(
                "INSERT INTO suppliers (id, business_name, email, notification_preferences) "
                "VALUES (%s, %s, %s, %s)",
                (sid, f"Vendor {i}", f"vendor{i}@vendors.example", json.dumps(prefs)),
            )
            cur.execute(
                "INSERT INTO supplier_integrations (supplier_id, integration_type, webhook_url, "
                "api_key) VALUES (%s, 'photography_crm', %s, %s)",
                (sid, f"{receivers.url}/crm/{sid}", key),
            )
            cur.execute(
                "INSERT INTO webhook_endpoints (supplier_id, endpoint_url, secret_key, "
                "subscribed_events) VALUES (%s, %s, %s, '{form_responses.insert}')",
                (sid, f"{receivers.url}/hooks/{sid}", secret),
            )
            receivers.crm_keys[sid] = key
            receivers.webhook_secrets[sid] = secret
            suppliers.append(sid)
    return suppliers


@dataclass(frozen=True)
class Row:
    tag: str  # the form response's id
    supplier: str
    window: str  # the fault it belongs to
    inserted: float  # monotonic, after its commit
    committed_ms: int  # wall clock, after its commit


@dataclass
class Load:
    """Inserts form responses, one transaction each, `rate` per second on a thread, while a
    window is open; every committed row is remembered with its window."""

    db: PlatformDb
    suppliers: list[str]
    rate: float = 12.0
    rows: list[Row] = field(default_factory=list)
    _window: str | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _conn: Any = None
    _next: int = 0

    def __post_init__(self) -> None:
        self._conn = psycopg2.connect(self.db.dsn)
        self._conn.autocommit = True

    def insert(self, window: str, supplier: str | None = None, tag: str | None = None) -> Row:
        with self._lock:
            if supplier is None:
                supplier = self.suppliers[self._next % len(self.suppliers)]
                self._next += 1
            tag = tag or str(uuid.uuid4())
            with self._conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO form_responses (id, supplier_id, couple_id, client_name, "
                    "form_name, question_count) VALUES (%s, %s, %s, %s, %s, 3)",
                    (tag, supplier, str(uuid.uuid4()), f"row-{tag}", f"Form row-{tag}"),
                )
            row = Row(tag, supplier, window, time.monotonic(), int(time.time() * 1000))
            self.rows.append(row)
            return row

    def open(self, window: str) -> None:
        """Start loading rows of `window` (until `close`)."""
        self._window = window
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"load-{window}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self._window = None

    def _run(self) -> None:
        assert self._window is not None
        window, every = self._window, 1.0 / self.rate
        due = time.monotonic()
        while not self._stop.is_set():
            self.insert(window)
            due += every
            self._stop.wait(max(0.0, due - time.monotonic()))

    def of(self, window: str) -> list[Row]:
        with self._lock:
            return [r for r in self.rows if r.window == window]

    def shutdown(self) -> None:
        self.close()
        self._conn.close()
