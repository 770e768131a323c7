"""The throwaway PostgreSQL of `streams.dev.db`, under the name the tests use."""

from __future__ import annotations

from streams.dev.db import (
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
