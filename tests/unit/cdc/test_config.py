"""CDC configuration: validated at the edge, secrets never printed."""

from __future__ import annotations

import argparse

import pytest
from connectors.sources.postgres_cdc.config import PostgresCdcConfig
from pydantic import ValidationError
from streams.app.cdc import add_arguments, config_overrides


def test_password_is_hidden_from_repr_but_reaches_the_dsn():
    config = PostgresCdcConfig(password="hunter2")
    assert "hunter2" not in repr(config)
    assert "password=hunter2" in config.dsn()


def test_bare_table_names_mean_public():
    config = PostgresCdcConfig(
        tables=("form_responses", "crm.leads"), exclude_columns={"core_fields": {"phone"}}
    )
    assert config.tables == ("public.form_responses", "crm.leads")
    assert config.exclude_columns == {"public.core_fields": frozenset({"phone"})}


def test_slot_name_must_be_a_plain_identifier():
    with pytest.raises(ValidationError):
        PostgresCdcConfig(slot_name='x"; DROP TABLE y')


def test_environment_configures_the_source(monkeypatch):
    monkeypatch.setenv("WEDSYNC_CDC_SLOT_NAME", "from_env")
    monkeypatch.setenv("WEDSYNC_CDC_EXCLUDE_COLUMNS", '{"core_fields": ["phone"]}')
    config = PostgresCdcConfig()
    assert config.slot_name == "from_env"
    assert config.exclude_columns == {"public.core_fields": frozenset({"phone"})}


def test_cli_flags_override_capture_settings():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--table", "suppliers", "--exclude", "public.core_fields.phone", "--no-snapshot"]
    )
    config = PostgresCdcConfig(**config_overrides(args))
    assert config.tables == ("public.suppliers",)
    assert config.exclude_columns == {"public.core_fields": frozenset({"phone"})}
    assert config.snapshot is False
