"""One hostile endpoint against each HTTP sink (webhook, CRM, Slack Web API and incoming
webhook), over loopback: a huge answer or a gzip bomb is read up to the cap and classified
on its status, a redirect is never followed, a dripped answer is cut at the deadline, and a
refused URL is a dead letter at once (fatal), not a retried connect error."""

from __future__ import annotations

import asyncio
import threading
import time
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from connectors.sinks.answer import Answer, Verdict
from connectors.sinks.base import DeliveryContext
from connectors.sinks.credentials import MemoryCredentialStore
from connectors.sinks.crm.config import CrmConfig
from connectors.sinks.crm.sink import CrmSink
from connectors.sinks.outbound import OutboundPolicy, OutboundRefused
from connectors.sinks.slack.config import SlackConfig
from connectors.sinks.slack.sink import SlackSink
from connectors.sinks.webhook.config import WebhookConfig
from connectors.sinks.webhook.sink import WebhookSink
from pydantic import SecretStr
from streams.dev.fakes.kit import FakeProvider, FakeServer

HUGE = 64 * 1024 * 1024
CHUNK = b"{" * (64 * 1024)
PEAK = 8 * 1024 * 1024  # far below HUGE: what a capped answer may allocate, all in
SECRET = "whsec_" + "c2lua3Rlc3Rfc2VjcmV0X2tleV9vZl8zMl9ieXRlcyE="


def _bomb(size: int) -> bytes:
    gz = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b" " * (1024 * 1024)
    return b"".join(gz.compress(zeros) for _ in range(size // len(zeros))) + gz.flush()


BOMB = _bomb(HUGE)


class Hostile(FakeProvider):
    """Answers every path with what `mode` says: huge, bomb, redirect or drip, with `status`."""

    name = "hostile"

    def __init__(self) -> None:
        super().__init__()
        self.mode, self.status, self.location = "huge", 200, "/"
        self.sent = 0
        self.finished = threading.Event()

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._answer)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if self.mode == "redirect":
            return web.Response(status=307, headers={"Location": self.location})
        if self.mode == "bomb":
            return web.Response(
                status=self.status, body=BOMB,
                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            )  # fmt: skip
        response = web.StreamResponse(status=self.status)
        response.content_type = "application/json"
        if self.mode == "drip":  # a complete answer, one byte every 50 ms (2 s in all)
            body = b'{"ok": true, "ts": "1.2", "pad": "' + b"p" * 4 + b'"}'
            response.content_length = len(body)
            await response.prepare(request)
            for byte in body:
                await asyncio.sleep(0.05)
                await response.write(bytes([byte]))
            return response
        response.content_length = HUGE
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


class Counting(FakeProvider):
    name = "internal"


@pytest.fixture
def hostile() -> Iterator[tuple[Hostile, FakeServer]]:
    fake = Hostile()
    with FakeServer(fake) as server:
        yield fake, server


@pytest.fixture
def internal() -> Iterator[FakeServer]:
    """Stands for an internal service on loopback (a /metrics port, a database)."""
    with FakeServer(Counting()) as server:
        yield server


def ctx(store: MemoryCredentialStore) -> DeliveryContext:
    return DeliveryContext(credentials=store, idempotency_key="dlv-1", attempt=0)


async def _bounded(call: Callable[[], Awaitable[Answer]]) -> Answer:
    tracemalloc.start()
    try:
        answer = await call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < PEAK, f"{peak} bytes allocated for one capped answer"
    return answer


# ---- each sink ---------------------------------------------------------------------------
def _webhook(policy: OutboundPolicy, **config: Any) -> WebhookSink:
    return WebhookSink(WebhookConfig(**config), policy)


def _webhook_record(url: str) -> dict[str, Any]:
    return {"delivery_id": "dlv-1", "endpoint_id": "ep-1", "endpoint_url": url,
            "event_name": "form_responses.insert", "body_json": '{"id":"evt-1"}'}  # fmt: skip


def _webhook_store() -> MemoryCredentialStore:
    return MemoryCredentialStore({("webhook_endpoint", "ep-1"): {"secret_key": SECRET}})


def _crm_record(url: str) -> dict[str, Any]:
    return {"delivery_id": "dlv-1", "integration_id": "int-1", "crm_kind": "photography_crm",
            "endpoint_url": url, "auth_scheme": "bearer",
            "payload": {"event_type": "wedding_date_changed", "wedding_id": "w-1"}}  # fmt: skip


def _crm_store() -> MemoryCredentialStore:
    return MemoryCredentialStore({("integration", "int-1"): {"api_key": "k", "settings": {}}})


def _slack_record() -> dict[str, Any]:
    return {"delivery_id": "dlv-1", "recipient_id": "sup-1", "channel": "C024BE91L",
            "text": "The wedding moved", "blocks_json": "[]"}  # fmt: skip


def _slack_store(webhook_url: str | None = None) -> MemoryCredentialStore:
    row = {"webhook_url": webhook_url} if webhook_url else {"api_key": "xoxb-t"}
    return MemoryCredentialStore({("supplier_integration", "sup-1:slack"): row})


async def deliver(kind: str, url: str, policy: OutboundPolicy, **config: Any) -> Answer:
    """One delivery by the `kind` sink to the endpoint `url`; the sink closed after."""
    sink: Any
    if kind == "webhook":
        sink, record, store = _webhook(policy, **config), _webhook_record(url), _webhook_store()
    elif kind == "crm":
        sink, record, store = CrmSink(CrmConfig(**config), policy), _crm_record(url), _crm_store()
    elif kind == "slack-api":
        sink = SlackSink(SlackConfig(api_base_url=url, bot_token=SecretStr("x"), **config), policy)
        record, store = _slack_record(), _slack_store()
    else:
        sink = SlackSink(SlackConfig(**config), policy)
        record, store = _slack_record(), _slack_store(url)
    try:
        answer: Answer = await sink.deliver(record, ctx(store))
        return answer
    finally:
        await sink.aclose()


KINDS = ["webhook", "crm", "slack-api", "slack-webhook"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("status", "verdict"), [(503, Verdict.RETRY), (410, Verdict.DISABLE)])
async def test_a_huge_answer_is_read_up_to_the_cap_and_classified_on_its_status(
    hostile: tuple[Hostile, FakeServer], kind: str, status: int, verdict: Verdict
) -> None:
    fake, server = hostile
    fake.mode, fake.status = "huge", status
    policy = OutboundPolicy.loopback_for_tests(server.port)
    answer = await _bounded(lambda: deliver(kind, f"{server.url}/hook", policy))
    assert (answer.verdict, answer.status) == (verdict, status)
    assert fake.finished.wait(10)
    assert fake.sent < HUGE // 4  # nobody read the rest: the sender stopped


@pytest.mark.parametrize("kind", KINDS)
async def test_a_gzip_bomb_is_decoded_up_to_the_cap_and_classified_on_its_status(
    hostile: tuple[Hostile, FakeServer], kind: str
) -> None:
    fake, server = hostile
    fake.mode, fake.status = "bomb", 503
    policy = OutboundPolicy.loopback_for_tests(server.port)
    answer = await _bounded(lambda: deliver(kind, f"{server.url}/hook", policy))
    assert (answer.verdict, answer.status) == (Verdict.RETRY, 503)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_redirect_to_an_internal_service_is_never_followed(
    hostile: tuple[Hostile, FakeServer], internal: FakeServer, kind: str
) -> None:
    fake, server = hostile
    fake.mode, fake.location = "redirect", f"http://127.0.0.1:{internal.port}/metrics"
    policy = OutboundPolicy.loopback_for_tests(server.port, internal.port)  # even allowed
    answer = await deliver(kind, f"{server.url}/hook", policy)
    assert answer.status == 307 and answer.verdict in (Verdict.FATAL, Verdict.RETRY)
    if kind != "webhook":  # Standard Webhooks: a redirect is a failure, retried
        assert answer.verdict is Verdict.FATAL
    assert internal.provider.counters["requests"] == 0


@pytest.mark.parametrize("kind", KINDS)
async def test_a_dripped_answer_is_cut_at_the_deadline(
    hostile: tuple[Hostile, FakeServer], kind: str
) -> None:
    fake, server = hostile
    fake.mode = "drip"
    policy = OutboundPolicy.loopback_for_tests(server.port, read_timeout_s=0.5)
    started = time.monotonic()
    answer = await deliver(kind, f"{server.url}/hook", policy)
    assert answer.verdict is Verdict.RETRY
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    "url", ["ftp://{host}:{port}/hook", "http://127.1:{port}/hook", "http://2130706433:{port}/h",
            "http://0x7f.1:{port}/hook", "http://[::ffff:7f00:1]:{port}/hook",
            "http://localhost:{port}/hook", "https://[2002:7f00:1::1]/hook"]
)  # fmt: skip
@pytest.mark.parametrize("kind", ["webhook", "crm", "slack-webhook"])
async def test_a_refused_endpoint_is_a_dead_letter_at_once(
    internal: FakeServer, kind: str, url: str
) -> None:
    policy = OutboundPolicy.loopback_for_tests()  # nothing on loopback allowed
    endpoint = url.format(host="127.0.0.1", port=internal.port)
    try:
        answer = await deliver(kind, endpoint, policy)
    except OutboundRefused:  # the Slack sink lets the runtime dead-letter it
        answer = Answer(Verdict.FATAL)
    assert answer.verdict is Verdict.FATAL
    assert internal.provider.counters["requests"] == 0
