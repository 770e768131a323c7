"""The real WebhookSink against the WebhookReceiver fake over loopback; the receiver
verifies signatures with the official standardwebhooks package."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from connectors.sinks.answer import Verdict
from connectors.sinks.base import DeliveryContext, SinkEnv
from connectors.sinks.credentials import MemoryCredentialStore
from connectors.sinks.outbound import OutboundPolicy
from connectors.sinks.webhook.config import WebhookConfig
from connectors.sinks.webhook.sink import WebhookSink, build
from streams.app.sinks import read_settings
from streams.dev.fakes.kit import FakeServer, Switches
from streams.dev.fakes.webhook import WebhookReceiver
from streams.topics import Destination

SECRET = "whsec_" + base64.b64encode(b"component-test-key-32-bytes-long").decode()
LEGACY = "old-platform-secret-abc123"
BODY = '{"event":"form_responses.insert","id":"evt-9","data":{"form_name":"Menu"}}'


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, FakeServer]]:
    fake = WebhookReceiver(SECRET)
    with FakeServer(fake) as server:
        yield fake, server


@pytest.fixture
async def sink(receiver: Any) -> AsyncIterator[WebhookSink]:
    s = WebhookSink(WebhookConfig(), OutboundPolicy.loopback_for_tests(receiver[1].port))
    yield s
    await s.aclose()


def store(secret: str = SECRET) -> MemoryCredentialStore:
    return MemoryCredentialStore(
        {("webhook_endpoint", "ep-1"): {"endpoint_url": "ignored", "secret_key": secret}}
    )


def ctx(creds: MemoryCredentialStore, key: str = "dlv-1") -> DeliveryContext:
    return DeliveryContext(credentials=creds, idempotency_key=key, attempt=0)


def rec(url: str, body: str = BODY) -> dict[str, Any]:
    return {
        "delivery_id": "dlv-1",
        "endpoint_id": "ep-1",
        "endpoint_url": url,
        "event_name": "form_responses.insert",
        "body_json": body,
    }


async def test_signed_delivery_is_accepted(receiver: Any, sink: WebhookSink) -> None:
    fake, server = receiver
    answer = await sink.deliver(rec(server.url + "/hooks/a"), ctx(store()))
    assert answer.verdict is Verdict.OK
    assert answer.status == 200
    assert fake.counters["side_effects"] == 1
    event = fake.stats()["events"][0]
    assert event["id"] == "dlv-1"
    assert event["body"] == json.loads(BODY)
    assert event["user_agent"] == "wedsync-webhooks/1"
    assert event["content_type"] == "application/json"


async def test_legacy_secret_is_accepted_by_a_legacy_receiver() -> None:
    fake = WebhookReceiver(LEGACY)
    with FakeServer(fake) as server:
        sink = WebhookSink(WebhookConfig(), OutboundPolicy.loopback_for_tests(server.port))
        answer = await sink.deliver(rec(server.url + "/"), ctx(store(LEGACY)))
        await sink.aclose()
    assert answer.verdict is Verdict.OK
    assert fake.counters["side_effects"] == 1


async def test_wrong_secret_is_refused_with_401_and_retried(
    receiver: Any, sink: WebhookSink
) -> None:
    fake, server = receiver
    other = "whsec_" + base64.b64encode(b"not-the-receivers-key-32-bytes!!").decode()
    answer = await sink.deliver(rec(server.url + "/hooks/a"), ctx(store(other)))
    assert answer.verdict is Verdict.RETRY
    assert answer.status == 401
    assert fake.counters["bad_signature"] == 1
    assert fake.counters["side_effects"] == 0


async def test_same_delivery_twice_is_one_side_effect(receiver: Any, sink: WebhookSink) -> None:
    fake, server = receiver
    creds = store()
    first = await sink.deliver(rec(server.url + "/hooks/a"), ctx(creds))
    second = await sink.deliver(rec(server.url + "/hooks/a"), ctx(creds))
    assert (first.verdict, second.verdict) == (Verdict.OK, Verdict.OK)
    assert fake.counters["side_effects"] == 1
    assert fake.counters["duplicates"] == 1


async def test_legacy_headers_arrive_when_enabled(receiver: Any) -> None:
    fake, server = receiver
    s = WebhookSink(
        WebhookConfig(legacy_headers=True), OutboundPolicy.loopback_for_tests(server.port)
    )
    try:
        answer = await s.deliver(rec(server.url + "/hooks/a"), ctx(store()))
    finally:
        await s.aclose()
    assert answer.verdict is Verdict.OK
    assert fake.stats()["events"][0]["event_type"] == "form_responses.insert"


async def test_throttle_is_backpressure_with_the_seconds(receiver: Any, sink: WebhookSink) -> None:
    fake, server = receiver
    fake.switches.throttle_next = 1
    fake.switches.retry_after_s = 12
    answer = await sink.deliver(rec(server.url + "/hooks/a"), ctx(store()))
    assert answer.verdict is Verdict.BACKPRESSURE
    assert answer.retry_after == 12.0
    assert answer.status == 429
    assert fake.counters["side_effects"] == 0


async def test_server_error_is_retry(receiver: Any, sink: WebhookSink) -> None:
    fake, server = receiver
    fake.switches.fail_next = 1
    fake.switches.fail_status = 500
    answer = await sink.deliver(rec(server.url + "/hooks/a"), ctx(store()))
    assert (answer.verdict, answer.status) == (Verdict.RETRY, 500)


async def test_503_without_retry_after_is_retry(receiver: Any, sink: WebhookSink) -> None:
    fake, server = receiver
    fake.switches.fail_next = 1
    answer = await sink.deliver(rec(server.url + "/hooks/a"), ctx(store()))
    assert (answer.verdict, answer.status) == (Verdict.RETRY, 503)


async def test_gone_disables_the_endpoint(receiver: Any, sink: WebhookSink) -> None:
    _fake, server = receiver
    answer = await sink.deliver(rec(server.url + "/gone"), ctx(store()))
    assert answer.verdict is Verdict.DISABLE
    assert answer.status == 410


async def test_redirect_is_not_followed(receiver: Any, sink: WebhookSink) -> None:
    fake, server = receiver
    answer = await sink.deliver(rec(server.url + "/moved"), ctx(store()))
    assert answer.verdict is Verdict.RETRY
    assert answer.status == 302
    assert fake.counters["moved"] == 1
    assert fake.counters["side_effects"] == 0
    assert fake.counters["requests"] == 1


async def test_too_large_body_is_fatal_without_a_call(receiver: Any) -> None:
    fake, server = receiver
    s = WebhookSink(
        WebhookConfig(max_body_bytes=64), OutboundPolicy.loopback_for_tests(server.port)
    )
    try:
        body = json.dumps({"pad": "x" * 100})
        answer = await s.deliver(rec(server.url + "/hooks/a", body), ctx(store()))
    finally:
        await s.aclose()
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "webhook.too_large")
    assert fake.counters["requests"] == 0


async def test_missing_endpoint_row_is_fatal(receiver: Any, sink: WebhookSink) -> None:
    fake, server = receiver
    answer = await sink.deliver(rec(server.url + "/hooks/a"), ctx(MemoryCredentialStore()))
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "webhook.no_secret")
    assert fake.counters["requests"] == 0


async def test_slow_endpoint_times_out_as_retry(receiver: Any) -> None:
    fake, server = receiver
    fake.switches.latency_ms = 1500
    s = WebhookSink(
        WebhookConfig(read_timeout_s=0.3), OutboundPolicy.loopback_for_tests(server.port)
    )
    try:
        answer = await s.deliver(rec(server.url + "/hooks/a"), ctx(store()))
    finally:
        await s.aclose()
    assert (answer.verdict, answer.error_class) == (Verdict.RETRY, "webhook.timeout")


async def test_private_address_is_refused_by_the_default_policy(receiver: Any) -> None:
    fake, server = receiver
    s = WebhookSink(WebhookConfig(), OutboundPolicy())
    url = f"https://127.0.0.1:{server.port}/hooks/a"
    try:
        answer = await s.deliver(rec(url), ctx(store()))
    finally:
        await s.aclose()
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "webhook.refused")
    assert "not public" in answer.message
    assert fake.counters["requests"] == 0


async def test_plain_http_is_refused_by_the_default_policy(receiver: Any) -> None:
    fake, server = receiver
    s = WebhookSink(WebhookConfig(), OutboundPolicy())
    try:
        answer = await s.deliver(rec(server.url + "/hooks/a"), ctx(store()))
    finally:
        await s.aclose()
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "webhook.refused")
    assert fake.counters["requests"] == 0


async def test_nothing_secret_is_logged_or_answered(
    receiver: Any, sink: WebhookSink, caplog: pytest.LogCaptureFixture
) -> None:
    fake, server = receiver
    caplog.set_level(logging.DEBUG)
    url = server.url + "/hooks/s3cr3t-path-token"
    answers = [await sink.deliver(rec(url), ctx(store()))]
    fake.switches.fail_next = 1
    answers.append(await sink.deliver(rec(url), ctx(store(), "dlv-2")))
    answers.append(await sink.deliver(rec(server.url + "/gone"), ctx(store(), "dlv-3")))
    # httpx's own INFO line logs the full URL (outbound.py's client, reported upstream): the
    # lines checked are ours and the audit's.
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    text = "\n".join(ours) + " ".join(repr(a) for a in answers)
    assert "external call destination=webhook target=webhook:ep-1" in text
    for secret in (SECRET, SECRET[6:], "s3cr3t-path-token", "form_name"):
        assert secret not in text


def test_target_limit_and_credential_key(sink: WebhookSink) -> None:
    r = rec("https://x.example.com/")
    assert sink.target(r) == "webhook:ep-1"
    key, limits = sink.limit(r)
    assert key == "webhook:ep-1"
    assert (limits.rate_per_s, limits.concurrency) == (10.0, 10)
    assert sink.credential_key(r) is None
    assert sink.destination is Destination.WEBHOOK


async def test_build_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEDSYNC_WEBHOOK_LEGACY_HEADERS", "true")
    monkeypatch.setenv("WEDSYNC_WEBHOOK_MAX_BODY_BYTES", "1000")
    s = build(
        SinkEnv(
            policy=OutboundPolicy(), credentials=MemoryCredentialStore(), settings=read_settings
        )
    )
    try:
        assert s.config.legacy_headers is True
        assert s.config.max_body_bytes == 1000
    finally:
        await s.aclose()


async def test_receiver_switches_over_http(receiver: Any) -> None:
    _fake, server = receiver
    async with httpx.AsyncClient(base_url=server.url) as client:
        r = await client.post("/_fake/control", json={"throttle_next": 1, "retry_after_s": 3})
        assert r.status_code == 200
        first = await client.post("/hooks/x", content=b"{}")
        second = await client.post("/hooks/x", content=b"{}")
        stats = (await client.get("/_fake/stats")).json()
    assert (first.status_code, first.headers["Retry-After"]) == (429, "3")
    assert second.status_code == 401
    assert stats["counters"]["bad_signature"] == 1
    assert stats["counters"]["injected_throttle"] == 1


async def test_receiver_expire_tokens_refuses_valid_signatures(
    receiver: Any, sink: WebhookSink
) -> None:
    fake, server = receiver
    fake.switches.expire_tokens = True
    answer = await sink.deliver(rec(server.url + "/hooks/a"), ctx(store()))
    assert answer.status == 401
    assert fake.counters["side_effects"] == 0


async def test_receiver_secret_from_the_environment_like_the_cli(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEDSYNC_FAKE_WEBHOOK_SECRET", LEGACY)
    fake = WebhookReceiver(switches=Switches(latency_ms=1))
    with FakeServer(fake) as server:
        sink = WebhookSink(WebhookConfig(), OutboundPolicy.loopback_for_tests(server.port))
        answer = await sink.deliver(rec(server.url + "/hooks/a"), ctx(store(LEGACY)))
        await sink.aclose()
    assert answer.verdict is Verdict.OK
    assert fake.switches.latency_ms == 1


async def test_a_redacted_url_is_read_from_the_database_when_delivering(
    receiver: Any, sink: WebhookSink
) -> None:
    fake, server = receiver
    token = "Zx81qT5vW0kLm3NoP9rS2tU7"
    creds = MemoryCredentialStore({("webhook_endpoint", "ep-1"): {
        "endpoint_url": f"{server.url}/hooks/{token}", "secret_key": SECRET,
    }})  # fmt: skip
    answer = await sink.deliver(rec(server.url + "/hooks/redacted"), ctx(creds))
    assert answer.verdict is Verdict.OK
    assert fake.counters["side_effects"] == 1


async def test_a_redacted_url_without_a_stored_one_is_a_dead_letter_naming_the_endpoint(
    sink: WebhookSink,
) -> None:
    creds = MemoryCredentialStore({("webhook_endpoint", "ep-1"): {"secret_key": SECRET}})
    answer = await sink.deliver(rec("https://hooks.example/in/redacted"), ctx(creds))
    assert answer.verdict is Verdict.FATAL and "ep-1" in answer.message
