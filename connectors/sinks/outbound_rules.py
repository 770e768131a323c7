"""The pure rules of the outbound policy (no I/O): which addresses are public, which hosts
are refused as written, and what an allow-list entry allows.

- `address_refusal(ip, port, allow)`: None when a sink may connect to `ip`:`port`, else the
  reason. The address is unwrapped first: an IPv4-mapped (``::ffff:a.b.c.d``) or NAT64
  (``64:ff9b::/96``) address is its IPv4 address; one that carries an IPv4 address to a
  relay (IPv4-compatible ``::a.b.c.d``, 6to4 ``2002::/16``, Teredo ``2001::/32``: its
  server and its client, the last 32 bits XORed with 0xffffffff) is refused unless every
  address it carries is public too (or the IPv6 address itself is allow-listed).
  Site-local ``fec0::/10`` counts as private.
- `host_refusal(host)`: a numeric host that is not written canonically (``2130706433``,
  ``127.1``, ``0177.0.0.1``, ``0x7f.1``, ``127.000.0.1``): refused whatever it means, so no
  resolver or URL parser gets to interpret it differently from our check.
- `parse_allow_list(text, setting)`: allow-list entries name a host or network AND a port or
  port range (``127.0.0.1:8443``, ``127.0.0.0/8:9000-9100``, ``[::1]:8443``,
  ``localhost:8080``); an entry without a port is refused with a message naming `setting`:
  allow-listing an address must never open every port on it (metrics, databases, brokers).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

from streams.errors import FatalError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOW_HTTP_HOSTS = "WEDSYNC_SINK_OUTBOUND_ALLOW_HTTP_HOSTS"
ALLOW_NETWORKS = "WEDSYNC_SINK_OUTBOUND_ALLOW_NETWORKS"

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPATIBLE = ipaddress.ip_network("::/96")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)


class OutboundRefused(FatalError):
    """The call was refused before any byte left (a non-https URL, a host resolving to a
    non-public address or a port not allow-listed), or its answer was a redirect, which is
    never followed. Fix the endpoint (or the allow-list) and replay the dead letter."""


@dataclass(frozen=True)
class AllowEntry:
    """One allow-list entry: a network (or a host name) and an inclusive port range."""

    network: IPNetwork | None
    host: str | None
    low: int
    high: int

    def allows_address(self, ip: IPAddress, port: int) -> bool:
        return self.network is not None and ip in self.network and self.low <= port <= self.high

    def allows_host(self, host: str, port: int) -> bool:
        name = host.lower().strip("[]")
        if self.low <= port <= self.high:
            if self.host is not None:
                return name == self.host
            if self.network is not None and self.network.num_addresses == 1:
                return _is_ip(name) and ipaddress.ip_address(name) in self.network
        return False


def parse_allow_list(text: str, setting: str) -> tuple[AllowEntry, ...]:
    """Comma-separated entries; ValueError naming `setting` and the entry when one is bad."""
    return tuple(parse_allow_entry(e.strip(), setting) for e in text.split(",") if e.strip())


def parse_allow_entry(entry: str, setting: str) -> AllowEntry:
    """``host:port``, ``host:low-high``, ``network:port``, ``[ipv6 or network]:port``."""
    example = "e.g. 127.0.0.1:8443, 127.0.0.0/8:9000-9100 or [::1]:8443"
    if entry.startswith("["):
        where, bracket, rest = entry[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValueError(
                f"{setting}: entry {entry!r} names no port; write [address]:port ({example})"
            )
        ports = rest[1:]
    else:
        if entry.count(":") > 1:
            raise ValueError(
                f"{setting}: entry {entry!r}: write an IPv6 address or network in brackets, "
                f"with a port ({example})"
            )
        where, colon, ports = entry.partition(":")
        if not colon:
            raise ValueError(
                f"{setting}: entry {entry!r} names no port; an allow-list entry opens one "
                f"port or port range, never a whole host ({example})"
            )
    low, high = _ports(ports, entry, setting)
    where = where.strip().lower()
    try:
        network: IPNetwork | None = ipaddress.ip_network(where, strict=False)
    except ValueError:
        network = None
    if network is None:
        if not where or "/" in where or host_refusal(where) is not None:
            raise ValueError(f"{setting}: entry {entry!r}: {where!r} is not a host or network")
        return AllowEntry(None, where.rstrip("."), low, high)
    return AllowEntry(network, None, low, high)


def _ports(text: str, entry: str, setting: str) -> tuple[int, int]:
    low_s, dash, high_s = text.strip().partition("-")
    try:
        low = int(low_s)
        high = int(high_s) if dash else low
    except ValueError:
        raise ValueError(
            f"{setting}: entry {entry!r}: {text!r} is not a port or port range"
        ) from None
    if not 1 <= low <= high <= 65535:
        raise ValueError(f"{setting}: entry {entry!r}: ports must be 1-65535, low before high")
    return low, high


def host_refusal(host: str) -> str | None:
    """Why `host` (from a URL, without brackets) is refused as written, or None."""
    name = host.lower()
    if _is_ip(name):
        return None
    labels = name.rstrip(".").split(".")
    numeric = bool(labels) and _NUMERIC_LABEL.match(labels[-1]) is not None
    if numeric or _inet_aton(name) or _inet_aton(name.rstrip(".")):
        return (
            f"host {host!r} is a numeric address not written as a dotted quad (a.b.c.d, "
            "decimal, no leading zeros): write the address canonically"
        )
    return None


def unwrap(ip: IPAddress) -> tuple[IPAddress, tuple[ipaddress.IPv4Address, ...]]:
    """(the address connected to, the IPv4 addresses it carries to a relay). An IPv4-mapped
    or NAT64 address reaches its IPv4 address: that is the one connected to."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip, ()
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, ()
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), ()
    carried: list[ipaddress.IPv4Address] = []
    if ip.sixtofour is not None:
        carried.append(ip.sixtofour)
    if ip.teredo is not None:
        carried.extend(ip.teredo)  # (server, client); the client is already un-XORed
    if ip in _COMPATIBLE and int(ip) > 1:  # ::a.b.c.d, not :: nor ::1
        carried.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return ip, tuple(carried)


def is_public(ip: IPAddress) -> bool:
    """Globally routable unicast: not private, loopback, link-local, site-local, multicast,
    reserved, unspecified or shared (100.64/10)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip in _SITE_LOCAL:
        return False
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_private
    )


def address_refusal(ip: IPAddress, port: int, allow: tuple[AllowEntry, ...]) -> str | None:
    """None when a sink may connect to `ip`:`port`; else why not (naming the setting).

    Allowed: the address connected to is inside an allow-list entry for that port, or it
    and every IPv4 address it carries (6to4, Teredo, IPv4-compatible) are public."""
    target, carried = unwrap(ip)
    if any(entry.allows_address(target, port) for entry in allow):
        return None
    for candidate in (target, *carried):
        if not is_public(candidate):
            shown = f"{candidate}" if candidate is target else f"{candidate} (inside {ip})"
            return (
                f"address {shown} port {port} is not public (private, loopback, link-local, "
                "site-local, multicast or reserved); allow-list its address or network with "
                f"the port to permit it: {ALLOW_NETWORKS} (e.g. 10.0.0.0/8:8443)"
            )
    return None


def parse_address(text: str) -> IPAddress:
    """An address as the resolver or a socket reports it (an IPv6 zone id dropped)."""
    return ipaddress.ip_address(text.split("%", 1)[0])


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _inet_aton(text: str) -> bool:
    try:
        socket.inet_aton(text)
    except (OSError, ValueError):
        return False
    return True
