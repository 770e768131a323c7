"""What every local fake provider server shares (`wedsync fake <provider>`).

A fake is a small real HTTP server (aiohttp) that answers like the provider's documented API,
so the real connector code is tested over loopback, and so users can point their own setup at
it. Every fake has the same switches, set at start (CLI flags) or at run time with
``POST /_fake/control`` (JSON body with any of the fields of `Switches`), and counters at
``GET /_fake/stats``:

    latency_ms      answer every request this much later (slow provider)
    fail_next       the next N provider requests fail with `fail_status` (5xx by default)
    fail_status     status of an injected failure
    throttle_next   the next N provider requests answer 429 with Retry-After `retry_after_s`
    retry_after_s   the Retry-After of an injected throttle
    expire_tokens   every access token issued so far is refused (401) until the client
                    refreshes it; `revoke_refresh` also refuses the refresh (re-consent needed)

Subclasses add the provider routes in `routes()` and call `self.injected()` at the start of
each provider request to learn whether to answer with an injected failure.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections import Counter
from dataclasses import asdict, dataclass, fields
from typing import Any

from aiohttp import web


@dataclass
class Switches:
    latency_ms: float = 0.0
    fail_next: int = 0
    fail_status: int = 503
    throttle_next: int = 0
    retry_after_s: float = 1.0
    expire_tokens: bool = False
    revoke_refresh: bool = False


class FakeProvider:
    """Base of the fake servers. `counters` counts what the provider did: side effects
    (messages posted, events created) under names the tests assert on."""

    name = "fake"
    base_url = ""  # set by `FakeServer` once it serves the fake

    def __init__(self, switches: Switches | None = None) -> None:
        self.switches = switches or Switches()
        self.counters: Counter[str] = Counter()
        self.app = web.Application(middlewares=[self._slow])
        self.app.router.add_post("/_fake/control", self._control)
        self.app.router.add_get("/_fake/stats", self._stats)
        self.routes(self.app)

    def routes(self, app: web.Application) -> None:
        """Add the provider's routes."""

    def injected(self) -> str | None:
        """'throttle' or 'fail' when this request must fail by a switch, else None."""
        if self.switches.throttle_next > 0:
            self.switches.throttle_next -= 1
            self.counters["injected_throttle"] += 1
            return "throttle"
        if self.switches.fail_next > 0:
            self.switches.fail_next -= 1
            self.counters["injected_failure"] += 1
            return "fail"
        return None

    def stats(self) -> dict[str, Any]:
        """Counters plus whatever a subclass adds (stored items)."""
        return {"counters": dict(self.counters), "switches": asdict(self.switches)}

    @web.middleware
    async def _slow(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/_fake/"):
            self.counters["requests"] += 1
            if self.switches.latency_ms > 0:
                await asyncio.sleep(self.switches.latency_ms / 1000)
        response: web.StreamResponse = await handler(request)
        return response

    async def _control(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        known = {f.name: f.type for f in fields(Switches)}
        if not isinstance(body, dict) or not set(body) <= set(known):
            return web.json_response(
                {"error": f"unknown switch; known: {sorted(known)}"}, status=400
            )
        for key, value in body.items():
            current = getattr(self.switches, key)
            try:
                setattr(self.switches, key, type(current)(value))
            except (TypeError, ValueError):
                return web.json_response({"error": f"{key}: bad value {value!r}"}, status=400)
        return web.json_response(asdict(self.switches))

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())


class FakeServer:
    """Runs a fake on a loopback port in a background thread (tests; `wedsync fake` runs it
    in the foreground with `serve`), over https when given an `ssl_context`. `url` is its
    base URL once started (also the provider's `base_url`)."""

    def __init__(
        self, provider: FakeProvider, host: str = "127.0.0.1", port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:  # fmt: skip
        self.provider = provider
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def start(self) -> FakeServer:
        ready = threading.Event()
        errors: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._start())
            except BaseException as exc:  # reported to the starting thread
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._cleanup())
            loop.close()

        self._thread = threading.Thread(target=main, name=f"fake-{self.provider.name}", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors:
            raise errors[0]
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.provider.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]
        scheme = "https" if self.ssl_context is not None else "http"
        self.url = f"{scheme}://{self.host}:{self.port}"
        self.provider.base_url = self.url

    async def _cleanup(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def serve(provider: FakeProvider, host: str, port: int) -> None:
    """Serve `provider` until cancelled (the `wedsync fake` command)."""
    runner = web.AppRunner(provider.app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
