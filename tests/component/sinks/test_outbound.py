"""The outbound policy enforced by the clients every connector uses (connectors.sinks.outbound),
against a real loopback server: what is refused never connects."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterator

import httpx
import pytest
from aiohttp import web
from connectors.sinks.outbound import (
    OutboundPolicy,
    OutboundRefused,
    aiohttp_session,
    audit_scope,
    check_address,
    check_url,
    http_client,
)
from streams.dev.fakes.kit import FakeProvider, FakeServer


class Target(FakeProvider):
    name = "target"

    def routes(self, app: web.Application) -> None:
        async def ok(request: web.Request) -> web.Response:
            self.counters["ok"] += 1
            return web.Response(text="ok")

        async def moved(request: web.Request) -> web.Response:
            return web.Response(status=302, headers={"Location": "/ok"})

        async def hang(request: web.Request) -> web.Response:
            await asyncio.sleep(1.5)
            return web.Response(text="late")

        app.router.add_route("*", "/ok", ok)
        app.router.add_route("*", "/hooks/{secret}", ok)
        app.router.add_get("/moved", moved)
        app.router.add_get("/hang", hang)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(Target()) as running:
        yield running


@pytest.mark.parametrize(
    "address",
    ["10.1.2.3", "172.16.0.1", "192.168.1.1", "127.0.0.1", "169.254.169.254", "224.0.0.1",
     "0.0.0.0", "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "100.64.0.1", "240.0.0.1"],
)  # fmt: skip
def test_non_public_addresses_are_refused(address: str) -> None:
    with pytest.raises(OutboundRefused, match="not public"):
        check_address(address, OutboundPolicy())


def test_a_public_address_is_allowed() -> None:
    assert str(check_address("93.184.216.34", OutboundPolicy())) == "93.184.216.34"


def test_an_allow_listed_network_is_allowed() -> None:
    policy = OutboundPolicy(allow_networks=(ipaddress.ip_network("10.0.0.0/8"),))
    assert str(check_address("10.1.2.3", policy)) == "10.1.2.3"


def test_plain_http_is_refused_unless_the_host_is_allow_listed() -> None:
    with pytest.raises(OutboundRefused, match="only https"):
        check_url("http://partner.example/hook", OutboundPolicy())
    check_url("http://127.0.0.1/hook", OutboundPolicy.loopback_for_tests())


def test_credentials_in_the_url_are_refused() -> None:
    with pytest.raises(OutboundRefused, match="credentials"):
        check_url("https://user:pw@partner.example/hook", OutboundPolicy())


async def test_a_name_resolving_to_loopback_never_connects(server: FakeServer) -> None:
    policy = OutboundPolicy(allow_http_hosts=frozenset({"localhost"}))
    async with http_client(policy) as client:
        with pytest.raises(OutboundRefused):
            await client.get(f"http://localhost:{server.port}/ok")
    assert server.provider.counters["requests"] == 0


async def test_loopback_is_reachable_once_allow_listed(server: FakeServer) -> None:
    async with http_client(OutboundPolicy.loopback_for_tests()) as client:
        response = await client.get(f"{server.url}/ok")
    assert response.text == "ok"


async def test_redirects_are_answers_never_followed(server: FakeServer) -> None:
    async with http_client(OutboundPolicy.loopback_for_tests()) as client:
        response = await client.get(f"{server.url}/moved")
    assert response.status_code == 302
    assert server.provider.counters["ok"] == 0


async def test_a_silent_server_times_out_at_the_read_timeout(server: FakeServer) -> None:
    policy = OutboundPolicy.loopback_for_tests(read_timeout_s=0.3)
    async with http_client(policy) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"{server.url}/hang")


async def test_each_call_writes_one_audit_line_without_path_or_query(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with http_client(OutboundPolicy.loopback_for_tests()) as client:
        with audit_scope("webhook", "webhook:ep-1"):
            await client.post(f"{server.url}/hooks/s3cr3t-path?token=t0ken")
    audit = [r.getMessage() for r in caplog.records if r.name == "wedsync.audit"]
    assert len(audit) == 1
    assert "destination=webhook target=webhook:ep-1" in audit[0]
    assert "status=200" in audit[0] and "host=127.0.0.1" in audit[0]
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert "s3cr3t-path" not in everything and "t0ken" not in everything


async def test_the_aiohttp_session_refuses_a_name_resolving_to_loopback(
    server: FakeServer,
) -> None:
    policy = OutboundPolicy(allow_http_hosts=frozenset({"localhost"}))
    async with aiohttp_session(policy) as session:
        with pytest.raises(OutboundRefused):
            await session.get(f"http://localhost:{server.port}/ok")
    assert server.provider.counters["requests"] == 0


async def test_the_aiohttp_session_refuses_a_literal_private_address(server: FakeServer) -> None:
    policy = OutboundPolicy(allow_http_hosts=frozenset({"127.0.0.1"}))
    async with aiohttp_session(policy) as session:
        with pytest.raises(OutboundRefused):
            await session.get(f"{server.url}/ok")
    assert server.provider.counters["requests"] == 0
