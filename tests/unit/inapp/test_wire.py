"""Client frames are parsed strictly; a bad one is refused with a reason, never a crash."""

from __future__ import annotations

import json

import pytest
from connectors.sinks.inapp import wire


def test_connect_with_a_position() -> None:
    frame = wire.parse('{"type":"connect","token":"t","since":{"epoch":"e:1","offset":7}}')
    assert frame == wire.Connect("t", wire.Position("e:1", 7))


def test_connect_without_a_position() -> None:
    assert wire.parse('{"type":"connect","token":"t"}') == wire.Connect("t", None)


def test_read_marks_carry_ids() -> None:
    assert wire.parse('{"type":"read","ids":["a","b"]}') == wire.Mark("read", ("a", "b"))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("not json", "not JSON"),
        ("[1,2]", "JSON object"),
        ('{"type":"connect"}', "token"),
        ('{"type":"connect","token":"t","since":{"epoch":"e","offset":"7"}}', "integer"),
        ('{"type":"connect","token":"t","since":{"epoch":"e","offset":true}}', "integer"),
        ('{"type":"connect","token":"t","since":[1]}', "since"),
        ('{"type":"seen","ids":"a"}', "ids"),
        ('{"type":"seen","ids":[1]}', "ids"),
        ('{"type":"subscribe"}', "unknown frame type"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_bad_frames_are_refused_with_a_reason(data: str | bytes, reason: str) -> None:
    with pytest.raises(wire.BadFrame, match=reason):
        wire.parse(data)


def test_too_many_ids_are_refused() -> None:
    frame = json.dumps({"type": "read", "ids": [str(i) for i in range(wire.MAX_IDS + 1)]})
    with pytest.raises(wire.BadFrame, match="at most"):
        wire.parse(frame)


def test_oversized_frame_is_refused_before_parsing() -> None:
    with pytest.raises(wire.BadFrame, match="bytes"):
        wire.parse("x" * (wire.MAX_FRAME_BYTES + 1))


def test_read_implies_seen_in_the_notification_frame() -> None:
    frame = json.loads(wire.with_state({"type": "notification", "id": "a"}, False, True))
    assert (frame["seen"], frame["read"]) == (True, True)


def test_close_codes_tell_reconnect_classes_apart() -> None:
    never = {wire.CLOSE_BAD_TOKEN, wire.CLOSE_PROTOCOL, wire.CLOSE_EXPIRED}
    back_off = {wire.CLOSE_OVERLOADED, wire.CLOSE_DRAINING, wire.CLOSE_SLOW}
    assert all(4000 <= c < 4100 for c in never)
    assert all(4100 <= c < 4200 for c in back_off)
    assert 4200 <= wire.CLOSE_RESTART < 4300
