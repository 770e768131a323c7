"""The outbound policy as data and its checks: `OutboundPolicy` (allow-lists, deadline,
answer cap), `check_url`, `check_address`, `resolve_checked`, and the audit line
(`audit_scope`, `audit`). The pure rules are in `outbound_rules`; the session that
enforces them on every call is `outbound.OutboundSession`. Import from `outbound`."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from connectors.sinks.outbound_rules import (
    ALLOW_HTTP_HOSTS,
    ALLOW_NETWORKS,
    AllowEntry,
    IPAddress,
    OutboundRefused,
    address_refusal,
    host_refusal,
    parse_address,
    parse_allow_list,
)

log = logging.getLogger("wedsync.audit")  # kept at INFO at any log level: streams.app.cli

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_LOOPBACK_NETS = ("127.0.0.0/8", "[::1/128]")


@dataclass(frozen=True)
class OutboundPolicy:
    """Where sinks may connect and how long and how much an answer may be. The default
    allows only public https endpoints."""

    allow_http: tuple[AllowEntry, ...] = ()
    allow_networks: tuple[AllowEntry, ...] = ()
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 15.0  # the whole answer, from the call's start
    max_answer_bytes: int = 64 * 1024
    max_connections: int = 200

    @classmethod
    def loopback_for_tests(cls, *receivers: int | str, **overrides: Any) -> OutboundPolicy:
        """Plain http and loopback addresses allowed on the ports of `receivers` only (ports,
        or URLs of local servers under test): nothing else listening on loopback (a
        process's /metrics, a database, a broker) is reachable."""
        ports = sorted({r if isinstance(r, int) else _port_of(r) for r in receivers})
        http = ",".join(f"{h}:{p}" for h in _LOOPBACK_HOSTS for p in ports)
        nets = ",".join(f"{n}:{p}" for n in _LOOPBACK_NETS for p in ports)
        return cls.parse(http, nets, **overrides)

    @classmethod
    def parse(
        cls, allow_http_hosts: str = "", allow_networks: str = "", **kwargs: Any
    ) -> OutboundPolicy:
        """From comma-separated settings; raises ValueError naming the setting and entry."""
        return cls(
            allow_http=parse_allow_list(allow_http_hosts, ALLOW_HTTP_HOSTS),
            allow_networks=parse_allow_list(allow_networks, ALLOW_NETWORKS),
            **kwargs,
        )  # fmt: skip

    def deadline(self, requested: float | None = None) -> float:
        """Seconds the whole answer may take: the caller's `requested`, at most the policy's."""
        if requested is None or requested <= 0:
            return self.read_timeout_s
        return min(requested, self.read_timeout_s)


def check_url(url: object, policy: OutboundPolicy) -> None:
    """Refuse a URL that is not https (unless its host and port are allow-listed for http),
    that carries credentials in its authority or whose host is a non-canonical number."""
    parts = urlsplit(str(url))
    try:
        port = parts.port
    except ValueError:
        raise OutboundRefused("the endpoint URL's port is not a number 1-65535") from None
    host = (parts.hostname or "").lower()
    if not host:
        raise OutboundRefused("the endpoint URL has no host")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused("the endpoint URL carries credentials in it; store them apart")
    refusal = host_refusal(host)
    if refusal is not None:
        raise OutboundRefused(refusal)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and any(e.allows_host(host, port or 80) for e in policy.allow_http):
        return
    raise OutboundRefused(
        f"scheme {parts.scheme!r} refused for host {host} port {port or 80}: only https is "
        f"allowed (allow-list the host and port for plain http: {ALLOW_HTTP_HOSTS}, e.g. "
        f"{host}:{port or 80})"
    )


def check_address(address: str, policy: OutboundPolicy, port: int = 443) -> IPAddress:
    """The address, if a sink may connect to it on `port`; OutboundRefused otherwise."""
    ip = parse_address(address)
    refusal = address_refusal(ip, port, policy.allow_networks)
    if refusal is not None:
        raise OutboundRefused(refusal)
    return ip


async def resolve_checked(host: str, port: int, policy: OutboundPolicy) -> list[str]:
    """Resolve `host` and check every address; all must pass (a name that resolves to one
    public and one private address is refused)."""
    refusal = host_refusal(host.strip("[]"))
    if refusal is not None:
        raise OutboundRefused(refusal)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        check_address(address, policy, port)
    return addresses


# ---- audit -----------------------------------------------------------------------------
_AUDIT: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar(
    "wedsync_audit", default=("-", "-")
)


@contextmanager
def audit_scope(destination: str, target: str) -> Iterator[None]:
    """Calls made inside are audited as made for `destination` / `target` (ids only)."""
    token = _AUDIT.set((destination, target))
    try:
        yield
    finally:
        _AUDIT.reset(token)


def audit(method: str, host: str, status: int | str, started: float) -> None:
    """One line per external call. `status` is an HTTP status, an SMTP code or an error
    class name; never a message that could carry a secret."""
    destination, target = _AUDIT.get()
    log.info(
        "external call destination=%s target=%s method=%s host=%s status=%s latency_ms=%.1f",
        destination, target, method, host, status, (time.monotonic() - started) * 1000,
    )  # fmt: skip


def _port_of(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def host_of(url: object) -> str:
    """The lower-cased host of `url` for an audit line (never its path), or "-"."""
    try:
        return (urlsplit(str(url)).hostname or "").lower()
    except ValueError:
        return "-"
