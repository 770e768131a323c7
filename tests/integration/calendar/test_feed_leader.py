"""The calendar feed's lease (`connectors/calendar/feed/leader.py`) on real Kafka: the first
member of the leader group is active, a second one stands by; a holder that leaves hands the
lease over only once its active phase has ended (`stood_down`), then the standby is active."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from connectors.calendar.feed.leader import Leadership

pytestmark = pytest.mark.integration

TIMEOUT_S = 60.0


async def until(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), TIMEOUT_S)


@pytest.fixture
async def pair(kafka_bootstrap: str, unique_id: str) -> AsyncIterator[list[Leadership]]:
    """Two members of one deployment's leader group; the first joined alone."""
    app_id = f"wedsync-test-{unique_id}"
    first = Leadership(kafka_bootstrap, app_id, session_timeout_ms=6000, hand_over_s=TIMEOUT_S)
    first.start()
    await until(first.active)
    second = Leadership(kafka_bootstrap, app_id, session_timeout_ms=6000)
    second.start()
    members = [first, second]
    try:
        yield members
    finally:
        for member in members:
            member.stood_down()
            await member.close()


async def test_the_first_member_is_active_and_a_second_one_stands_by(
    pair: list[Leadership],
) -> None:
    first, second = pair
    await until(second.standby)
    assert first.active.is_set() and not second.active.is_set()
    assert first.terms == 1 and not first.standby.is_set()


async def test_a_leaving_holder_hands_over_only_once_its_active_phase_has_ended(
    pair: list[Leadership],
) -> None:
    first, second = pair
    await until(second.standby)
    leaving = asyncio.create_task(first.close())
    await until(first.standby)  # the revoke came: it now waits for the active phase to end
    with pytest.raises(TimeoutError):  # held while the old holder may still be writing
        await asyncio.wait_for(second.active.wait(), 3)
    first.stood_down()
    await until(second.active)
    await leaving
    assert second.terms == 1 and not second.standby.is_set()
