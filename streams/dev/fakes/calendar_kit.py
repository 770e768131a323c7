"""What the Google and Graph calendar fakes share: the OAuth token endpoint, the bearer check,
switch-injected refusals, If-Match preconditions and etags.

`CalendarFake` is the base of `GoogleCalendarFake` (`google.py`) and `GraphFake` (`graph.py`).
A provider says only what it documents differently:

    error(status, code, message, **headers)   its error body
    throttled() / failed() / unauthorised()   its answer to ``throttle_next``, ``fail_next``
                                              and a refused bearer token
    ETAG                                      its etag format (``"{}"`` or ``W/"{}"``)

Handlers of provider routes are wrapped with `authorised` (the fake's own and those of its
parts: sync, channels, delta, subscriptions): an injected switch answers first, then a token
that is unknown or expired answers `unauthorised()`; else the handler runs with the owner.
`precondition_failed` is the patch check both providers document (If-Match against the stored
etag, recorded in `if_match_seen`; `conflict_next` makes the next N patches 412 whatever).

`FakeTokens` is the refresh-token grant and the bearer check: any non-empty refresh token is
accepted (its owner is `owner_of(refresh_token)`) unless ``revoke_refresh`` is on;
``expire_tokens`` refuses every token issued so far (one-shot: it resets once applied).
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from streams.dev.fakes.kit import FakeProvider, Switches

Authorised = Callable[[web.Request, str], Awaitable[web.Response]]
Handler = Callable[[web.Request], Awaitable[web.Response]]


def owner_of(refresh_token: str) -> str:
    """The owner (the fake's user) that a refresh token's access tokens act as."""
    return "user-" + hashlib.sha256(refresh_token.encode()).hexdigest()[:12]


class FakeTokens:
    """An OAuth token endpoint (refresh-token grant) and the bearer check of a fake.

    Any non-empty refresh token is accepted (its owner is a fingerprint of it) unless
    ``revoke_refresh`` is on; `client_id`/`client_secret`, when given, must match."""

    def __init__(
        self,
        provider: FakeProvider,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        expires_in: int = 3599,
        rotate_refresh: bool = False,
    ) -> None:
        self.provider = provider
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.rotate_refresh = rotate_refresh
        self.valid: dict[str, str] = {}  # access token -> owner
        self.issued: list[str] = []  # every access token ever issued (tests look for leaks)

    def _expire_if_switched(self) -> None:
        if self.provider.switches.expire_tokens:
            self.valid.clear()
            self.provider.switches.expire_tokens = False
            self.provider.counters["tokens_expired"] += 1

    async def handle(self, request: web.Request) -> web.Response:
        """POST grant_type=refresh_token -> {access_token, expires_in, token_type}."""
        self._expire_if_switched()
        form = await request.post()
        if form.get("grant_type") != "refresh_token":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if (self.client_id is not None and form.get("client_id") != self.client_id) or (
            self.client_secret is not None and form.get("client_secret") != self.client_secret
        ):
            return web.json_response({"error": "invalid_client"}, status=401)
        refresh = form.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            return web.json_response({"error": "invalid_request"}, status=400)
        if self.provider.switches.revoke_refresh:
            self.provider.counters["refresh_refused"] += 1
            return web.json_response(
                {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                },
                status=400,
            )
        token = "ya29." + secrets.token_urlsafe(24)
        self.issued.append(token)
        self.valid[token] = owner_of(refresh)
        self.provider.counters["tokens_issued"] += 1
        body: dict[str, Any] = {
            "access_token": token,
            "expires_in": self.expires_in,
            "token_type": "Bearer",
            "scope": "https://www.googleapis.com/auth/calendar.events",
        }
        if self.rotate_refresh:
            body["refresh_token"] = "rotated-" + secrets.token_urlsafe(8)
        return web.json_response(body)

    @staticmethod
    def owner_of(refresh_token: str) -> str:
        """The owner (mailbox, calendar account) the token endpoint maps a refresh token to:
        what the fakes' vendor-side helpers take as `owner`."""
        return owner_of(refresh_token)

    def owner(self, request: web.Request) -> str | None:
        """The owner of the request's bearer token, or None when it is refused."""
        self._expire_if_switched()
        owner = self.valid.get(bearer(request))
        if owner is None:
            self.provider.counters["auth_refused"] += 1
        return owner


def bearer(request: web.Request) -> str:
    """The request's bearer token ('' when there is none)."""
    return request.headers.get("Authorization", "").removeprefix("Bearer ").strip()


class CalendarFake(FakeProvider):
    """A calendar provider's fake: token endpoint, bearer check, injected refusals (see the
    module docstring). `tokens` is built before the routes, so it is always there."""

    ETAG = '"{}"'

    def __init__(
        self,
        switches: Switches | None = None,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        rotate_refresh: bool = False,
    ) -> None:
        self.conflict_next = 0
        self.if_match_seen: list[str] = []  # If-Match values of patches, in order
        self._versions = itertools.count(1)
        self.tokens = FakeTokens(
            self, client_id=client_id, client_secret=client_secret, rotate_refresh=rotate_refresh
        )
        super().__init__(switches)

    @staticmethod
    def owner_of(refresh_token: str) -> str:
        """The owner the token endpoint maps `refresh_token` to (the vendor helpers' owner)."""
        return owner_of(refresh_token)

    # ---- what a provider documents differently ---------------------------------------------
    @staticmethod
    def error(status: int, code: str, message: str, **headers: str) -> web.Response:
        """The provider's error body."""
        raise NotImplementedError

    def throttled(self) -> web.Response:
        """The answer to an injected throttle (``throttle_next``)."""
        raise NotImplementedError

    def failed(self) -> web.Response:
        """The answer to an injected failure (``fail_next``)."""
        raise NotImplementedError

    def unauthorised(self) -> web.Response:
        """The answer to an unknown or expired access token."""
        raise NotImplementedError

    # ---- shared ----------------------------------------------------------------------------
    def retry_after(self) -> dict[str, str]:
        """The Retry-After header of the `retry_after_s` switch."""
        return {"Retry-After": str(int(self.switches.retry_after_s))}

    def etag(self) -> str:
        """A fresh etag (increasing), in the provider's format."""
        return self.ETAG.format(next(self._versions))

    async def token(self, request: web.Request) -> web.Response:
        """The token endpoint's route."""
        return await self.tokens.handle(request)

    def refusal(self, request: web.Request) -> str | web.Response:
        """The owner of an authorised, non-injected request, else the answer refusing it."""
        injected = self.injected()
        if injected == "throttle":
            return self.throttled()
        if injected == "fail":
            return self.failed()
        owner = self.tokens.owner(request)
        return self.unauthorised() if owner is None else owner

    def authorised(self, handler: Authorised) -> Handler:
        """`handler(request, owner)` as a route, after the switches and the bearer check."""

        async def route(request: web.Request) -> web.Response:
            owner = self.refusal(request)
            if isinstance(owner, web.Response):
                return owner
            return await handler(request, owner)

        return route

    def precondition_failed(self, request: web.Request, etag: str) -> bool:
        """True when a patch must answer 412: an If-Match other than `etag`, or a
        `conflict_next` still to spend (one is spent per 412)."""
        if_match = request.headers.get("If-Match")
        if if_match is not None:
            self.if_match_seen.append(if_match)
        if self.conflict_next > 0 or (if_match is not None and if_match != etag):
            self.conflict_next = max(0, self.conflict_next - 1)
            return True
        return False
