"""The outbound policy enforced by the clients every connector uses (connectors.sinks.outbound),
against real loopback servers: what is refused never connects, no answer is read past the
cap or the deadline, and every call, refused ones included, leaves one audit line."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
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
from connectors.sinks.outbound_rules import ALLOW_HTTP_HOSTS, ALLOW_NETWORKS
from streams.dev.fakes.kit import FakeProvider, FakeServer

HUGE = 64 * 1024 * 1024
CHUNK = b"x" * (64 * 1024)


def _gzip_bomb(size: int) -> bytes:
    """`size` zero bytes, gzipped (about size/1000 on the wire), made without holding them."""
    gz = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    return b"".join(gz.compress(zeros) for _ in range(size // len(zeros))) + gz.flush()


BOMB = _gzip_bomb(HUGE)


class Target(FakeProvider):
    name = "target"

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self.finished = threading.Event()
        self.location = "/ok"

    def routes(self, app: web.Application) -> None:
        async def ok(request: web.Request) -> web.Response:
            self.counters["ok"] += 1
            return web.Response(text="ok")

        async def moved(request: web.Request) -> web.Response:
            status = int(request.query.get("status", "302"))
            return web.Response(status=status, headers={"Location": self.location})

        async def hang(request: web.Request) -> web.Response:
            await asyncio.sleep(1.5)
            return web.Response(text="late")

        async def huge(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Length": str(HUGE)})
            await response.prepare(request)
            try:
                while self.sent < HUGE:
                    await response.write(CHUNK)
                    self.sent += len(CHUNK)
            except (ConnectionError, RuntimeError):
                pass
            finally:
                self.finished.set()
            return response

        async def bomb(request: web.Request) -> web.Response:
            return web.Response(body=BOMB, headers={"Content-Encoding": "gzip"})

        async def drip(request: web.Request) -> web.StreamResponse:
            # a complete, valid 200 whose body arrives one byte every 50 ms (2 s in all)
            body = b'{"ok": true, "padding": "' + b"p" * 14 + b'"}'
            response = web.StreamResponse(headers={"Content-Length": str(len(body))})
            await response.prepare(request)
            try:
                for byte in body:
                    await asyncio.sleep(0.05)
                    await response.write(bytes([byte]))
            except (ConnectionError, RuntimeError):
                pass
            return response

        async def late_body(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Length": "2"})
            await response.prepare(request)
            await asyncio.sleep(0.3)
            await response.write(b"ok")
            return response

        app.router.add_route("*", "/ok", ok)
        app.router.add_route("*", "/hooks/{secret}", ok)
        app.router.add_route("*", "/moved", moved)
        app.router.add_get("/hang", hang)
        app.router.add_get("/huge", huge)
        app.router.add_get("/bomb", bomb)
        app.router.add_get("/drip", drip)

        async def brotli(request: web.Request) -> web.Response:
            self.counters["accept_encoding:" + request.headers.get("Accept-Encoding", "")] += 1
            return web.Response(status=503, body=b"\x8b" * 4096, headers={"Content-Encoding": "br"})

        async def set_cookie(request: web.Request) -> web.Response:
            self.counters["cookie:" + request.headers.get("Cookie", "")] += 1
            response = web.Response(text="ok")
            response.set_cookie("session", "tenant-a", path="/")
            return response

        app.router.add_get("/late-body", late_body)
        app.router.add_get("/br", brotli)
        app.router.add_get("/cookie", set_cookie)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(Target()) as running:
        yield running


@pytest.fixture
def other() -> Iterator[FakeServer]:
    """A second loopback server, standing for an internal one (metrics, a database)."""
    with FakeServer(Target()) as running:
        yield running


def loopback(server: FakeServer, **overrides: Any) -> OutboundPolicy:
    return OutboundPolicy.loopback_for_tests(server.port, **overrides)


async def _peak(call: Callable[[], Awaitable[Any]]) -> tuple[Any, int]:
    """(what `call` returned, the peak bytes Python allocated while it ran)."""
    tracemalloc.start()
    try:
        result = await call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---- the pure checks, through the policy -------------------------------------------------
def test_a_public_address_is_allowed() -> None:
    assert str(check_address("93.184.216.34", OutboundPolicy())) == "93.184.216.34"


def test_an_allow_listed_network_is_allowed_on_its_port_only() -> None:
    policy = OutboundPolicy.parse(allow_networks="10.0.0.0/8:8443")
    assert str(check_address("10.1.2.3", policy, 8443)) == "10.1.2.3"
    with pytest.raises(OutboundRefused, match=ALLOW_NETWORKS):
        check_address("10.1.2.3", policy, 9400)


def test_plain_http_is_refused_unless_the_host_and_port_are_allow_listed() -> None:
    with pytest.raises(OutboundRefused, match=f"only https.*{ALLOW_HTTP_HOSTS}"):
        check_url("http://partner.example/hook", OutboundPolicy())
    check_url("http://127.0.0.1:8080/hook", OutboundPolicy.loopback_for_tests(8080))
    with pytest.raises(OutboundRefused, match=ALLOW_HTTP_HOSTS):
        check_url("http://127.0.0.1:9400/metrics", OutboundPolicy.loopback_for_tests(8080))


@pytest.mark.parametrize("url", ["ftp://partner.example/x", "file:///etc/passwd",
                                 "gopher://127.0.0.1:70/", "ws://partner.example/"])  # fmt: skip
def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(OutboundRefused):
        check_url(url, OutboundPolicy.loopback_for_tests(70))


def test_credentials_in_the_url_are_refused() -> None:
    with pytest.raises(OutboundRefused, match="credentials"):
        check_url("https://user:pw@partner.example/hook", OutboundPolicy())


# ---- connect-time enforcement --------------------------------------------------------------
async def test_a_name_resolving_to_loopback_never_connects(server: FakeServer) -> None:
    policy = OutboundPolicy.parse(allow_http_hosts=f"localhost:{server.port}")
    async with http_client(policy) as client:
        with pytest.raises(OutboundRefused):
            await client.get(f"http://localhost:{server.port}/ok")
    assert server.provider.counters["requests"] == 0


async def test_loopback_is_reachable_once_allow_listed(server: FakeServer) -> None:
    async with http_client(loopback(server)) as client:
        response = await client.get(f"{server.url}/ok")
    assert response.text == "ok"


@pytest.mark.parametrize("make", ["httpx", "aiohttp"])
async def test_a_cookie_one_answer_sets_is_never_sent_with_a_later_call(
    server: FakeServer, make: str
) -> None:
    """One client serves every tenant of a sink: a session cookie an endpoint set for one
    integration must not ride along on the next integration's call to the same host (by
    name: aiohttp's jar keeps no cookie of a bare IP address)."""
    policy, url = loopback(server), f"http://localhost:{server.port}/cookie"
    if make == "httpx":
        async with http_client(policy) as client:
            for _ in range(2):
                (await client.get(url)).raise_for_status()
    else:
        async with aiohttp_session(policy) as session:
            for _ in range(2):
                async with session.get(url) as response:
                    response.raise_for_status()
    assert server.provider.counters["cookie:"] == 2


@pytest.mark.parametrize("make", ["httpx", "aiohttp"])
async def test_an_allow_list_for_one_receiver_reaches_no_other_port(
    server: FakeServer, other: FakeServer, make: str
) -> None:
    policy = loopback(server)
    with pytest.raises(OutboundRefused, match=str(other.port)):
        if make == "httpx":
            async with http_client(policy) as client:
                await client.get(f"{other.url}/ok")
        else:
            async with aiohttp_session(policy) as session:
                await session.get(f"{other.url}/ok")
    assert other.provider.counters["requests"] == 0


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0177.0.0.1", "0x7f.1", "0x7f000001",
                                  "127.0.0.1.", "127.000.000.001"])  # fmt: skip
@pytest.mark.parametrize("make", ["httpx", "aiohttp"])
async def test_numeric_hosts_not_written_canonically_never_connect(
    server: FakeServer, host: str, make: str
) -> None:
    policy = loopback(server)
    url = f"http://{host}:{server.port}/ok"
    with pytest.raises(OutboundRefused, match="canonically"):
        if make == "httpx":
            async with http_client(policy) as client:
                await client.get(url)
        else:
            async with aiohttp_session(policy) as session:
                await session.get(url)
    assert server.provider.counters["requests"] == 0


@pytest.mark.parametrize(
    "host", ["[2002:7f00:1::1]", "[2002:a9fe:a9fe::1]", "[2002:a00:1::1]", "[2002:c0a8:101::1]",
             "[fec0::1]", "[::ffff:127.0.0.1]", "[64:ff9b::7f00:1]", "169.254.169.254",
             "[2001:0:4136:e378:8000:63bf:80ff:fffe]", "10.0.0.1", "[::1]"]
)  # fmt: skip
async def test_a_literal_non_public_address_is_refused_at_the_socket(host: str) -> None:
    async with aiohttp_session(OutboundPolicy()) as session:
        with pytest.raises(OutboundRefused, match="not public"):
            await session.get(f"https://{host}/")


async def test_the_aiohttp_session_refuses_a_literal_private_address(server: FakeServer) -> None:
    policy = OutboundPolicy.parse(allow_http_hosts=f"127.0.0.1:{server.port}")
    async with aiohttp_session(policy) as session:
        with pytest.raises(OutboundRefused):
            await session.get(f"{server.url}/ok")
    assert server.provider.counters["requests"] == 0


# ---- redirects ---------------------------------------------------------------------------
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_are_answers_never_followed(
    server: FakeServer, other: FakeServer, status: int
) -> None:
    server.provider.location = f"{other.url}/ok"
    policy = OutboundPolicy.loopback_for_tests(server.port, other.port)
    async with http_client(policy) as client:
        response = await client.post(f"{server.url}/moved?status={status}")
    assert response.status_code == status
    url = f"{server.url}/moved?status={status}"
    async with aiohttp_session(policy) as session, session.request("POST", url) as answer:
        assert answer.status == status  # slack-sdk passes no allow_redirects
    assert other.provider.counters["requests"] == 0


# ---- answer size -------------------------------------------------------------------------
@pytest.mark.parametrize("make", ["httpx", "aiohttp"])
async def test_a_huge_answer_is_read_up_to_the_cap_only(server: FakeServer, make: str) -> None:
    policy = loopback(server, max_answer_bytes=64 * 1024)

    async def call() -> bytes:
        if make == "httpx":
            async with http_client(policy) as client:
                return (await client.get(f"{server.url}/huge")).content
        async with aiohttp_session(policy) as session, session.get(f"{server.url}/huge") as r:
            return await r.read()

    body, peak = await _peak(call)
    assert len(body) == 64 * 1024
    assert peak < 8 * 1024 * 1024, f"{peak} bytes allocated for a capped answer"
    assert server.provider.finished.wait(10)
    assert server.provider.sent < HUGE // 4  # the sender stopped: nobody read the rest


@pytest.mark.parametrize("make", ["httpx", "aiohttp"])
async def test_a_gzip_bomb_is_decoded_up_to_the_cap_only(server: FakeServer, make: str) -> None:
    policy = loopback(server, max_answer_bytes=64 * 1024)

    async def call() -> bytes:
        if make == "httpx":
            async with http_client(policy) as client:
                return (await client.get(f"{server.url}/bomb")).content
        async with aiohttp_session(policy) as session, session.get(f"{server.url}/bomb") as r:
            return await r.read()

    body, peak = await _peak(call)
    assert body == bytes(64 * 1024)
    assert peak < 8 * 1024 * 1024, f"{peak} bytes allocated for a {len(BOMB)}-byte bomb"


@pytest.mark.parametrize("make", ["httpx", "aiohttp"])
async def test_an_encoding_not_decoded_here_is_not_read_and_is_classified_on_status(
    server: FakeServer, make: str
) -> None:
    if make == "httpx":
        async with http_client(loopback(server)) as client:
            response = await client.get(f"{server.url}/br", headers={"Accept-Encoding": "br"})
            status, body = response.status_code, response.content
    else:
        async with (
            aiohttp_session(loopback(server)) as session,
            session.get(f"{server.url}/br", headers={"Accept-Encoding": "br"}) as answer,
        ):
            status, body = answer.status, await answer.read()
    assert (status, body) == (503, b"")
    assert server.provider.counters["accept_encoding:gzip, deflate"] == 1  # what we asked


async def test_a_proxy_is_refused(server: FakeServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with aiohttp_session(loopback(server)) as session:
        with pytest.raises(OutboundRefused, match="proxy"):
            await session.get(f"{server.url}/ok", proxy=f"{server.url}/")
    assert server.provider.counters["requests"] == 0
    assert ["status=refused" in line for line in _audit(caplog)] == [True]


# ---- deadline ----------------------------------------------------------------------------
async def test_a_silent_server_times_out_at_the_deadline(server: FakeServer) -> None:
    async with http_client(loopback(server, read_timeout_s=0.3)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"{server.url}/hang")


@pytest.mark.parametrize("make", ["httpx", "aiohttp"])
async def test_a_dripped_answer_is_cut_at_one_deadline_for_the_whole_answer(
    server: FakeServer, make: str
) -> None:
    policy = loopback(server, read_timeout_s=0.5)
    started = time.monotonic()
    if make == "httpx":
        async with http_client(policy) as client:
            with pytest.raises(httpx.TimeoutException):
                await client.get(f"{server.url}/drip")
    else:
        async with aiohttp_session(policy) as session:
            with pytest.raises(TimeoutError):
                # a caller's longer per-read timeout does not extend the policy's deadline
                await session.get(f"{server.url}/drip", timeout=aiohttp.ClientTimeout(sock_read=5))
    assert time.monotonic() - started < 1.5


# ---- audit -------------------------------------------------------------------------------
def _audit(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "wedsync.audit"]


async def test_each_call_writes_one_audit_line_without_path_or_query(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with http_client(loopback(server)) as client:
        with audit_scope("webhook", "webhook:ep-1"):
            await client.post(f"{server.url}/hooks/s3cr3t-path?token=t0ken")
    audit = _audit(caplog)
    assert len(audit) == 1
    assert "destination=webhook target=webhook:ep-1" in audit[0]
    assert "status=200" in audit[0] and "host=127.0.0.1" in audit[0]
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert "s3cr3t-path" not in everything and "t0ken" not in everything


@pytest.mark.parametrize("url", ["ftp://partner.example/s3cr3t", "http://partner.example/s3cr3t",
                                 "https://127.1/s3cr3t", "https://[::1]/s3cr3t"])  # fmt: skip
@pytest.mark.parametrize("make", ["httpx", "aiohttp"])
async def test_a_refused_call_writes_an_audit_line(
    url: str, make: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with audit_scope("crm", "crm:i-1"), pytest.raises(OutboundRefused):
        if make == "httpx":
            async with http_client(OutboundPolicy()) as client:
                await client.post(url)
        else:
            async with aiohttp_session(OutboundPolicy()) as session:
                await session.post(url)
    audit = _audit(caplog)
    assert len(audit) == 1 and "status=refused" in audit[0] and "target=crm:i-1" in audit[0]
    assert "s3cr3t" not in audit[0]


@pytest.mark.parametrize("make", ["httpx", "aiohttp"])
async def test_the_audit_latency_includes_the_body(
    server: FakeServer, make: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    if make == "httpx":
        async with http_client(loopback(server)) as client:
            await client.get(f"{server.url}/late-body")
    else:
        async with aiohttp_session(loopback(server)) as session:
            await session.get(f"{server.url}/late-body")
    (line,) = _audit(caplog)
    assert float(line.rsplit("latency_ms=", 1)[1]) >= 300


async def test_slack_sdk_never_replaces_a_closed_session_with_an_unchecked_one(
    other: FakeServer,
) -> None:
    from slack_sdk.web.async_client import AsyncWebClient

    session = aiohttp_session(OutboundPolicy.loopback_for_tests(other.port))
    await session.close()  # the sink stopping while a call starts
    client = AsyncWebClient(token="xoxb-t", base_url=f"{other.url}/api/", session=session)
    with pytest.raises(aiohttp.ClientConnectionError):
        await client.chat_postMessage(channel="C1", text="hi")
    assert other.provider.counters["requests"] == 0
