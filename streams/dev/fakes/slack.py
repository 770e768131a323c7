"""SlackFake: a local Slack (`wedsync fake slack`) answering like the Web API and incoming
webhooks, for the sink's component tests and for users' own setups.

Routes:
    POST /api/chat.postMessage     Bearer token (or a form/JSON ``token`` field); JSON or
                                   form body as slack-sdk sends it; answers
                                   ``{"ok": true, "channel", "ts", "message"}`` or
                                   ``{"ok": false, "error"}`` (HTTP 200; 429 + Retry-After
                                   for ``ratelimited``)
    POST /services/{T}/{B}/{X}     incoming webhook: plain-text ``ok`` or an error code
                                   (400 invalid_payload / invalid_blocks, 403 invalid_token,
                                   404 no_service, 410 channel_is_archived, 429, 500
                                   rollup_error)
    POST /_fake/slack              JSON {tokens, channels, archived, not_in_channel,
                                   webhooks: {"T/B/X": channel}, rate_limit}: add to the state
    plus the kit's /_fake/control and /_fake/stats.

Switches (fakekit): latency, fail_next (5xx ``internal_error``; 500 on webhooks is
``rollup_error``), throttle_next (429 ratelimited + Retry-After), expire_tokens (every token
and webhook issued so far is refused with invalid_auth / invalid_token; tokens issued later
work: a reconnect). `rate_limit=True` enforces 1 message/s per channel.

Counters: ``messages_posted`` (both routes), ``webhook_posts``, ``api_errors``;
`stats()["posted"]` maps each channel to the texts posted to it.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from streams.dev.fakes.kit import FakeProvider, Switches

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_TEXT = 40_000


class SlackFake(FakeProvider):
    """A fake Slack workspace. `channels=None` accepts any channel id not archived."""

    name = "slack"

    def __init__(
        self,
        tokens: Iterable[str] = ("xoxb-fake-token",),
        *,
        channels: Iterable[str] | None = None,
        archived: Iterable[str] = (),
        not_in_channel: Iterable[str] = (),
        webhooks: Mapping[str, str] | None = None,
        rate_limit: bool = False,
        switches: Switches | None = None,
    ) -> None:
        self.tokens: set[str] = set(tokens)
        self.expired: set[str] = set()
        self.channels: set[str] | None = set(channels) if channels is not None else None
        self.archived: set[str] = set(archived)
        self.not_in_channel: set[str] = set(not_in_channel)
        self.webhooks: dict[str, str] = dict(webhooks or {})
        self.expired_webhooks: set[str] = set()
        self.rate_limit = rate_limit
        self.posted: dict[str, list[str]] = defaultdict(list)
        self._last_post: dict[str, float] = {}
        self._seq = 0
        super().__init__(switches)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/chat.postMessage", self._post_message)
        app.router.add_post("/services/{team}/{bot}/{secret}", self._webhook)
        app.router.add_post("/_fake/slack", self._configure)

    # ---- state ------------------------------------------------------------------------
    def issue_token(self, token: str) -> None:
        """A new valid bot token (what reinstalling the app gives)."""
        self.tokens.add(token)
        self.expired.discard(token)

    def add_webhook(self, path: str, channel: str) -> None:
        """A new incoming webhook, ``T/B/X`` -> channel."""
        self.webhooks[path.strip("/")] = channel
        self.expired_webhooks.discard(path.strip("/"))

    def stats(self) -> dict[str, Any]:
        """Counters, switches and the texts posted per channel."""
        return {**super().stats(), "posted": {k: list(v) for k, v in self.posted.items()}}

    def _expire_if_switched(self) -> None:
        """`expire_tokens`: every token and webhook issued so far stops working, once."""
        if self.switches.expire_tokens:
            self.switches.expire_tokens = False
            self.expired |= self.tokens
            self.tokens.clear()
            self.expired_webhooks |= set(self.webhooks)

    # ---- chat.postMessage -------------------------------------------------------------
    async def _post_message(self, request: web.Request) -> web.Response:
        self._expire_if_switched()
        body = await _read_body(request)
        if body is None:
            return self._error("invalid_form_data")
        injected = self.injected()
        if injected == "throttle":
            return self._error("ratelimited", 429, self.switches.retry_after_s)
        if injected == "fail":
            status = self.switches.fail_status
            return self._error("internal_error" if status >= 500 else "invalid_arguments", status)
        token = _bearer(request) or str(body.get("token") or "")
        if not token:
            return self._error("not_authed")
        if token not in self.tokens:
            return self._error("invalid_auth")
        channel = str(body.get("channel") or "")
        if not channel or (self.channels is not None and channel not in self.channels):
            return self._error("channel_not_found")
        if channel in self.archived:
            return self._error("is_archived")
        if channel in self.not_in_channel:
            return self._error("not_in_channel")
        text = str(body.get("text") or "")
        blocks = body.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except ValueError:
                return self._error("invalid_blocks_format")
        if blocks is not None and not _blocks_ok(blocks):
            return self._error("invalid_blocks")
        if len(text) > MAX_TEXT:
            return self._error("msg_too_long")
        if not text and not blocks:
            return self._error("no_text")
        wait = self._rate_wait(channel)
        if wait > 0:
            return self._error("ratelimited", 429, wait)
        ts = self._post(channel, text)
        message = {"type": "message", "text": text, "ts": ts, "bot_id": "B0FAKE"}
        if blocks:
            message["blocks"] = blocks
        return web.json_response({"ok": True, "channel": channel, "ts": ts, "message": message})

    def _error(
        self, code: str, status: int = 200, retry_after: float | None = None
    ) -> web.Response:
        self.counters["api_errors"] += 1
        headers = {"Retry-After": str(math.ceil(retry_after))} if retry_after is not None else None
        return web.json_response({"ok": False, "error": code}, status=status, headers=headers)

    # ---- incoming webhooks ------------------------------------------------------------
    async def _webhook(self, request: web.Request) -> web.Response:
        self._expire_if_switched()
        path = "/".join(request.match_info[k] for k in ("team", "bot", "secret"))
        injected = self.injected()
        if injected == "throttle":
            return _text("rate_limited", 429, self.switches.retry_after_s)
        if injected == "fail":
            status = self.switches.fail_status
            return _text("rollup_error" if status == 500 else "service_unavailable", status)
        if path in self.expired_webhooks:
            return _text("invalid_token", 403)
        channel = self.webhooks.get(path)
        if channel is None:
            return _text("no_service", 404)
        if channel in self.archived:
            return _text("channel_is_archived", 410)
        try:
            body = await request.json()
        except ValueError:
            return _text("invalid_payload", 400)
        if not isinstance(body, dict):
            return _text("invalid_payload", 400)
        blocks = body.get("blocks")
        if blocks is not None and not _blocks_ok(blocks):
            return _text("invalid_blocks", 400)
        text = str(body.get("text") or "")
        if not text and not blocks:
            return _text("no_text", 400)
        wait = self._rate_wait(channel)
        if wait > 0:
            return _text("rate_limited", 429, wait)
        self._post(channel, text)
        self.counters["webhook_posts"] += 1
        return _text("ok", 200)

    # ---- shared -----------------------------------------------------------------------
    def _rate_wait(self, channel: str) -> float:
        """Seconds until `channel` may post again (rate_limit on: 1 message/s)."""
        if not self.rate_limit:
            return 0.0
        last = self._last_post.get(channel)
        return 0.0 if last is None else max(0.0, 1.0 - (time.monotonic() - last))

    def _post(self, channel: str, text: str) -> str:
        self._seq += 1
        self._last_post[channel] = time.monotonic()
        self.posted[channel].append(text)
        self.counters["messages_posted"] += 1
        return f"{int(time.time())}.{self._seq:06d}"

    async def _configure(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        for token in body.get("tokens", ()):
            self.issue_token(str(token))
        if "channels" in body:
            self.channels = (self.channels or set()) | {str(c) for c in body["channels"]}
        self.archived |= {str(c) for c in body.get("archived", ())}
        self.not_in_channel |= {str(c) for c in body.get("not_in_channel", ())}
        for path, channel in dict(body.get("webhooks", {})).items():
            self.add_webhook(str(path), str(channel))
        if "rate_limit" in body:
            self.rate_limit = bool(body["rate_limit"])
        return web.json_response({"tokens": len(self.tokens), "webhooks": len(self.webhooks)})


def _blocks_ok(blocks: Any) -> bool:
    """Slack's block limits: a list of objects, at most 50, section text <= 3,000 chars."""
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return False
    for block in blocks:
        if not isinstance(block, dict) or "type" not in block:
            return False
        text = block.get("text")
        if (
            block["type"] == "section"
            and isinstance(text, dict)
            and len(str(text.get("text", ""))) > MAX_SECTION_TEXT
        ):
            return False
    return True


async def _read_body(request: web.Request) -> dict[str, Any] | None:
    """The JSON or form-encoded body as a dict; None when it is neither."""
    raw = await request.text()
    if request.content_type == "application/json":
        try:
            body = json.loads(raw or "{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None
    return {k: v[-1] for k, v in parse_qs(raw).items()}


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _text(code: str, status: int, retry_after: float | None = None) -> web.Response:
    headers = {"Retry-After": str(math.ceil(retry_after))} if retry_after is not None else None
    return web.Response(text=code, status=status, content_type="text/plain", headers=headers)
