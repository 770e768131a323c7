"""The worker logs at the configured level: debug records are not even built."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from streams.agents.app import create_app
from streams.app.worker import make_worker
from streams.settings import Settings


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.mark.usefixtures("restore_logging")
def test_warn_level_worker_does_not_enable_debug_logging() -> None:
    settings = Settings(log_level="warn")
    app, _ = create_app(settings, "127.0.0.1:9")
    make_worker(app, settings)._setup_logging()
    assert not logging.getLogger("aiokafka.producer.producer").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("faust").isEnabledFor(logging.WARNING)
