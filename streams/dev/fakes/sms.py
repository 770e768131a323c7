"""TwilioFake: a local Twilio Messages API (`wedsync fake twilio`) for the SMS sink's
component tests and users' own setups.

Routes:
    POST /2010-04-01/Accounts/{AccountSid}/Messages.json   form To, From or
        MessagingServiceSid, Body (StatusCallback accepted); HTTP Basic AccountSid:AuthToken.
        201 with the message resource (``sid`` SM..., ``status`` queued); errors as Twilio
        writes them: ``{"code", "message", "more_info", "status"}``:
        401 20003 bad or expired credentials, 400 21211 To not E.164, 21602 no Body,
        21603 no sender, 21617 Body over 1,600 characters, 21610 To opted out (STOP),
        21614 To is a landline / not mobile, 429 20429 throttled
    GET  /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json   a stored message
    POST /_fake/twilio   JSON {auth_token, opted_out: [...], landlines: [...]}
    plus the kit's /_fake/control and /_fake/stats.

Switches (fakekit): latency, fail_next (``fail_status`` with code 20500), throttle_next
(429 code 20429 with Retry-After), expire_tokens (the current auth token stops working,
once; `issue_token` or /_fake/twilio sets a new one: a rotation).

Counters: ``messages_sent``, ``errors``; `stats()["messages"]` lists the stored messages.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import secrets
from collections.abc import Iterable
from email.utils import formatdate
from typing import Any

from aiohttp import web

from streams.dev.fakes.kit import FakeProvider, Switches

E164 = re.compile(r"^\+[1-9]\d{1,14}$")

_ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    21211: (400, "The 'To' number is not a valid phone number."),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number is not a valid mobile number"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
}


class TwilioFake(FakeProvider):
    """A fake Twilio account holding the messages it accepted."""

    name = "twilio"

    def __init__(
        self,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "fake-auth-token",
        *,
        opted_out: Iterable[str] = (),
        landlines: Iterable[str] = (),
        switches: Switches | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token: str | None = auth_token
        self.opted_out: set[str] = set(opted_out)
        self.landlines: set[str] = set(landlines)
        self.messages: dict[str, dict[str, Any]] = {}
        super().__init__(switches)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", self._create)
        app.router.add_get("/2010-04-01/Accounts/{account}/Messages/{sid}.json", self._fetch)
        app.router.add_post("/_fake/twilio", self._configure)

    def issue_token(self, auth_token: str) -> None:
        """Rotate the account's auth token (what the console's 'rotate' does)."""
        self.auth_token = auth_token

    def stats(self) -> dict[str, Any]:
        """Counters, switches and the stored messages, oldest first."""
        return {**super().stats(), "messages": list(self.messages.values())}

    # ---- routes -------------------------------------------------------------------------
    async def _create(self, request: web.Request) -> web.Response:
        if self.switches.expire_tokens:
            self.switches.expire_tokens = False
            self.auth_token = None  # refused until a new token is issued
        injected = self.injected()
        if injected == "throttle":
            return self._error(20429, retry_after=self.switches.retry_after_s)
        if injected == "fail":
            return self._error(20500, status=self.switches.fail_status)
        if not self._authorized(request):
            return self._error(20003)
        form = await request.post()
        to = str(form.get("To") or "")
        body = str(form.get("Body") or "")
        sender = str(form.get("From") or "")
        service = str(form.get("MessagingServiceSid") or "")
        if not E164.match(to):
            return self._error(21211)
        if not sender and not service:
            return self._error(21603)
        if not body:
            return self._error(21602)
        if len(body) > 1600:
            return self._error(21617)
        if to in self.opted_out:
            return self._error(21610)
        if to in self.landlines:
            return self._error(21614)
        sid = "SM" + secrets.token_hex(16)
        message = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": to,
            "from": sender or None,
            "messaging_service_sid": service or None,
            "body": body,
            "status": "accepted" if service else "queued",
            "num_segments": str(max(1, math.ceil(len(body) / 160))),
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": formatdate(usegmt=True),
            "error_code": None,
            "error_message": None,
            "price": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        self.messages[sid] = message
        self.counters["messages_sent"] += 1
        return web.json_response(message, status=201)

    async def _fetch(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(20003)
        message = self.messages.get(request.match_info["sid"])
        if message is None:
            return self._error(20404)
        return web.json_response(message)

    async def _configure(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        if "auth_token" in body:
            self.issue_token(str(body["auth_token"]))
        self.opted_out |= {str(n) for n in body.get("opted_out", ())}
        self.landlines |= {str(n) for n in body.get("landlines", ())}
        return web.json_response(
            {"opted_out": len(self.opted_out), "landlines": len(self.landlines)}
        )

    # ---- helpers ------------------------------------------------------------------------
    def _authorized(self, request: web.Request) -> bool:
        """Basic AccountSid:AuthToken, for the account in the path."""
        if request.match_info["account"] != self.account_sid or self.auth_token is None:
            return False
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return secrets.compare_digest(user, self.account_sid) and secrets.compare_digest(
            password, self.auth_token
        )

    def _error(
        self, code: int, *, status: int | None = None, retry_after: float | None = None
    ) -> web.Response:
        self.counters["errors"] += 1
        default_status, message = _ERRORS[code]
        status = status or default_status
        headers = {"Retry-After": str(math.ceil(retry_after))} if retry_after is not None else None
        body = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        return web.json_response(body, status=status, headers=headers)
