"""Graph subscriptions (create with the handshake, notifications, lifecycle, renew,
reauthorize, delete) against GraphFake over loopback."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from connectors.calendar.feed_errors import FetchFailed
from connectors.calendar.graph import channel_wire, channels
from streams.dev.fakes.graph import GraphFake
from streams.logic.calendar.rounds import CalendarRef

from tests.component.calendar.graph.feed import CAL, OWNER, Receiver, event, subscribe


async def test_create_runs_the_handshake_on_both_urls(
    http: httpx.AsyncClient, base: str, token: str, receiver: Receiver
) -> None:
    sub = await subscribe(http, base, token, receiver)
    assert receiver.validations == 2
    assert sub.client_state == "v1.int-9.mac" and sub.resource == "/me/events"


async def test_create_fails_when_the_endpoint_does_not_echo(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str, receiver: Receiver
) -> None:
    receiver.echo = False
    with pytest.raises(FetchFailed):
        await subscribe(http, base, token, receiver)
    assert fake.hub.subscriptions == {}


async def test_vendor_edit_notifies_the_subscription(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str, receiver: Receiver
) -> None:
    sub = await subscribe(http, base, token, receiver)
    made = fake.vendor_upsert(OWNER, "primary", event(5))
    path, body = await receiver.next()
    (item,) = body["value"]
    assert path == "/notify" and item["subscriptionId"] == sub.id
    assert (item["clientState"], item["changeType"]) == ("v1.int-9.mac", "created")
    assert item["resourceData"]["id"] == made


async def test_dropped_notification_never_arrives(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str, receiver: Receiver
) -> None:
    await subscribe(http, base, token, receiver)
    fake.drop_next_notifications = 1
    fake.vendor_upsert(OWNER, "primary", event(5))
    second = fake.vendor_upsert(OWNER, "primary", event(6))
    _, body = await receiver.next()
    assert body["value"][0]["resourceData"]["id"] == second
    assert fake.counters["notifications_dropped"] == 1


async def test_lifecycle_event_reaches_the_lifecycle_url(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str, receiver: Receiver
) -> None:
    sub = await subscribe(http, base, token, receiver)
    fake.send_lifecycle(sub.id, "reauthorizationRequired")
    path, body = await receiver.next()
    assert path == "/lifecycle"
    assert body["value"][0]["lifecycleEvent"] == "reauthorizationRequired"


async def test_renew_extends_the_subscription(
    http: httpx.AsyncClient, base: str, token: str, receiver: Receiver
) -> None:
    sub = await subscribe(http, base, token, receiver)
    renewed = await channels.renew_subscription(http, base, token, sub.id, minutes=9_000)
    assert renewed is not None and renewed.expires_ms < sub.expires_ms


async def test_renew_beyond_the_limit_is_refused(
    http: httpx.AsyncClient, base: str, token: str, receiver: Receiver
) -> None:
    sub = await subscribe(http, base, token, receiver)
    with pytest.raises(FetchFailed):
        await channels.renew_subscription(http, base, token, sub.id, minutes=10_081)


async def test_renew_of_an_unknown_subscription_is_none(
    http: httpx.AsyncClient, base: str, token: str
) -> None:
    assert await channels.renew_subscription(http, base, token, "no-such-id") is None


async def test_reauthorize_answers_for_a_known_subscription(
    http: httpx.AsyncClient, base: str, token: str, receiver: Receiver
) -> None:
    sub = await subscribe(http, base, token, receiver)
    assert await channels.reauthorize(http, base, token, sub.id) is True
    assert await channels.reauthorize(http, base, token, "no-such-id") is False


async def test_deleted_subscription_stops_notifying(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str, receiver: Receiver
) -> None:
    sub = await subscribe(http, base, token, receiver)
    assert await channels.delete_subscription(http, base, token, sub.id) is True
    assert await channels.delete_subscription(http, base, token, sub.id) is False
    fake.vendor_upsert(OWNER, "primary", event(5))
    assert receiver.posts.empty() and fake.counters["notifications_sent"] == 0


async def test_expired_subscription_stops_notifying(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str, receiver: Receiver
) -> None:
    sub = await subscribe(http, base, token, receiver)
    fake.hub.subscriptions[sub.id]["_expires"] = datetime(2020, 1, 1, tzinfo=UTC)
    fake.vendor_upsert(OWNER, "primary", event(5))
    assert fake.hub.subscriptions == {} and fake.counters["notifications_sent"] == 0
    assert await channels.renew_subscription(http, base, token, sub.id) is None


async def test_create_beyond_the_limit_is_refused(
    http: httpx.AsyncClient, base: str, token: str, receiver: Receiver
) -> None:
    request = channel_wire.create_request(
        CAL, receiver.url + "/n", receiver.url + "/l", "s",
        int(datetime.now(UTC).timestamp() * 1000), minutes=10_081,
    )  # fmt: skip
    answer = await http.post(base + request.path, json=request.json,
                             headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert answer.status_code == 400 and receiver.validations == 0


async def test_subscription_on_another_calendar_ignores_the_primary(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str, receiver: Receiver
) -> None:
    work = CalendarRef("graph", "int-9", "sup-1", "AAMkwork")
    await channels.create_subscription(
        http, base, token, work, notification_url=receiver.url + "/notify",
        lifecycle_url=receiver.url + "/lifecycle", client_state="v1.int-9.mac",
    )  # fmt: skip
    fake.vendor_upsert(OWNER, "primary", event(5))
    theirs = fake.vendor_upsert(OWNER, "AAMkwork", event(6))
    _, body = await receiver.next()
    assert body["value"][0]["resourceData"]["id"] == theirs
    assert fake.counters["notifications_sent"] <= 1 and receiver.posts.empty()


async def test_subscription_removed_lifecycle_ends_the_subscription(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str, receiver: Receiver
) -> None:
    sub = await subscribe(http, base, token, receiver)
    fake.send_lifecycle(sub.id, "subscriptionRemoved")
    _, body = await receiver.next()
    assert body["value"][0]["lifecycleEvent"] == "subscriptionRemoved"
    assert await channels.renew_subscription(http, base, token, sub.id) is None
