"""Stop the worker mid-stream and start it again: the tables recover from their changelogs,
nothing is lost, and no event is routed twice."""

from __future__ import annotations

from collections import Counter

import pytest
from streams.dev.cdc_like import produce_changes
from streams.dev.demo import worker_process
from streams.kafka.codec import TopicCodecs
from streams.logic.normalize import normalize_change
from streams.logic.routing import load_rules, route
from streams.models import ChangeEvent
from streams.settings import Settings

from tests.integration.agents_support import (
    SOURCE,
    WEDDING,
    DeliveryReader,
    date_change,
    state_changes,
    state_of,
    wait_for_wedding_state,
    wedding_rows,
)

pytestmark = pytest.mark.integration


def _date_changes(wedding: str, first_lsn: int, count: int) -> list[ChangeEvent]:
    """`count` successive moves of one wedding, one day at a time."""
    return [
        date_change(wedding, lsn=first_lsn + i, old=f"2027-06-{i % 28 + 1:02d}",
                    new=f"2027-06-{(i + 1) % 28 + 1:02d}")
        for i in range(count)
    ]  # fmt: skip


def test_restart_recovers_state_loses_nothing_and_routes_no_event_twice(
    kafka_bootstrap: str, settings: Settings, codecs: TopicCodecs
) -> None:
    prefix = f"{settings.app_id}-"
    wedding = f"{prefix}{WEDDING}"
    state = state_changes(wedding_rows(wedding, prefix))
    before, after = _date_changes(wedding, 1000, 30), _date_changes(wedding, 2000, 30)
    tables = state_of(state)
    rules = load_rules()
    wanted = {
        d.record["delivery_id"]
        for change in before + after
        for event in normalize_change(change, SOURCE)
        for d in route(event, tables, rules, 0)
    }
    reader = DeliveryReader(kafka_bootstrap, codecs)
    try:
        produce_changes(kafka_bootstrap, codecs, state)
        with worker_process(kafka_bootstrap, settings) as first:
            wait_for_wedding_state(kafka_bootstrap, settings.app_id, prefix)
            produce_changes(kafka_bootstrap, codecs, before)
            reader.read_until(  # mid-stream: some, not all, of the first half is routed
                lambda got: len({r["delivery_id"] for _, r in got} & wanted) >= 20, timeout=90
            )
        assert first.returncode == 0  # stopped with SIGTERM: a clean, committed stop
        # while the worker is down the second half arrives; routing it needs the state,
        # which only the changelogs still hold
        produce_changes(kafka_bootstrap, codecs, after)
        with worker_process(kafka_bootstrap, settings) as second:
            reader.read_until(lambda got: wanted <= {r["delivery_id"] for _, r in got}, timeout=120)
            assert second.poll() is None
    finally:
        reader.close()
    counts = Counter(r["delivery_id"] for _, r in reader.records if r["delivery_id"] in wanted)
    assert set(counts) == wanted  # nothing lost
    assert [d for d, n in counts.items() if n > 1] == []  # nothing routed twice
