"""GraphCalendarConnector against GraphFake over loopback."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import httpx
import pytest
from connectors.sinks.answer import Verdict

from tests.component.calendar.sinks import (
    GRAPH,
    GRAPH_SECRET,
    GRAPH_TOKEN_PATH,
    WALL_CLOCK,
    Provider,
    ctx,
    environment,
    graph_connector,
    refresh_grant,
    stored,
)
from tests.component.calendar.sinks import graph_record as record

PROPERTY = "String {8d3c6a52-4f1e-4b7a-9c2d-5e6f7a8b9c0d} Name wedsyncExternalId"
VERSION = "String {8d3c6a52-4f1e-4b7a-9c2d-5e6f7a8b9c0d} Name wedsyncVersion"


@pytest.fixture
def provider() -> Provider:
    return GRAPH


async def test_upsert_creates_one_event_with_our_property(sink, fake, store) -> None:
    answer = await sink.deliver(record(), ctx(store))
    assert answer.verdict is Verdict.OK
    [event] = fake.events.values()
    assert answer.provider_id == event["id"]
    assert event["subject"] == "Wedding: Ana & Ben"
    assert event["start"] == {"dateTime": "2026-05-28T20:26:40", "timeZone": "UTC"}
    assert event["_properties"] == {PROPERTY: "wedding-42-vendor-7", VERSION: "1"}
    assert fake.counters["events_created"] == 1


async def test_older_delete_does_not_remove_a_newer_upsert(sink, fake, store) -> None:
    await sink.deliver(record(aggregate_version=5), ctx(store))
    late = await sink.deliver(record(operation="delete", aggregate_version=4), ctx(store))
    assert late.verdict is Verdict.OK
    assert len(stored(fake)) == 1
    assert fake.counters["events_deleted"] == 0


async def test_update_stores_the_new_version_and_sends_if_match(sink, fake, store) -> None:
    await sink.deliver(record(), ctx(store))
    [event] = fake.events.values()
    etag = event["@odata.etag"]
    assert (await sink.deliver(record(aggregate_version=7), ctx(store, key="d-2"))).ok
    assert event["_properties"][VERSION] == "7"
    assert fake.if_match_seen == [etag]


async def test_other_calendar_is_addressed_by_id(sink, fake, store) -> None:
    await sink.deliver(record(calendar_id="AAMkCal=="), ctx(store))
    update = record(calendar_id="AAMkCal==", title="B", aggregate_version=2)
    await sink.deliver(update, ctx(store, key="d-2"))
    [event] = fake.events.values()
    assert event["_calendar"] == "AAMkCal=="
    assert fake.counters["events_created"] == 1


async def test_repeated_create_with_same_transaction_id_makes_one_event(fake, store) -> None:
    """The find cannot see the event (as when Graph's index lags): transactionId dedupes."""
    base = fake.base_url
    connector = graph_connector(fake)
    try:
        from connectors.calendar.graph import wire

        request = wire.create_request(record(), "d-1")
        token = await connector.oauth.access_token("int-9", ctx(store))
        assert isinstance(token, str)
        async with httpx.AsyncClient() as client:
            answers = [
                await client.post(
                    base + request.path, json=request.json,
                    headers={"Authorization": f"Bearer {token}"},
                )
                for _ in range(2)
            ]  # fmt: skip
    finally:
        await connector.aclose()
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    assert fake.counters["events_created"] == 1
    assert fake.counters["transaction_replays"] == 1


async def test_delete_removes_then_repeated_delete_is_ok(sink, fake, store) -> None:
    await sink.deliver(record(), ctx(store))
    first = await sink.deliver(record(operation="delete"), ctx(store, key="d-2"))
    again = await sink.deliver(record(operation="delete"), ctx(store, key="d-2"))
    assert first.verdict is Verdict.OK
    assert again.verdict is Verdict.OK
    assert fake.counters["events_deleted"] == 1
    assert stored(fake) == []


async def test_patch_of_a_vanished_event_recreates_it(sink, fake, store) -> None:
    await sink.deliver(record(), ctx(store))
    original = next(iter(fake.events))
    fake.vanish_next = 1  # deleted in Outlook between our find and our patch
    answer = await sink.deliver(record(aggregate_version=2, title="Again"), ctx(store, key="d-2"))
    assert answer.verdict is Verdict.OK
    [event] = stored(fake)
    assert event["id"] != original
    assert event["subject"] == "Again"
    assert fake.counters["events_created"] == 2


async def test_503_with_retry_after_is_backpressure(sink, fake, store) -> None:
    fake.switches.fail_status = 503
    fake.switches.fail_next = 1
    answer = await sink.deliver(record(), ctx(store))
    assert answer.verdict is Verdict.BACKPRESSURE
    assert answer.status == 503
    assert answer.retry_after == 1.0


async def test_500_is_retry(sink, fake, store) -> None:
    fake.switches.fail_status = 500
    fake.switches.fail_next = 1
    answer = await sink.deliver(record(), ctx(store))
    assert answer.verdict is Verdict.RETRY
    assert answer.error_class == "graph.500"
    assert (await sink.deliver(record(), ctx(store))).ok
    assert fake.counters["events_created"] == 1


async def test_mailbox_concurrency_rejections_are_backpressure(sink, fake, store) -> None:
    """Eight deliveries at once, without the runtime's limiter: the mailbox takes four."""
    fake.switches.latency_ms = 800
    answers = await asyncio.gather(
        *(
            sink.deliver(record(external_event_id=f"ev-{i}"), ctx(store, key=f"d-{i}"))
            for i in range(8)
        )
    )
    rejected = [a for a in answers if a.verdict is Verdict.BACKPRESSURE]
    accepted = [a for a in answers if a.verdict is Verdict.OK]
    assert len(rejected) + len(accepted) == 8
    assert len(rejected) >= 4
    assert len(rejected) == fake.counters["concurrency_rejections"]
    assert {a.error_class for a in rejected} == {"graph.MailboxConcurrency"}
    assert all(a.status == 429 and a.retry_after == 1.0 for a in rejected)
    assert fake.counters["events_created"] == len(accepted) >= 1


def test_connector_limits_one_mailbox_to_four_concurrent(sink) -> None:
    key, limits = sink.limit(record())
    assert key == "graph:int-9"
    assert limits.concurrency == 4
    assert limits.rate_per_s == pytest.approx(10_000 / 600)


def test_fake_switches_and_filter_over_http(fake) -> None:
    base = fake.base_url
    with httpx.Client() as client:
        grant = refresh_grant("r", GRAPH_SECRET)
        token = client.post(base + GRAPH_TOKEN_PATH, data=grant).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        bad = client.get(base + "/v1.0/me/events", params={"$filter": "x"}, headers=headers)
        assert bad.status_code == 400
        missing = client.delete(base + "/v1.0/me/events/nope", headers=headers)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "ErrorItemNotFound"
        assert client.post(base + "/_fake/control", json={"fail_next": 1, "fail_status": 504})
        failed = client.get(base + "/v1.0/me/events", headers=headers)
        assert failed.status_code == 504 and failed.headers["Retry-After"] == "1"
        no_auth = client.get(base + "/v1.0/me/events")
        assert no_auth.json()["error"]["code"] == "InvalidAuthenticationToken"


async def test_build_reads_its_settings_from_the_environment(monkeypatch) -> None:
    from connectors.calendar.graph.sink import build

    monkeypatch.setenv("WEDSYNC_GRAPH_CLIENT_SECRET", "env-secret")
    monkeypatch.setenv("WEDSYNC_GRAPH_CONCURRENCY", "2")
    async with aclosing(build(environment())) as connector:
        assert connector.config.client_secret.get_secret_value() == "env-secret"
        assert "env-secret" not in repr(connector.config)
        assert connector.config.api_base_url == "https://graph.microsoft.com"
        assert connector.limit(record())[1].concurrency == 2
        assert connector.target(record()) == "calendar:int-9"
        assert connector.credential_key(record()) == "integration:int-9"


async def test_a_wall_clock_event_is_placed_in_the_mailboxs_own_zone(sink, fake, store) -> None:
    fake.mailbox_time_zone = "Pacific Standard Time"
    answer = await sink.deliver(record(**WALL_CLOCK), ctx(store))
    assert answer.verdict is Verdict.OK
    [event] = fake.stats()["events"]
    assert event["start"] == {
        "dateTime": "2027-06-12T14:00:00",
        "timeZone": "Pacific Standard Time",
    }
    assert fake.counters["mailbox_settings_read"] == 1
