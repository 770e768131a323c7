"""THE topic catalog: every topic's name, schema, key, partitions and retention.

Naming: `wedsync.<stage>.<what>[.retry|.dlq]`; topics internal to one deployment of the
worker are named after its app id (`app_topics(app_id)`: the routing engine's seen markers,
the bookings regrouping, the Faust tables' changelogs). No other module writes a topic name
as a string, f-strings included; import the constant, call `app_topics`, or look one up with
`topic(name)` (tests/unit/test_topics.py enforces it).

Partitions: every keyed topic has the deployment's `WEDSYNC_PARTITIONS` (default 6), parsed
with the settings at the process's edge and handed to `configure()` once (this module never
reads the environment: the pure logic imports it), so every process of a deployment
(worker, route, ingest, cdc, all started with the same environment) agrees, and Faust's
tables, created with the same count, stay co-partitioned with the topics they are built
from. It is the only deployment-specific value in the catalog;
`streams.kafka.admin.create_topics` refuses to run against existing topics with another count.

Dead-letter topics carry the original bytes untouched (no schema) and the reason in headers
(see `streams.kafka.deadletter`). Retry topics carry the same records as their main topic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streams.models import ChangeEvent

DAY_MS = 24 * 60 * 60 * 1000


DEFAULT_PARTITIONS = 6
_deployment = {"partitions": DEFAULT_PARTITIONS}


def configure(partitions: int) -> None:
    """The deployment's partition count (`WEDSYNC_PARTITIONS`, parsed with the settings at
    the process's edge, `streams.app.cli.main`): every keyed catalog topic and Faust's internal
    topics have it. This module never reads the environment itself."""
    if partitions < 1:
        raise ValueError("partitions must be at least 1")
    _deployment["partitions"] = partitions


def deployment_partitions() -> int:
    return _deployment["partitions"]


def primary_key_text(primary_key: Iterable[str], row: Mapping[str, object]) -> str:
    """A row's primary-key values joined by ',' (part of CDC keys and event ids)."""
    return ",".join(str(row.get(col)) for col in primary_key)


def cdc_key(table: str, pk: str) -> bytes:
    """Key of a row change on INGEST_CDC: '<table>:<primary key text>', so one row's changes
    stay ordered on one partition, whichever source produced them."""
    return f"{table}:{pk}".encode()


def change_key(change: ChangeEvent) -> bytes:
    """The INGEST_CDC key of a change event (from its after image, or before for deletes)."""
    row = change["after"] if change["after"] is not None else change["before"] or {}
    return cdc_key(change["source"]["table"], primary_key_text(change["primary_key"], row))


class Cleanup(StrEnum):
    DELETE = "delete"
    COMPACT = "compact"


@dataclass(frozen=True)
class Topic:
    name: str
    schema: str | None  # key into schemas/ (e.g. "events/domain_event"); None = raw bytes
    key: str  # what the Kafka key is, for readers of the catalog
    fixed_partitions: int | None = None  # None: the deployment's count (deployment_partitions)
    cleanup: Cleanup = Cleanup.DELETE
    retention_ms: int = 7 * DAY_MS
    tuning: tuple[tuple[str, str], ...] = ()  # further topic configs (e.g. compaction lag)

    @property
    def partitions(self) -> int:
        return self.fixed_partitions or deployment_partitions()

    @property
    def subject(self) -> str:
        """Schema Registry subject (TopicNameStrategy)."""
        return f"{self.name}-value"

    def config(self) -> dict[str, str]:
        return {
            "cleanup.policy": str(self.cleanup),
            "retention.ms": str(self.retention_ms),
            **dict(self.tuning),
        }


class Destination(StrEnum):
    """Kinds of destination; each has a deliver topic, a retry topic and a dead-letter topic."""

    CALENDAR = "calendar"
    CRM = "crm"
    EMAIL = "email"
    SLACK = "slack"
    SMS = "sms"
    WEBHOOK = "webhook"
    INAPP = "inapp"


# ---- ingest ---------------------------------------------------------------------------
INGEST_CDC = Topic("wedsync.ingest.cdc", "ingest/change_event", key="<table>:<primary key values>")
INGEST_WEBHOOKS = Topic(
    "wedsync.ingest.webhooks", "ingest/inbound_webhook", key="<source>:<delivery id>"
)
INGEST_STATE = Topic(
    "wedsync.ingest.state",
    "ingest/change_event",
    key="<table>:<primary key values> (or ~heartbeat)",
    fixed_partitions=1,  # one ordered log: one writer of the routing state, watermarks by commit
    # compacted, kept forever: the latest change of every state row stays, so the CDC source
    # reads back at start the keys a TRUNCATE must delete (postgres_cdc/state_keys.py)
    cleanup=Cleanup.COMPACT,
    retention_ms=-1,
)
INGEST_DLQ = Topic("wedsync.ingest.dlq", None, key="original key", retention_ms=30 * DAY_MS)

# ---- domain events ----------------------------------------------------------------------
EVENTS = Topic("wedsync.events", "events/domain_event", key="aggregate_id")
EVENTS_DLQ = Topic("wedsync.events.dlq", None, key="original key", retention_ms=30 * DAY_MS)


# ---- deliveries, one triple per destination kind ----------------------------------------
@dataclass(frozen=True)
class DeliveryTopics:
    deliver: Topic
    retry: Topic
    dlq: Topic


def _delivery_topics(dest: Destination) -> DeliveryTopics:
    base = f"wedsync.deliver.{dest.value}"
    schema = f"deliveries/{dest.value}_delivery"
    # In-app records are keyed by user: a user's notifications are one ordered stream on one
    # partition, so a (partition, offset) position is enough to resume it.
    key = "user_id" if dest is Destination.INAPP else "aggregate_id"
    return DeliveryTopics(
        deliver=Topic(base, schema, key=key),
        retry=Topic(f"{base}.retry", schema, key=key),
        dlq=Topic(f"{base}.dlq", None, key="original key", retention_ms=30 * DAY_MS),
    )


DELIVER: dict[Destination, DeliveryTopics] = {d: _delivery_topics(d) for d in Destination}

DELIVERY_RESULTS = Topic(
    "wedsync.delivery.results", "deliveries/delivery_result", key="integration_id"
)

# The sinks' start-up ledger, one compacted topic per sink kind (connectors/sinks/ledger_reader.py,
# streams/logic/ledger.py): for every (target, entity) the delivered result of its newest
# version, plus the delivered results of replayed dead letters and one `~backfilled` marker.
# Its keys grow with distinct (target, entity) pairs, never with results; the cleaner runs at
# least every 15 minutes on segments of at most 10 minutes, so what a start reads beyond the
# live keys is at most about 25 minutes of writes.
LEDGER_COMPACTION = (
    ("segment.ms", str(10 * 60 * 1000)),
    ("max.compaction.lag.ms", str(15 * 60 * 1000)),
    ("min.cleanable.dirty.ratio", "0.1"),
)
LEDGER: dict[Destination, Topic] = {
    d: Topic(
        f"wedsync.delivery.ledger.{d.value}",
        "deliveries/delivery_result",
        key="<target> US <entity> US <aggregate_id>, replay US <delivery_id>, or ~backfilled",
        cleanup=Cleanup.COMPACT,
        retention_ms=-1,
        tuning=LEDGER_COMPACTION,
    )
    for d in Destination
    if d is not Destination.INAPP  # the in-app gateway keeps no delivery ledger
}

# ---- health ---------------------------------------------------------------------------
SLA_HEALTH = Topic(
    "wedsync.sla.health",
    "health/sla_health",
    key="integration_id",
    fixed_partitions=1,
    cleanup=Cleanup.COMPACT,
    retention_ms=-1,
)

SLA_EVENTS = Topic(
    "wedsync.sla.events",
    "health/sla_event",
    key="integration_id",
    retention_ms=30 * DAY_MS,
)

# ---- the inbound calendar feed (`wedsync calendar-feed`, connectors/calendar) ------------
CALENDAR_BUSY = Topic(
    "wedsync.calendar.busy",
    "calendar/busy_interval",
    key="supplier_id (co-partitioned with the detector's bookings)",
)
CALENDAR_SYNC_STATE = Topic(
    "wedsync.calendar.sync_state",
    None,  # JSON: cursor, known intervals, status, interval; read back whole by the feed at
    # start, and whole then followed by the SLA agent (calendar health)
    key="calendar key '<provider>:<integration id>:<calendar id>'",
    fixed_partitions=1,
    cleanup=Cleanup.COMPACT,
    retention_ms=-1,
)

# ---- in-app gateway (connectors/sinks/inapp) -----------------------------------------------
INAPP_RECEIPTS = Topic(
    "wedsync.inapp.receipts",
    "deliveries/delivery_result",
    key="user_id",
    fixed_partitions=1,  # small: seen/read marks, read whole by every gateway
    retention_ms=DAY_MS,
)
INAPP_PRESENCE = Topic(
    "wedsync.inapp.presence",
    "inapp/presence",
    key="<gateway_id> or <gateway_id>|<user_id>",
    fixed_partitions=1,
    cleanup=Cleanup.COMPACT,
    retention_ms=-1,
)

ALL: tuple[Topic, ...] = (
    INGEST_CDC,
    INGEST_WEBHOOKS,
    INGEST_STATE,
    INGEST_DLQ,
    EVENTS,
    EVENTS_DLQ,
    *(t for d in DELIVER.values() for t in (d.deliver, d.retry, d.dlq)),
    DELIVERY_RESULTS,
    *LEDGER.values(),
    SLA_HEALTH,
    SLA_EVENTS,
    CALENDAR_BUSY,
    CALENDAR_SYNC_STATE,
    INAPP_RECEIPTS,
    INAPP_PRESENCE,
)

_BY_NAME = {t.name: t for t in ALL}


def topic(name: str) -> Topic:
    """Look a topic up by name; KeyError names the catalog when it is not there."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"topic {name!r} is not in streams/topics.py") from None


# ---- internal to one deployment of the worker (named after its app id) ---------------------
STATE_ROWS_TABLE = "state_rows"  # Faust table of routing-state rows (streams.agents.state)
BOOKINGS_TABLE = "bookings"  # Faust table of bookings per vendor (streams.agents.conflicts)


def faust_changelog_name(app_id: str, table: str) -> str:
    """Faust's name for a table's changelog topic (`<app id>-<table>-changelog`)."""
    return f"{app_id}-{table}-changelog"


@dataclass(frozen=True)
class AppTopics:
    """The topics of the worker deployment `app_id`. Faust creates the changelogs itself;
    the routing process creates the other two."""

    route_seen: Topic
    bookings_by_supplier: Topic
    state_rows_changelog: Topic
    bookings_changelog: Topic

    @property
    def all(self) -> tuple[Topic, ...]:
        return (
            self.route_seen,
            self.bookings_by_supplier,
            self.state_rows_changelog,
            self.bookings_changelog,
        )


def app_topics(app_id: str, *, seen_retention_ms: int = 30 * 60 * 1000) -> AppTopics:
    """Every internal topic of the worker deployment `app_id`."""
    return AppTopics(
        route_seen=Topic(
            f"{app_id}-route-seen", None, key="partition number (JSON markers of routed ids)",
            retention_ms=seen_retention_ms,
        ),
        bookings_by_supplier=Topic(
            f"{app_id}-bookings-by-supplier", None, key="supplier_id (booking.changed events)"
        ),
        state_rows_changelog=Topic(
            faust_changelog_name(app_id, STATE_ROWS_TABLE), None,
            key="JSON '<table>:<pk>' or '~watermark'",
            fixed_partitions=INGEST_STATE.partitions, cleanup=Cleanup.COMPACT, retention_ms=-1,
        ),
        bookings_changelog=Topic(
            faust_changelog_name(app_id, BOOKINGS_TABLE), None, key="JSON supplier id",
            cleanup=Cleanup.COMPACT, retention_ms=-1,
        ),
    )  # fmt: skip
