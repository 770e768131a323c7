"""Validation of the routing rules file."""

from __future__ import annotations

from pathlib import Path

import pytest
from streams.errors import ConfigurationError
from streams.logic.routing import DEFAULT_RULES_PATH, load_rules, parse_rules

GOOD = """
[[rules]]
name = "form"
event_type = "form.response_received"
default_channels = ["email"]
allowed_channels = ["email"]
"""


def test_shipped_rules_file_is_valid() -> None:
    assert "wedding.date_changed" in load_rules(DEFAULT_RULES_PATH).by_event_type


def test_minimal_rule_parses() -> None:
    assert parse_rules(GOOD).by_event_type["form.response_received"].name == "form"


def test_unknown_channel_names_the_rule() -> None:
    with pytest.raises(ConfigurationError, match=r"'form'.*default_channels"):
        parse_rules(GOOD.replace('["email"]\nallowed', '["pigeon"]\nallowed'))


def test_default_channel_not_allowed_names_the_rule() -> None:
    text = GOOD.replace('allowed_channels = ["email"]', 'allowed_channels = ["slack"]')
    with pytest.raises(ConfigurationError, match=r"'form'.*not in allowed_channels"):
        parse_rules(text)


def test_unknown_key_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match=r"'form'.*chanels"):
        parse_rules(GOOD + 'chanels = ["email"]\n')


def test_bad_event_type_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="event_type"):
        parse_rules(GOOD.replace("form.response_received", "Form Response"))


def test_duplicate_event_type_names_both_rules() -> None:
    with pytest.raises(ConfigurationError, match="already routed by rule 'form'"):
        parse_rules(GOOD + GOOD.replace('name = "form"', 'name = "again"'))


def test_duplicate_rule_name_is_rejected() -> None:
    other = GOOD.replace("form.response_received", "journey.milestone_completed")
    with pytest.raises(ConfigurationError, match="duplicate rule name"):
        parse_rules(GOOD + other)


def test_unknown_integration_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="integrations"):
        parse_rules(GOOD + 'integrations = ["fax"]\n')


def test_recipients_none_with_channels_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="recipients"):
        parse_rules(GOOD + 'recipients = "none"\n')


def test_invalid_toml_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        parse_rules("[[rules]\n")


def test_empty_file_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="at least one"):
        parse_rules("")


def test_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_rules(tmp_path / "nope.toml")


def test_rules_are_frozen() -> None:
    rule = parse_rules(GOOD).by_event_type["form.response_received"]
    with pytest.raises(AttributeError):
        rule.name = "x"  # type: ignore[misc]
