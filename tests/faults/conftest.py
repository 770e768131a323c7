"""The fault suite needs a PostgreSQL with the platform's schema: the integration tier's
fixtures (a session server, a fresh database per test)."""

from __future__ import annotations

from tests.integration.conftest import platform, postgres

__all__ = ["platform", "postgres"]
