"""Channel-key (MAC) mode of the Google and Graph sources: any channel whose token carries
a valid MAC is accepted without a registry, and Graph batches are checked item by item."""

from __future__ import annotations

import json
from typing import Any

import pytest
from connectors.sources.webhooks.config import SourceConfig, parse_gateway_config
from connectors.sources.webhooks.gateway import INTEGRATION_HEADER, stored_headers
from connectors.sources.webhooks.verify import Rejected, Request, Verified, verify
from pydantic import TypeAdapter
from streams.errors import ConfigurationError
from streams.logic.calendar.channels import issue_token

NOW = 1_790_000_000
KEY, OLD = "channel-key-current-0123456789", "channel-key-previous-0123456789"
INTEGRATION = "8c1d7f0e-5b8a-4d2e-9a7c-3f1e2d4c5b6a"
_adapter: TypeAdapter[SourceConfig] = TypeAdapter(SourceConfig)


def source(**fields: Any) -> SourceConfig:
    return _adapter.validate_python(fields)


def rejected(src: SourceConfig, request: Request) -> Rejected:
    with pytest.raises(Rejected) as info:
        verify(src, request, NOW)
    return info.value


def token(channel: str, key: str = KEY, integration: str = INTEGRATION) -> str:
    return issue_token([key.encode()], integration, channel)


# ---- configuration ------------------------------------------------------------------------
def test_a_google_source_needs_channels_or_channel_keys() -> None:
    with pytest.raises(ConfigurationError, match=r"`channels` .* or `channel_keys`"):
        parse_gateway_config({"sources": {"g": {"method": "google_channel"}}}, {})


def test_a_graph_source_needs_client_states_or_channel_keys() -> None:
    with pytest.raises(ConfigurationError, match="`client_states` or `channel_keys`"):
        parse_gateway_config({"sources": {"o": {"method": "graph_client_state"}}}, {})


def test_an_empty_channel_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="channel key is empty"):
        parse_gateway_config(
            {"sources": {"g": {"method": "google_channel", "channel_keys": [""]}}}, {}
        )


def test_channel_keys_never_print() -> None:
    config = parse_gateway_config(
        {"sources": {"g": {"method": "google_channel", "channel_keys": [KEY]}}}, {}
    )
    assert KEY not in repr(config) and KEY not in str(config.model_dump())


# ---- Google ---------------------------------------------------------------------------------
GOOGLE = source(method="google_channel", channel_keys=[KEY, OLD])


def goog(channel: str = "chan-7", **overrides: str) -> dict[str, str]:
    headers = {"x-goog-channel-id": channel, "x-goog-channel-token": token(channel),
               "x-goog-resource-id": "res-9", "x-goog-resource-state": "exists",
               "x-goog-message-number": "4711"}  # fmt: skip
    return {**headers, **overrides}


def test_google_accepts_any_channel_with_a_valid_mac_and_names_its_integration() -> None:
    verified = verify(GOOGLE, Request(goog(), b""), NOW)
    assert (verified.delivery_id, verified.integration_id) == ("chan-7:4711", INTEGRATION)


def test_google_accepts_a_token_made_with_the_previous_key() -> None:
    headers = goog(**{"x-goog-channel-token": token("chan-7", OLD)})
    assert verify(GOOGLE, Request(headers, b""), NOW).integration_id == INTEGRATION


def test_google_rejects_a_token_made_with_an_unknown_key() -> None:
    headers = goog(**{"x-goog-channel-token": token("chan-7", "not-our-key")})
    assert rejected(GOOGLE, Request(headers, b"")).status == 401


def test_google_rejects_a_token_replayed_on_another_channel() -> None:
    headers = goog("chan-8", **{"x-goog-channel-token": token("chan-7")})
    assert rejected(GOOGLE, Request(headers, b"")).reason == "bad_token"


@pytest.mark.parametrize("bad", ["", "guess", "v1.x.y", "v1." + "a" * 300 + "." + "A" * 32])
def test_google_rejects_a_malformed_token_with_401(bad: str) -> None:
    headers = goog(**{"x-goog-channel-token": bad})
    assert rejected(GOOGLE, Request(headers, b"")).status == 401


def test_google_with_both_modes_accepts_a_registered_channel_and_a_mac_channel() -> None:
    both = source(method="google_channel", channels={"chan-1": "static"}, channel_keys=[KEY])
    static = goog("chan-1", **{"x-goog-channel-token": "static"})
    assert verify(both, Request(static, b""), NOW).integration_id is None
    assert verify(both, Request(goog(), b""), NOW).integration_id == INTEGRATION


def test_google_with_both_modes_rejects_a_registered_channel_with_a_wrong_token() -> None:
    both = source(method="google_channel", channels={"chan-1": "static"}, channel_keys=[KEY])
    headers = goog("chan-1", **{"x-goog-channel-token": "guess"})
    assert rejected(both, Request(headers, b"")).reason == "bad_token"


def test_google_keeps_the_channel_headers_and_adds_the_verified_integration() -> None:
    headers = {**goog(), "x-goog-channel-expiration": "Tue, 19 Nov 2030 01:13:52 GMT",
               "x-goog-resource-uri": "https://www.googleapis.com/calendar/v3/...",
               INTEGRATION_HEADER: "forged"}  # fmt: skip
    verified = verify(GOOGLE, Request(headers, b""), NOW)
    kept = stored_headers(headers, GOOGLE, verified)
    assert kept[INTEGRATION_HEADER] == INTEGRATION
    assert "x-goog-channel-token" not in kept
    for name in ("x-goog-channel-id", "x-goog-resource-id", "x-goog-resource-state",
                 "x-goog-message-number", "x-goog-channel-expiration"):  # fmt: skip
        assert kept[name] == headers[name]


def test_a_senders_own_integration_header_is_never_stored() -> None:
    static = source(method="google_channel", channels={"chan-1": "t"})
    headers = {"x-goog-channel-id": "chan-1", INTEGRATION_HEADER: "forged"}
    assert INTEGRATION_HEADER not in stored_headers(headers, static, Verified("google", None))


# ---- Graph ------------------------------------------------------------------------------------
GRAPH = source(method="graph_client_state", channel_keys=[KEY, OLD])


def item(sub: str, state: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"subscriptionId": sub, "clientState": token(sub) if state is None else state,
            "changeType": "updated", "resource": f"me/events/{sub}", **extra}  # fmt: skip


def body(*items: dict[str, Any]) -> bytes:
    return json.dumps({"value": list(items)}).encode()


def test_graph_accepts_a_batch_of_valid_macs_and_keeps_the_raw_body() -> None:
    verified = verify(GRAPH, Request({}, body(item("sub-1"), item("sub-2"))), NOW)
    assert (verified.rejected_items, verified.body) == (0, None)


def test_graph_drops_the_bad_items_of_a_batch_and_keeps_the_good_ones() -> None:
    good, bad = item("sub-1"), item("sub-2", "guess")
    verified = verify(GRAPH, Request({}, body(good, bad, item("sub-3"))), NOW)
    assert verified.rejected_items == 1
    assert verified.body is not None
    assert json.loads(verified.body) == {"value": [good, item("sub-3")]}


def test_graph_drops_an_item_whose_client_state_belongs_to_another_subscription() -> None:
    swapped = item("sub-2", token("sub-1"))
    verified = verify(GRAPH, Request({}, body(item("sub-1"), swapped)), NOW)
    assert verified.rejected_items == 1


def test_graph_drops_an_item_with_an_unknown_lifecycle_event() -> None:
    odd = item("sub-2", lifecycleEvent="somethingNew")
    verified = verify(GRAPH, Request({}, body(item("sub-1"), odd)), NOW)
    assert verified.rejected_items == 1


def test_graph_drops_items_with_missing_or_non_text_client_state_or_subscription() -> None:
    odd = [{"subscriptionId": "s"}, {"clientState": token("s")}, item("s", 42),  # type: ignore[arg-type]
           {"subscriptionId": 7, "clientState": token("7")}]  # fmt: skip
    verified = verify(GRAPH, Request({}, body(item("sub-1"), *odd)), NOW)
    assert verified.rejected_items == len(odd)


def test_graph_rejects_a_batch_without_a_good_item_with_401() -> None:
    failure = rejected(GRAPH, Request({}, body(item("sub-1", "guess"), item("sub-2", "x"))))
    assert (failure.status, failure.reason) == (401, "bad_client_state")


def test_graph_accepts_a_previous_key_and_lifecycle_events() -> None:
    old = item("sub-1", token("sub-1", OLD), lifecycleEvent="reauthorizationRequired")
    assert verify(GRAPH, Request({}, body(old)), NOW).rejected_items == 0


def test_graph_with_both_modes_accepts_the_shared_client_state_per_item() -> None:
    both = source(method="graph_client_state", client_states=["cs-secret"], channel_keys=[KEY])
    verified = verify(both, Request({}, body(item("a", "cs-secret"), item("b"), item("c", "x"))),
                      NOW)  # fmt: skip
    assert verified.rejected_items == 1


def test_graph_still_echoes_the_validation_token_in_mac_mode() -> None:
    verified = verify(GRAPH, Request({}, b"", {"validationToken": "abc"}), NOW)
    assert verified.handshake == "abc"


def test_graph_accepts_a_client_state_bound_to_its_integration() -> None:
    # Graph fixes clientState in the create call, before the subscription id exists: the
    # feed binds the MAC to the integration itself
    bound = issue_token([KEY.encode()], INTEGRATION, INTEGRATION)
    verified = verify(GRAPH, Request({}, body(item("sub-new", bound))), NOW)
    assert verified.rejected_items == 0


def test_graph_drops_an_integration_bound_state_made_with_an_unknown_key() -> None:
    forged = issue_token([b"not-our-key-0123456789"], INTEGRATION, INTEGRATION)
    verified = verify(GRAPH, Request({}, body(item("sub-1"), item("sub-new", forged))), NOW)
    assert verified.rejected_items == 1
