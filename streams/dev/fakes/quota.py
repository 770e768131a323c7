"""A per-user request quota for the Google and Graph fakes, off unless a test installs it.

    quota = UserQuota(limit=10, window_s=1.0, clock=clock.now_s)
    quota.install(fake)          # before the fake's server starts

Every API request (Google ``/calendar/v3/...``, Graph ``/v1.0/...``; not the token endpoint)
is counted per user (the owner of its bearer token; an unknown token is left to the fake's
401) in a sliding window of `window_s` seconds, as Google counts its per-minute quotas. The
request past `limit` in a window is refused as the provider documents:

    google   403 ``userRateLimitExceeded`` (domain ``usageLimits``), no Retry-After
    graph    429 ``ApplicationThrottled`` with Retry-After (the seconds until the window frees)

`refused` counts the refusals, `admitted` the requests let through; `clock` (seconds) is
injected so a test can share its clock with the client's limiter.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

from streams.dev.fakes.graph import graph_error
from streams.dev.fakes.kit import FakeProvider

API_PREFIX = {"google": "/calendar/v3/", "graph": "/v1.0/"}


class UserQuota:
    def __init__(
        self, limit: int, window_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.refused = 0
        self.admitted = 0
        self._seen: defaultdict[str, deque[float]] = defaultdict(deque)
        self._provider = ""

    def install(self, fake: FakeProvider) -> UserQuota:
        """Count `fake`'s API requests (outermost: before its own checks and latency)."""
        self._provider = fake.name
        tokens = getattr(fake, "tokens", None)
        assert tokens is not None, "the fake has no token endpoint"

        @web.middleware
        async def quota(request: web.Request, handler: Any) -> web.StreamResponse:
            if not request.path.startswith(API_PREFIX[self._provider]):
                response: web.StreamResponse = await handler(request)
                return response
            bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            owner = tokens.valid.get(bearer)
            wait = None if owner is None else self.take(owner)
            if wait is not None:
                return self.refusal(wait)
            response = await handler(request)
            return response

        fake.app.middlewares.insert(0, quota)
        return self

    def take(self, owner: str) -> float | None:
        """None when `owner` may make this request (counted); else seconds until it may."""
        now = self.clock()
        seen = self._seen[owner]
        while seen and seen[0] <= now - self.window_s:
            seen.popleft()
        if len(seen) >= self.limit:
            self.refused += 1
            return seen[0] + self.window_s - now
        seen.append(now)
        self.admitted += 1
        return None

    def refusal(self, wait: float) -> web.Response:
        if self._provider == "google":
            message = "User Rate Limit Exceeded"
            error = {"domain": "usageLimits", "reason": "userRateLimitExceeded", "message": message}
            body = {"error": {"code": 403, "message": message, "errors": [error]}}
            return web.json_response(body, status=403)
        return graph_error(
            429,
            "ApplicationThrottled",
            "Application is over its request limit.",
            **{"Retry-After": str(max(1, math.ceil(wait)))},
        )
