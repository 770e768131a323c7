"""ChannelManager against the Google and Graph fakes over loopback: channels made, confirmed,
renewed, handed over, recreated, stopped; the budget of a pass; state across a restart."""

from __future__ import annotations

import dataclasses
from typing import Any

from connectors.calendar.feed.channels import ChannelManager
from connectors.calendar.feed.engine import CalendarFeed
from connectors.calendar.feed.providers import ProviderFetchers
from connectors.calendar.google.channels import GoogleChannelCalls
from connectors.calendar.graph import channels as graph_channels
from streams.dev.fakes.google import GoogleCalendarFake
from streams.dev.fakes.graph import GraphFake
from streams.logic.calendar.channels import HANDOVER_MS, Channel, issue_token, verify_token

from tests.component.calendar.feed.support import (
    GOOGLE_CAL,
    GOOGLE_INTEGRATION,
    GRAPH_CAL,
    GRAPH_INTEGRATION,
    KEYS,
    Clock,
    Gateway,
    MemoryWriter,
    connect,
    make_manager,
)

DAY_MS = 24 * 3600 * 1000


def only(manager: ChannelManager, key: str) -> Channel:
    (channel,) = manager.held[key]
    return channel


async def google_channel(manager: ChannelManager, gateway: Gateway) -> Channel:
    """Make the Google calendar's channel and wait for its sync (routed into the manager)."""
    await manager.maintain()
    made = only(manager, GOOGLE_CAL.key)
    await gateway.next(made.channel_id)
    return only(manager, GOOGLE_CAL.key)


async def graph_subscription(feed: CalendarFeed, manager: ChannelManager) -> Channel:
    """Connect the Graph calendar and make its subscription (the manager's first pass)."""
    await connect(feed, GRAPH_CAL)
    await manager.maintain()
    return only(manager, GRAPH_CAL.key)


async def lifecycle(graph: GraphFake, gateway: Gateway, sub: Channel, event: str) -> dict[str, Any]:
    """Graph sends the lifecycle `event` of `sub`; what the gateway received."""
    graph.send_lifecycle(sub.channel_id, event)
    return await gateway.next(sub.channel_id)


# ---- Google ----------------------------------------------------------------------------------
async def test_new_google_calendar_gets_a_channel_whose_token_verifies(
    feed: CalendarFeed, manager: ChannelManager, gateway: Gateway, google: GoogleCalendarFake
) -> None:
    await connect(feed, GOOGLE_CAL)
    assert await manager.maintain() == 1
    channel = only(manager, GOOGLE_CAL.key)
    headers = await gateway.next(channel.channel_id)
    assert headers["x-goog-resource-state"] == "sync"
    token = headers["x-goog-channel-token"]
    assert verify_token(KEYS, token, channel.channel_id) == GOOGLE_INTEGRATION
    assert len(channel.channel_id) <= 64 and channel.channel_id in google.channels.live
    assert feed.channel_index[channel.channel_id] == GOOGLE_CAL.key


async def test_sync_message_makes_the_channel_active_and_push_live(
    feed: CalendarFeed, manager: ChannelManager, gateway: Gateway, writer: MemoryWriter
) -> None:
    await connect(feed, GOOGLE_CAL)
    channel = await google_channel(manager, gateway)
    assert channel.state == "active" and GOOGLE_CAL.key in feed.push_live
    await manager.maintain()  # writes the confirmation
    stored = writer.states[GOOGLE_CAL.key].channels
    assert [c["state"] for c in stored] == ["active"]


async def test_new_channel_pushes_the_calendar_once(
    feed: CalendarFeed, manager: ChannelManager
) -> None:
    await connect(feed, GOOGLE_CAL)
    feed.reasons.clear()
    await manager.maintain()
    assert feed.reasons[GOOGLE_CAL.key] == "push"


async def test_channel_with_time_left_is_left_alone(
    feed: CalendarFeed, manager: ChannelManager, gateway: Gateway, google: GoogleCalendarFake
) -> None:
    await connect(feed, GOOGLE_CAL)
    await google_channel(manager, gateway)
    assert await manager.maintain() == 0
    assert google.counters["channels_created"] == 1


async def test_expiring_channel_is_stopped_only_after_its_successor_synced(
    feed: CalendarFeed, manager: ChannelManager, gateway: Gateway,
    google: GoogleCalendarFake, clock: Clock,
) -> None:  # fmt: skip
    google.channels.max_ttl_s = 3600  # an hour's channel: due 30 min (+-10%) before its end
    await connect(feed, GOOGLE_CAL)
    old = await google_channel(manager, gateway)
    clock.ms += 40 * 60 * 1000
    assert await manager.maintain() == 1  # the successor only
    states = {c.channel_id: c.state for c in manager.held[GOOGLE_CAL.key]}
    assert states[old.channel_id] == "replacing" and old.channel_id in google.channels.live
    (new_id,) = set(states) - {old.channel_id}
    assert (await gateway.next(new_id))["x-goog-resource-state"] == "sync"
    assert await manager.maintain() == 1  # now the old one is stopped
    assert old.channel_id not in google.channels.live and new_id in google.channels.live
    assert [c.channel_id for c in manager.held[GOOGLE_CAL.key]] == [new_id]
    assert old.channel_id not in feed.channel_index and GOOGLE_CAL.key in feed.push_live


async def test_replaced_channel_is_stopped_after_the_handover_without_a_sync(
    feed: CalendarFeed, manager: ChannelManager, gateway: Gateway,
    google: GoogleCalendarFake, clock: Clock,
) -> None:  # fmt: skip
    google.channels.max_ttl_s = 3600
    await connect(feed, GOOGLE_CAL)
    old = await google_channel(manager, gateway)
    clock.ms += 40 * 60 * 1000
    google.channels.drop_next_notifications = 1  # the successor's sync is lost
    await manager.maintain()
    assert await manager.maintain() == 0 and old.channel_id in google.channels.live
    clock.ms += HANDOVER_MS
    assert await manager.maintain() == 1
    assert old.channel_id not in google.channels.live


async def test_expired_channel_is_replaced_and_the_calendar_pushed(
    feed: CalendarFeed, manager: ChannelManager, gateway: Gateway,
    google: GoogleCalendarFake, clock: Clock,
) -> None:  # fmt: skip
    await connect(feed, GOOGLE_CAL)
    old = await google_channel(manager, gateway)
    clock.ms = old.expires_at_ms + 1
    feed.reasons.clear()
    assert await manager.maintain() == 2  # stop (404: gone already) + create
    (new,) = manager.held[GOOGLE_CAL.key]
    assert new.channel_id != old.channel_id and feed.reasons[GOOGLE_CAL.key] == "push"
    assert GOOGLE_CAL.key not in feed.push_live  # until its sync arrives


# ---- Graph -------------------------------------------------------------------------------------
async def test_graph_calendar_gets_a_subscription_after_the_handshake(
    feed: CalendarFeed, manager: ChannelManager, gateway: Gateway, graph: GraphFake
) -> None:
    await connect(feed, GRAPH_CAL)
    assert await manager.maintain() == 1
    sub = only(manager, GRAPH_CAL.key)
    assert gateway.validations == 2 and sub.channel_id in graph.hub.subscriptions
    state = graph.hub.subscriptions[sub.channel_id]["clientState"]
    assert verify_token(KEYS, state, GRAPH_INTEGRATION) == GRAPH_INTEGRATION
    assert sub.state == "active" and GRAPH_CAL.key in feed.push_live


async def test_graph_subscription_is_renewed_by_patch_when_due(
    feed: CalendarFeed, manager: ChannelManager, graph: GraphFake, clock: Clock
) -> None:
    real_now = clock.ms
    clock.ms = real_now - 6 * DAY_MS  # made six days ago (the fake checks against real time)
    made = await graph_subscription(feed, manager)
    assert await manager.maintain() == 0
    clock.ms = real_now
    assert await manager.maintain() == 1
    renewed = only(manager, GRAPH_CAL.key)
    assert renewed.channel_id == made.channel_id and renewed.expires_at_ms > made.expires_at_ms
    assert graph.counters["subscriptions_renewed"] == 1
    assert graph.counters["subscriptions_created"] == 1


async def test_renewal_of_a_vanished_subscription_makes_a_new_one(
    feed: CalendarFeed, manager: ChannelManager, graph: GraphFake, clock: Clock
) -> None:
    real_now = clock.ms
    clock.ms = real_now - 6 * DAY_MS
    made = await graph_subscription(feed, manager)
    del graph.hub.subscriptions[made.channel_id]
    clock.ms = real_now
    feed.reasons.clear()
    assert await manager.maintain() == 2  # PATCH 404, create
    new = only(manager, GRAPH_CAL.key)
    assert new.channel_id != made.channel_id and new.channel_id in graph.hub.subscriptions
    assert feed.reasons[GRAPH_CAL.key] == "push" and made.channel_id not in feed.channel_index


async def test_subscription_removed_is_recreated_on_the_next_pass(
    feed: CalendarFeed, manager: ChannelManager, gateway: Gateway, graph: GraphFake
) -> None:
    removed = await graph_subscription(feed, manager)
    told = await lifecycle(graph, gateway, removed, "subscriptionRemoved")
    assert told["lifecycleEvent"] == "subscriptionRemoved"
    assert manager.held[GRAPH_CAL.key] == [] and GRAPH_CAL.key not in feed.push_live
    assert await manager.maintain() == 1
    assert only(manager, GRAPH_CAL.key).channel_id in graph.hub.subscriptions


async def test_reauthorization_required_is_answered_on_the_next_pass(
    feed: CalendarFeed, manager: ChannelManager, gateway: Gateway, graph: GraphFake
) -> None:
    sub = await graph_subscription(feed, manager)
    await lifecycle(graph, gateway, sub, "reauthorizationRequired")
    assert await manager.maintain() == 1
    assert graph.counters["subscriptions_reauthorized"] == 1
    assert await manager.maintain() == 0


async def test_missed_lifecycle_changes_no_subscription(
    feed: CalendarFeed, manager: ChannelManager, gateway: Gateway, graph: GraphFake
) -> None:
    sub = await graph_subscription(feed, manager)
    feed.reasons.clear()
    await lifecycle(graph, gateway, sub, "missed")
    assert feed.reasons[GRAPH_CAL.key] == "push"  # the router's fetch
    assert await manager.maintain() == 0 and only(manager, GRAPH_CAL.key) == sub


async def test_refused_handshake_is_retried_on_the_next_pass(
    feed: CalendarFeed, manager: ChannelManager, gateway: Gateway, graph: GraphFake
) -> None:
    gateway.echo = False
    await connect(feed, GRAPH_CAL)
    assert await manager.maintain() == 1
    assert manager.held[GRAPH_CAL.key] == [] and manager.failures == 1
    gateway.echo = True
    await manager.maintain()
    assert only(manager, GRAPH_CAL.key).channel_id in graph.hub.subscriptions


# ---- leaving, orphans, failures, budget, restart ----------------------------------------------
async def test_disconnected_calendar_has_its_channel_stopped(
    feed: CalendarFeed, manager: ChannelManager, gateway: Gateway, google: GoogleCalendarFake
) -> None:
    await connect(feed, GOOGLE_CAL)
    channel = await google_channel(manager, gateway)
    await connect(feed)  # the vendor disconnected it
    assert channel.channel_id not in feed.channel_index and GOOGLE_CAL.key not in feed.push_live
    assert await manager.maintain() == 1
    assert google.channels.live == {} and manager.stopping == {}


async def test_disconnected_graph_calendar_has_its_subscription_deleted(
    feed: CalendarFeed, manager: ChannelManager, graph: GraphFake
) -> None:
    await connect(feed, GRAPH_CAL)
    await manager.maintain()
    await connect(feed)
    assert await manager.maintain() == 1 and graph.hub.subscriptions == {}


async def test_state_left_from_before_a_restart_has_its_channel_stopped(
    feed: CalendarFeed, manager: ChannelManager, gateway: Gateway, google: GoogleCalendarFake,
    fetchers: ProviderFetchers, writer: MemoryWriter, clock: Clock,
) -> None:  # fmt: skip
    await connect(feed, GOOGLE_CAL)
    await google_channel(manager, gateway)
    await manager.maintain()
    again = CalendarFeed(fetchers.fetch, MemoryWriter(), clock=clock.now_s)
    again.load(writer.states.values())
    restarted = make_manager(again, fetchers, gateway, clock)
    await connect(again)  # no longer connected
    assert await restarted.maintain() == 1 and google.channels.live == {}


async def test_orphan_google_channel_is_stopped(
    manager: ChannelManager, fetchers: ProviderFetchers, gateway: Gateway,
    google: GoogleCalendarFake,
) -> None:  # fmt: skip
    calls = GoogleChannelCalls(fetchers.http, await fetchers.token(GOOGLE_CAL),
                               api_base_url=fetchers.google.api_base_url)  # fmt: skip
    token = issue_token(KEYS, GOOGLE_INTEGRATION, "orphan-1")
    made = await calls.watch(GOOGLE_CAL, "orphan-1", token, gateway.url + "/gcal", 3600)
    await manager.stop_orphan("google", "orphan-1", made.resource_id, GOOGLE_INTEGRATION)
    assert google.channels.live == {} and google.counters["channels_stopped"] == 1


async def test_orphan_graph_subscription_is_deleted(
    manager: ChannelManager, fetchers: ProviderFetchers, gateway: Gateway, graph: GraphFake
) -> None:
    sub = await graph_channels.create_subscription(
        fetchers.http, fetchers.graph.api_base_url, await fetchers.token(GRAPH_CAL), GRAPH_CAL,
        notification_url=gateway.url + "/graph", lifecycle_url=gateway.url + "/graph",
        client_state=issue_token(KEYS, GRAPH_INTEGRATION, GRAPH_INTEGRATION),
    )  # fmt: skip
    await manager.stop_orphan("graph", sub.id, None, GRAPH_INTEGRATION)
    assert graph.hub.subscriptions == {}


async def test_push_of_a_held_channel_is_no_orphan(
    feed: CalendarFeed, manager: ChannelManager, gateway: Gateway, google: GoogleCalendarFake
) -> None:
    await connect(feed, GOOGLE_CAL)
    channel = await google_channel(manager, gateway)
    await manager.stop_orphan("google", channel.channel_id, channel.resource_id,
                              GOOGLE_INTEGRATION)  # fmt: skip
    assert channel.channel_id in google.channels.live


async def test_throttled_create_is_retried_after_its_retry_after(
    feed: CalendarFeed, manager: ChannelManager, fetchers: ProviderFetchers,
    google: GoogleCalendarFake, clock: Clock,
) -> None:  # fmt: skip
    await fetchers.token(GOOGLE_CAL)  # cached: the throttle hits the watch call
    google.switches.throttle_next = 1
    await connect(feed, GOOGLE_CAL)
    assert await manager.maintain() == 1
    assert manager.held[GOOGLE_CAL.key] == [] and manager.failures == 1
    assert not [k for k, v in feed.channel_index.items() if v == GOOGLE_CAL.key]
    assert await manager.maintain() == 0  # Retry-After (1 s) has not passed
    clock.ms += 1000
    assert await manager.maintain() == 1 and len(google.channels.live) == 1


async def test_failed_create_is_retried_on_the_next_pass(
    feed: CalendarFeed, manager: ChannelManager, fetchers: ProviderFetchers,
    google: GoogleCalendarFake,
) -> None:  # fmt: skip
    await fetchers.token(GOOGLE_CAL)
    google.switches.fail_next = 1  # 503
    await connect(feed, GOOGLE_CAL)
    assert await manager.maintain() == 1 and manager.failures == 1
    assert await manager.maintain() == 1 and len(google.channels.live) == 1


async def test_failed_stop_of_a_disconnected_calendar_is_retried(
    feed: CalendarFeed, manager: ChannelManager, gateway: Gateway, google: GoogleCalendarFake
) -> None:
    await connect(feed, GOOGLE_CAL)
    await google_channel(manager, gateway)
    await connect(feed)
    google.switches.fail_next = 1
    assert await manager.maintain() == 1 and len(google.channels.live) == 1
    assert await manager.maintain() == 1 and google.channels.live == {}
    assert await manager.maintain() == 0


async def test_expired_channel_of_a_disconnected_calendar_needs_no_call(
    feed: CalendarFeed, manager: ChannelManager, gateway: Gateway, clock: Clock
) -> None:
    await connect(feed, GOOGLE_CAL)
    channel = await google_channel(manager, gateway)
    await connect(feed)
    clock.ms = channel.expires_at_ms
    assert await manager.maintain() == 0 and manager.stopping == {}


async def test_refused_credential_makes_no_channel_and_no_failure(
    feed: CalendarFeed, manager: ChannelManager, google: GoogleCalendarFake, credentials: object
) -> None:
    credentials.rows[("integration", GOOGLE_INTEGRATION)] = {"api_key": ""}  # type: ignore[attr-defined]
    await connect(feed, GOOGLE_CAL)
    await manager.maintain()
    assert manager.held[GOOGLE_CAL.key] == [] and manager.failures == 0
    assert google.channels.live == {}


async def test_revoked_refresh_token_makes_no_channel_and_no_failure(
    feed: CalendarFeed, manager: ChannelManager, google: GoogleCalendarFake
) -> None:
    google.switches.revoke_refresh = True
    await connect(feed, GOOGLE_CAL)
    await manager.maintain()
    assert manager.held[GOOGLE_CAL.key] == [] and manager.failures == 0
    assert google.channels.live == {} and not feed.channel_index


async def test_failed_state_write_is_retried_on_the_next_pass(
    feed: CalendarFeed, manager: ChannelManager, writer: MemoryWriter, google: GoogleCalendarFake
) -> None:
    await connect(feed, GOOGLE_CAL)
    writer.fail_next = 1
    await manager.maintain()
    assert GOOGLE_CAL.key not in writer.states and len(google.channels.live) == 1
    assert await manager.maintain() == 0  # no second channel: the held one is written
    assert len(writer.states[GOOGLE_CAL.key].channels) == 1


async def test_calendar_needing_reauth_gets_no_calls(
    feed: CalendarFeed, manager: ChannelManager
) -> None:
    await connect(feed, GOOGLE_CAL, GRAPH_CAL)
    for key in (GOOGLE_CAL.key, GRAPH_CAL.key):
        feed.sync[key] = dataclasses.replace(feed.sync[key], reauth=key == GOOGLE_CAL.key,
                                             gone=key == GRAPH_CAL.key)  # fmt: skip
    assert await manager.maintain() == 0


async def test_gone_calendar_is_not_tried_again(
    feed: CalendarFeed, manager: ChannelManager, fetchers: ProviderFetchers,
    google: GoogleCalendarFake,
) -> None:  # fmt: skip
    await fetchers.token(GOOGLE_CAL)
    google.switches.fail_next, google.switches.fail_status = 1, 404
    await connect(feed, GOOGLE_CAL)
    assert await manager.maintain() == 1
    assert await manager.maintain() == 0 and google.channels.live == {}


THREE = [dataclasses.replace(GOOGLE_CAL, calendar_id=f"cal-{n}") for n in range(3)]


async def three_calendars(feed: CalendarFeed, manager: ChannelManager) -> ChannelManager:
    """`manager`, with the three Google calendars of `THREE` connected."""
    await connect(feed, *THREE)
    return manager


async def test_max_calls_bounds_a_pass(
    feed: CalendarFeed, fetchers: ProviderFetchers, gateway: Gateway, clock: Clock,
    google: GoogleCalendarFake,
) -> None:  # fmt: skip
    manager = await three_calendars(feed, make_manager(feed, fetchers, gateway, clock, max_calls=2))
    assert await manager.maintain() == 2 and len(google.channels.live) == 2
    assert await manager.maintain() == 1 and len(google.channels.live) == 3
    assert await manager.maintain() == 0


async def test_a_pass_out_of_calls_starts_the_next_where_it_stopped(
    feed: CalendarFeed, fetchers: ProviderFetchers, gateway: Gateway, clock: Clock,
    google: GoogleCalendarFake,
) -> None:  # fmt: skip
    manager = await three_calendars(feed, make_manager(feed, fetchers, gateway, clock, max_calls=1))
    await fetchers.token(GOOGLE_CAL)
    google.switches.fail_next = 1  # the first calendar's create fails
    await manager.maintain()
    await manager.maintain()  # the second calendar, not the first again
    assert manager.held[THREE[0].key] == [] and len(manager.held[THREE[1].key]) == 1


async def test_channels_survive_a_restart(
    feed: CalendarFeed, manager: ChannelManager, gateway: Gateway, fetchers: ProviderFetchers,
    writer: MemoryWriter, clock: Clock, google: GoogleCalendarFake, graph: GraphFake,
) -> None:  # fmt: skip
    await connect(feed, GOOGLE_CAL, GRAPH_CAL)
    await google_channel(manager, gateway)
    await manager.maintain()  # writes the Google channel's confirmation
    again = CalendarFeed(fetchers.fetch, MemoryWriter(), clock=clock.now_s)
    again.load(writer.states.values())
    restarted = make_manager(again, fetchers, gateway, clock)
    assert again.channel_index == feed.channel_index and len(again.channel_index) == 2
    assert again.push_live == {GOOGLE_CAL.key, GRAPH_CAL.key}
    await connect(again, GOOGLE_CAL, GRAPH_CAL)
    assert await restarted.maintain() == 0
    assert google.counters["channels_created"] == 1
    assert graph.counters["subscriptions_created"] == 1


async def test_a_new_calendar_carries_its_poll_interval(
    feed: CalendarFeed, manager: ChannelManager
) -> None:
    await connect(feed, GOOGLE_CAL)
    assert feed.sync[GOOGLE_CAL.key].interval_ms == feed.config.intervals.poll_ms


async def test_push_going_live_writes_the_reconcile_interval_in_the_sync_state(
    feed: CalendarFeed, manager: ChannelManager, gateway: Gateway, writer: MemoryWriter
) -> None:
    """The SLA agent's staleness clock (streams/logic/calendar/health_book.py) reads it."""
    await connect(feed, GOOGLE_CAL)
    await google_channel(manager, gateway)
    await feed.check_health()
    assert writer.states[GOOGLE_CAL.key].interval_ms == feed.config.intervals.reconcile_ms
