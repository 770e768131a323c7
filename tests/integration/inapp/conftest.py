from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.sinks.support import own_broker


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    """A broker per test module: the in-app topics are read whole by every gateway."""
    with own_broker() as servers:
        yield servers
