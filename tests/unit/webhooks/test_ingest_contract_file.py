"""`wedsync ingest` reads the same contract mapping file as `wedsync cdc`
(WEDSYNC_CDC_CONTRACT_FILE), so both paths rename and key a deployment's rows alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from streams.app.ingest import _contract
from streams.errors import ConfigurationError


def test_without_a_mapping_file_the_contract_has_the_platforms_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WEDSYNC_CDC_CONTRACT_FILE", raising=False)
    assert _contract().tables["wedding_vendors"].db_name == "wedding_vendors"


def test_the_cdc_mapping_file_renames_for_the_gateway_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "contract.toml"
    path.write_text('[tables.wedding_vendors]\ntable = "wedding_suppliers"\n')
    monkeypatch.setenv("WEDSYNC_CDC_CONTRACT_FILE", str(path))
    assert _contract().tables["wedding_vendors"].db_name == "wedding_suppliers"


def test_a_bad_mapping_file_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "contract.toml"
    path.write_text("[tables.no_such_table]\n")
    monkeypatch.setenv("WEDSYNC_CDC_CONTRACT_FILE", str(path))
    with pytest.raises(ConfigurationError, match="unknown table 'no_such_table'"):
        _contract()
