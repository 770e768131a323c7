"""Google push channels against GoogleCalendarFake over loopback: GoogleChannelCalls makes
and stops channels, the fake POSTs sync/exists notifications to a small receiver the test
runs, and the gateway's MAC-mode verification accepts what arrives."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from aiohttp import web
from connectors.calendar.feed_errors import FetchFailed, ReauthRequired, Throttled
from connectors.calendar.google.channels import GoogleChannelCalls
from connectors.sources.webhooks.config import GoogleChannelSource
from connectors.sources.webhooks.verify import Request, verify
from streams.dev.fakes.calendar_kit import owner_of
from streams.dev.fakes.google import GoogleCalendarFake
from streams.dev.fakes.kit import FakeServer
from streams.logic.calendar.channels import Channel, Create, Stop, issue_token, plan, verify_token
from streams.logic.calendar.rounds import CalendarRef

from tests.component.calendar.loopback import serving
from tests.component.calendar.sinks import refresh_grant

REFRESH = "1//vendor-refresh-token"
OWNER = owner_of(REFRESH)
KEY = b"channel-key-for-tests-0123456789"
INTEGRATION = "8c1d7f0e-5b8a-4d2e-9a7c-3f1e2d4c5b6a"
CALENDAR = CalendarRef("google", INTEGRATION, "supplier-1", "vendor@example.com")
T0_MS = 1_780_000_000_000
WAIT_S = 10.0
EVENT = {"start": {"dateTime": "2027-06-12T14:00:00Z"}, "end": {"dateTime": "2027-06-12T18:00:00Z"}}


class Receiver:
    """A tiny push endpoint: every POST it receives, by channel id, in arrival order."""

    def __init__(self) -> None:
        self.pushes: dict[str, asyncio.Queue[tuple[dict[str, str], bytes]]] = defaultdict(
            asyncio.Queue
        )
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.pushes[headers.get("x-goog-channel-id", "")].put_nowait(
            (headers, await request.read())
        )
        return web.Response(status=200)

    async def next(self, channel_id: str) -> dict[str, str]:
        """The channel's next notification's headers (fails after WAIT_S without one)."""
        headers, body = await asyncio.wait_for(self.pushes[channel_id].get(), WAIT_S)
        assert body == b""
        return headers


class Clock:
    """The one clock of the fake and the client, advanced by hand."""

    def __init__(self) -> None:
        self.ms = T0_MS

    def now_ms(self) -> int:
        return self.ms

    def now_s(self) -> float:
        return self.ms / 1000


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock, receiver: Receiver) -> Iterator[GoogleCalendarFake]:
    """The fake stops before the receiver (no push of it is then still on its way)."""
    provider = GoogleCalendarFake()
    provider.channels.now_ms = clock.now_ms
    with FakeServer(provider):
        yield provider


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/webhooks/gcal", receiver.handle)
    async with serving(app) as url:
        receiver.url = f"{url}/webhooks/gcal"
        yield receiver


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=WAIT_S) as client:
        yield client


async def access_token(http: httpx.AsyncClient, fake: GoogleCalendarFake) -> str:
    base = fake.base_url
    answer = await http.post(f"{base}/token", data=refresh_grant(REFRESH))
    return str(answer.json()["access_token"])


@pytest.fixture
async def calls(
    http: httpx.AsyncClient, fake: GoogleCalendarFake, clock: Clock
) -> GoogleChannelCalls:
    token = await access_token(http, fake)
    base = fake.base_url
    return GoogleChannelCalls(http, token, api_base_url=base, clock=clock.now_s)


async def watch(
    calls: GoogleChannelCalls, receiver: Receiver, channel_id: str, ttl_s: int = 604_800
) -> Channel:
    token = issue_token([KEY], INTEGRATION, channel_id)
    return await calls.watch(CALENDAR, channel_id, token, receiver.url, ttl_s)


def gateway_accepts(headers: dict[str, str]) -> str | None:
    """The integration id the gateway's MAC-mode verification finds in a notification."""
    source = GoogleChannelSource.model_validate(
        {"method": "google_channel", "channel_keys": [KEY.decode()]}
    )
    return verify(source, Request(headers, b""), 0).integration_id


def vendor_edit(fake: GoogleCalendarFake) -> str:
    return fake.vendor_upsert(OWNER, CALENDAR.calendar_id, dict(EVENT))


# ---- watch and sync ----------------------------------------------------------------------
async def test_a_new_channel_is_pending_and_expires_when_the_fake_says(
    calls: GoogleChannelCalls, receiver: Receiver
) -> None:
    channel = await watch(calls, receiver, "chan-a", ttl_s=3600)
    assert (channel.state, channel.provider, channel.calendar_key) == (
        "pending_sync",
        "google",
        CALENDAR.key,
    )
    assert (channel.created_at_ms, channel.expires_at_ms) == (T0_MS, T0_MS + 3_600_000)


async def test_watch_posts_the_sync_notification_to_the_address(
    calls: GoogleChannelCalls, receiver: Receiver
) -> None:
    channel = await watch(calls, receiver, "chan-a")
    sync = await receiver.next("chan-a")
    assert (sync["x-goog-resource-state"], sync["x-goog-message-number"]) == ("sync", "1")
    assert sync["x-goog-resource-id"] == channel.resource_id
    assert sync["x-goog-channel-token"] == issue_token([KEY], INTEGRATION, "chan-a")
    assert sync["x-goog-channel-expiration"].endswith(" GMT")
    assert sync["x-goog-resource-uri"].startswith("https://www.googleapis.com/calendar/v3/")
    assert sync["user-agent"].startswith("APIs-Google")


async def test_channels_of_one_calendar_share_its_resource_id(
    calls: GoogleChannelCalls, receiver: Receiver
) -> None:
    first, second = await watch(calls, receiver, "chan-a"), await watch(calls, receiver, "chan-b")
    assert first.resource_id == second.resource_id


async def test_a_channel_id_in_use_is_refused(
    calls: GoogleChannelCalls, receiver: Receiver, fake: GoogleCalendarFake
) -> None:
    await watch(calls, receiver, "chan-a")
    with pytest.raises(FetchFailed, match="channelIdNotUnique"):
        await watch(calls, receiver, "chan-a")
    assert fake.counters["channels_created"] == 1


async def test_watch_with_a_refused_token_needs_reauth(
    http: httpx.AsyncClient, fake: GoogleCalendarFake, receiver: Receiver
) -> None:
    base = fake.base_url
    calls = GoogleChannelCalls(http, "ya29.not-issued", api_base_url=base)
    with pytest.raises(ReauthRequired):
        await watch(calls, receiver, "chan-a")


@pytest.mark.parametrize(
    ("field", "value"),
    [("id", "c" * 65), ("token", "t" * 257), ("type", "email"), ("address", "ftp://x")],
)
async def test_the_fake_refuses_a_watch_body_outside_googles_limits(
    http: httpx.AsyncClient, fake: GoogleCalendarFake, field: str, value: str
) -> None:
    base = fake.base_url
    body = {"id": "chan-a", "type": "web_hook", "address": "https://in.example/g", field: value}
    answer = await http.post(
        f"{base}/calendar/v3/calendars/primary/events/watch",
        json=body,
        headers={"Authorization": f"Bearer {await access_token(http, fake)}"},
    )
    assert answer.status_code == 400


# ---- exists ------------------------------------------------------------------------------------
async def test_a_vendor_edit_posts_exists_with_a_larger_number_and_a_verifiable_token(
    calls: GoogleChannelCalls, receiver: Receiver, fake: GoogleCalendarFake
) -> None:
    await watch(calls, receiver, "chan-a")
    await receiver.next("chan-a")
    vendor_edit(fake)
    exists = await receiver.next("chan-a")
    assert exists["x-goog-resource-state"] == "exists"
    assert int(exists["x-goog-message-number"]) > 1
    assert verify_token([KEY], exists["x-goog-channel-token"], "chan-a") == INTEGRATION
    assert gateway_accepts(exists) == INTEGRATION


async def test_message_numbers_increase_but_are_not_sequential(
    calls: GoogleChannelCalls, receiver: Receiver, fake: GoogleCalendarFake
) -> None:
    await watch(calls, receiver, "chan-a")
    event_id = vendor_edit(fake)
    fake.vendor_upsert(OWNER, CALENDAR.calendar_id, {"id": event_id, "transparency": "transparent"})
    fake.vendor_delete(OWNER, CALENDAR.calendar_id, event_id)
    numbers = [int((await receiver.next("chan-a"))["x-goog-message-number"]) for _ in range(4)]
    assert numbers == sorted(numbers) and numbers[0] == 1
    assert all(b - a > 1 for a, b in itertools.pairwise(numbers))


async def test_an_api_write_is_notified_too(
    calls: GoogleChannelCalls, receiver: Receiver, fake: GoogleCalendarFake, http: httpx.AsyncClient
) -> None:
    await watch(calls, receiver, "chan-a")
    await receiver.next("chan-a")
    base = fake.base_url
    path = f"{base}/calendar/v3/calendars/{CALENDAR.calendar_id}/events"
    auth = {"Authorization": f"Bearer {await access_token(http, fake)}"}
    assert (await http.post(path, json=EVENT, headers=auth)).status_code == 200
    assert (await receiver.next("chan-a"))["x-goog-resource-state"] == "exists"


async def test_a_change_in_another_calendar_is_not_notified(
    calls: GoogleChannelCalls, receiver: Receiver, fake: GoogleCalendarFake
) -> None:
    other = dataclasses.replace(CALENDAR, calendar_id="other@example.com")
    await calls.watch(other, "chan-o", issue_token([KEY], INTEGRATION, "chan-o"), receiver.url, 60)
    await watch(calls, receiver, "chan-a")
    await receiver.next("chan-o")
    await receiver.next("chan-a")
    vendor_edit(fake)
    await receiver.next("chan-a")
    assert [p["state"] for p in fake.channels.pushes if p["channel"] == "chan-o"] == ["sync"]


async def test_a_dropped_notification_never_arrives_and_leaves_a_gap(
    calls: GoogleChannelCalls, receiver: Receiver, fake: GoogleCalendarFake
) -> None:
    await watch(calls, receiver, "chan-a")
    await receiver.next("chan-a")
    fake.channels.drop_next_notifications = 1
    vendor_edit(fake)
    vendor_edit(fake)
    after = await receiver.next("chan-a")
    dropped = [p for p in fake.channels.pushes if p.get("status") == -1]
    assert len(dropped) == 1 and int(after["x-goog-message-number"]) > dropped[0]["number"]
    assert fake.counters["notifications_dropped"] == 1


# ---- stop and expiry ---------------------------------------------------------------------------
async def test_a_stopped_channel_is_notified_no_more(
    calls: GoogleChannelCalls, receiver: Receiver, fake: GoogleCalendarFake
) -> None:
    stopped = await watch(calls, receiver, "chan-a")
    await watch(calls, receiver, "chan-b")  # the sentinel: notified after the same change
    await receiver.next("chan-a")
    await receiver.next("chan-b")
    await calls.stop(stopped)
    vendor_edit(fake)
    await receiver.next("chan-b")
    assert [p["state"] for p in fake.channels.pushes if p["channel"] == "chan-a"] == ["sync"]
    assert receiver.pushes["chan-a"].empty()


async def test_stopping_needs_the_channels_resource_id(
    calls: GoogleChannelCalls, receiver: Receiver, fake: GoogleCalendarFake, http: httpx.AsyncClient
) -> None:
    channel = await watch(calls, receiver, "chan-a")
    base = fake.base_url
    auth = {"Authorization": f"Bearer {await access_token(http, fake)}"}
    stop = f"{base}/calendar/v3/channels/stop"
    for body in ({"id": "chan-a", "resourceId": "other"}, {"id": "nope", "resourceId": "x"}):
        answer = await http.post(stop, json=body, headers=auth)
        assert (answer.status_code, answer.json()["error"]["errors"][0]["reason"]) == (
            404,
            "notFound",
        )
    assert "chan-a" in fake.channels.live and channel.channel_id == "chan-a"


async def test_only_the_user_who_made_a_channel_can_stop_it(
    calls: GoogleChannelCalls, receiver: Receiver, fake: GoogleCalendarFake, http: httpx.AsyncClient
) -> None:
    channel = await watch(calls, receiver, "chan-a")
    base = fake.base_url
    answer = await http.post(
        f"{base}/token", data={"grant_type": "refresh_token", "refresh_token": "someone-else"}
    )
    auth = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    body = {"id": channel.channel_id, "resourceId": channel.resource_id}
    stop = await http.post(f"{base}/calendar/v3/channels/stop", json=body, headers=auth)
    assert stop.status_code == 404 and "chan-a" in fake.channels.live


async def test_stopping_a_channel_twice_is_done_the_second_time(
    calls: GoogleChannelCalls, receiver: Receiver, fake: GoogleCalendarFake
) -> None:
    channel = await watch(calls, receiver, "chan-a")
    await calls.stop(channel)
    await calls.stop(channel)  # 404 from Google: gone already
    assert fake.counters["channels_stopped"] == 1


async def test_an_expired_channel_is_notified_no_more(
    calls: GoogleChannelCalls, receiver: Receiver, fake: GoogleCalendarFake, clock: Clock
) -> None:
    await watch(calls, receiver, "chan-short", ttl_s=60)
    await watch(calls, receiver, "chan-long")
    await receiver.next("chan-short")
    await receiver.next("chan-long")
    clock.ms += 61_000
    vendor_edit(fake)
    await receiver.next("chan-long")
    assert [p["state"] for p in fake.channels.pushes if p["channel"] == "chan-short"] == ["sync"]


async def test_the_fakes_max_ttl_caps_the_expiration(
    calls: GoogleChannelCalls, receiver: Receiver, fake: GoogleCalendarFake
) -> None:
    fake.channels.max_ttl_s = 120
    channel = await watch(calls, receiver, "chan-a", ttl_s=3600)
    assert channel.expires_at_ms == T0_MS + 120_000


# ---- renewal without a gap ----------------------------------------------------------------------
async def test_a_channel_close_to_expiry_is_renewed_without_a_gap(
    calls: GoogleChannelCalls, receiver: Receiver, fake: GoogleCalendarFake, clock: Clock
) -> None:
    old = await watch(calls, receiver, "chan-old", ttl_s=3600)
    await receiver.next("chan-old")
    old = dataclasses.replace(old, state="active")
    clock.ms += 50 * 60_000  # 10 minutes left: due
    actions = plan([old], clock.ms, connected=True)
    assert actions == [Create(replaces=old)]

    new = await watch(calls, receiver, "chan-new", ttl_s=3600)
    old = dataclasses.replace(old, state="replacing")
    assert plan([old, new], clock.ms, connected=True) == []  # the successor has no sync yet
    assert (await receiver.next("chan-new"))["x-goog-resource-state"] == "sync"
    new = dataclasses.replace(new, state="active")

    vendor_edit(fake)  # between the successor's sync and the old one's stop: both notified
    assert (await receiver.next("chan-old"))["x-goog-resource-state"] == "exists"
    assert (await receiver.next("chan-new"))["x-goog-resource-state"] == "exists"

    actions = plan([old, new], clock.ms, connected=True)
    assert actions == [Stop(old)]
    await calls.stop(old)
    vendor_edit(fake)
    assert (await receiver.next("chan-new"))["x-goog-resource-state"] == "exists"
    assert [p["state"] for p in fake.channels.pushes if p["channel"] == "chan-old"] == [
        "sync",
        "exists",
    ]


async def test_the_fakes_stats_list_live_channels_without_their_tokens(
    calls: GoogleChannelCalls, receiver: Receiver, fake: GoogleCalendarFake, http: httpx.AsyncClient
) -> None:
    channel = await watch(calls, receiver, "chan-a")
    stats = (await http.get(f"{fake.base_url}/_fake/stats")).json()
    [listed] = stats["channels"]
    assert (listed["id"], listed["resourceId"]) == ("chan-a", channel.resource_id)
    assert channel_token_absent(stats)


def channel_token_absent(stats: dict[str, object]) -> bool:
    return issue_token([KEY], INTEGRATION, "chan-a") not in json.dumps(stats)


# ---- failures of the calls -----------------------------------------------------------------------
async def test_a_google_server_error_on_watch_is_a_transient_failure(
    calls: GoogleChannelCalls, receiver: Receiver, fake: GoogleCalendarFake
) -> None:
    fake.switches.fail_next = 1
    with pytest.raises(FetchFailed, match="500 backendError"):
        await watch(calls, receiver, "chan-a")


async def test_a_rate_limited_watch_is_throttled_for_retry_after(
    calls: GoogleChannelCalls, receiver: Receiver, fake: GoogleCalendarFake
) -> None:
    fake.switches.throttle_next, fake.switches.retry_after_s = 1, 7.0
    with pytest.raises(Throttled) as info:
        await watch(calls, receiver, "chan-a")
    assert info.value.retry_after_s == 7.0


async def test_a_failed_stop_raises_what_it_means(
    calls: GoogleChannelCalls, receiver: Receiver, fake: GoogleCalendarFake
) -> None:
    channel = await watch(calls, receiver, "chan-a")
    fake.switches.fail_next = 1
    with pytest.raises(FetchFailed):
        await calls.stop(channel)
    assert "chan-a" in fake.channels.live


async def test_an_unreachable_google_is_a_transient_failure(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    from streams.dev.broker import free_port

    calls = GoogleChannelCalls(http, "ya29.x", api_base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(FetchFailed, match="ConnectError"):
        await watch(calls, receiver, "chan-a")
