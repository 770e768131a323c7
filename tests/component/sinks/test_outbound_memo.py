"""OutboundSession remembers the URLs its policy passed, so a sink does not parse the same
URL per call: only passes are remembered, and the memo is bounded."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiohttp import web
from connectors.sinks import outbound
from connectors.sinks.outbound import OutboundPolicy, OutboundRefused, aiohttp_session, check_url
from streams.dev.fakes.kit import FakeProvider, FakeServer


class _Ok(FakeProvider):
    name = "ok"

    def routes(self, app: web.Application) -> None:
        async def ok(request: web.Request) -> web.Response:
            self.counters["ok"] += 1
            return web.Response(text="ok")

        app.router.add_get("/ok", ok)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(_Ok()) as running:
        yield running


async def test_a_refused_url_is_refused_on_every_call(server: FakeServer) -> None:
    session = aiohttp_session(OutboundPolicy())  # public https only
    try:
        for _ in range(2):
            with pytest.raises(OutboundRefused):
                await session.get(f"http://127.0.0.1:{server.port}/ok")
    finally:
        await session.close()
    assert server.provider.counters["ok"] == 0


async def test_a_passed_url_is_checked_once_per_session(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[object] = []

    def counting(url: object, policy: OutboundPolicy) -> None:
        checks.append(url)
        check_url(url, policy)

    monkeypatch.setattr(outbound, "check_url", counting)
    session = aiohttp_session(OutboundPolicy.loopback_for_tests(server.port))
    url = f"http://127.0.0.1:{server.port}/ok"
    try:
        for _ in range(3):
            response = await session.get(url)
            assert response.status == 200
    finally:
        await session.close()
    assert server.provider.counters["ok"] == 3
    assert checks == [url]


async def test_the_memo_of_passed_urls_is_bounded(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbound, "_MEMO", 2)
    session = aiohttp_session(OutboundPolicy.loopback_for_tests(server.port))
    try:
        for n in range(5):
            await session.get(f"http://127.0.0.1:{server.port}/ok?n={n}")
            assert len(session._passed) <= 2
    finally:
        await session.close()
    assert server.provider.counters["ok"] == 5
