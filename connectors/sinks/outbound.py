"""The only way a sink reaches the outside world.

Every HTTP call a connector makes goes through `http_client()` (httpx) or, for slack-sdk's
aiohttp client, `aiohttp_session()`; both end in one aiohttp session that enforces the
`OutboundPolicy`:

- https only, unless the host is allow-listed for plain http (`allow_http_hosts`);
- the host is resolved at connect time and every address it resolves to must be public:
  private, loopback, link-local, multicast, reserved, unspecified and IPv4-mapped forms of
  them are refused unless inside an allow-listed network (`allow_networks`; tests list
  loopback explicitly). Checking at connect time, and connecting to the address checked,
  defeats DNS rebinding between a validation and the call;
- redirects are never followed (a 3xx is an answer, classified as a failure);
- connect and read timeouts on every call;
- one audit log line per call (`wedsync.audit`): destination, target id, method, host,
  status, latency. Never the path or query (webhook URLs carry secrets), never a payload.

A refused call raises `OutboundRefused` (a `FatalError`: the record goes to the dead-letter
topic with the reason; fix the endpoint URL or the allow-list, then replay).
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from streams.errors import FatalError

log = logging.getLogger("wedsync.audit")
# httpx logs every request's full URL at INFO and httpcore its connections at DEBUG: webhook
# URLs carry secrets in their path, so neither may log below WARNING. Our audit line is the
# record of each call.
for _name in ("httpx", "httpcore", "httpx_aiohttp"):
    logging.getLogger(_name).setLevel(logging.WARNING)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


class OutboundRefused(FatalError):
    """The call was refused before any byte left: a non-https URL, or a host resolving to a
    non-public address. Fix the endpoint (or the allow-list) and replay the dead letter."""


@dataclass(frozen=True)
class OutboundPolicy:
    """Where sinks may connect. The default allows only public https endpoints."""

    allow_http_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[IPNetwork, ...] = ()
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 15.0
    max_connections: int = 200

    @classmethod
    def loopback_for_tests(cls, **overrides: Any) -> OutboundPolicy:
        """Plain http and loopback addresses allowed: local servers under test."""
        base: dict[str, Any] = {
            "allow_http_hosts": frozenset({"127.0.0.1", "localhost", "::1"}),
            "allow_networks": LOOPBACK,
        }
        return cls(**{**base, **overrides})

    @classmethod
    def parse(
        cls,
        allow_http_hosts: str = "",
        allow_networks: str = "",
        **kwargs: Any,
    ) -> OutboundPolicy:
        """From comma-separated settings; raises ValueError naming a bad network."""
        hosts = frozenset(h.strip().lower() for h in allow_http_hosts.split(",") if h.strip())
        nets = tuple(
            ipaddress.ip_network(n.strip(), strict=False)
            for n in allow_networks.split(",")
            if n.strip()
        )
        return cls(allow_http_hosts=hosts, allow_networks=nets, **kwargs)

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.read_timeout_s, connect=self.connect_timeout_s)


def check_url(url: object, policy: OutboundPolicy) -> None:
    """Refuse a URL that is not https (unless its host is allow-listed for http) or that
    carries credentials in its authority. Called on every request: kept cheap (urlsplit)."""
    parts = urlsplit(str(url))
    host = (parts.hostname or "").lower()
    if not host:
        raise OutboundRefused("the endpoint URL has no host")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused("the endpoint URL carries credentials in it; store them apart")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and host in policy.allow_http_hosts:
        return
    raise OutboundRefused(
        f"scheme {parts.scheme!r} refused for host {host}: only https is allowed "
        "(allow-list the host for plain http: WEDSYNC_OUTBOUND_ALLOW_HTTP_HOSTS)"
    )


def check_address(address: str, policy: OutboundPolicy) -> IPAddress:
    """The address, if a sink may connect to it; OutboundRefused otherwise."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in net for net in policy.allow_networks):
        return ip
    if (
        not ip.is_global
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_private
    ):
        raise OutboundRefused(
            f"address {ip} is not public (private, loopback, link-local, multicast or "
            "reserved); allow-list its network to permit it: WEDSYNC_OUTBOUND_ALLOW_NETWORKS"
        )
    return ip


async def resolve_checked(host: str, port: int, policy: OutboundPolicy) -> list[str]:
    """Resolve `host` and check every address; all must pass (a name that resolves to one
    public and one private address is refused)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        check_address(address, policy)
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


# ---- httpx -----------------------------------------------------------------------------
class _Transport(AiohttpTransport):  # httpx-aiohttp: the transport over our session
    """httpx-aiohttp's transport, except that a refused connection is a ConnectError (it
    reports ConnectTimeout: the error class an operator reads must not say "timeout")."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response: httpx.Response = await super().handle_async_request(request)
        except httpx.ConnectTimeout as exc:
            cause = exc.__cause__
            if isinstance(cause, aiohttp.ClientConnectorError) and not isinstance(
                cause, TimeoutError
            ):
                raise httpx.ConnectError(str(cause), request=request) from cause
            raise
        return response


def http_client(policy: OutboundPolicy, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client that can only make policy-checked calls (never follows redirects).

    Connectors write httpx; the bytes travel through aiohttp (httpx-aiohttp's transport over
    `aiohttp_session`, which holds the checks). httpcore's own pool served 50 concurrent
    calls to a 10 ms endpoint at about 110 a second on these machines, aiohttp at about
    3,000 (bench/sinks.py)."""
    return httpx.AsyncClient(
        transport=_Transport(client=lambda: aiohttp_session(policy)),
        timeout=policy.timeout(),
        follow_redirects=False,
        trust_env=False,
        **kwargs,
    )


# ---- aiohttp (slack-sdk) ---------------------------------------------------------------
def aiohttp_session(policy: OutboundPolicy) -> Any:
    """An aiohttp ClientSession with the same checks, for clients built on aiohttp."""
    from aiohttp.abc import AbstractResolver, ResolveResult

    class CheckedResolver(AbstractResolver):
        async def resolve(
            self, host: str, port: int = 0, family: int = socket.AF_INET
        ) -> list[ResolveResult]:
            addresses = await resolve_checked(host, port, policy)
            return [
                ResolveResult(
                    hostname=host,
                    host=a,
                    port=port,
                    family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
                for a in addresses
            ]

        async def close(self) -> None:
            return None

    async def on_start(_s: Any, ctx: Any, params: Any) -> None:
        check_url(str(params.url), policy)
        if params.url.host and _is_ip(params.url.host):  # literal IPs skip the resolver
            check_address(params.url.host, policy)
        ctx.started = time.monotonic()

    async def on_end(_s: Any, ctx: Any, params: Any) -> None:
        audit(params.method, params.url.host or "", params.response.status, ctx.started)

    async def on_error(_s: Any, ctx: Any, params: Any) -> None:
        audit(params.method, params.url.host or "", type(params.exception).__name__, ctx.started)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    trace.on_request_end.append(on_end)
    trace.on_request_exception.append(on_error)
    connector = aiohttp.TCPConnector(resolver=CheckedResolver(), limit=policy.max_connections)
    timeout = aiohttp.ClientTimeout(
        sock_connect=policy.connect_timeout_s, sock_read=policy.read_timeout_s
    )
    return aiohttp.ClientSession(
        connector=connector, timeout=timeout, trace_configs=[trace], trust_env=False
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


__all__ = [
    "LOOPBACK",
    "OutboundPolicy",
    "OutboundRefused",
    "audit",
    "audit_scope",
    "check_address",
    "check_url",
    "http_client",
]
