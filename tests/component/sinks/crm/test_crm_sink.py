"""The real CrmSink against the CrmFake over loopback."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from connectors.sinks.answer import Verdict
from connectors.sinks.base import DeliveryContext, SinkEnv
from connectors.sinks.credentials import Kind, MemoryCredentialStore
from connectors.sinks.crm.config import CrmConfig
from connectors.sinks.crm.sink import CrmSink, build
from connectors.sinks.outbound import OutboundPolicy
from streams.app.sinks import read_settings
from streams.dev.fakes.crm import CrmFake
from streams.dev.fakes.kit import FakeServer, Switches
from streams.topics import Destination

KEY = "crm_key_9f8e7d6c5b4a"
PHOTO: dict[str, Any] = {
    "event_type": "wedding_date_changed",
    "wedding_id": "w-1",
    "client_name": "Ann & Bob",
    "wedding_date": "2027-06-12",
    "ceremony_time": "2027-06-12T14:00:00+01:00",
    "venue_name": "Old Mill",
    "guest_count": 120,
    "photographer_notes": "golden hour",
    "updated_at": "2027-01-01T10:00:00Z",
}
VENUE: dict[str, Any] = {
    "booking_id": "w-1",
    "event_date": "2027-06-12",
    "party_size": 120,
    "setup_time": None,
    "ceremony_start": "2027-06-12T14:00:00+01:00",
    "reception_start": None,
    "special_requirements": "step-free",
    "coordinator_notes": None,
    "last_updated": "2027-01-01T10:00:00Z",
}


class RecordingStore(MemoryCredentialStore):
    """Counts invalidations (the in-memory store has no cache to drop)."""

    def __init__(self, rows: Any) -> None:
        super().__init__(rows)
        self.invalidated: list[tuple[str, str]] = []

    def invalidate(self, kind: Kind, key: str) -> None:
        self.invalidated.append((kind, key))


@pytest.fixture
def crm() -> Iterator[tuple[CrmFake, FakeServer]]:
    fake = CrmFake([KEY], username="studio")
    with FakeServer(fake) as server:
        yield fake, server


@pytest.fixture
async def sink(crm: Any) -> AsyncIterator[CrmSink]:
    s = CrmSink(CrmConfig(), OutboundPolicy.loopback_for_tests(crm[1].port))
    yield s
    await s.aclose()


def store(key: str = KEY, **settings: Any) -> RecordingStore:
    row = {"integration_type": "photography_crm", "api_key": key, "settings": settings}
    return RecordingStore({("integration", "int-1"): row})


def ctx(creds: MemoryCredentialStore, key: str = "dlv-1", refresh: bool = False) -> Any:
    return DeliveryContext(credentials=creds, idempotency_key=key, attempt=0, refresh=refresh)


def rec(
    kind: str, url: str, scheme: str = "bearer", payload: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "delivery_id": "dlv-1",
        "integration_id": "int-1",
        "crm_kind": kind,
        "endpoint_url": url,
        "auth_scheme": scheme,
        "payload": dict(PHOTO if payload is None else payload),
    }


async def test_photography_webhook_delivers_with_bearer(crm: Any, sink: CrmSink) -> None:
    fake, server = crm
    answer = await sink.deliver(
        rec("photography_crm", server.url + "/photography/webhook"), ctx(store())
    )
    assert (answer.verdict, answer.status, answer.provider_id) == (Verdict.OK, 200, "evt_1")
    got = fake.stats()["received"][0]
    assert got["auth"] == "bearer"
    assert got["body"] == PHOTO
    assert got["idempotency_key"] == "dlv-1"
    assert got["content_type"] == "application/json"
    assert got["user_agent"] == "wedsync-crm/1"


async def test_venue_booking_delivers_with_the_venue_key(crm: Any, sink: CrmSink) -> None:
    fake, server = crm
    record = rec("venue_booking", server.url + "/venue/bookings", "api_key_header", VENUE)
    answer = await sink.deliver(record, ctx(store()))
    assert (answer.verdict, answer.status) == (Verdict.OK, 201)
    got = fake.stats()["received"][0]
    assert (got["route"], got["auth"], got["body"]) == ("venue", "x-venue-api-key", VENUE)


async def test_tave_lead_then_a_duplicate_lead_is_ok_without_a_side_effect(
    crm: Any, sink: CrmSink
) -> None:
    fake, server = crm
    record = rec("tave", server.url + "/tave", payload={**PHOTO, "event_type": "form_response"})
    first = await sink.deliver(record, ctx(store(), "dlv-1"))
    second = await sink.deliver(record, ctx(store(), "dlv-2"))
    assert (first.verdict, first.status, first.provider_id) == (Verdict.OK, 201, "lead_1")
    assert (second.verdict, second.status, second.provider_id) == (Verdict.OK, 409, "lead_1")
    assert fake.counters["side_effects"] == 1
    got = fake.stats()["received"][0]
    assert (got["route"], got["auth"]) == ("tave.leads", "x-api-key")
    assert got["body"]["external_id"] == "w-1"


async def test_tave_base_url_from_config(crm: Any) -> None:
    fake, server = crm
    s = CrmSink(
        CrmConfig(tave_base_url=server.url + "/tave"),
        OutboundPolicy.loopback_for_tests(server.port),
    )
    try:
        answer = await s.deliver(rec("tave", "https://tave.example.com"), ctx(store()))
    finally:
        await s.aclose()
    assert (answer.verdict, answer.provider_id) == (Verdict.OK, "job_1")
    assert fake.stats()["received"][0]["route"] == "tave.jobs"


async def test_honeybook_project(crm: Any, sink: CrmSink) -> None:
    fake, server = crm
    answer = await sink.deliver(rec("honeybook", server.url + "/honeybook"), ctx(store()))
    assert (answer.verdict, answer.status, answer.provider_id) == (Verdict.OK, 201, "proj_1")
    got = fake.stats()["received"][0]
    assert (got["auth"], got["body"]["external_reference"]) == ("bearer", "w-1")


async def test_custom_with_basic_auth(crm: Any, sink: CrmSink) -> None:
    fake, server = crm
    record = rec("custom", server.url + "/generic/mailer", "basic")
    answer = await sink.deliver(record, ctx(store(username="studio")))
    assert answer.verdict is Verdict.OK
    assert fake.stats()["received"][0]["auth"] == "basic"


async def test_light_blue_with_no_auth_reads_no_credential(crm: Any, sink: CrmSink) -> None:
    _fake, server = crm
    creds = store()
    answer = await sink.deliver(rec("light_blue", server.url + "/open/lb", "none"), ctx(creds))
    assert answer.verdict is Verdict.OK
    assert creds.reads == 0


async def test_basic_without_username_is_fatal_without_a_call(crm: Any, sink: CrmSink) -> None:
    fake, server = crm
    answer = await sink.deliver(rec("custom", server.url + "/generic/x", "basic"), ctx(store()))
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "crm.no_credential")
    assert fake.counters["requests"] == 0


async def test_same_delivery_twice_is_one_side_effect(crm: Any, sink: CrmSink) -> None:
    fake, server = crm
    record = rec("photography_crm", server.url + "/photography/webhook")
    first = await sink.deliver(record, ctx(store()))
    second = await sink.deliver(record, ctx(store()))
    assert (first.verdict, second.verdict) == (Verdict.OK, Verdict.OK)
    assert first.provider_id == second.provider_id == "evt_1"
    assert fake.counters["side_effects"] == 1
    assert fake.counters["replayed"] == 1


async def test_throttle_is_backpressure_with_the_seconds(crm: Any, sink: CrmSink) -> None:
    fake, server = crm
    fake.switches.throttle_next = 1
    fake.switches.retry_after_s = 9
    answer = await sink.deliver(
        rec("photography_crm", server.url + "/photography/webhook"), ctx(store())
    )
    assert (answer.verdict, answer.retry_after, answer.status) == (Verdict.BACKPRESSURE, 9.0, 429)
    assert fake.counters["side_effects"] == 0


async def test_server_error_is_retry(crm: Any, sink: CrmSink) -> None:
    fake, server = crm
    fake.switches.fail_next = 1
    fake.switches.fail_status = 502
    answer = await sink.deliver(
        rec("photography_crm", server.url + "/photography/webhook"), ctx(store())
    )
    assert (answer.verdict, answer.error_class) == (Verdict.RETRY, "crm.502")


async def test_validation_error_is_fatal(crm: Any, sink: CrmSink) -> None:
    _fake, server = crm
    record = rec("photography_crm", server.url + "/photography/webhook", payload={"x": 1})
    answer = await sink.deliver(record, ctx(store()))
    assert (answer.verdict, answer.error_class) == (
        Verdict.FATAL,
        "photography_crm.validation_error",
    )


async def test_gone_disables(crm: Any, sink: CrmSink) -> None:
    _fake, server = crm
    answer = await sink.deliver(rec("custom", server.url + "/gone"), ctx(store()))
    assert (answer.verdict, answer.status) == (Verdict.DISABLE, 410)


async def test_redirect_is_not_followed(crm: Any, sink: CrmSink) -> None:
    fake, server = crm
    answer = await sink.deliver(rec("photography_crm", server.url + "/moved"), ctx(store()))
    assert (answer.verdict, answer.status) == (Verdict.FATAL, 302)
    assert fake.counters["moved"] == 1
    assert fake.counters["requests"] == 1
    assert fake.counters["side_effects"] == 0


async def test_wrong_key_is_reauth_then_a_reconnected_key_succeeds(crm: Any, sink: CrmSink) -> None:
    fake, server = crm
    creds = store("old-key")
    record = rec("photography_crm", server.url + "/photography/webhook")
    first = await sink.deliver(record, ctx(creds))
    assert (first.verdict, first.status) == (Verdict.REAUTH, 401)
    assert first.error_class == "photography_crm.invalid_api_key"
    creds.set("integration", "int-1", {"api_key": KEY, "settings": {}})
    second = await sink.deliver(record, ctx(creds, refresh=True))
    assert second.verdict is Verdict.OK
    assert creds.invalidated == [("integration", "int-1")]
    assert fake.counters["side_effects"] == 1


async def test_reauth_failing_stays_reauth(crm: Any, sink: CrmSink) -> None:
    fake, server = crm
    fake.switches.expire_tokens = True
    record = rec("tave", server.url + "/tave")
    first = await sink.deliver(record, ctx(store()))
    second = await sink.deliver(record, ctx(store(), refresh=True))
    assert (first.verdict, second.verdict) == (Verdict.REAUTH, Verdict.REAUTH)
    assert second.error_class == "tave.invalid_api_key"
    assert fake.counters["unauthorized"] == 2


async def test_missing_credential_is_fatal(crm: Any, sink: CrmSink) -> None:
    fake, server = crm
    record = rec("photography_crm", server.url + "/photography/webhook")
    answer = await sink.deliver(record, ctx(MemoryCredentialStore()))
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "crm.no_credential")
    assert fake.counters["requests"] == 0


async def test_unknown_kind_is_fatal(sink: CrmSink) -> None:
    answer = await sink.deliver(rec("salesforce", "https://x.example.com"), ctx(store()))
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "crm.unknown_kind")


async def test_private_address_is_refused_by_the_default_policy(crm: Any) -> None:
    fake, server = crm
    s = CrmSink(CrmConfig(), OutboundPolicy())
    url = f"https://127.0.0.1:{server.port}/photography/webhook"
    try:
        answer = await s.deliver(rec("photography_crm", url), ctx(store()))
    finally:
        await s.aclose()
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "crm.refused")
    assert "not public" in answer.message
    assert fake.counters["requests"] == 0


async def test_private_name_is_refused_at_connect_time(crm: Any) -> None:
    fake, server = crm
    s = CrmSink(CrmConfig(), OutboundPolicy.parse(allow_http_hosts=f"localhost:{server.port}"))
    url = f"http://localhost:{server.port}/photography/webhook"
    try:
        answer = await s.deliver(rec("photography_crm", url), ctx(store()))
    finally:
        await s.aclose()
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "crm.refused")
    assert fake.counters["requests"] == 0


async def test_nothing_secret_is_logged_or_answered(
    crm: Any, sink: CrmSink, caplog: pytest.LogCaptureFixture
) -> None:
    fake, server = crm
    caplog.set_level(logging.DEBUG)
    url = server.url + "/photography/webhook"
    answers = [await sink.deliver(rec("photography_crm", url), ctx(store()))]
    answers.append(await sink.deliver(rec("photography_crm", url), ctx(store("bad"), "d2")))
    fake.switches.fail_next = 1
    answers.append(await sink.deliver(rec("photography_crm", url), ctx(store(), "d3")))
    answers.append(await sink.deliver(rec("custom", url, "basic"), ctx(store(), "d4")))
    # httpx's own INFO line logs the full URL (outbound.py's client, reported upstream).
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    text = "\n".join(ours) + " ".join(repr(a) for a in answers)
    assert "external call destination=crm target=crm:int-1" in text
    for secret in (KEY, "/photography/webhook", "Ann & Bob", "golden hour"):
        assert secret not in text


def test_target_limit_and_credential_key(sink: CrmSink) -> None:
    r = rec("custom", "https://x.example.com/")
    assert sink.target(r) == "crm:int-1"
    key, limits = sink.limit(r)
    assert (key, limits.rate_per_s) == ("crm:int-1", 5.0)
    assert sink.credential_key(r) == "integration:int-1"
    assert sink.destination is Destination.CRM


async def test_build_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEDSYNC_CRM_RATE_PER_S", "2.5")
    monkeypatch.setenv("WEDSYNC_CRM_HONEYBOOK_BASE_URL", "https://hb.example.com")
    s = build(
        SinkEnv(
            policy=OutboundPolicy(), credentials=MemoryCredentialStore(), settings=read_settings
        )
    )
    try:
        assert s.config.rate_per_s == 2.5
        assert s.config.honeybook_base_url == "https://hb.example.com"
        assert s.limit(rec("custom", "https://x"))[1].rate_per_s == 2.5
    finally:
        await s.aclose()


async def test_fake_switches_and_auth_over_http(crm: Any) -> None:
    _fake, server = crm
    async with httpx.AsyncClient(base_url=server.url) as client:
        r = await client.post("/_fake/control", json={"throttle_next": 1, "retry_after_s": 4})
        assert r.status_code == 200
        auth = {"X-Venue-API-Key": KEY}
        throttled = await client.post("/venue/bookings", json={"booking_id": "b"}, headers=auth)
        no_key = await client.post("/venue/bookings", json={"booking_id": "b"})
        bearer = await client.post(
            "/venue/bookings", json={"booking_id": "b"}, headers={"Authorization": f"Bearer {KEY}"}
        )
        created = await client.post("/venue/bookings", json={"booking_id": "b"}, headers=auth)
        stats = (await client.get("/_fake/stats")).json()
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "4")
    assert (no_key.status_code, bearer.status_code, created.status_code) == (401, 401, 201)
    assert stats["counters"]["side_effects"] == 1
    assert KEY not in str(stats)


def test_fake_reads_keys_from_the_environment_like_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEDSYNC_FAKE_CRM_KEYS", "k1,k2")
    fake = CrmFake(switches=Switches(throttle_next=2))
    assert fake.api_keys == {"k1", "k2"}
    assert fake.switches.throttle_next == 2


async def test_a_redacted_url_is_read_from_the_integration_row_when_delivering(
    crm: Any, sink: CrmSink
) -> None:
    fake, server = crm
    real = server.url + "/photography/webhook?token=Zx81qT5vW0kLm3NoP9rS2tU7"
    row = {"integration_type": "photography_crm", "api_key": KEY, "webhook_url": real}
    creds = RecordingStore({("integration", "int-1"): row})
    record = rec("photography_crm", server.url + "/photography/webhook?redacted")
    answer = await sink.deliver(record, ctx(creds))
    assert (answer.verdict, answer.status) == (Verdict.OK, 200)
    assert [r["query"] for r in fake.stats()["received"]] == ["token=Zx81qT5vW0kLm3NoP9rS2tU7"]
