"""Who is online, across every gateway process. Pure: fold presence records, return changes.

Each gateway announces on `wedsync.inapp.presence` when a user's first connection to it opens
(`join`) and their last one closes (a tombstone), and a heartbeat every few seconds. A user is
online while some live gateway holds them. A gateway that sent no heartbeat for `ttl_s` (killed,
partitioned) is forgotten with its users, so a crash leaves no ghosts; a gateway that stops
cleanly says `gone`. Changes come back as (org, "join" | "leave", user) for the gateway to push
to that organisation's connections. A user's display name (the token's `name` claim, carried
on `join`) is kept while they are online, so the inbox lists people by name, never by id.
"""

from __future__ import annotations

Change = tuple[str, str, str]  # (org, "join" | "leave", user)


class Presence:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._beats: dict[str, float] = {}  # gateway -> last heartbeat (local clock)
        self._held: dict[str, dict[str, str]] = {}  # user -> {gateway: org}
        self._by_gateway: dict[str, set[str]] = {}  # gateway -> users
        self._by_org: dict[str, set[str]] = {}  # org -> users online (connect-time lists)
        self._names: dict[str, str] = {}  # user -> display name, while online

    def heartbeat(self, gateway: str, now: float) -> None:
        self._beats[gateway] = now

    def _org(self, user: str) -> str:
        held = self._held.get(user)
        return next(iter(held.values())) if held else ""

    def join(self, gateway: str, user: str, org: str, now: float, name: str = "") -> list[Change]:
        self._beats.setdefault(gateway, now)
        if name:
            self._names[user] = name
        held = self._held.setdefault(user, {})
        first = not held
        held[gateway] = org
        self._by_gateway.setdefault(gateway, set()).add(user)
        self._by_org.setdefault(org, set()).add(user)
        return [(org, "join", user)] if first else []

    def leave(self, gateway: str, user: str) -> list[Change]:
        held = self._held.get(user)
        if not held or gateway not in held:
            return []
        org = held.pop(gateway)
        self._by_gateway.get(gateway, set()).discard(user)
        if held:
            return []
        del self._held[user]
        self._offline(org, user)
        return [(org, "leave", user)]

    def _offline(self, org: str, user: str) -> None:
        self._names.pop(user, None)
        users = self._by_org.get(org)
        if users is not None:
            users.discard(user)
            if not users:
                del self._by_org[org]

    def gone(self, gateway: str) -> list[Change]:
        """The gateway stopped (said so, or its heartbeat expired): its users leave it."""
        self._beats.pop(gateway, None)
        changes: list[Change] = []
        for user in sorted(self._by_gateway.pop(gateway, set())):
            held = self._held.get(user, {})
            org = held.pop(gateway, "")
            if not held:
                self._held.pop(user, None)
                self._offline(org, user)
                changes.append((org, "leave", user))
        return changes

    def expired(self, now: float) -> list[str]:
        """Gateways whose heartbeat is older than the TTL."""
        return [g for g, at in self._beats.items() if now - at > self.ttl_s]

    def holdings(self, gateway: str) -> set[str]:
        return set(self._by_gateway.get(gateway, ()))

    def online(self, org: str) -> list[str]:
        """The organisation's users online (an index: connecting stays O(organisation))."""
        return sorted(self._by_org.get(org, ()))

    def name(self, user: str) -> str:
        """The user's display name; "" when their token named none."""
        return self._names.get(user, "")

    def names(self, org: str) -> dict[str, str]:
        """Display names of the organisation's users online who have one."""
        return {u: self._names[u] for u in self.online(org) if u in self._names}

    def count(self) -> int:
        return len(self._held)

    def is_online(self, user: str) -> bool:
        return user in self._held
