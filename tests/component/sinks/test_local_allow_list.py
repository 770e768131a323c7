"""`make run`'s and the tests' local providers: the outbound allow-list names their ports,
so a customer URL pointing at another local service (a process's /metrics, PostgreSQL, the
broker) is refused."""

from __future__ import annotations

import pytest
from connectors.sinks.outbound import OutboundRefused, check_address, check_url
from connectors.sinks.settings import SinkSettings
from streams.dev.broker import free_port
from streams.dev.local import LocalProviders, allow_list_env


def test_the_local_policy_opens_the_receivers_ports_only() -> None:
    with LocalProviders() as local:
        ports = local.ports()
        assert len(ports) == len(local.servers)
        for port in ports:
            check_address("127.0.0.1", local.policy, port)
            check_url(f"http://127.0.0.1:{port}/hooks/photo", local.policy)
        internal = next(p for p in (9400, 5432, 9092, free_port()) if p not in ports)
        with pytest.raises(OutboundRefused):
            check_address("127.0.0.1", local.policy, internal)
        with pytest.raises(OutboundRefused):
            check_url(f"http://127.0.0.1:{internal}/metrics", local.policy)


def test_the_sink_process_settings_name_the_ports() -> None:
    env = allow_list_env(8080, 2525)
    policy = SinkSettings(
        outbound_allow_http_hosts=env["WEDSYNC_SINK_OUTBOUND_ALLOW_HTTP_HOSTS"],
        outbound_allow_networks=env["WEDSYNC_SINK_OUTBOUND_ALLOW_NETWORKS"],
    ).outbound_policy()
    check_address("127.0.0.1", policy, 2525)
    with pytest.raises(OutboundRefused):
        check_address("127.0.0.1", policy, 9400)
