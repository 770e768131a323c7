"""Receivers of our own for the fault suite, independent of the code under test: one HTTP
server (customer webhooks, the photography CRM, Slack's chat.postMessage) and an aiosmtpd
SMTP server. Each records every request it gets, keyed by the row tag the test put in the
form response (`row-<uuid>`: the client name and form name travel to every destination),
with the delivery's idempotency id where the provider has one (`webhook-id`, the CRM's
`Idempotency-Key`, the email's Message-ID), and can refuse one attempt for chosen rows
(HTTP 503, SMTP 451) to play a provider that fails once.

Checks done here, not trusted to the sinks: Standard Webhooks signatures (HMAC-SHA256 over
`id.timestamp.body` with the endpoint's secret), the CRM's Bearer key, Slack's bot token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

TAG = re.compile(rb"row-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
DESTINATIONS = ("email", "crm", "webhook", "slack")


@dataclass(frozen=True)
class Request:
    at: float  # monotonic
    accepted: bool
    idempotency_id: str | None


@dataclass
class Ledger:
    """What arrived, per destination and row tag. Thread-safe."""

    requests: dict[str, dict[str, list[Request]]] = field(
        default_factory=lambda: {d: {} for d in DESTINATIONS}
    )
    refuse: dict[str, set[str]] = field(default_factory=lambda: {d: set() for d in DESTINATIONS})
    untagged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DESTINATIONS, 0))
    bad: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DESTINATIONS, 0))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, dest: str, raw: bytes, idempotency_id: str | None) -> bool:
        """Record one request; False when it must be refused (once per primed row)."""
        match = TAG.search(raw)
        now = time.monotonic()
        with self.lock:
            if match is None:
                self.untagged[dest] += 1
                return True
            tag = match.group(1).decode()
            refused = tag in self.refuse[dest]
            self.refuse[dest].discard(tag)
            self.requests[dest].setdefault(tag, []).append(
                Request(now, not refused, idempotency_id)
            )
            return not refused

    def refuse_once(self, tag: str, destinations: Iterable[str] = DESTINATIONS) -> None:
        with self.lock:
            for dest in destinations:
                self.refuse[dest].add(tag)

    def accepted(self, dest: str, tag: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests[dest].get(tag, ()) if r.accepted]

    def arrived(self, tags: Iterable[str]) -> dict[str, set[str]]:
        """Per destination, the tags among `tags` with at least one accepted request."""
        wanted = set(tags)
        with self.lock:
            return {
                dest: {
                    t for t, reqs in by_tag.items() if t in wanted and any(r.accepted for r in reqs)
                }
                for dest, by_tag in self.requests.items()
            }


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        owner = self.server.owner
        time.sleep(owner.latency_s)
        path = self.path.split("?")[0]
        if path.startswith("/hooks/"):
            self._webhook(owner, path.removeprefix("/hooks/"), body)
        elif path.startswith("/crm/"):
            self._crm(owner, path.removeprefix("/crm/"), body)
        elif path == "/api/chat.postMessage":
            self._slack(owner, body)
        else:
            self._answer(404, {"error": "not_found"})

    def _webhook(self, owner: HttpReceivers, supplier: str, body: bytes) -> None:
        msg_id = self.headers.get("webhook-id") or ""
        stamp = self.headers.get("webhook-timestamp") or ""
        secret = owner.webhook_secrets.get(supplier)
        if secret is None or not _signed(secret, msg_id, stamp, body,
                                         self.headers.get("webhook-signature") or ""):  # fmt: skip
            owner.ledger.bad["webhook"] += 1
            self._answer(401, {"error": "bad signature"})
            return
        ok = owner.ledger.take("webhook", body, msg_id)
        self._answer(204 if ok else 503, None if ok else {"error": "try later"})

    def _crm(self, owner: HttpReceivers, supplier: str, body: bytes) -> None:
        if self.headers.get("Authorization") != f"Bearer {owner.crm_keys.get(supplier)}":
            owner.ledger.bad["crm"] += 1
            self._answer(401, {"error": "unauthorized"})
            return
        ok = owner.ledger.take("crm", body, self.headers.get("Idempotency-Key"))
        self._answer(200 if ok else 503, {"id": "crm-1"} if ok else {"error": "try later"})

    def _slack(self, owner: HttpReceivers, body: bytes) -> None:
        if self.headers.get("Authorization") != f"Bearer {owner.slack_token}":
            owner.ledger.bad["slack"] += 1
            self._answer(200, {"ok": False, "error": "invalid_auth"})
            return
        ok = owner.ledger.take("slack", body, None)
        if not ok:
            self._answer(503, {"ok": False, "error": "service_unavailable"})
            return
        channel = (json.loads(body or b"{}") or {}).get("channel", "C0")
        self._answer(200, {"ok": True, "channel": channel, "ts": f"{time.time():.6f}"})

    def _answer(self, status: int, payload: Any) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _signed(secret: str, msg_id: str, stamp: str, body: bytes, header: str) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(mac).decode()
    return any(hmac.compare_digest(expected, sig) for sig in header.split())


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: HttpReceivers


@dataclass
class HttpReceivers:
    """Customer webhooks (`/hooks/<supplier>`), the photography CRM (`/crm/<supplier>`) and
    Slack (`/api/chat.postMessage`) on one loopback port."""

    ledger: Ledger
    slack_token: str
    latency_s: float = 0.02
    webhook_secrets: dict[str, str] = field(default_factory=dict)
    crm_keys: dict[str, str] = field(default_factory=dict)
    server: _HttpServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> HttpReceivers:
        self.server = _HttpServer(("127.0.0.1", 0), _Handler)
        self.server.owner = self
        threading.Thread(target=self.server.serve_forever, name="receivers", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class _SmtpHandler:
    def __init__(self, ledger: Ledger, owner: SmtpReceiver) -> None:
        self.ledger = ledger
        self.owner = owner

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import asyncio

        self.owner.in_flight += 1
        try:
            await asyncio.sleep(self.owner.latency_s)
        finally:
            self.owner.in_flight -= 1
        raw = bytes(envelope.original_content or envelope.content)
        message_id = message_from_bytes(raw).get("Message-ID")
        if self.ledger.take("email", raw, message_id):
            return "250 2.0.0 OK"
        return "451 4.3.0 Try again later"


@dataclass
class SmtpReceiver:
    """An aiosmtpd server on loopback recording every message (DATA answered after
    `latency_s`, which can change while it runs, so a stopping sink has sends in flight)."""

    ledger: Ledger
    latency_s: float = 0.1
    in_flight: int = 0  # messages whose DATA is being answered now
    controller: Controller | None = None

    @property
    def port(self) -> int:
        assert self.controller is not None
        return int(self.controller.port)

    def start(self) -> SmtpReceiver:
        from streams.dev.broker import free_port

        self.controller = Controller(
            _SmtpHandler(self.ledger, self), hostname="127.0.0.1", port=free_port()
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
