"""A URL that carries a credential is a secret (streams.logic.urls): what counts, and what
its redacted form keeps."""

from __future__ import annotations

import pytest
from streams.logic.urls import carries_credential, is_redacted, redacted

SECRET = "Zx81qT5vW0kLm3NoP9rS2tU7"

CREDENTIAL_BEARING = [
    f"https://user:{SECRET}@crm.example/hook",
    f"https://{SECRET}@crm.example/hook",
    f"https://crm.example/hook?token={SECRET}",
    f"https://crm.example/hook?sig={SECRET}&v=1",
    f"https://crm.example/hook#{SECRET}",
    f"https://hooks.slack.com/services/T024BE91L/B0123ABCD/{SECRET}",
    f"https://discord.com/api/webhooks/123456789/{SECRET}",
    f"https://acme.webhook.office.com/webhookb2/{SECRET}",
    f"https://prod-12.westeurope.logic.azure.com/workflows/abc/triggers/manual?sig={SECRET}",
    f"https://chat.googleapis.com/v1/spaces/AAA/messages?key=k&token={SECRET}",
    f"https://api.vendor.example/inbound/{SECRET}/events",
]


@pytest.mark.parametrize("url", CREDENTIAL_BEARING)
def test_a_credential_bearing_url_is_recognised(url: str) -> None:
    assert carries_credential(url)


@pytest.mark.parametrize("url", CREDENTIAL_BEARING)
def test_the_redacted_form_holds_no_part_of_the_secret(url: str) -> None:
    shown = redacted(url)
    assert SECRET not in shown and SECRET[:12] not in shown
    assert shown.startswith("https://")


@pytest.mark.parametrize(
    "url", ["https://crm.example/hook", "https://venue.example/bookings", "https://h.example/"]
)
def test_a_plain_endpoint_is_carried_as_it_is(url: str) -> None:
    assert not carries_credential(url) and redacted(url) == url


def test_the_redacted_form_keeps_host_port_and_the_path_before_the_secret() -> None:
    url = f"https://user:pw@crm.example:8443/api/v2/{SECRET}/hook?x=1"
    assert redacted(url) == "https://crm.example:8443/api/v2/redacted"


def test_slack_keeps_only_the_services_prefix() -> None:
    url = f"https://hooks.slack.com/services/T024BE91L/B0123ABCD/{SECRET}"
    assert redacted(url) == "https://hooks.slack.com/services/redacted"


@pytest.mark.parametrize("url", ["https://[::1", "not a url", "https://h.example:99999/x"])
def test_an_unreadable_url_is_treated_as_secret(url: str) -> None:
    assert carries_credential(url) and redacted(url) == "redacted"


@pytest.mark.parametrize("url", CREDENTIAL_BEARING)
def test_every_redacted_form_says_it_is_redacted(url: str) -> None:
    assert is_redacted(redacted(url))


def test_a_userinfo_only_credential_is_marked_on_the_plain_path() -> None:
    assert redacted("https://user:pw@crm.example/hook") == "https://crm.example/hook?redacted"


def test_a_plain_endpoint_is_not_taken_for_a_redacted_one() -> None:
    assert not is_redacted("https://crm.example/hook")
