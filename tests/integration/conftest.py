"""Fixtures for tests that need real servers besides the broker (see tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import pg
from tests.integration.cdc_support import PlatformDb, create_platform_db, drop_platform_db


@pytest.fixture(scope="session")
def postgres() -> Iterator[pg.PostgresServer]:
    """A throwaway PostgreSQL with wal_level=logical, shared by the session, always stopped."""
    if not pg.available():  # never a silent skip: CI must go red
        pytest.fail(
            f"PostgreSQL server binaries not found in {pg.PG_BIN}: `make test` installs "
            "Debian's postgresql-15 when they are missing; set WEDSYNC_PG_BIN to another "
            "installation"
        )
    with pg.throwaway_postgres() as server:
        yield server


@pytest.fixture
def platform(postgres: pg.PostgresServer) -> Iterator[PlatformDb]:
    """A fresh database with the platform's DDL; CDC sources started on it are stopped and
    their slots dropped afterwards."""
    db = create_platform_db(postgres)
    yield db
    drop_platform_db(db)
