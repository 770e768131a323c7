"""The gateway's decisions are pure: verification, conversion, dedupe and configuration
import no Kafka, HTTP or socket library (the I/O lives in gateway.py and producer.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_purity import FORBIDDEN, imported_names

PACKAGE = Path(__file__).resolve().parents[3] / "connectors" / "sources" / "webhooks"
PURE = ("config.py", "verify.py", "convert.py", "temporal.py", "dedupe.py")


@pytest.mark.parametrize("name", PURE)
def test_pure_module_imports_no_io_library(name: str) -> None:
    roots = {imported.split(".")[0] for imported in imported_names(PACKAGE / name)}
    assert roots & FORBIDDEN == set()


@pytest.mark.parametrize("name", PURE)
def test_pure_module_does_not_import_the_gateway_or_producer(name: str) -> None:
    names = imported_names(PACKAGE / name)
    assert not [n for n in names if n.endswith((".gateway", ".producer", ".serve"))]
