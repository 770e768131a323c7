"""The throwaway PostgreSQL of `streams.devdb`, under the name the tests use."""

from __future__ import annotations

from streams.devdb import (
    PG_BIN,
    PostgresServer,
    available,
    create_platform_database,
    throwaway_postgres,
    wait_until,
)

__all__ = [
    "PG_BIN",
    "PostgresServer",
    "available",
    "create_platform_database",
    "throwaway_postgres",
    "wait_until",
]
