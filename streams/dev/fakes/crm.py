"""CrmFake: the CRM and booking-system APIs the CRM sink speaks, on loopback, for tests and
`wedsync fake crm`.

Routes (all POST, JSON):

    /photography/webhook     photography-CRM webhook, ``Authorization: Bearer <key>``;
                             needs event_type and wedding_id (else 422 validation_error);
                             200 {"id": "evt_<n>", "status": "received"}
    /venue/bookings          venue booking system, ``X-Venue-API-Key: <key>``; needs
                             booking_id (else 422); 201 {"id": "bk_<n>"}
    /tave/api/v2/leads       Tave-style, ``X-Api-Key``; a second lead with the same
                             external_id -> 409 {"error": {"code": "duplicate_lead"}, "id"}
    /tave/api/v2/jobs        Tave-style, ``X-Api-Key``; upsert by external_id, 200 {"id"}
    /honeybook/v1/projects   HoneyBook-style, Bearer; a second project with the same
                             external_reference -> 409 {"error": "project_exists", "id"}
    /generic/<name>          light_blue / custom: Bearer, X-API-Key or Basic
                             (`username` + key); 200 {"id": "gen_<n>"}
    /open/<name>             the same without auth (auth_scheme none)
    /gone                    410 Gone;  /moved   302 to /photography/webhook

Every provider route: the kit's switches first (``throttle_next`` -> 429 {"error":
"rate_limited"} + Retry-After; ``fail_next`` -> ``fail_status``), then auth (a key not in
`api_keys`, or any key while ``expire_tokens`` is on -> 401 with the provider's code), then
the Idempotency-Key: a key already answered with a 2xx gets that answer again (counter
``replayed``) and is not a new side effect. Counters: ``requests`` (kit), ``side_effects``
(unique processed deliveries), ``replayed``, ``unauthorized``. `stats()` adds ``received``:
route, idempotency key, auth kind used (never the key), content type and JSON body.

Keys come from the constructor, else ``WEDSYNC_FAKE_CRM_KEYS`` (comma-separated), else
`DEMO_KEY`.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from streams.dev.fakes.kit import FakeProvider, Switches

DEMO_KEY = "crm-demo-key"
Process = Callable[[dict[str, Any]], tuple[int, dict[str, Any], bool]]
Handler = Callable[[web.Request], Awaitable[web.Response]]


class CrmFake(FakeProvider):
    """The CRM APIs with auth, idempotency replay and counters (see the module docstring)."""

    name = "crm"

    def __init__(
        self,
        api_keys: Iterable[str] | None = None,
        username: str = "wedsync",
        switches: Switches | None = None,
    ) -> None:
        env_keys = [k for k in os.environ.get("WEDSYNC_FAKE_CRM_KEYS", "").split(",") if k]
        self.api_keys = set(api_keys if api_keys is not None else env_keys or [DEMO_KEY])
        self.username = username
        self.received: list[dict[str, Any]] = []
        self._answers: dict[str, tuple[int, dict[str, Any]]] = {}
        self._tave_leads: dict[str, str] = {}
        self._tave_jobs: dict[str, str] = {}
        self._projects: dict[str, str] = {}
        self._n = 0
        super().__init__(switches)

    def routes(self, app: web.Application) -> None:
        """The provider routes listed in the module docstring."""
        add = app.router.add_post
        add("/photography/webhook", self._route("photography", "bearer", self._photography))
        add("/venue/bookings", self._route("venue", "x-venue-api-key", self._venue))
        add("/tave/api/v2/leads", self._route("tave.leads", "x-api-key", self._tave_lead))
        add("/tave/api/v2/jobs", self._route("tave.jobs", "x-api-key", self._tave_job))
        add("/honeybook/v1/projects", self._route("honeybook", "bearer", self._honeybook))
        add("/generic/{name}", self._route("generic", "any", self._generic))
        add("/open/{name}", self._route("open", "none", self._generic))
        add("/gone", self._gone)
        add("/moved", self._moved)

    def stats(self) -> dict[str, Any]:
        """Counters, switches and the received requests (no keys)."""
        return {**super().stats(), "received": list(self.received)}

    # ---- the shared request path --------------------------------------------------------
    def _route(self, route: str, auth: str, process: Process) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            injected = self.injected()
            if injected == "throttle":
                return web.json_response(
                    {"error": "rate_limited"},
                    status=429,
                    headers={"Retry-After": f"{self.switches.retry_after_s:g}"},
                )
            if injected == "fail":
                return web.json_response(
                    {"error": "internal_error"}, status=self.switches.fail_status
                )
            used = self._check_auth(request, auth)
            if used is None:
                self.counters["unauthorized"] += 1
                return web.json_response(_unauthorized(route), status=401)
            try:
                body = json.loads(await request.read())
            except ValueError:
                return web.json_response({"error": "validation_error"}, status=400)
            if not isinstance(body, dict):
                return web.json_response({"error": "validation_error"}, status=400)
            key = request.headers.get("Idempotency-Key")
            if key and key in self._answers:
                self.counters["replayed"] += 1
                status, answer = self._answers[key]
                return web.json_response(answer, status=status)
            status, answer, effect = process(body)
            if effect:
                self.counters["side_effects"] += 1
                self.received.append(
                    {
                        "route": route,
                        "query": request.query_string,
                        "idempotency_key": key,
                        "auth": used,
                        "content_type": request.headers.get("Content-Type"),
                        "user_agent": request.headers.get("User-Agent"),
                        "body": body,
                    }
                )
            if key and 200 <= status < 300:
                self._answers[key] = (status, answer)
            return web.json_response(answer, status=status)

        return handler

    def _check_auth(self, request: web.Request, auth: str) -> str | None:
        """The auth kind the request used when it is accepted, else None."""
        if auth == "none":
            return "none"
        if self.switches.expire_tokens:
            return None
        header = request.headers.get("Authorization", "")
        if auth in ("bearer", "any") and header.startswith("Bearer "):
            return "bearer" if header[7:] in self.api_keys else None
        if auth == "any" and header.startswith("Basic "):
            try:
                user, _, key = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            return "basic" if user == self.username and key in self.api_keys else None
        name = "x-api-key" if auth == "any" else auth
        if auth != "bearer" and request.headers.get(name, "") in self.api_keys:
            return name
        return None

    def _next(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n}"

    # ---- the providers ------------------------------------------------------------------
    def _photography(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], bool]:
        missing = [k for k in ("event_type", "wedding_id") if not body.get(k)]
        if missing:
            return 422, {"error": "validation_error", "missing": missing}, False
        return 200, {"id": self._next("evt"), "status": "received"}, True

    def _venue(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], bool]:
        if not body.get("booking_id"):
            return 422, {"error": "validation_error", "missing": ["booking_id"]}, False
        return 201, {"id": self._next("bk")}, True

    def _tave_lead(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], bool]:
        external = str(body.get("external_id") or "")
        if not external:
            return 422, {"error": {"code": "validation_failed"}}, False
        if external in self._tave_leads:
            error = {"code": "duplicate_lead", "message": "a lead with this external_id exists"}
            return 409, {"error": error, "id": self._tave_leads[external]}, False
        self._tave_leads[external] = self._next("lead")
        return 201, {"id": self._tave_leads[external]}, True

    def _tave_job(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], bool]:
        external = str(body.get("external_id") or "")
        if not external:
            return 422, {"error": {"code": "validation_failed"}}, False
        job = self._tave_jobs.setdefault(external, self._next("job"))
        return 200, {"id": job}, True

    def _honeybook(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], bool]:
        external = str(body.get("external_reference") or "")
        if not external:
            return 400, {"error": "invalid_request"}, False
        if external in self._projects:
            return 409, {"error": "project_exists", "id": self._projects[external]}, False
        self._projects[external] = self._next("proj")
        return 201, {"id": self._projects[external]}, True

    def _generic(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], bool]:
        return 200, {"id": self._next("gen")}, True

    async def _gone(self, request: web.Request) -> web.Response:
        self.counters["gone"] += 1
        return web.json_response({"error": "integration removed"}, status=410)

    async def _moved(self, request: web.Request) -> web.Response:
        self.counters["moved"] += 1
        raise web.HTTPFound("/photography/webhook")


def _unauthorized(route: str) -> dict[str, Any]:
    """The provider's 401 body."""
    if route.startswith("tave"):
        return {"error": {"code": "invalid_api_key", "message": "API key not valid"}}
    if route == "honeybook":
        return {"error": "invalid_token"}
    return {"error": "invalid_api_key"}
