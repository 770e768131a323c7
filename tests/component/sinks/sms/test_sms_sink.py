"""The SMS sink (sink.py) against TwilioFake over loopback: sent, every class of answer,
re-auth with a rotated token, the in-process ledger of delivered ids, and no token or phone
number in logs or answers."""

from __future__ import annotations

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
from connectors.sinks.sms.config import SmsConfig
from connectors.sinks.sms.sink import SmsSink, build
from streams.app.sinks import read_settings
from streams.dev.fakes.kit import FakeServer
from streams.dev.fakes.sms import TwilioFake

SID = "AC" + "1234abcd" * 4
TOKEN = "auth-token-old-0001"
NEW_TOKEN = "auth-token-new-0002"
SENDER = "+15005550006"
NUMBER = "+447700900123"
OPTED_OUT = "+447700900555"
LANDLINE = "+442079460000"


@pytest.fixture
def served() -> Iterator[tuple[TwilioFake, str]]:
    provider = TwilioFake(SID, TOKEN, opted_out=[OPTED_OUT], landlines=[LANDLINE])
    with FakeServer(provider) as server:
        yield provider, server.url


@pytest.fixture
def fake(served: tuple[TwilioFake, str]) -> TwilioFake:
    return served[0]


@pytest.fixture
def url(served: tuple[TwilioFake, str]) -> str:
    return served[1]


def config(url: str, token: str = TOKEN, **overrides: Any) -> SmsConfig:
    values: dict[str, Any] = {
        "account_sid": SID,
        "auth_token": token,
        "from_number": SENDER,
        "api_base_url": url,
        **overrides,
    }
    return SmsConfig(**values)


@pytest.fixture
async def sink(url: str) -> AsyncIterator[SmsSink]:
    connector = SmsSink(config(url), OutboundPolicy.loopback_for_tests(url))
    yield connector
    await connector.aclose()


def record(to_number: str = NUMBER, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "delivery_id": str(uuid.uuid4()),
        "event_id": "evt-1",
        "event_type": "wedding_date_changed",
        "aggregate_id": "wedding-1",
        "aggregate_version": 3,
        "source_ts_ms": 0,
        "routed_at_ms": 0,
        "recipient_id": "couple-7",
        "integration_id": None,
        "attempt": 0,
        "to_number": to_number,
        "text": "Your ceremony moved to 15:00",
        "urgent": True,
    }
    return {**base, **overrides}


def ctx(key: str, refresh: bool = False) -> DeliveryContext:
    return DeliveryContext(MemoryCredentialStore(), key, attempt=0, refresh=refresh)


async def deliver(sink: SmsSink, **kw: Any) -> Answer:
    rec = record(**kw)
    return await sink.deliver(rec, ctx(rec["delivery_id"]))


# ---- ok ----------------------------------------------------------------------------------
async def test_sends_a_message(sink: SmsSink, fake: TwilioFake) -> None:
    answer = await deliver(sink)
    assert answer.verdict is Verdict.OK
    assert answer.status == 201
    assert answer.provider_id and answer.provider_id.startswith("SM")
    assert fake.counters["messages_sent"] == 1
    [stored] = fake.stats()["messages"]
    assert (stored["to"], stored["from"], stored["body"]) == (
        NUMBER,
        SENDER,
        "Your ceremony moved to 15:00",
    )


async def test_sends_through_a_messaging_service(url: str, fake: TwilioFake) -> None:
    connector = SmsSink(
        config(url, from_number=None, messaging_service_sid="MG" + "0" * 32),
        OutboundPolicy.loopback_for_tests(url),
    )
    try:
        answer = await deliver(connector)
    finally:
        await connector.aclose()
    assert answer.verdict is Verdict.OK
    assert fake.stats()["messages"][0]["messaging_service_sid"] == "MG" + "0" * 32


async def test_identity_target_limit_and_credential(sink: SmsSink) -> None:
    key, limits = sink.limit(record())
    assert sink.target(record()) == "sms:couple-7"
    assert (key, limits.rate_per_s) == ("sms:account", 10.0)
    assert sink.credential_key(record()) is None


# ---- retry / backpressure ------------------------------------------------------------------
async def test_a_5xx_is_retried(sink: SmsSink, fake: TwilioFake) -> None:
    fake.switches.fail_next = 1
    answer = await deliver(sink)
    assert (answer.verdict, answer.error_class, answer.status) == (
        Verdict.RETRY,
        "twilio.20500",
        503,
    )
    assert fake.counters["messages_sent"] == 0


async def test_throttle_is_backpressure(sink: SmsSink, fake: TwilioFake) -> None:
    fake.switches.throttle_next, fake.switches.retry_after_s = 1, 4
    answer = await deliver(sink)
    assert (answer.verdict, answer.error_class, answer.retry_after) == (
        Verdict.BACKPRESSURE,
        "twilio.20429",
        4.0,
    )


# ---- fatal / disable -----------------------------------------------------------------------
async def test_landline_is_fatal(sink: SmsSink) -> None:
    answer = await deliver(sink, to_number=LANDLINE)
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "twilio.21614")


async def test_opted_out_recipient_disables_the_target(sink: SmsSink) -> None:
    answer = await deliver(sink, to_number=OPTED_OUT)
    assert (answer.verdict, answer.error_class) == (Verdict.DISABLE, "twilio.21610")


async def test_invalid_number_is_refused_without_calling_twilio(
    sink: SmsSink, fake: TwilioFake
) -> None:
    answer = await deliver(sink, to_number="07700 900123")
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "twilio.21211")
    assert fake.counters["requests"] == 0


# ---- re-auth --------------------------------------------------------------------------------
async def test_refused_token_then_a_refresh_with_the_rotated_one_succeeds(
    url: str, fake: TwilioFake
) -> None:
    settings = [config(url), config(url, token=NEW_TOKEN)]
    connector = SmsSink(
        settings[0], OutboundPolicy.loopback_for_tests(url), reload=lambda: settings[1]
    )
    try:
        fake.switches.expire_tokens = True
        rec = record()
        first = await connector.deliver(rec, ctx(rec["delivery_id"]))
        assert (first.verdict, first.error_class) == (Verdict.REAUTH, "twilio.20003")
        fake.issue_token(NEW_TOKEN)
        second = await connector.deliver(rec, ctx(rec["delivery_id"], refresh=True))
        assert second.verdict is Verdict.OK
        assert fake.counters["messages_sent"] == 1
    finally:
        await connector.aclose()


async def test_reauth_fails_again_without_a_new_token(sink: SmsSink, fake: TwilioFake) -> None:
    fake.switches.expire_tokens = True
    rec = record()
    await sink.deliver(rec, ctx(rec["delivery_id"]))
    again = await sink.deliver(rec, ctx(rec["delivery_id"], refresh=True))
    assert again.verdict is Verdict.REAUTH
    assert fake.counters["messages_sent"] == 0


# ---- idempotency (our own ledger: Twilio has no hook) ----------------------------------------
async def test_a_repeated_delivery_id_sends_once(sink: SmsSink, fake: TwilioFake) -> None:
    rec = record()
    first = await sink.deliver(rec, ctx(rec["delivery_id"]))
    second = await sink.deliver(rec, ctx(rec["delivery_id"]))
    assert first.verdict is second.verdict is Verdict.OK
    assert first.provider_id == second.provider_id
    assert fake.counters["messages_sent"] == 1


async def test_a_different_delivery_id_is_sent(sink: SmsSink, fake: TwilioFake) -> None:
    await deliver(sink)
    await deliver(sink)
    assert fake.counters["messages_sent"] == 2


# ---- secrets and PII ---------------------------------------------------------------------
async def test_no_token_or_number_in_logs_or_answers(
    sink: SmsSink, fake: TwilioFake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers = [
        await deliver(sink),
        await deliver(sink, to_number=OPTED_OUT),
        await deliver(sink, to_number=LANDLINE),
        await deliver(sink, to_number="+44 7700 900999"),
        await deliver(sink, to_number="+447700900777", recipient_id=None),
    ]
    fake.switches.expire_tokens = True
    answers.append(await deliver(sink))
    assert [a.verdict for a in answers] == [
        Verdict.OK, Verdict.DISABLE, Verdict.FATAL, Verdict.FATAL, Verdict.OK, Verdict.REAUTH,
    ]  # fmt: skip
    assert "external call" in caplog.text
    for secret in (TOKEN, "7700900123", "7700900555", "2079460000", "7700900999", "7700900777"):
        assert secret not in caplog.text
        assert all(secret not in repr(a) for a in answers)


# ---- build(env) ---------------------------------------------------------------------------
async def test_build_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, url: str, fake: TwilioFake
) -> None:
    monkeypatch.setenv("WEDSYNC_SMS_ACCOUNT_SID", SID)
    monkeypatch.setenv("WEDSYNC_SMS_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("WEDSYNC_SMS_FROM_NUMBER", SENDER)
    monkeypatch.setenv("WEDSYNC_SMS_API_BASE_URL", url)
    monkeypatch.setenv("WEDSYNC_SMS_RATE_PER_S", "2")
    connector = build(
        SinkEnv(
            OutboundPolicy.loopback_for_tests(url), MemoryCredentialStore(), settings=read_settings
        )
    )
    try:
        assert connector.limit(record())[1].rate_per_s == 2.0
        fake.switches.expire_tokens = True
        rec = record()
        assert (await connector.deliver(rec, ctx(rec["delivery_id"]))).verdict is Verdict.REAUTH
        fake.issue_token(NEW_TOKEN)
        monkeypatch.setenv("WEDSYNC_SMS_AUTH_TOKEN", NEW_TOKEN)  # the operator rotates it
        answer = await connector.deliver(rec, ctx(rec["delivery_id"], refresh=True))
        assert answer.verdict is Verdict.OK
    finally:
        await connector.aclose()


def test_config_needs_a_sender(url: str) -> None:
    with pytest.raises(ValueError, match="FROM_NUMBER"):
        config(url, from_number=None)


# ---- the fake's own routes and switches ---------------------------------------------------
async def test_fake_refuses_bad_credentials_with_20003(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, auth=(SID, "wrong")) as client:
        answer = await client.post(
            f"/2010-04-01/Accounts/{SID}/Messages.json",
            data={"To": NUMBER, "From": SENDER, "Body": "x"},
        )
    assert answer.status_code == 401
    assert answer.json()["code"] == 20003


async def test_fake_validates_e164_and_stores_fetchable_messages(
    url: str, fake: TwilioFake
) -> None:
    async with httpx.AsyncClient(base_url=url, auth=(SID, TOKEN)) as client:
        bad = await client.post(
            f"/2010-04-01/Accounts/{SID}/Messages.json",
            data={"To": "12345", "From": SENDER, "Body": "x"},
        )
        good = await client.post(
            f"/2010-04-01/Accounts/{SID}/Messages.json",
            data={"To": NUMBER, "From": SENDER, "Body": "x"},
        )
        fetched = await client.get(f"/2010-04-01/Accounts/{SID}/Messages/{good.json()['sid']}.json")
    assert (bad.status_code, bad.json()["code"]) == (400, 21211)
    assert (good.status_code, good.json()["status"]) == (201, "queued")
    assert fetched.json()["body"] == "x"


async def test_fake_control_routes(url: str, fake: TwilioFake) -> None:
    async with httpx.AsyncClient(base_url=url, auth=(SID, TOKEN)) as client:
        await client.post("/_fake/control", json={"throttle_next": 1, "retry_after_s": 2})
        await client.post("/_fake/twilio", json={"opted_out": [NUMBER]})
        throttled = await client.post(
            f"/2010-04-01/Accounts/{SID}/Messages.json",
            data={"To": NUMBER, "From": SENDER, "Body": "x"},
        )
        stopped = await client.post(
            f"/2010-04-01/Accounts/{SID}/Messages.json",
            data={"To": NUMBER, "From": SENDER, "Body": "x"},
        )
        stats = (await client.get("/_fake/stats")).json()
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "2")
    assert throttled.json()["code"] == 20429
    assert stopped.json()["code"] == 21610
    assert stats["counters"]["injected_throttle"] == 1
    assert stats["messages"] == []
