"""On Apache Kafka: a calendar's sync state on `wedsync.calendar.sync_state`, written before
the SLA agent starts, becomes a calendar health record on `wedsync.sla.health`; with a short
interval and no further sync state it turns stale by time alone (record, state change event,
`wedsync_sla_calendars` gauge); its tombstone removes it; an unreadable one is skipped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from connectors.calendar.feed.sync_state import CalendarSync
from prometheus_client import REGISTRY
from streams.background import Background
from streams.kafka.codec import TopicCodecs
from streams.logic.calendar.differ import Known
from streams.settings import Settings
from streams.sla.process import SlaAgent
from streams.sla.settings import SlaSettings
from streams.topics import CALENDAR_SYNC_STATE, SLA_HEALTH

from tests.integration.sinks.support import own_broker, wait_until
from tests.integration.sla.support import read_all, sla_events

pytestmark = pytest.mark.integration
KEY = "google:int-cal-1:primary"
HEALTH_KEY = f"calendar:{KEY}"
INTERVAL_MS = 1500  # stale 3 s after its last success


def gauge(status: str) -> float | None:
    return REGISTRY.get_sample_value("wedsync_sla_calendars",
                                     {"provider": "google", "status": status})  # fmt: skip


def write_state(bootstrap: str, value: bytes | None, key: str = KEY) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(CALENDAR_SYNC_STATE.name, value, key.encode())
    assert producer.flush(10) == 0


@pytest.fixture(scope="module")
def running() -> Iterator[dict[str, Any]]:
    codecs = TopicCodecs.from_settings(Settings())
    with own_broker() as bootstrap:
        now = int(time.time() * 1000)
        write_state(bootstrap, b"not a sync state", "google:int-bad:primary")  # skipped
        known = Known.from_json({"intervals": {"ev-1": {"": "iid-1"}}})
        write_state(bootstrap, CalendarSync(
            KEY, known=known, last_success_ms=now, added_ms=now - 60_000, status="polling_only",
            status_since_ms=now, interval_ms=INTERVAL_MS,
        ).to_bytes())  # fmt: skip
        agent = SlaAgent(bootstrap, codecs, SlaSettings(slot_s=1.0, evaluate_every_s=0.2))
        background = Background(agent.run, "sla")
        try:
            yield {"agent": agent, "bootstrap": bootstrap, "codecs": codecs, "written_ms": now}
        finally:
            background.stop()


def calendar_health(run: dict[str, Any]) -> list[Any]:
    """The values of the calendar's health records, in order (None: a tombstone)."""
    return [v for k, v in read_all(run["bootstrap"], run["codecs"], SLA_HEALTH) if k == HEALTH_KEY]


def test_a_sync_state_becomes_a_calendar_health_record(running: dict[str, Any]) -> None:
    records = wait_until(lambda: calendar_health(running), 30)
    first = records[0]
    assert (first["destination"], first["integration_id"]) == ("calendar", HEALTH_KEY)
    assert first["calendar"]["status"] == "polling_only"
    assert first["calendar"]["interval_ms"] == INTERVAL_MS
    assert first["status"] == "degraded"  # a push provider without a live channel
    assert list(running["agent"].calendars.reported) == [KEY]  # the unreadable one skipped


def test_with_no_further_sync_state_it_turns_stale_by_time_alone(
    running: dict[str, Any],
) -> None:
    agent: SlaAgent = running["agent"]
    wait_until(lambda: (h := agent.calendars.reported.get(KEY)) and h.status == "stale", 30)
    assert time.time() * 1000 - running["written_ms"] > 2 * INTERVAL_MS
    latest = wait_until(lambda: [r for r in calendar_health(running)
                                 if r and r["calendar"]["status"] == "stale"], 10)[-1]  # fmt: skip
    assert latest["status"] == "failing"
    changes = [(e["previous"], e["name"]) for e in sla_events(running["bootstrap"],
               running["codecs"]) if e["integration_id"] == HEALTH_KEY]  # fmt: skip
    assert ("polling_only", "stale") in changes
    assert gauge("stale") == 1 and gauge("polling_only") == 0


def test_its_tombstone_removes_it(running: dict[str, Any]) -> None:
    agent: SlaAgent = running["agent"]
    wait_until(lambda: KEY in agent.calendars.reported, 30)
    write_state(running["bootstrap"], None)
    wait_until(lambda: KEY not in agent.calendars.reported, 30)
    wait_until(lambda: calendar_health(running)[-1] is None, 10)  # its health record goes too
    wait_until(lambda: gauge("stale") == 0, 10)
