"""Gateway configuration: parsed once, validated before I/O, secrets never shown."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from connectors.sources.webhooks.config import (
    GatewayConfig,
    JwtSource,
    StandardWebhooksSource,
    load_gateway_config,
    parse_gateway_config,
)
from streams.errors import ConfigurationError
from streams.settings import REPO_ROOT

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_a_toml_file_loads_into_typed_sources(tmp_path: Path) -> None:
    path = tmp_path / "ingest.toml"
    path.write_text(f'[sources.billing]\nmethod = "standard_webhooks"\nsecrets = ["{WHSEC}"]\n')
    config = load_gateway_config(path, {})
    assert isinstance(config.sources["billing"], StandardWebhooksSource)


def test_inline_json_in_the_environment_loads() -> None:
    data = {"sources": {"crm": {"method": "bearer", "tokens": ["t"]}}}
    environ = {"WEDSYNC_INGEST_CONFIG": json.dumps(data)}
    assert load_gateway_config(None, environ).sources["crm"].method == "bearer"


def test_env_references_are_expanded() -> None:
    data = {"sources": {"crm": {"method": "bearer", "tokens": ["${CRM_TOKEN}"]}}}
    config = parse_gateway_config(data, {"CRM_TOKEN": "from-env"})
    assert config.sources["crm"].tokens[0].get_secret_value() == "from-env"  # type: ignore[union-attr]


def test_a_missing_env_reference_is_a_configuration_error() -> None:
    data = {"sources": {"crm": {"method": "bearer", "tokens": ["${NOPE}"]}}}
    with pytest.raises(ConfigurationError, match="NOPE"):
        parse_gateway_config(data, {})


def test_an_unknown_method_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="crm"):
        parse_gateway_config({"sources": {"crm": {"method": "magic"}}}, {})


def test_a_jwt_source_with_rs256_needs_a_public_key() -> None:
    data = {"method": "jwt", "algorithms": ["RS256"], "issuer": "i", "audience": "a"}
    with pytest.raises(ConfigurationError, match="public_key"):
        parse_gateway_config({"sources": {"crm": data}}, {})


def test_an_undecodable_whsec_is_a_configuration_error_without_the_secret() -> None:
    data = {"sources": {"b": {"method": "standard_webhooks", "secrets": ["whsec_%%%%"]}}}
    with pytest.raises(ConfigurationError) as info:
        parse_gateway_config(data, {})
    assert "%%%%" not in str(info.value)


def test_secrets_do_not_appear_in_the_config_repr() -> None:
    config = parse_gateway_config(
        {
            "sources": {
                "crm": {"method": "jwt", "secret": "hush-hush", "issuer": "i", "audience": "a"}
            }
        },
        {},
    )
    assert isinstance(config.sources["crm"], JwtSource)
    assert "hush-hush" not in repr(config)


def test_source_names_must_be_url_safe() -> None:
    with pytest.raises(ConfigurationError, match="source name"):
        parse_gateway_config({"sources": {"Bad Name": {"method": "none"}}}, {})


def test_the_default_body_limit_is_256_kib() -> None:
    config = parse_gateway_config({"sources": {"x": {"method": "none"}}}, {})
    assert config.sources["x"].max_body_bytes == 256 * 1024


def test_the_config_is_frozen() -> None:
    config = GatewayConfig()
    with pytest.raises(ValueError):
        config.port = 1


def test_the_example_config_parses_with_every_method() -> None:
    path = REPO_ROOT / "connectors/sources/webhooks/ingest.example.toml"
    text = path.read_text()
    env = {name: "whsec_" + "QUJD" * 8 for name in re.findall(r"\$\{(\w+)\}", text)}
    config = parse_gateway_config(tomllib.loads(text), env)
    methods = {source.method for source in config.sources.values()}
    assert methods == {"standard_webhooks", "hmac_sha256", "jwt", "bearer", "basic",
                       "google_channel", "graph_client_state"}  # fmt: skip
