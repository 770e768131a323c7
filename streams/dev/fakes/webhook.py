"""WebhookReceiver: a customer's webhook endpoint, for tests and `wedsync fake webhook-receiver`.

It verifies every POST with the official `standardwebhooks` package (never with our own
signing code), so the sink is checked against the reference implementation:

    POST /, POST /hooks/<anything>   verify, dedupe on webhook-id, store, 200 {"ok": true}
    POST /gone                       410 Gone (an endpoint the customer removed)
    POST /moved                      302 to /hooks/moved (must never be followed)

Answers: a bad or missing signature -> 401 (counter ``bad_signature``); a webhook-id seen
before -> 200 again without a new side effect (counter ``duplicates``); a new one -> 200
(counter ``side_effects``, the event stored). Kit switches: latency, ``fail_next`` (answers
``fail_status``), ``throttle_next`` (429 + Retry-After), ``expire_tokens`` (every request
401, as after the customer rotated the secret).

The secret comes from the constructor, else ``WEDSYNC_FAKE_WEBHOOK_SECRET``, else
`DEMO_SECRET`. A ``whsec_`` secret is used as Standard Webhooks defines it; any other secret
as raw UTF-8 bytes (the platform's legacy secrets).
"""

from __future__ import annotations

import binascii
import json
import os
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from streams.dev.fakes.kit import FakeProvider, Switches

DEMO_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class WebhookReceiver(FakeProvider):
    """A Standard Webhooks receiver with dedupe and counters (see the module docstring)."""

    name = "webhook-receiver"

    def __init__(self, secret: str | None = None, switches: Switches | None = None) -> None:
        self.secret = secret or os.environ.get("WEDSYNC_FAKE_WEBHOOK_SECRET") or DEMO_SECRET
        key: str | bytes = (
            self.secret if self.secret.startswith("whsec_") else self.secret.encode("utf-8")
        )
        self._verifier = Webhook(key)
        self.events: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        super().__init__(switches)

    def routes(self, app: web.Application) -> None:
        """The customer endpoint, plus /gone and /moved for tests."""
        app.router.add_post("/gone", self._gone)
        app.router.add_post("/moved", self._moved)
        app.router.add_post("/", self._receive)
        app.router.add_post("/hooks/{tail:.*}", self._receive)

    def stats(self) -> dict[str, Any]:
        """Counters, switches and the stored events (id, event type, body)."""
        return {**super().stats(), "events": list(self.events)}

    def _switched(self) -> web.Response | None:
        injected = self.injected()
        if injected == "throttle":
            return web.json_response(
                {"error": "too many requests"},
                status=429,
                headers={"Retry-After": f"{self.switches.retry_after_s:g}"},
            )
        if injected == "fail":
            status = self.switches.fail_status
            return web.json_response({"error": "injected failure"}, status=status)
        return None

    async def _receive(self, request: web.Request) -> web.Response:
        switched = self._switched()
        if switched is not None:
            return switched
        body = await request.read()
        if self.switches.expire_tokens:
            self.counters["bad_signature"] += 1
            return web.json_response({"error": "invalid signature"}, status=401)
        headers = {k: v for k, v in request.headers.items()}
        try:
            self._verifier.verify(body, headers, json_parse=False)
        except (WebhookVerificationError, ValueError, binascii.Error, UnicodeDecodeError):
            self.counters["bad_signature"] += 1
            return web.json_response({"error": "invalid signature"}, status=401)
        msg_id = request.headers["webhook-id"]
        if msg_id in self._seen:
            self.counters["duplicates"] += 1
            return web.json_response({"ok": True, "duplicate": True})
        try:
            payload = json.loads(body)
        except ValueError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        self._seen.add(msg_id)
        self.counters["side_effects"] += 1
        self.events.append(
            {
                "id": msg_id,
                "path": request.path,
                "event_type": request.headers.get("X-WedSync-Event"),
                "user_agent": request.headers.get("User-Agent"),
                "content_type": request.headers.get("Content-Type"),
                "body": payload,
            }
        )
        return web.json_response({"ok": True})

    async def _gone(self, request: web.Request) -> web.Response:
        self.counters["gone"] += 1
        return web.json_response({"error": "endpoint removed"}, status=410)

    async def _moved(self, request: web.Request) -> web.Response:
        self.counters["moved"] += 1
        raise web.HTTPFound("/hooks/moved")
