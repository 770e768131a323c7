"""The pure rules of the outbound policy (connectors.sinks.outbound_rules): addresses,
numeric hosts and allow-list entries, with many values of each kind."""

from __future__ import annotations

import ipaddress

import pytest
from connectors.sinks.outbound_rules import (
    ALLOW_HTTP_HOSTS,
    ALLOW_NETWORKS,
    address_refusal,
    host_refusal,
    parse_allow_entry,
    parse_allow_list,
    unwrap,
)

NOT_PUBLIC = [
    "10.1.2.3", "172.16.0.1", "192.168.1.1", "127.0.0.1", "127.255.0.9", "169.254.169.254",
    "224.0.0.1", "0.0.0.0", "100.64.0.1", "240.0.0.1", "255.255.255.255", "192.0.2.1",
    "::1", "::", "fe80::1", "fd00::1", "fc00::5", "ff02::1",
    "fec0::1", "fed0::1", "feff:ffff::1",  # site-local fec0::/10
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",  # IPv4-mapped
    "::127.0.0.1", "::10.0.0.1", "::169.254.169.254",  # IPv4-compatible
    "64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::c0a8:101",  # NAT64
    "2002:7f00:1::1", "2002:a9fe:a9fe::1", "2002:a00:1::1", "2002:c0a8:101::1",  # 6to4
    "2002:ac10:1::", "2002:6440:1::1",
    # Teredo: server 65.54.227.120, client = last 32 bits XOR 0xffffffff
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # client 127.0.0.1
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # client 10.0.0.1
    "2001:0:4136:e378:8000:63bf:5601:5601",  # client 169.254.169.254 (0x5601 ^ 0xffff)
    "2001:0:a00:1:8000:63bf:f7f7:f7f7",  # server 10.0.0.1, client 8.8.8.8
]  # fmt: skip

PUBLIC = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111",
          "2a00:1450:4001:82a::200e", "::ffff:93.184.216.34", "64:ff9b::808:808",
          "2002:808:808::1", "2002:5db8:d822::1"]  # fmt: skip


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_public_addresses_and_their_wrapped_forms_are_refused(address: str) -> None:
    refusal = address_refusal(ipaddress.ip_address(address), 443, ())
    assert refusal is not None and "not public" in refusal and ALLOW_NETWORKS in refusal


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address), 443, ()) is None


def test_teredo_client_is_the_last_32_bits_xored() -> None:
    _, carried = unwrap(ipaddress.IPv6Address("2001:0:4136:e378:8000:63bf:80ff:fffe"))
    assert ipaddress.IPv4Address("127.0.0.1") in carried


@pytest.mark.parametrize(
    "host",
    ["2130706433", "127.1", "127.0.1", "0177.0.0.1", "0x7f.1", "0x7f000001", "0x7f.0.0.1",
     "127.000.000.001", "017700000001", "0", "10.1", "169.254.43518", "0xa9.0xfe.0xa9.0xfe",
     "127.0.0.1.", "1.2.3.4.5", "1.2.3.999", "example.123", "0x7F.1"],
)  # fmt: skip
def test_non_canonical_numeric_hosts_are_refused(host: str) -> None:
    refusal = host_refusal(host)
    assert refusal is not None and "canonically" in refusal


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "93.184.216.34", "::1", "example.com", "hooks.slack.com",
             "1e100.net", "a1.b2.example", "localhost", "xn--bcher-kva.example"]
)  # fmt: skip
def test_canonical_hosts_and_names_pass_the_host_rule(host: str) -> None:
    assert host_refusal(host) is None


@pytest.mark.parametrize(
    ("entry", "address", "port", "allowed"),
    [
        ("127.0.0.1:8443", "127.0.0.1", 8443, True),
        ("127.0.0.1:8443", "127.0.0.1", 9400, False),
        ("127.0.0.1:8443", "127.0.0.2", 8443, False),
        ("127.0.0.0/8:9000-9100", "127.3.2.1", 9000, True),
        ("127.0.0.0/8:9000-9100", "127.3.2.1", 9100, True),
        ("127.0.0.0/8:9000-9100", "127.3.2.1", 9101, False),
        ("127.0.0.0/8:9000-9100", "127.3.2.1", 5432, False),
        ("[::1]:8443", "::1", 8443, True),
        ("[::1]:8443", "::1", 8444, False),
        ("[fd00::/8]:443", "fd12::1", 443, True),
        ("10.0.0.0/8:443", "::ffff:10.1.1.1", 443, True),  # a mapped address is its IPv4
        ("10.0.0.0/8:443", "2002:a00:1::1", 443, False),  # 6to4 needs its own entry
    ],
)
def test_an_allow_list_entry_opens_its_ports_only(
    entry: str, address: str, port: int, allowed: bool
) -> None:
    allow = (parse_allow_entry(entry, ALLOW_NETWORKS),)
    assert (address_refusal(ipaddress.ip_address(address), port, allow) is None) is allowed


@pytest.mark.parametrize("entry", ["127.0.0.1", "127.0.0.0/8", "localhost", "[::1]", "::1"])
def test_an_entry_without_a_port_is_refused_naming_the_setting(entry: str) -> None:
    with pytest.raises(ValueError, match=ALLOW_NETWORKS) as info:
        parse_allow_list(f"127.0.0.1:80,{entry}", ALLOW_NETWORKS)
    assert "port" in str(info.value)


@pytest.mark.parametrize(
    "entry", ["127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:90-80", "127.0.0.1:http",
              "127.1:80", "[::1:80", "bad/name:80"]
)  # fmt: skip
def test_malformed_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match=ALLOW_HTTP_HOSTS):
        parse_allow_entry(entry, ALLOW_HTTP_HOSTS)


@pytest.mark.parametrize(
    ("entry", "host", "port", "allowed"),
    [
        ("localhost:8080", "localhost", 8080, True),
        ("localhost:8080", "LOCALHOST", 8080, True),
        ("localhost:8080", "localhost", 8081, False),
        ("127.0.0.1:8000-8100", "127.0.0.1", 8050, True),
        ("127.0.0.1:8000-8100", "127.0.0.2", 8050, False),
        ("[::1]:80", "::1", 80, True),
        ("127.0.0.0/8:80", "127.0.0.1", 80, False),  # plain http names hosts, not networks
    ],
)
def test_http_allow_entries_name_a_host_and_port(
    entry: str, host: str, port: int, allowed: bool
) -> None:
    assert parse_allow_entry(entry, ALLOW_HTTP_HOSTS).allows_host(host, port) is allowed
