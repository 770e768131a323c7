"""The Slack sink (sink.py) against SlackFake over loopback: chat.postMessage with a
supplier's bot token or the platform's, incoming webhooks, every class of answer, the
in-process ledger of delivered ids, and no secret in logs or answers."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from connectors.sinks.answer import Answer, Verdict
from connectors.sinks.base import DeliveryContext, SinkEnv
from connectors.sinks.credentials import MemoryCredentialStore
from connectors.sinks.outbound import OutboundPolicy
from connectors.sinks.slack.config import SlackConfig
from connectors.sinks.slack.sink import SlackSink, build
from streams.app.sinks import read_settings
from streams.dev.fakes.kit import FakeServer
from streams.dev.fakes.slack import SlackFake

SUPPLIER = "5f0c2a4e-1111-4c1e-9a57-000000000001"
TOKEN = "xoxb-supplier-token-0001"
NEW_TOKEN = "xoxb-supplier-token-0003"
PLATFORM_TOKEN = "xoxb-platform-token-0002"
HOOK = "T0FAKE/B0FAKE/hooksecret0123456789"
ARCHIVED_HOOK = "T0FAKE/B0OLD/archivedsecret98765"
CHANNEL = "C024BE91L"


class RecordingStore(MemoryCredentialStore):
    """A memory store that remembers what was invalidated."""

    def __init__(self) -> None:
        super().__init__()
        self.invalidated: list[tuple[str, str]] = []

    def invalidate(self, kind: Any, key: str) -> None:
        self.invalidated.append((kind, key))


@pytest.fixture
def served() -> Iterator[tuple[SlackFake, str]]:
    provider = SlackFake(
        tokens=[TOKEN, PLATFORM_TOKEN],
        channels=[CHANNEL, "CARCHIVED", "CNOTJOINED"],
        archived=["CARCHIVED"],
        not_in_channel=["CNOTJOINED"],
        webhooks={HOOK: CHANNEL, ARCHIVED_HOOK: "CARCHIVED"},
    )
    with FakeServer(provider) as server:
        yield provider, server.url


@pytest.fixture
def fake(served: tuple[SlackFake, str]) -> SlackFake:
    return served[0]


@pytest.fixture
def url(served: tuple[SlackFake, str]) -> str:
    return served[1]


@pytest.fixture
async def sink(url: str) -> AsyncIterator[SlackSink]:
    config = SlackConfig(api_base_url=url, bot_token=None)
    connector = SlackSink(config, OutboundPolicy.loopback_for_tests(url))
    yield connector
    await connector.aclose()


@pytest.fixture
def store() -> RecordingStore:
    rows = RecordingStore()
    rows.set("supplier_integration", f"{SUPPLIER}:slack", {"api_key": TOKEN})
    return rows


def record(channel: str = CHANNEL, **overrides: Any) -> dict[str, Any]:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Date changed*"}}]
    base: dict[str, Any] = {
        "delivery_id": str(uuid.uuid4()),
        "event_id": "evt-1",
        "event_type": "wedding_date_changed",
        "aggregate_id": "wedding-1",
        "aggregate_version": 3,
        "source_ts_ms": 0,
        "routed_at_ms": 0,
        "recipient_id": SUPPLIER,
        "integration_id": None,
        "attempt": 0,
        "channel": channel,
        "text": "The wedding moved to 2025-06-14",
        "blocks_json": json.dumps(blocks),
    }
    return {**base, **overrides}


def ctx(store: MemoryCredentialStore, key: str | None = None, refresh: bool = False) -> Any:
    return DeliveryContext(
        credentials=store,
        idempotency_key=key or str(uuid.uuid4()),
        attempt=0,
        refresh=refresh,
    )


async def deliver(sink: SlackSink, store: MemoryCredentialStore, **kw: Any) -> Answer:
    rec = record(**kw)
    return await sink.deliver(rec, ctx(store, rec["delivery_id"]))


# ---- ok ----------------------------------------------------------------------------------
async def test_posts_with_the_supplier_token(
    sink: SlackSink, store: RecordingStore, fake: SlackFake
) -> None:
    answer = await deliver(sink, store)
    assert answer.verdict is Verdict.OK
    assert answer.provider_id and answer.provider_id.count(".") == 1
    assert fake.counters["messages_posted"] == 1
    assert fake.stats()["posted"] == {CHANNEL: ["The wedding moved to 2025-06-14"]}


async def test_supplier_integration_is_the_credential_key(
    sink: SlackSink, store: RecordingStore
) -> None:
    rec = record()
    await sink.deliver(rec, ctx(store))
    assert sink.credential_key(rec) == f"supplier_integration:{SUPPLIER}:slack"


async def test_target_and_limit_are_per_channel(sink: SlackSink) -> None:
    key, limits = sink.limit(record())
    assert sink.target(record()) == "slack:C024BE91L"
    assert key == "slack:C024BE91L"
    assert (limits.rate_per_s, limits.burst) == (1.0, 1)


async def test_platform_token_without_an_integration(url: str, fake: SlackFake) -> None:
    config = SlackConfig(api_base_url=url, bot_token=PLATFORM_TOKEN)  # type: ignore[arg-type]
    connector = SlackSink(config, OutboundPolicy.loopback_for_tests(url))
    try:
        rec = record()
        answer = await connector.deliver(rec, ctx(MemoryCredentialStore()))
        assert answer.verdict is Verdict.OK
        assert connector.credential_key(rec) == "slack:platform"
        assert fake.counters["messages_posted"] == 1
    finally:
        await connector.aclose()


async def test_no_integration_and_no_platform_token_is_fatal(
    sink: SlackSink, fake: SlackFake
) -> None:
    answer = await deliver(sink, MemoryCredentialStore())
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "slack.no_credential")
    assert fake.counters["requests"] == 0


async def test_posts_to_an_incoming_webhook(sink: SlackSink, fake: SlackFake, url: str) -> None:
    store = MemoryCredentialStore()
    store.set(
        "supplier_integration", f"{SUPPLIER}:slack", {"webhook_url": f"{url}/services/{HOOK}"}
    )
    answer = await deliver(sink, store)
    assert answer.verdict is Verdict.OK
    assert fake.counters["webhook_posts"] == 1
    assert fake.stats()["posted"] == {CHANNEL: ["The wedding moved to 2025-06-14"]}


# ---- retry / backpressure ------------------------------------------------------------------
async def test_a_5xx_is_retried(sink: SlackSink, store: RecordingStore, fake: SlackFake) -> None:
    fake.switches.fail_next = 1
    answer = await deliver(sink, store)
    assert (answer.verdict, answer.status) == (Verdict.RETRY, 503)
    assert fake.counters["messages_posted"] == 0


async def test_throttle_is_backpressure_with_retry_after(
    sink: SlackSink, store: RecordingStore, fake: SlackFake
) -> None:
    fake.switches.throttle_next = 1
    fake.switches.retry_after_s = 7
    answer = await deliver(sink, store)
    assert answer.verdict is Verdict.BACKPRESSURE
    assert answer.error_class == "slack.ratelimited"
    assert answer.retry_after == 7.0


async def test_second_message_within_a_second_is_rate_limited(
    sink: SlackSink, store: RecordingStore, fake: SlackFake
) -> None:
    fake.rate_limit = True
    first = await deliver(sink, store)
    second = await deliver(sink, store)
    assert first.verdict is Verdict.OK
    assert (second.verdict, second.retry_after) == (Verdict.BACKPRESSURE, 1.0)
    assert fake.counters["messages_posted"] == 1


async def test_webhook_rollup_error_is_retried(sink: SlackSink, fake: SlackFake, url: str) -> None:
    store = MemoryCredentialStore()
    store.set(
        "supplier_integration", f"{SUPPLIER}:slack", {"webhook_url": f"{url}/services/{HOOK}"}
    )
    fake.switches.fail_next, fake.switches.fail_status = 1, 500
    answer = await deliver(sink, store)
    assert (answer.verdict, answer.error_class) == (Verdict.RETRY, "slack.rollup_error")


async def test_webhook_throttle_is_backpressure(sink: SlackSink, fake: SlackFake, url: str) -> None:
    store = MemoryCredentialStore()
    store.set(
        "supplier_integration", f"{SUPPLIER}:slack", {"webhook_url": f"{url}/services/{HOOK}"}
    )
    fake.switches.throttle_next, fake.switches.retry_after_s = 1, 3
    answer = await deliver(sink, store)
    assert (answer.verdict, answer.retry_after) == (Verdict.BACKPRESSURE, 3.0)


# ---- fatal / disable ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("channel", "verdict", "error_class"),
    [
        ("CUNKNOWN", Verdict.FATAL, "slack.channel_not_found"),
        ("CNOTJOINED", Verdict.FATAL, "slack.not_in_channel"),
        ("CARCHIVED", Verdict.DISABLE, "slack.is_archived"),
    ],
)
async def test_channel_answers(
    sink: SlackSink, store: RecordingStore, channel: str, verdict: Verdict, error_class: str
) -> None:
    answer = await deliver(sink, store, channel=channel)
    assert (answer.verdict, answer.error_class) == (verdict, error_class)


async def test_archived_webhook_channel_disables(sink: SlackSink, url: str) -> None:
    store = MemoryCredentialStore()
    store.set(
        "supplier_integration",
        f"{SUPPLIER}:slack",
        {"webhook_url": f"{url}/services/{ARCHIVED_HOOK}"},
    )
    answer = await deliver(sink, store)
    assert (answer.verdict, answer.status) == (Verdict.DISABLE, 410)


async def test_removed_webhook_is_fatal_no_service(sink: SlackSink, url: str) -> None:
    store = MemoryCredentialStore()
    store.set(
        "supplier_integration", f"{SUPPLIER}:slack", {"webhook_url": f"{url}/services/T/B/gone"}
    )
    answer = await deliver(sink, store)
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "slack.no_service")


async def test_too_many_blocks_are_refused_without_calling_slack(
    sink: SlackSink, store: RecordingStore, fake: SlackFake
) -> None:
    blocks = [{"type": "divider"}] * 51
    answer = await deliver(sink, store, blocks_json=json.dumps(blocks))
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "slack.msg_too_long")
    assert fake.counters["requests"] == 0


# ---- re-auth ------------------------------------------------------------------------------
async def test_expired_token_asks_for_reauth_then_a_refresh_succeeds(
    sink: SlackSink, store: RecordingStore, fake: SlackFake
) -> None:
    fake.switches.expire_tokens = True
    rec = record()
    first = await sink.deliver(rec, ctx(store, rec["delivery_id"]))
    assert (first.verdict, first.error_class) == (Verdict.REAUTH, "slack.invalid_auth")
    fake.issue_token(NEW_TOKEN)  # the supplier reinstalls the app
    store.set("supplier_integration", f"{SUPPLIER}:slack", {"api_key": NEW_TOKEN})
    second = await sink.deliver(rec, ctx(store, rec["delivery_id"], refresh=True))
    assert second.verdict is Verdict.OK
    assert ("supplier_integration", f"{SUPPLIER}:slack") in store.invalidated
    assert fake.counters["messages_posted"] == 1


async def test_reauth_fails_again_when_the_token_was_not_renewed(
    sink: SlackSink, store: RecordingStore, fake: SlackFake
) -> None:
    fake.switches.expire_tokens = True
    rec = record()
    await sink.deliver(rec, ctx(store, rec["delivery_id"]))
    again = await sink.deliver(rec, ctx(store, rec["delivery_id"], refresh=True))
    assert again.verdict is Verdict.REAUTH
    assert store.invalidated == [("supplier_integration", f"{SUPPLIER}:slack")]
    assert fake.counters["messages_posted"] == 0


async def test_expired_webhook_asks_for_reauth(sink: SlackSink, fake: SlackFake, url: str) -> None:
    store = MemoryCredentialStore()
    store.set(
        "supplier_integration", f"{SUPPLIER}:slack", {"webhook_url": f"{url}/services/{HOOK}"}
    )
    fake.switches.expire_tokens = True
    answer = await deliver(sink, store)
    assert (answer.verdict, answer.error_class) == (Verdict.REAUTH, "slack.invalid_token")


# ---- idempotency (our own ledger: Slack has no hook) -------------------------------------
async def test_a_repeated_delivery_id_posts_once(
    sink: SlackSink, store: RecordingStore, fake: SlackFake
) -> None:
    rec = record()
    first = await sink.deliver(rec, ctx(store, rec["delivery_id"]))
    second = await sink.deliver(rec, ctx(store, rec["delivery_id"]))
    assert first.verdict is second.verdict is Verdict.OK
    assert second.provider_id == first.provider_id
    assert fake.counters["messages_posted"] == 1


async def test_a_failed_delivery_is_sent_again(
    sink: SlackSink, store: RecordingStore, fake: SlackFake
) -> None:
    fake.switches.fail_next = 1
    rec = record()
    await sink.deliver(rec, ctx(store, rec["delivery_id"]))
    again = await sink.deliver(rec, ctx(store, rec["delivery_id"]))
    assert again.verdict is Verdict.OK
    assert fake.counters["messages_posted"] == 1


# ---- secrets ---------------------------------------------------------------------------------
async def test_no_token_or_webhook_secret_in_logs_or_answers(
    sink: SlackSink, store: RecordingStore, fake: SlackFake, url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    hook_store = MemoryCredentialStore()
    hook_store.set(
        "supplier_integration", f"{SUPPLIER}:slack", {"webhook_url": f"{url}/services/{HOOK}"}
    )
    answers = [await deliver(sink, store), await deliver(sink, hook_store)]
    fake.switches.expire_tokens = True
    answers += [await deliver(sink, store), await deliver(sink, hook_store)]
    answers.append(await deliver(sink, store, channel="CARCHIVED"))
    assert [a.verdict for a in answers] == [
        Verdict.OK, Verdict.OK, Verdict.REAUTH, Verdict.REAUTH, Verdict.REAUTH,
    ]  # fmt: skip
    assert "external call" in caplog.text  # the audit line was captured
    for secret in (TOKEN, "hooksecret0123456789", "/services/"):
        assert secret not in caplog.text
        assert all(secret not in repr(a) for a in answers)


# ---- build(env) ---------------------------------------------------------------------------
async def test_build_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, url: str, fake: SlackFake
) -> None:
    monkeypatch.setenv("WEDSYNC_SLACK_API_BASE_URL", url)
    monkeypatch.setenv("WEDSYNC_SLACK_BOT_TOKEN", PLATFORM_TOKEN)
    monkeypatch.setenv("WEDSYNC_SLACK_RATE_PER_S", "0.5")
    connector = build(
        SinkEnv(
            OutboundPolicy.loopback_for_tests(url), MemoryCredentialStore(), settings=read_settings
        )
    )
    try:
        assert connector.limit(record())[1].rate_per_s == 0.5
        answer = await connector.deliver(record(), ctx(MemoryCredentialStore()))
        assert answer.verdict is Verdict.OK
    finally:
        await connector.aclose()


async def test_the_default_policy_refuses_a_loopback_slack(url: str) -> None:
    from connectors.sinks.outbound import OutboundRefused

    store = MemoryCredentialStore()
    store.set(
        "supplier_integration", f"{SUPPLIER}:slack", {"webhook_url": f"{url}/services/{HOOK}"}
    )
    connector = SlackSink(SlackConfig(api_base_url=url), OutboundPolicy())
    try:
        with pytest.raises(OutboundRefused):
            await connector.deliver(record(), ctx(store))
    finally:
        await connector.aclose()


# ---- the fake's own switches -------------------------------------------------------------
async def test_fake_control_and_stats_over_http(fake: SlackFake, url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        control = await client.post("/_fake/control", json={"throttle_next": 1})
        assert control.json()["throttle_next"] == 1
        throttled = await client.post(
            "/api/chat.postMessage",
            data={"token": TOKEN, "channel": CHANNEL, "text": "hi"},
        )
        assert throttled.status_code == 429
        assert throttled.headers["Retry-After"] == "1"
        posted = await client.post(
            "/api/chat.postMessage",
            data={"token": TOKEN, "channel": CHANNEL, "text": "hi"},
        )
        assert posted.json()["ok"] is True
        stats = (await client.get("/_fake/stats")).json()
    assert stats["counters"]["messages_posted"] == 1
    assert stats["counters"]["injected_throttle"] == 1
    assert stats["posted"] == {CHANNEL: ["hi"]}


async def test_fake_configure_route_issues_tokens_and_webhooks(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        await client.post(
            "/_fake/slack", json={"tokens": ["xoxb-new"], "webhooks": {"T1/B1/s1": "CNEW"}}
        )
        api = await client.post(
            "/api/chat.postMessage",
            json={"channel": "C024BE91L", "text": "x"},
            headers={"Authorization": "Bearer xoxb-new"},
        )
        hook = await client.post("/services/T1/B1/s1", json={"text": "x"})
    assert api.json()["ok"] is True
    assert (hook.status_code, hook.text) == (200, "ok")


async def test_fake_refuses_a_missing_token(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        answer = await client.post("/api/chat.postMessage", json={"channel": CHANNEL, "text": "x"})
    assert answer.json() == {"ok": False, "error": "not_authed"}


async def test_fake_refuses_invalid_blocks_on_webhooks(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        answer = await client.post(f"/services/{HOOK}", json={"text": "x", "blocks": [{}] * 51})
    assert (answer.status_code, answer.text) == (400, "invalid_blocks")


async def test_fake_latency_switch_slows_answers(
    sink: SlackSink, store: RecordingStore, fake: SlackFake
) -> None:
    import time

    fake.switches.latency_ms = 200
    started = time.monotonic()
    await deliver(sink, store)
    assert time.monotonic() - started >= 0.2
