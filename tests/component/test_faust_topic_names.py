"""Faust names its tables' changelogs itself: the catalog's names must be the ones it uses."""

from __future__ import annotations

import uuid

import faust
from streams import topics
from streams.agents import register_all
from streams.agents.app import Context
from streams.kafka.codec import TopicCodecs
from streams.settings import Settings

from tests.component.agents.harness import Wire


def test_the_catalog_names_the_changelogs_faust_writes(codecs: TopicCodecs) -> None:
    app_id = f"wedsync-names-{uuid.uuid4().hex[:8]}"
    app = faust.App(app_id, broker="kafka://localhost:1", store="memory://")
    settings = Settings(kafka_bootstrap_servers="localhost:1", app_id=app_id)
    register_all(app, Context(settings=settings, codecs=codecs, output=Wire()), with_route=False)
    own = topics.app_topics(app_id)
    faust_names = {name: app.tables[name].changelog_topic.get_topic_name() for name in app.tables}
    assert faust_names == {
        topics.STATE_ROWS_TABLE: own.state_rows_changelog.name,
        topics.BOOKINGS_TABLE: own.bookings_changelog.name,
    }
