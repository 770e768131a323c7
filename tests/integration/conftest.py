"""Fixtures for tests that need real servers besides the broker (see tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import pg


@pytest.fixture(scope="session")
def postgres() -> Iterator[pg.PostgresServer]:
    """A throwaway PostgreSQL with wal_level=logical, shared by the session, always stopped."""
    if not pg.available():
        pytest.skip(f"PostgreSQL server binaries not found in {pg.PG_BIN}")
    with pg.throwaway_postgres() as server:
        yield server
