"""The feed's lease callbacks as librdkafka calls them (no broker: the consumer never joins),
and how a term ends: a lost lease abandons the rounds in flight, a stop lets them finish.
The group itself, on real Kafka: tests/integration/calendar/test_feed_leader.py."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
from confluent_kafka import TopicPartition
from connectors.calendar.feed.leader import LEASE_TOPIC, Leadership
from connectors.calendar.feed.process import _term_over
from streams import metrics

P0 = [TopicPartition(LEASE_TOPIC.name, 0)]


@pytest.fixture
async def lease() -> AsyncIterator[Leadership]:
    made = Leadership("127.0.0.1:9", "wedsync-test", hand_over_s=30)
    made._loop = asyncio.get_running_loop()  # as start() does, without joining
    yield made
    made.consumer.close()


def active_gauge() -> float:
    (metric,) = metrics.CALENDAR_FEED_ACTIVE.collect()
    return float(metric.samples[0].value)


async def settled() -> None:
    for _ in range(3):  # the callbacks' call_soon_threadsafe
        await asyncio.sleep(0)


async def test_partition_0_assigned_makes_the_member_active(lease: Leadership) -> None:
    lease._on_assign(None, P0)
    await settled()
    assert lease.active.is_set() and not lease.standby.is_set() and lease.terms == 1
    assert active_gauge() == 1


async def test_an_assignment_without_partition_0_is_standby(lease: Leadership) -> None:
    lease._on_assign(None, [])
    await settled()
    assert lease.standby.is_set() and not lease.active.is_set()


async def test_a_lost_lease_is_standby_at_once_without_waiting_for_the_term(
    lease: Leadership,
) -> None:
    lease._on_assign(None, P0)
    started = time.monotonic()
    lease._on_lost(None, P0)  # the term has not ended: no wait, the partition is gone
    assert time.monotonic() - started < 5
    await settled()
    assert lease.standby.is_set() and not lease.active.is_set()
    assert active_gauge() == 0


async def test_a_revoke_returns_once_the_term_has_ended(lease: Leadership) -> None:
    lease._on_assign(None, P0)
    revoked = threading.Event()

    def revoke() -> None:  # on the poll thread, as librdkafka does
        lease._on_revoke(None, P0)
        revoked.set()

    thread = threading.Thread(target=revoke)
    thread.start()
    await asyncio.wait_for(lease.standby.wait(), 10)
    assert not revoked.is_set()  # waiting for the term to end
    lease.stood_down()
    await asyncio.to_thread(thread.join, 10)
    assert revoked.is_set()


async def test_the_end_of_a_term_before_the_lease_came_back_releases_no_revoke(
    lease: Leadership,
) -> None:
    lease._on_assign(None, P0)
    first = lease.generation
    lease._on_lost(None, P0)
    lease._on_assign(None, P0)  # given back before the first term ended
    lease.stood_down(first)
    revoked = threading.Thread(target=lease._on_revoke, args=(None, P0))
    revoked.start()
    await asyncio.to_thread(revoked.join, 0.5)
    assert revoked.is_alive()  # the second term is still running
    lease.stood_down(lease.generation)
    await asyncio.to_thread(revoked.join, 10)
    assert not revoked.is_alive()


def feed_with_a_round() -> tuple[SimpleNamespace, asyncio.Task[None]]:
    round_ = asyncio.create_task(asyncio.sleep(3600))
    return SimpleNamespace(tasks={round_}, wake=asyncio.Event()), round_


async def test_a_term_ended_by_a_lost_lease_abandons_its_rounds() -> None:
    feed, round_ = feed_with_a_round()
    stop, over, standby = asyncio.Event(), asyncio.Event(), asyncio.Event()
    ending = asyncio.create_task(_term_over(feed, stop, SimpleNamespace(standby=standby), over))
    standby.set()
    await ending
    assert over.is_set() and feed.wake.is_set()
    with pytest.raises(asyncio.CancelledError):
        await round_


async def test_a_term_ended_by_stop_lets_its_rounds_finish() -> None:
    feed, round_ = feed_with_a_round()
    stop, over = asyncio.Event(), asyncio.Event()
    lease = SimpleNamespace(standby=asyncio.Event())
    ending = asyncio.create_task(_term_over(feed, stop, lease, over))
    stop.set()
    await ending
    assert over.is_set() and not round_.cancelled()
    round_.cancel()
