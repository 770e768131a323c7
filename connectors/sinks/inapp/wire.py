"""Frames of the gateway's protocol (PROTOCOL.md), pure: parse what a client sends, build what
the gateway sends. A frame the gateway cannot accept raises `BadFrame` with a reason to send
back; nothing here does I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Close codes: 40xx do not reconnect as is, 41xx back off, 42xx reconnect now.
CLOSE_BAD_TOKEN = 4001
CLOSE_PROTOCOL = 4002
CLOSE_EXPIRED = 4003
CLOSE_OVERLOADED = 4100
CLOSE_DRAINING = 4101
CLOSE_SLOW = 4108
CLOSE_RESTART = 4200
CLOSE_REASONS = {
    CLOSE_BAD_TOKEN: "bad token",
    CLOSE_PROTOCOL: "protocol error",
    CLOSE_EXPIRED: "token expired",
    CLOSE_OVERLOADED: "overloaded, back off",
    CLOSE_DRAINING: "draining, back off",
    CLOSE_SLOW: "slow",
    CLOSE_RESTART: "restart, reconnect now",
}

MAX_FRAME_BYTES = 64 * 1024
MAX_IDS = 500


class BadFrame(ValueError):
    """A client frame the gateway refuses; `str(exc)` is the reason sent back."""


@dataclass(frozen=True)
class Position:
    epoch: str
    offset: int


@dataclass(frozen=True)
class Connect:
    token: str
    since: Position | None


@dataclass(frozen=True)
class Refresh:
    token: str


@dataclass(frozen=True)
class Mark:
    state: str  # "seen" or "read"
    ids: tuple[str, ...]


@dataclass(frozen=True)
class Ping:
    pass


ClientFrame = Connect | Refresh | Mark | Ping


def _token(obj: dict[str, Any]) -> str:
    token = obj.get("token")
    if not isinstance(token, str) or not token:
        raise BadFrame("'token' must be a non-empty string")
    return token


def _since(value: Any) -> Position | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadFrame("'since' must be an object {epoch, offset}")
    epoch, offset = value.get("epoch"), value.get("offset")
    if not isinstance(epoch, str) or isinstance(offset, bool) or not isinstance(offset, int):
        raise BadFrame("'since' needs a string 'epoch' and an integer 'offset'")
    return Position(epoch, offset)


def _ids(obj: dict[str, Any]) -> tuple[str, ...]:
    ids = obj.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise BadFrame("'ids' must be a list of notification ids")
    if len(ids) > MAX_IDS:
        raise BadFrame(f"at most {MAX_IDS} ids per frame")
    return tuple(ids)


def parse(data: str | bytes) -> ClientFrame:
    """One client frame; BadFrame says what is wrong with it."""
    if len(data) > MAX_FRAME_BYTES:
        raise BadFrame(f"frame over {MAX_FRAME_BYTES} bytes")
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise BadFrame("frame is not JSON") from None
    if not isinstance(obj, dict):
        raise BadFrame("frame must be a JSON object")
    kind = obj.get("type")
    if kind == "connect":
        return Connect(_token(obj), _since(obj.get("since")))
    if kind == "refresh":
        return Refresh(_token(obj))
    if kind in ("seen", "read"):
        return Mark(kind, _ids(obj))
    if kind == "ping":
        return Ping()
    raise BadFrame(f"unknown frame type {kind!r}")


def dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def notification(record: dict[str, Any], epoch: str, offset: int) -> dict[str, Any]:
    """The `notification` frame of an in-app delivery record (without seen/read)."""
    return {
        "type": "notification",
        "id": record["delivery_id"],
        "event_id": record["event_id"],
        "notification_type": record["notification_type"],
        "title": record["title"],
        "body": record["body"],
        "link": record.get("link"),
        "data": record.get("data") or {},
        "routed_at_ms": record["routed_at_ms"],
        "epoch": epoch,
        "offset": offset,
    }


def with_state(frame: dict[str, Any], seen: bool, read: bool) -> str:
    return dumps({**frame, "seen": seen or read, "read": read})
