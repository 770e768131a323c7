"""When to create, renew and stop push channels (streams/logic/calendar/channels.py)."""

from __future__ import annotations

import dataclasses

from streams.logic.calendar.channels import (
    DAY_MS,
    HANDOVER_MS,
    Channel,
    ChannelProvider,
    ChannelState,
    Create,
    Renew,
    Stop,
    jitter,
    plan,
    renew_at_ms,
    renew_due,
)

T0 = 1_780_000_000_000
WEEK = 7 * DAY_MS


def channel(
    channel_id: str = "chan-1",
    *,
    state: ChannelState = "active",
    created: int = T0,
    lifetime: int = WEEK,
    provider: ChannelProvider = "google",
) -> Channel:
    return Channel(channel_id, "google:int-1:primary", provider, "res-1", created + lifetime,
                   created, state)  # fmt: skip


def test_a_fresh_calendar_gets_a_channel() -> None:
    assert plan([], T0, connected=True) == [Create()]


def test_a_calendar_with_only_stopped_channels_gets_a_channel() -> None:
    assert plan([channel(state="stopped")], T0, connected=True) == [Create()]


def test_a_healthy_channel_needs_nothing() -> None:
    assert plan([channel()], T0 + DAY_MS, connected=True) == []


def test_a_new_channel_is_due_within_a_quarter_of_a_week_of_expiry_give_or_take_jitter() -> None:
    ch = channel()
    lead = ch.expires_at_ms - renew_at_ms(ch)
    assert 0.9 * WEEK / 4 <= lead <= 1.1 * WEEK / 4


def test_a_short_lived_channel_is_due_a_day_before_expiry_give_or_take_jitter() -> None:
    ch = channel(lifetime=3 * DAY_MS)
    lead = ch.expires_at_ms - renew_at_ms(ch)
    assert 0.9 * DAY_MS <= lead <= 1.1 * DAY_MS


def test_a_channel_shorter_than_two_days_is_due_at_half_its_lifetime_at_most() -> None:
    ch = channel(lifetime=3600_000)
    assert not renew_due(ch, T0 + 1000)
    assert renew_due(ch, T0 + 3600_000 * 6 // 10)


def test_a_due_google_channel_gets_a_successor_before_it_is_stopped() -> None:
    old = channel()
    assert plan([old], old.expires_at_ms - DAY_MS, connected=True) == [Create(replaces=old)]


def test_the_replaced_channel_is_kept_while_the_successor_waits_for_its_sync() -> None:
    now = T0 + 6 * DAY_MS
    old = channel("old", state="replacing")
    new = channel("new", state="pending_sync", created=now)
    assert plan([old, new], now + 60_000, connected=True) == []


def test_the_replaced_channel_is_stopped_once_the_successor_is_active() -> None:
    now = T0 + 6 * DAY_MS
    old = channel("old", state="replacing")
    new = channel("new", state="active", created=now)
    assert plan([old, new], now + 60_000, connected=True) == [Stop(old)]


def test_the_replaced_channel_is_stopped_ten_minutes_after_the_successor_without_sync() -> None:
    now = T0 + 6 * DAY_MS
    old = channel("old", state="replacing")
    new = channel("new", state="pending_sync", created=now)
    assert plan([old, new], now + HANDOVER_MS, connected=True) == [Stop(old)]


def test_a_replacing_channel_without_successor_gets_one() -> None:
    old = channel(state="replacing")
    assert plan([old], T0 + 6 * DAY_MS, connected=True) == [Create(replaces=old)]


def test_a_disconnected_calendar_stops_every_open_channel() -> None:
    a, b = channel("a", state="replacing"), channel("b", state="pending_sync", created=T0 + 1)
    done = channel("c", state="stopped")
    assert plan([a, b, done], T0, connected=False) == [Stop(a), Stop(b)]


def test_an_expired_channel_is_recreated() -> None:
    old = channel()
    assert plan([old], old.expires_at_ms, connected=True) == [Stop(old), Create()]


def test_an_expired_old_channel_beside_a_live_one_is_only_stopped() -> None:
    old = channel("old", state="replacing", lifetime=DAY_MS)
    new = channel("new", state="pending_sync", created=T0 + DAY_MS - 1000)
    assert plan([old, new], T0 + DAY_MS, connected=True) == [Stop(old)]


def test_a_due_graph_subscription_is_renewed_in_place() -> None:
    sub = channel(provider="graph", lifetime=3 * DAY_MS)
    assert plan([sub], sub.expires_at_ms - 3600_000, connected=True) == [Renew(sub)]


def test_an_older_duplicate_graph_subscription_is_stopped() -> None:
    old = channel("old", provider="graph")
    new = channel("new", provider="graph", created=T0 + 1000, state="pending_sync")
    assert plan([old, new], T0 + 2000, connected=True) == [Stop(old)]


def test_jitter_stays_within_ten_percent_and_is_deterministic() -> None:
    factors = [jitter(f"channel-{i}") for i in range(2000)]
    assert all(0.9 <= f <= 1.1 for f in factors)
    assert factors == [jitter(f"channel-{i}") for i in range(2000)]


def test_jitter_spreads_channels_made_together() -> None:
    chans = [dataclasses.replace(channel(), channel_id=f"c-{i}") for i in range(200)]
    times = sorted(renew_at_ms(c) for c in chans)
    spread = times[-1] - times[0]
    assert spread > 0.15 * (WEEK / 4)  # most of the +-10% band is used
