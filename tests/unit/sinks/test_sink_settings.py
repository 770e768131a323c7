"""SinkSettings' outbound settings: allow-lists parsed (and refused) once, at the edge."""

from __future__ import annotations

import pytest
from connectors.sinks.settings import SinkSettings
from pydantic import ValidationError


@pytest.mark.parametrize(
    ("field", "setting"),
    [("outbound_allow_networks", "WEDSYNC_SINK_OUTBOUND_ALLOW_NETWORKS"),
     ("outbound_allow_http_hosts", "WEDSYNC_SINK_OUTBOUND_ALLOW_HTTP_HOSTS")],
)  # fmt: skip
@pytest.mark.parametrize("entry", ["127.0.0.0/8", "127.0.0.1", "localhost", "[::1]"])
def test_an_allow_list_entry_without_a_port_is_refused_at_parse(
    field: str, setting: str, entry: str
) -> None:
    with pytest.raises(ValidationError, match=f"{setting}: entry '.*' names no port"):
        SinkSettings(**{field: f"127.0.0.1:8443,{entry}"})  # type: ignore[arg-type]


def test_the_policy_opens_the_listed_ports_only() -> None:
    policy = SinkSettings(
        outbound_allow_http_hosts="127.0.0.1:8080",
        outbound_allow_networks="127.0.0.0/8:9000-9100,[::1]:8443",
        outbound_max_answer_bytes=4096,
        read_timeout_s=7,
    ).outbound_policy()
    assert [(e.low, e.high) for e in policy.allow_networks] == [(9000, 9100), (8443, 8443)]
    assert policy.allow_http[0].allows_host("127.0.0.1", 8080)
    assert not policy.allow_http[0].allows_host("127.0.0.1", 9400)
    assert (policy.max_answer_bytes, policy.read_timeout_s) == (4096, 7)
