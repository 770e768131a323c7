"""GoogleCalendarConnector against GoogleCalendarFake over loopback."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from connectors.calendar.google.config import GoogleConfig
from connectors.calendar.google.sink import GoogleCalendarConnector
from connectors.sinks.answer import Verdict
from connectors.sinks.base import DeliveryContext, Limits
from connectors.sinks.credentials import MemoryCredentialStore
from connectors.sinks.outbound import OutboundPolicy
from pydantic import SecretStr
from streams.app.sinks import read_settings
from streams.dev.fakes.google import GoogleCalendarFake
from streams.dev.fakes.kit import FakeServer

REFRESH = "1//refresh-token-SECRET-value"
CLIENT_SECRET = "client-secret-SECRET"
EXTERNAL = "0123456789abcdefghijklmnopqrstuv"


@pytest.fixture
def fake() -> Iterator[GoogleCalendarFake]:
    provider = GoogleCalendarFake(client_id="app-id", client_secret=CLIENT_SECRET)
    with FakeServer(provider) as server:
        provider.base_url = server.url  # type: ignore[attr-defined]
        yield provider


@pytest.fixture
async def sink(fake: GoogleCalendarFake) -> AsyncIterator[GoogleCalendarConnector]:
    base = fake.base_url  # type: ignore[attr-defined]
    config = GoogleConfig(
        client_id="app-id",
        client_secret=SecretStr(CLIENT_SECRET),
        token_url=f"{base}/token",
        api_base_url=base,
    )
    connector = GoogleCalendarConnector(OutboundPolicy.loopback_for_tests(base), config)
    yield connector
    await connector.aclose()


@pytest.fixture
def store() -> MemoryCredentialStore:
    return MemoryCredentialStore({("integration", "int-1"): {"api_key": REFRESH}})


def record(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "delivery_id": "d-1",
        "aggregate_version": 1,
        "provider": "google",
        "calendar_id": "primary",
        "operation": "upsert",
        "external_event_id": EXTERNAL,
        "title": "Wedding: Ana & Ben",
        "description": "Ceremony",
        "location": "Old Mill",
        "starts_at_ms": 1_780_000_000_000,
        "ends_at_ms": 1_780_003_600_000,
        "time_zone": "Europe/London",
        "all_day": False,
        "integration_id": "int-1",
    }
    return {**base, **overrides}


def ctx(
    store: MemoryCredentialStore, *, refresh: bool = False, key: str = "d-1"
) -> DeliveryContext:
    return DeliveryContext(credentials=store, idempotency_key=key, attempt=0, refresh=refresh)


def stored(fake: GoogleCalendarFake) -> list[dict[str, Any]]:
    return list(fake.stats()["events"])


async def test_upsert_creates_the_event_with_our_id(sink, fake, store) -> None:
    answer = await sink.deliver(record(), ctx(store))
    assert answer.verdict is Verdict.OK
    assert answer.provider_id == EXTERNAL
    assert fake.counters["events_created"] == 1
    [event] = stored(fake)
    assert event["id"] == EXTERNAL
    assert event["summary"] == "Wedding: Ana & Ben"
    assert event["start"] == {"dateTime": "2026-05-28T21:26:40+01:00", "timeZone": "Europe/London"}


async def test_second_upsert_patches_without_a_second_event(sink, fake, store) -> None:
    await sink.deliver(record(), ctx(store))
    answer = await sink.deliver(record(title="Moved", aggregate_version=2), ctx(store, key="d-2"))
    assert answer.verdict is Verdict.OK
    assert fake.counters["events_created"] == 1
    assert fake.counters["events_patched"] == 1
    [event] = stored(fake)
    assert event["summary"] == "Moved"


async def test_repeated_delivery_is_one_event(sink, fake, store) -> None:
    for _ in range(3):
        assert (await sink.deliver(record(), ctx(store))).ok
    assert fake.counters["events_created"] == 1
    assert fake.counters["events_patched"] == 0
    assert len(stored(fake)) == 1


async def test_older_version_arriving_late_does_not_overwrite(sink, fake, store) -> None:
    await sink.deliver(record(title="v5", aggregate_version=5), ctx(store))
    late = await sink.deliver(record(title="v4", aggregate_version=4), ctx(store, key="d-2"))
    assert late.verdict is Verdict.OK
    assert stored(fake)[0]["summary"] == "v5"
    assert fake.counters["events_patched"] == 0


async def test_older_delete_does_not_remove_a_newer_upsert(sink, fake, store) -> None:
    await sink.deliver(record(aggregate_version=5), ctx(store))
    late = await sink.deliver(record(operation="delete", aggregate_version=4), ctx(store))
    assert late.verdict is Verdict.OK
    assert stored(fake)[0]["status"] == "confirmed"
    assert fake.counters["events_deleted"] == 0


async def test_patch_sends_if_match_of_the_read_etag(sink, fake, store) -> None:
    await sink.deliver(record(), ctx(store))
    fake.conflict_next = 0
    before = stored(fake)[0]["etag"]
    assert (await sink.deliver(record(title="B", aggregate_version=2), ctx(store))).ok
    assert stored(fake)[0]["etag"] != before
    assert fake.if_match_seen == [before]


async def test_non_base32hex_external_id_gets_a_valid_derived_id(sink, fake, store) -> None:
    answer = await sink.deliver(record(external_event_id="wedding:42/vendor:7"), ctx(store))
    assert answer.ok
    [event] = stored(fake)
    assert event["id"] == answer.provider_id
    assert len(event["id"]) == 52


async def test_delete_cancels_then_repeated_delete_is_ok(sink, fake, store) -> None:
    await sink.deliver(record(), ctx(store))
    delete = record(operation="delete", aggregate_version=2)
    first = await sink.deliver(delete, ctx(store, key="d-2"))
    again = await sink.deliver(delete, ctx(store, key="d-2"))
    assert first.verdict is Verdict.OK
    assert again.verdict is Verdict.OK and again.status == 410
    assert fake.counters["events_deleted"] == 1
    assert stored(fake)[0]["status"] == "cancelled"


async def test_delete_of_an_unknown_event_is_ok(sink, fake, store) -> None:
    answer = await sink.deliver(record(operation="delete"), ctx(store))
    assert answer.verdict is Verdict.OK and answer.status == 404
    assert fake.counters["events_deleted"] == 0


async def test_upsert_after_delete_restores_the_event(sink, fake, store) -> None:
    await sink.deliver(record(), ctx(store))
    await sink.deliver(record(operation="delete", aggregate_version=2), ctx(store, key="d-2"))
    answer = await sink.deliver(record(aggregate_version=3), ctx(store, key="d-3"))
    assert answer.ok
    assert stored(fake)[0]["status"] == "confirmed"
    assert fake.counters["events_created"] == 1


async def test_expired_token_is_reauth_then_refresh_succeeds(sink, fake, store) -> None:
    assert (await sink.deliver(record(), ctx(store))).ok
    fake.switches.expire_tokens = True
    refused = await sink.deliver(record(title="B", aggregate_version=2), ctx(store, key="d-2"))
    assert refused.verdict is Verdict.REAUTH
    assert refused.error_class == "google.authError"
    update = record(title="B", aggregate_version=2)
    again = await sink.deliver(update, ctx(store, key="d-2", refresh=True))
    assert again.verdict is Verdict.OK
    assert fake.counters["tokens_issued"] == 2
    assert stored(fake)[0]["summary"] == "B"


async def test_access_token_is_cached_between_deliveries(sink, fake, store) -> None:
    for key in ("d-1", "d-2", "d-3"):
        await sink.deliver(record(), ctx(store, key=key))
    assert fake.counters["tokens_issued"] == 1


async def test_revoked_refresh_token_is_reauth(sink, fake, store) -> None:
    fake.switches.revoke_refresh = True
    answer = await sink.deliver(record(), ctx(store, refresh=True))
    assert answer.verdict is Verdict.REAUTH
    assert answer.error_class == "google.oauth.invalid_grant"
    assert fake.counters["events_created"] == 0


async def test_wrong_client_secret_is_fatal(fake, store) -> None:
    base = fake.base_url  # type: ignore[attr-defined]
    config = GoogleConfig(
        client_id="app-id", client_secret=SecretStr("nope"), token_url=f"{base}/token",
        api_base_url=base,
    )  # fmt: skip
    connector = GoogleCalendarConnector(OutboundPolicy.loopback_for_tests(base), config)
    try:
        answer = await connector.deliver(record(), ctx(store))
    finally:
        await connector.aclose()
    assert answer.verdict is Verdict.FATAL
    assert answer.error_class == "google.oauth.invalid_client"


async def test_throttle_429_is_backpressure_with_retry_after(sink, fake, store) -> None:
    fake.switches.retry_after_s = 7
    fake.switches.throttle_next = 1
    answer = await sink.deliver(record(), ctx(store))
    assert answer.verdict is Verdict.BACKPRESSURE
    assert answer.error_class == "google.rateLimitExceeded"
    assert answer.retry_after == 7.0


async def test_throttle_403_is_backpressure_without_retry_after(sink, fake, store) -> None:
    fake.throttle_status = 403
    fake.switches.throttle_next = 1
    answer = await sink.deliver(record(), ctx(store))
    assert answer.verdict is Verdict.BACKPRESSURE
    assert answer.status == 403
    assert answer.retry_after is None


async def test_backend_error_is_retry(sink, fake, store) -> None:
    fake.switches.fail_next = 1
    answer = await sink.deliver(record(), ctx(store))
    assert answer.verdict is Verdict.RETRY
    assert answer.error_class == "google.backendError"
    assert answer.status == 500
    assert (await sink.deliver(record(), ctx(store))).ok


async def test_conflict_on_patch_refetches_and_reapplies_once(sink, fake, store) -> None:
    await sink.deliver(record(), ctx(store))
    fake.conflict_next = 1
    update = record(title="After conflict", aggregate_version=2)
    answer = await sink.deliver(update, ctx(store, key="d-2"))
    assert answer.verdict is Verdict.OK
    assert stored(fake)[0]["summary"] == "After conflict"


async def test_repeated_conflict_is_retry(sink, fake, store) -> None:
    await sink.deliver(record(), ctx(store))
    fake.conflict_next = 2
    answer = await sink.deliver(record(title="X", aggregate_version=2), ctx(store, key="d-2"))
    assert answer.verdict is Verdict.RETRY
    assert answer.error_class == "google.conditionNotMet"


async def test_missing_integration_id_is_fatal(sink, store) -> None:
    answer = await sink.deliver(record(integration_id=None), ctx(store))
    assert answer.verdict is Verdict.FATAL


async def test_unknown_time_zone_is_fatal(sink, fake, store) -> None:
    answer = await sink.deliver(record(time_zone="Mars/Olympus"), ctx(store))
    assert answer.verdict is Verdict.FATAL
    assert answer.error_class == "google.bad_record"
    assert fake.counters["events_created"] == 0


async def test_nothing_secret_in_logs_or_answers(sink, fake, store, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    answers = [await sink.deliver(record(), ctx(store))]
    fake.switches.expire_tokens = True
    answers.append(await sink.deliver(record(), ctx(store)))
    fake.switches.revoke_refresh = True
    answers.append(await sink.deliver(record(), ctx(store, refresh=True)))
    tokens = list(fake.tokens.issued) if fake.tokens else []
    assert len(tokens) == 1
    text = caplog.text + " ".join(f"{a.message} {a.error_class}" for a in answers)
    for secret in [REFRESH, CLIENT_SECRET, "Bearer", "ya29.", *tokens]:
        assert secret not in text
    assert "external call" in caplog.text  # the audit line is there, without secrets


def test_fake_switches_over_http(fake) -> None:
    base = fake.base_url  # type: ignore[attr-defined]
    with httpx.Client() as client:
        assert client.post(f"{base}/_fake/control", json={"throttle_next": 1}).status_code == 200
        token = client.post(
            f"{base}/token",
            data={"grant_type": "refresh_token", "refresh_token": "r", "client_id": "app-id",
                  "client_secret": CLIENT_SECRET},
        ).json()["access_token"]  # fmt: skip
        path = f"{base}/calendar/v3/calendars/primary/events"
        headers = {"Authorization": f"Bearer {token}"}
        throttled = client.post(path, json={"id": "abcde"}, headers=headers)
        assert throttled.status_code == 429
        assert throttled.json()["error"]["errors"][0]["reason"] == "rateLimitExceeded"
        bad_id = client.post(
            path, json={"id": "WXYZ!", "start": {}, "end": {}}, headers=headers
        )  # fmt: skip
        assert bad_id.status_code == 400
        assert bad_id.json()["error"]["errors"][0]["reason"] == "invalid"
        stats = client.get(f"{base}/_fake/stats").json()
        assert stats["counters"]["tokens_issued"] == 1
        assert stats["counters"]["injected_throttle"] == 1


async def test_build_reads_its_settings_from_the_environment(monkeypatch) -> None:
    from connectors.calendar.google.sink import build
    from connectors.sinks.base import SinkEnv

    monkeypatch.setenv("WEDSYNC_GOOGLE_CLIENT_ID", "env-app")
    monkeypatch.setenv("WEDSYNC_GOOGLE_API_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WEDSYNC_GOOGLE_RATE_PER_S", "2.5")
    env = SinkEnv(
        policy=OutboundPolicy.loopback_for_tests(),
        credentials=MemoryCredentialStore(),
        settings=read_settings,
    )
    connector = build(env)
    try:
        assert connector.config.client_id == "env-app"
        assert connector.config.api_base_url == "http://127.0.0.1:9"
        assert connector.config.token_url == "https://oauth2.googleapis.com/token"
        assert connector.limit(record()) == ("google:int-1", Limits(rate_per_s=2.5, burst=5))
        assert connector.target(record()) == "calendar:int-1"
        assert connector.credential_key(record()) == "integration:int-1"
    finally:
        await connector.aclose()


def wall_clock(**overrides: Any) -> dict[str, Any]:
    """A wedding whose zone routing did not know (the platform stores none)."""
    wall = {
        "starts_at_ms": None,
        "ends_at_ms": None,
        "time_zone": None,
        "local_start": "2027-06-12T14:00:00",
        "local_end": "2027-06-12T22:00:00",
    }
    return record(**{**wall, **overrides})


async def test_a_wall_clock_event_is_placed_in_the_calendars_own_zone(sink, fake, store) -> None:
    fake.time_zones["primary"] = "America/New_York"
    answer = await sink.deliver(wall_clock(), ctx(store))
    assert answer.verdict is Verdict.OK
    [event] = stored(fake)
    assert event["start"] == {"dateTime": "2027-06-12T14:00:00", "timeZone": "America/New_York"}
    assert event["end"] == {"dateTime": "2027-06-12T22:00:00", "timeZone": "America/New_York"}


async def test_the_calendars_zone_is_asked_once_per_calendar(sink, fake, store) -> None:
    for n in range(3):
        await sink.deliver(wall_clock(aggregate_version=n + 1), ctx(store, key=f"d-{n}"))
    assert fake.counters["calendars_read"] == 1


async def test_the_calendars_zone_comes_before_the_integrations_fallback(sink, fake, store) -> None:
    fake.time_zones["primary"] = "Asia/Tokyo"
    await sink.deliver(wall_clock(fallback_time_zone="Europe/Paris"), ctx(store))
    assert stored(fake)[0]["start"]["timeZone"] == "Asia/Tokyo"


async def test_a_refused_calendar_read_is_answered_like_any_call(sink, fake, store) -> None:
    fake.switches.fail_next = 1
    answer = await sink.deliver(wall_clock(), ctx(store))
    assert answer.verdict is Verdict.RETRY
    assert fake.counters["events_created"] == 0
