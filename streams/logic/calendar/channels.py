"""Push channels of connected calendars: their stateless tokens and when to create, renew
or stop them. Pure: no I/O, no clock (every time is passed in, unix milliseconds).

Tokens. Every Google channel token (`X-Goog-Channel-Token`, <= 256 chars) and every Graph
`clientState` (<= 128 chars) is

    v1.<integration_id>.<base64url(HMAC-SHA256(key, "v1|<channel_id>|<integration_id>"))[:32]>

so the inbound gateway can verify a push without a registry of channels: `verify_token`
recomputes the MAC for the push's channel (or subscription) id under every configured key
(the current one and the previous one while keys rotate) and answers the integration id, or
None. The token holds no secret (Google advises against secrets in it): only the id and a
MAC over it, bound to the channel id so a token cannot be replayed on another channel.

Renewal. `plan(channels, now_ms, connected)` looks at the channels of ONE calendar and says
what to do, as `Create` / `Stop` / `Renew` actions; the caller executes them and records the
states (`pending_sync` until the channel's `sync` push arrived, `active`, `replacing` once a
successor was asked for, `stopped`). Google channels cannot be extended: a successor is
created first and the old one stopped only once the successor is active (its `sync` arrived)
or HANDOVER_MS after the successor was created, so there is never a gap. Graph subscriptions
are extended in place (`Renew`: PATCH expirationDateTime). A channel is due when the time
left is below max(24 h, 25% of its lifetime), capped at half its lifetime (a provider that
answers a short expiration must not cause a renewal loop), moved by a jitter of +-10% derived
from the channel id (deterministic, no randomness) so channels made together do not renew
together.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

ChannelState = Literal["pending_sync", "active", "replacing", "stopped"]
ChannelProvider = Literal["google", "graph"]

TOKEN_VERSION = "v1"
MAC_CHARS = 32
MAX_TOKEN_CHARS = 128  # Graph clientState's limit (Google's is 256)
MAX_VERIFIED_CHARS = 256  # a longer offered token is not one of ours
DAY_MS = 24 * 3600 * 1000
HANDOVER_MS = 10 * 60 * 1000  # stop the replaced channel this long after the successor at most
JITTER = 0.10


# ---- tokens --------------------------------------------------------------------------------
def _mac(key: bytes, integration_id: str, channel_id: str) -> bytes:
    message = f"{TOKEN_VERSION}|{channel_id}|{integration_id}".encode()
    digest = hmac.digest(key, message, "sha256")
    return base64.urlsafe_b64encode(digest).rstrip(b"=")[:MAC_CHARS]


def issue_token(keys: Sequence[bytes], integration_id: str, channel_id: str) -> str:
    """The token of channel `channel_id` of integration `integration_id`, made with the
    first (current) key. ValueError when there is no key, the integration id is empty or
    holds a '.', or the token would exceed MAX_TOKEN_CHARS."""
    if not keys or not keys[0]:
        raise ValueError("a channel token needs a key")
    if not integration_id or "." in integration_id:
        raise ValueError("an integration id must be non-empty and hold no '.'")
    if not channel_id:
        raise ValueError("a channel token needs a channel id")
    mac = _mac(keys[0], integration_id, channel_id).decode()
    token = f"{TOKEN_VERSION}.{integration_id}.{mac}"
    if len(token) > MAX_TOKEN_CHARS:
        raise ValueError(f"the channel token would exceed {MAX_TOKEN_CHARS} characters")
    return token


def verify_token(keys: Sequence[bytes], token: object, channel_id: object) -> str | None:
    """The integration id the token was issued for, when its MAC over `channel_id` matches
    any of `keys` (each one compared, constant-time); None for a wrong, tampered or
    malformed token (never an exception)."""
    if not isinstance(token, str) or not isinstance(channel_id, str) or not channel_id:
        return None
    if len(token) > MAX_VERIFIED_CHARS or not token.isascii():
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    version, integration_id, offered = parts
    if version != TOKEN_VERSION or not integration_id or len(offered) != MAC_CHARS:
        return None
    found = False
    for key in keys:
        if key:
            found |= hmac.compare_digest(_mac(key, integration_id, channel_id), offered.encode())
    return integration_id if found else None


def verify_bound_token(keys: Sequence[bytes], token: object) -> str | None:
    """The integration id of a token whose MAC is over that integration id itself: Graph's
    clientState is fixed in the create call, before the subscription id exists, so the feed
    binds it to the integration (a replay on another subscription of the same integration
    costs one more fetch, nothing else)."""
    parts = token.split(".") if isinstance(token, str) else []
    return verify_token(keys, token, parts[1]) if len(parts) == 3 else None


# ---- renewal planning ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Channel:
    """A push channel (Google) or subscription (Graph) of one calendar, as stored."""

    channel_id: str
    calendar_key: str
    provider: ChannelProvider
    resource_id: str
    expires_at_ms: int
    created_at_ms: int
    state: ChannelState = "pending_sync"


@dataclass(frozen=True, slots=True)
class Create:
    """Create a channel for the calendar; `replaces` (Google) is the channel it succeeds,
    to be marked `replacing` once the successor exists."""

    replaces: Channel | None = None


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop the channel (Google channels.stop; Graph DELETE subscription) and mark it
    stopped; an expired channel the provider no longer knows counts as stopped."""

    channel: Channel


@dataclass(frozen=True, slots=True)
class Renew:
    """Extend the Graph subscription in place (PATCH expirationDateTime)."""

    channel: Channel


Action = Create | Stop | Renew


def jitter(channel_id: str) -> float:
    """A factor in [1 - JITTER, 1 + JITTER], the same for the same channel id."""
    value = int.from_bytes(hashlib.sha256(channel_id.encode()).digest()[:8], "big")
    return 1.0 + JITTER * (2.0 * (value / float(2**64 - 1)) - 1.0)


def renew_at_ms(channel: Channel) -> int:
    """When the channel becomes due: its expiry less max(24 h, 25% of its lifetime)
    (at most half its lifetime), times its jitter."""
    lifetime = max(0, channel.expires_at_ms - channel.created_at_ms)
    lead = min(max(DAY_MS, lifetime // 4), lifetime // 2)
    return channel.expires_at_ms - int(lead * jitter(channel.channel_id))


def renew_due(channel: Channel, now_ms: int) -> bool:
    """True once the time left before the channel expires is below its renewal lead."""
    return now_ms >= renew_at_ms(channel)


def _newest(channels: Sequence[Channel]) -> Channel:
    return max(channels, key=lambda c: (c.created_at_ms, c.channel_id))


def plan(channels_of_calendar: Sequence[Channel], now_ms: int, connected: bool) -> list[Action]:
    """What to do now with the channels of one calendar (see the module docstring).

    Disconnected: stop every channel not stopped. Connected: channels past their expiry are
    stopped (they notify no more) and, when none is left live, one is created; of the live
    ones the newest is the current one and every older one is stopped once the current one
    is active or HANDOVER_MS old (Graph: at once); a current channel that is due, or is
    `replacing` without a successor, gets one (Google: `Create(replaces=current)`), a due
    Graph subscription is renewed in place (`Renew`)."""
    open_ = [c for c in channels_of_calendar if c.state != "stopped"]
    if not connected:
        return [Stop(c) for c in open_]
    actions: list[Action] = [Stop(c) for c in open_ if c.expires_at_ms <= now_ms]
    live = [c for c in open_ if c.expires_at_ms > now_ms]
    if not live:
        return [*actions, Create()]
    current = _newest(live)
    older = [c for c in live if c is not current]
    handed_over = current.state == "active" or now_ms - current.created_at_ms >= HANDOVER_MS
    if current.provider == "graph" or handed_over:
        actions += [Stop(c) for c in older]
    if current.provider == "graph":
        if renew_due(current, now_ms):
            actions.append(Renew(current))
    elif current.state == "replacing" or renew_due(current, now_ms):
        actions.append(Create(replaces=current))
    return actions
