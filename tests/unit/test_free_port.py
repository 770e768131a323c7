"""`free_port` draws from below the kernel's ephemeral range: a port inside it can be taken
by any outgoing connection's local end before the child binds it."""

from __future__ import annotations

import random
import socket

import pytest
from streams.dev import broker
from streams.dev.broker import ephemeral_range, free_port


def test_the_range_file_is_read_as_low_and_high() -> None:
    assert ephemeral_range("32768\t60999\n") == (32768, 60999)


def test_an_unreadable_range_is_none() -> None:
    assert ephemeral_range("") is None
    assert ephemeral_range("garbage") is None


def test_the_port_is_below_the_ephemeral_range_and_bindable() -> None:
    span = broker._ephemeral_now()
    assert span is not None and span[0] > broker.PORTS_FROM + 1000  # this machine's kernel
    port = free_port()
    assert broker.PORTS_FROM <= port < span[0]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_a_taken_port_is_passed_over() -> None:
    taken = free_port(rand=random.Random(5))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", taken))
        holder.listen()
        assert free_port(rand=random.Random(5)) != taken  # same first draw: skipped


def test_without_room_below_the_range_the_kernel_chooses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker, "_ephemeral_now", lambda: (1024, 65535))
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
