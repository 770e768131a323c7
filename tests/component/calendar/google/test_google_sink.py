"""GoogleCalendarConnector against GoogleCalendarFake over loopback."""

from __future__ import annotations

from contextlib import aclosing

import httpx
import pytest
from connectors.sinks.answer import Verdict
from connectors.sinks.base import Limits

from tests.component.calendar.sinks import (
    GOOGLE,
    GOOGLE_EXTERNAL,
    GOOGLE_SECRET,
    WALL_CLOCK,
    Provider,
    ctx,
    environment,
    refresh_grant,
    stored,
)
from tests.component.calendar.sinks import google_record as record


@pytest.fixture
def provider() -> Provider:
    return GOOGLE


async def test_upsert_creates_the_event_with_our_id(sink, fake, store) -> None:
    answer = await sink.deliver(record(), ctx(store))
    assert answer.verdict is Verdict.OK
    assert answer.provider_id == GOOGLE_EXTERNAL
    assert fake.counters["events_created"] == 1
    [event] = stored(fake)
    assert event["id"] == GOOGLE_EXTERNAL
    assert event["summary"] == "Wedding: Ana & Ben"
    assert event["start"] == {"dateTime": "2026-05-28T21:26:40+01:00", "timeZone": "Europe/London"}


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


async def test_access_token_is_cached_between_deliveries(sink, fake, store) -> None:
    for key in ("d-1", "d-2", "d-3"):
        await sink.deliver(record(), ctx(store, key=key))
    assert fake.counters["tokens_issued"] == 1


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


async def test_missing_integration_id_is_fatal(sink, store) -> None:
    answer = await sink.deliver(record(integration_id=None), ctx(store))
    assert answer.verdict is Verdict.FATAL


async def test_unknown_time_zone_is_fatal(sink, fake, store) -> None:
    answer = await sink.deliver(record(time_zone="Mars/Olympus"), ctx(store))
    assert answer.verdict is Verdict.FATAL
    assert answer.error_class == "google.bad_record"
    assert fake.counters["events_created"] == 0


def test_fake_switches_over_http(fake) -> None:
    base = fake.base_url
    with httpx.Client() as client:
        assert client.post(f"{base}/_fake/control", json={"throttle_next": 1}).status_code == 200
        grant = refresh_grant("r", GOOGLE_SECRET)
        token = client.post(f"{base}/token", data=grant).json()["access_token"]
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

    monkeypatch.setenv("WEDSYNC_GOOGLE_CLIENT_ID", "env-app")
    monkeypatch.setenv("WEDSYNC_GOOGLE_API_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WEDSYNC_GOOGLE_RATE_PER_S", "2.5")
    async with aclosing(build(environment())) as connector:
        assert connector.config.client_id == "env-app"
        assert connector.config.api_base_url == "http://127.0.0.1:9"
        assert connector.config.token_url == "https://oauth2.googleapis.com/token"
        assert connector.limit(record()) == ("google:int-1", Limits(rate_per_s=2.5, burst=5))
        assert connector.target(record()) == "calendar:int-1"
        assert connector.credential_key(record()) == "integration:int-1"


async def test_a_wall_clock_event_is_placed_in_the_calendars_own_zone(sink, fake, store) -> None:
    fake.time_zones["primary"] = "America/New_York"
    answer = await sink.deliver(record(**WALL_CLOCK), ctx(store))
    assert answer.verdict is Verdict.OK
    [event] = stored(fake)
    assert event["start"] == {"dateTime": "2027-06-12T14:00:00", "timeZone": "America/New_York"}
    assert event["end"] == {"dateTime": "2027-06-12T22:00:00", "timeZone": "America/New_York"}


async def test_the_calendars_zone_comes_before_the_integrations_fallback(sink, fake, store) -> None:
    fake.time_zones["primary"] = "Asia/Tokyo"
    await sink.deliver(record(**WALL_CLOCK, fallback_time_zone="Europe/Paris"), ctx(store))
    assert stored(fake)[0]["start"]["timeZone"] == "Asia/Tokyo"


async def test_a_refused_calendar_read_is_answered_like_any_call(sink, fake, store) -> None:
    fake.switches.fail_next = 1
    answer = await sink.deliver(record(**WALL_CLOCK), ctx(store))
    assert answer.verdict is Verdict.RETRY
    assert fake.counters["events_created"] == 0
