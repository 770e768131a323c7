"""The routing engine's wait for the state (no broker: the engine is built, not run)."""

from __future__ import annotations

from typing import Any

from streams.kafka.codec import TopicCodecs
from streams.logic.routing import load_rules
from streams.logic.state import StateTables
from streams.routing.engine import RouteEngine, RouteSettings


def _engine(codecs: TopicCodecs, ready: Any) -> RouteEngine:
    return RouteEngine(
        bootstrap="localhost:1", group_id="g", app_id="a", codecs=codecs, rules=load_rules(),
        state=StateTables.empty(), bookings_topic=None,
        config=RouteSettings(state_wait_s=0.25), state_ready=ready,
    )  # fmt: skip


def _event(state_lsn: int | None) -> dict[str, Any]:
    return {"event_id": "e", "source": {"commit_lsn": 5000, "state_lsn": state_lsn}}


def test_an_event_waits_for_the_state_to_reach_its_last_state_change(codecs: TopicCodecs) -> None:
    asked: list[tuple[int, float]] = []
    engine = _engine(codecs, lambda lsn, timeout: asked.append((lsn, timeout)) or True)
    engine._wait_for_state(_event(900))
    assert (asked, engine.state_timeouts) == ([(900, 0.25)], 0)


def test_a_state_that_never_arrives_is_waited_for_once_boundedly_and_counted(
    codecs: TopicCodecs,
) -> None:
    engine = _engine(codecs, lambda lsn, timeout: False)  # the watermark never gets there
    engine._wait_for_state(_event(900))
    engine._wait_for_state(_event(901))
    assert engine.state_timeouts == 2


def test_an_event_after_no_known_state_change_does_not_wait(codecs: TopicCodecs) -> None:
    asked: list[int] = []
    engine = _engine(codecs, lambda lsn, timeout: asked.append(lsn) or True)
    engine._wait_for_state(_event(None))
    assert asked == []
