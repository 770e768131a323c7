"""Presence across gateways: per user across devices, and no ghosts when a gateway dies."""

from __future__ import annotations

from connectors.sinks.inapp.presence import Presence


def test_first_connection_anywhere_is_a_join() -> None:
    p = Presence(ttl_s=10)
    assert p.join("g1", "u", "org", 0) == [("org", "join", "u")]
    assert p.join("g2", "u", "org", 0) == []


def test_leave_only_when_the_last_gateway_lets_go() -> None:
    p = Presence(ttl_s=10)
    p.join("g1", "u", "org", 0)
    p.join("g2", "u", "org", 0)
    assert p.leave("g1", "u") == []
    assert p.leave("g2", "u") == [("org", "leave", "u")]


def test_a_leave_from_a_gateway_that_never_held_the_user_changes_nothing() -> None:
    p = Presence(ttl_s=10)
    p.join("g1", "u", "org", 0)
    assert p.leave("g2", "u") == [] and p.is_online("u")


def test_silent_gateway_expires_after_the_ttl() -> None:
    p = Presence(ttl_s=10)
    p.heartbeat("g1", 0)
    p.heartbeat("g2", 5)
    assert p.expired(10) == []
    assert p.expired(10.5) == ["g1"]


def test_gone_gateway_takes_its_users_with_it_but_not_shared_ones() -> None:
    p = Presence(ttl_s=10)
    p.join("g1", "a", "org", 0)
    p.join("g1", "b", "org", 0)
    p.join("g2", "b", "org", 0)
    assert p.gone("g1") == [("org", "leave", "a")]
    assert p.online("org") == ["b"]


def test_online_is_per_organisation() -> None:
    p = Presence(ttl_s=10)
    p.join("g1", "a", "org-1", 0)
    p.join("g1", "b", "org-2", 0)
    assert (p.online("org-1"), p.online("org-2")) == (["a"], ["b"])


def test_online_forgets_users_who_left_or_whose_gateway_went() -> None:
    p = Presence(ttl_s=10)
    p.join("g1", "a", "org", 0)
    p.join("g2", "b", "org", 0)
    p.leave("g1", "a")
    p.gone("g2")
    assert p.online("org") == [] and p.count() == 0


def test_online_users_are_known_by_their_display_names() -> None:
    p = Presence(ttl_s=10)
    p.join("g1", "3f1c8a52-0d7e-4b8e-9a43-5c2b7f1e9d10", "org", 0, "Zoë Kowalska")
    p.join("g1", "8b2d4e61-7a9f-4c3b-b5e8-1d6f0a2c4e97", "org", 0)
    assert p.names("org") == {"3f1c8a52-0d7e-4b8e-9a43-5c2b7f1e9d10": "Zoë Kowalska"}


def test_a_users_name_is_forgotten_when_they_leave() -> None:
    p = Presence(ttl_s=10)
    p.join("g1", "u", "org", 0, "Łukasz Nowak")
    p.leave("g1", "u")
    assert p.name("u") == ""
