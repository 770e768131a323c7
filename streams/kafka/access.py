"""What each process needs from Kafka: one table, the ACLs it makes, and the preflight that
checks them at start.

`grants(role, app_id)` is the table. Roles are the processes:

    cdc           `wedsync cdc`
    worker        `wedsync worker`: the Faust agents
    route         `wedsync route`: the routing engine (`wedsync worker --with-route`, for
                  development, runs it as a child with the worker's login: give that
                  principal both roles)
    sink:<kind>   `wedsync sink <kind>` (calendar, crm, email, slack, sms, webhook)
    sla           `wedsync sla`
    ingest        `wedsync ingest`
    inapp         `wedsync inapp`

Each row names a topic, a group or the cluster (literal, or prefixed), the operations and
why the code needs them; topics come from the catalog (`streams.topics`), groups are the ids
the code uses. Least privilege: READ where a process consumes, WRITE where it produces (both
imply DESCRIBE); DESCRIBE alone for a group whose consumer only assigns partitions (librdkafka
still looks up its coordinator: without it every poll returns GROUP_AUTHORIZATION_FAILED).
Idempotent producers need no IDEMPOTENT_WRITE (since Kafka 3.0 WRITE on a topic allows it,
KIP-679). Creating the catalog's topics is an admin's job (`wedsync topics create` with
admin credentials); the worker and the routing process alone create topics, the
deployment's internal ones (`<app id>-`: Faust's table changelogs and assignor topic, the
routing process's seen markers and bookings regrouping), with a prefixed CREATE; they also
try to create the catalog at start (`streams.kafka.admin.create_topics`, for development
clusters): refused here, with a warning.
Operator commands (`wedsync topics create`, `audit`, `dlq`, `deliveries show`) are not roles:
run them with an admin's or an operator's rights.

`acl_bindings(role, principal, app_id)` gives the rows as confluent-kafka `AclBinding`s (for
`AdminClient.create_acls`), `acl_commands(...)` as `kafka-acls.sh` lines, `markdown()` the
table deploy/kafka/ACLS.md shows; `python -m streams.kafka.access <role> <principal>
[app id]` prints the commands.

`check_access(kafka, role, app_id)` is the preflight every process runs at start (see
`streams.kafka.preflight`, which does the asking; the deciding is `problems()` here).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from streams import topics
from streams.topics import DELIVER, Destination

if TYPE_CHECKING:
    from confluent_kafka.admin import AclBinding

    from streams.kafka.connection import Kafka

Resource = Literal["topic", "group", "cluster"]
CLUSTER = "kafka-cluster"  # the cluster resource's one name
SINK_KINDS = tuple(d.value for d in Destination if d is not Destination.INAPP)
ROLES = ("cdc", "worker", "route", *(f"sink:{kind}" for kind in SINK_KINDS), "sla", "ingest",
         "inapp", "calendar-feed")  # fmt: skip
SHOWS = frozenset({"READ", "WRITE", "DELETE", "ALTER", "DESCRIBE"})  # each implies DESCRIBE
CATALOG_PREFIX = topics.INGEST_CDC.name.split(".")[0] + "."  # "wedsync.": every catalog name


@dataclass(frozen=True)
class Grant:
    """One row: `operations` on `resource` `name` (a prefix when `prefixed`); `covers` are
    the names of ours it stands for (what the preflight asks the broker about)."""

    resource: Resource
    name: str
    operations: tuple[str, ...]
    why: str
    prefixed: bool = False
    covers: tuple[str, ...] = ()

    @property
    def probes(self) -> tuple[str, ...]:
        return self.covers or (self.name,)

    @property
    def pattern(self) -> str:
        return "prefixed" if self.prefixed else "literal"

    @property
    def target(self) -> str:
        """e.g. "topic 'wedsync.events'", "groups prefixed 'wedsync'", "the cluster"."""
        if self.resource == "cluster":
            return "the cluster"
        if self.prefixed:
            return f"{self.resource}s prefixed '{self.name}'"
        return f"{self.resource} '{self.name}'"


def _topic(topic: topics.Topic, *operations: str, why: str) -> Grant:
    return Grant("topic", topic.name, operations, why)


def _group(name: str, *operations: str, why: str, prefixed: bool = False) -> Grant:
    return Grant("group", name, operations, why, prefixed=prefixed, covers=(name,))


def internal_topics(app_id: str) -> tuple[str, ...]:
    """The worker deployment's own topics in the catalog (`app_topics`); Faust's assignor
    topic (`<app id>-__assignor-__leader`) has the same prefix."""
    return tuple(t.name for t in topics.app_topics(app_id).all)


def grants(role: str, app_id: str) -> tuple[Grant, ...]:
    """The table's rows for `role` in the deployment `app_id`; ValueError for another role."""
    if role == "cdc":
        return _cdc()
    if role == "worker":
        return _worker(app_id)
    if role == "route":
        return _route(app_id)
    if role.startswith("sink:") and role[5:] in SINK_KINDS:
        return _sink(Destination(role[5:]))
    if role == "sla":
        return _sla(app_id)
    if role == "ingest":
        why = "the gateway produces verified requests, idempotent"
        return (
            _topic(topics.INGEST_CDC, "WRITE", why=why),
            _topic(topics.INGEST_WEBHOOKS, "WRITE", why=why),
            _topic(topics.INGEST_STATE, "WRITE",
                   why="state-table changes over HTTP, as the CDC source writes them"),
        )  # fmt: skip
    if role == "inapp":
        return _inapp()
    if role == "calendar-feed":
        return _calendar_feed(app_id)
    raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")


CDC_STATE_KEYS_GROUP = "wedsync-cdc-state-keys"


def _cdc() -> tuple[Grant, ...]:
    why = "produces changes (idempotent); reads max.message.bytes at start"
    return (
        _topic(topics.INGEST_CDC, "WRITE", "DESCRIBE_CONFIGS", why=why),
        _topic(
            topics.INGEST_STATE,
            "WRITE",
            "READ",
            "DESCRIBE_CONFIGS",
            why="state rows, heartbeats; reads max.message.bytes and the state's row keys "
            "(for TRUNCATE) at start",
        ),
        _topic(topics.INGEST_DLQ, "WRITE", "DESCRIBE_CONFIGS", why="rows it cannot encode"),
        _group(
            CDC_STATE_KEYS_GROUP,
            "DESCRIBE",
            why="reads wedsync.ingest.state back at start: assigns, never joins, commits nothing",
        ),
        Grant(
            "cluster",
            CLUSTER,
            ("DESCRIBE_CONFIGS",),
            "reads the brokers' message.max.bytes at start: postgres_cdc.limits",
        ),
    )


def _internal(app_id: str, why: str) -> Grant:
    return Grant("topic", f"{app_id}-", ("CREATE", "READ", "WRITE"), why, prefixed=True,
                 covers=internal_topics(app_id))  # fmt: skip


def _worker(app_id: str) -> tuple[Grant, ...]:
    normalize = "the normalize agents consume it"
    return (
        _topic(topics.INGEST_CDC, "READ", why=normalize),
        _topic(topics.INGEST_WEBHOOKS, "READ", why=normalize),
        _topic(topics.INGEST_STATE, "READ", why="the state agent consumes it"),
        _topic(topics.INGEST_DLQ, "WRITE", why="the state agent's dead letters"),
        _topic(topics.EVENTS, "WRITE", why="the agents produce domain events"),
        _topic(topics.EVENTS_DLQ, "WRITE", why="dead letters of normalize and conflicts"),
        _topic(topics.CALENDAR_BUSY, "READ",
               why="the conflicts agent folds vendors' own calendars beside bookings"),
        _internal(app_id, "the deployment's own topics: Faust's table changelogs and assignor "
                  "topic (created by it), the bookings regrouping the conflicts agent reads"),
        _group(app_id, "READ", why="the Faust app's consumer group"),
    )  # fmt: skip


def _calendar_feed(app_id: str) -> tuple[Grant, ...]:
    """`wedsync calendar-feed` (connectors/calendar/feed/process.py)."""
    calendar = DELIVER[Destination.CALENDAR]
    owned = "what we wrote in vendors' calendars: echoes and drift"
    return (
        _topic(topics.INGEST_WEBHOOKS, "READ", why="the providers' pushes the gateway stored"),
        _topic(calendar.deliver, "READ", why=owned),
        _topic(calendar.retry, "READ", why=owned),
        _topic(topics.DELIVERY_RESULTS, "READ", why="the provider ids our calendar writes got"),
        _topic(topics.CALENDAR_BUSY, "WRITE", why="vendors' busy time for the detector"),
        _topic(topics.EVENTS, "WRITE", why="drift and degraded-protection notices"),
        _topic(topics.CALENDAR_SYNC_STATE, "READ", "WRITE",
               why="each calendar's cursor, known intervals and channels, read back at start"),
        _topic(topics.INGEST_STATE, "DESCRIBE",
               why="cold start: the Faust group's commits on it (the state agent caught up)"),
        Grant("topic", f"{app_id}-", ("READ",), "which calendars are connected: the "
              "routing state's changelog", prefixed=True,
              covers=(topics.app_topics(app_id).state_rows_changelog.name,)),
        _group(app_id, "DESCRIBE", why="cold start: the Faust group's committed offsets"),
        _group(f"{app_id}-route-state", "DESCRIBE",
               why="the routing-state reader: assigns, never joins"),
        _group(f"{app_id}-calendar-feed-state", "DESCRIBE",
               why="the sync-state reader: assigns, never joins"),
        _group(f"{app_id}-calendar-feed-owned", "READ", why=owned),
        _group(f"{app_id}-calendar-feed-pushes", "READ", why="the pushes' consumer group"),
        _group(f"{app_id}-calendar-feed-leader", "READ",
               why="the lease: the member holding the sync state's partition is the active feed"),
    )  # fmt: skip


def _route(app_id: str) -> tuple[Grant, ...]:
    return (
        _topic(topics.EVENTS, "READ", why="the routing engine consumes domain events"),
        _topic(topics.EVENTS_DLQ, "WRITE", why="events it cannot route"),
        _topic(topics.INGEST_STATE, "DESCRIBE",
               why="cold start: the Faust group's commits on it (the state agent caught up)"),
        *(_topic(t.deliver, "WRITE", why="routing produces deliveries") for t in DELIVER.values()),
        _internal(app_id, "the deployment's own topics: the state changelog it reads, seen "
                  "markers and the bookings regrouping (created by it)"),
        _group(app_id, "DESCRIBE", why="cold start: the Faust group's committed offsets"),
        _group(f"{app_id}-route", "READ", why="the routing engine's consumer group"),
        _group(f"{app_id}-route-state", "DESCRIBE",
               why="routing's changelog reader: assigns, never joins"),
        _group(f"{app_id}-route-seen-reader", "DESCRIBE",
               why="routing's seen-markers reader: assigns, never joins"),
    )  # fmt: skip


def _sink(kind: Destination) -> tuple[Grant, ...]:
    own = DELIVER[kind]
    group = f"wedsync-sink-{kind.value}"  # connectors.sinks.runtime.SinkRuntime.group_id
    return (
        _topic(own.deliver, "READ", why="the sink consumes its deliveries"),
        _topic(own.retry, "READ", "WRITE", why="retries: sent back, consumed when due"),
        _topic(own.dlq, "WRITE", why="dead letters"),
        _topic(
            topics.DELIVERY_RESULTS,
            "READ",
            "WRITE",
            why="every attempt's outcome; its recent part is read back at start",
        ),
        _topic(
            topics.LEDGER[kind],
            "READ",
            "WRITE",
            why="the compacted start-up ledger: newest versions, replays; read whole at start",
        ),
        _topic(topics.SLA_HEALTH, "WRITE", why="health records of paused integrations"),
        _group(group, "READ", why="the sink's consumer group"),
        _group(f"{group}-ledger", "DESCRIBE", why="the ledger reader: assigns, never joins"),
    )  # the ledger reader also asks `group` (READ above) for its committed offsets


def _sla(app_id: str) -> tuple[Grant, ...]:
    lag = "the lag of the deployment's groups: ListGroups lists those it may describe"
    prefixes = dict.fromkeys(("wedsync", app_id))  # streams.app.sla: group_prefixes
    return (
        _topic(topics.DELIVERY_RESULTS, "READ", why="the SLA windows read the outcomes"),
        _topic(
            topics.CALENDAR_SYNC_STATE,
            "READ",
            why="each calendar's sync health, read whole at start by assignment",
        ),
        _topic(topics.SLA_HEALTH, "WRITE", why="integration and calendar health"),
        _topic(topics.SLA_EVENTS, "WRITE", why="alerts fired and resolved"),
        *(
            _group(p, "DESCRIBE", prefixed=True, why=lag)
            for p in prefixes
            if not any(p != q and p.startswith(q) for q in prefixes)
        ),
        Grant(
            "topic",
            CATALOG_PREFIX,
            ("DESCRIBE",),
            "end offsets for the lag",
            prefixed=True,
            covers=tuple(t.name for t in topics.ALL),
        ),
        Grant(
            "topic",
            f"{app_id}-",
            ("DESCRIBE",),
            "end offsets for the lag of the worker's own topics",
            prefixed=True,
            covers=internal_topics(app_id),
        ),
    )


def _inapp() -> tuple[Grant, ...]:
    return (
        _topic(
            DELIVER[Destination.INAPP].deliver,
            "READ",
            why="notifications, read by assignment; its topic id at start",
        ),
        _topic(topics.INAPP_RECEIPTS, "READ", "WRITE", why="seen/read marks, read whole"),
        _topic(topics.INAPP_PRESENCE, "READ", "WRITE", why="who is connected, read whole"),
        _topic(topics.DELIVERY_RESULTS, "WRITE", why="seen/read as delivery results"),
        _group(
            "wedsync-inapp-",
            "DESCRIBE",
            prefixed=True,
            why="the feed's group, wedsync-inapp- and its gateway id: assigns, never joins",
        ),
    )


# ---- as ACLs ---------------------------------------------------------------------------------
def principal_of(user: str) -> str:
    """`User:<name>` for a bare user name; a full principal as given."""
    return user if ":" in user else f"User:{user}"


def acl_bindings(role: str, principal: str, app_id: str) -> list[AclBinding]:
    """One ALLOW binding (any host) per row and operation of `role`, for `principal`."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    # librdkafka's BROKER resource type is Kafka's CLUSTER (code 4)
    types = {
        "topic": ResourceType.TOPIC,
        "group": ResourceType.GROUP,
        "cluster": ResourceType.BROKER,
    }
    return [
        AclBinding(
            types[g.resource],
            g.name,
            ResourcePatternType.PREFIXED if g.prefixed else ResourcePatternType.LITERAL,
            principal_of(principal),
            "*",
            AclOperation[op],
            AclPermissionType.ALLOW,
        )
        for g in grants(role, app_id)
        for op in g.operations
    ]


def _camel(operation: str) -> str:
    return "".join(part.capitalize() for part in operation.split("_"))


def acl_command(
    grant: Grant,
    principal: str,
    *,
    bootstrap: str = '"$KAFKA_BOOTSTRAP_SERVERS"',
    command_config: str = "admin.properties",
) -> str:
    """The `kafka-acls.sh --add` line that grants one row."""
    where = f"--{grant.resource} {shlex.quote(grant.name)}"
    if grant.resource == "cluster":
        where = "--cluster"
    ops = " ".join(f"--operation {_camel(op)}" for op in grant.operations)
    pattern = " --resource-pattern-type prefixed" if grant.prefixed else ""
    return (
        f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config {command_config} "
        f"--add --allow-principal {shlex.quote(principal_of(principal))} {ops} "
        f"{where}{pattern}"
    )


def acl_commands(role: str, principal: str, app_id: str, **options: str) -> list[str]:
    """`kafka-acls.sh` lines that give `principal` what `role` needs (one per row)."""
    return [acl_command(g, principal, **options) for g in grants(role, app_id)]


def markdown(app_id: str = "wedsync") -> str:
    """The table as deploy/kafka/ACLS.md shows it, for the deployment `app_id`."""
    lines = []
    for role in ROLES:
        lines += [
            f"### `{role}`",
            "",
            "| resource | name | pattern | operations | why |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {g.resource} | `{g.name}` | {g.pattern} | {', '.join(g.operations)} | {g.why} |"
            for g in grants(role, app_id)
        ]
        lines.append("")
    return "\n".join(lines)


# ---- the preflight's decision ------------------------------------------------------------------
DENIED = "denied"  # the broker would not describe it: none of the operations that imply DESCRIBE
ABSENT = "absent"  # no such topic (the principal may describe it)
ALLOWED = "allowed"  # a CREATE asked with validate_only was not refused
Seen = frozenset[str] | str | None  # operations allowed; DENIED; ABSENT; None: not reported


@dataclass(frozen=True)
class Missing:
    """`operations` of `grant` the principal lacks, or a topic that is not there (`absent`)
    and that it may not create."""

    grant: Grant
    operations: tuple[str, ...]
    absent: str | None = None


def problems(wanted: Iterable[Grant], seen: Mapping[tuple[str, str], Seen]) -> list[Missing]:
    """What the broker's answers (`seen`, by (resource, name); ("create", name) for a
    validate-only CREATE of an absent topic) say is missing. Nothing reported (no authorizer
    answers operations, e.g. the embedded Tansu broker) is never a problem."""
    found: list[Missing] = []
    for grant in wanted:
        lacking: list[str] = []
        for name in grant.probes:
            answer = seen.get((grant.resource, name))
            if isinstance(answer, frozenset):
                lacking += [op for op in grant.operations if op not in answer]
            elif answer == DENIED and any(op in SHOWS for op in grant.operations):
                lacking += grant.operations  # the rest cannot be told apart: the whole row
            elif answer == ABSENT and seen.get(("create", name)) == DENIED:
                if "CREATE" in grant.operations:
                    lacking.append("CREATE")
                elif not grant.prefixed:
                    found.append(Missing(grant, (), absent=name))
        unique = tuple(op for op in grant.operations if op in lacking)
        if unique:
            found.append(Missing(grant, unique))
    return found


def check_access(kafka: Kafka, role: str, app_id: str, *, timeout: float = 15.0) -> None:
    """At a process's start, before its main loop: within `timeout` seconds, a wrong SASL
    login (KafkaAuthenticationFailed), an untrusted broker certificate (KafkaTlsFailed), a
    missing ACL of `role` (KafkaAccessDenied) or a catalog topic that is absent and that the
    role may not create (ConfigurationError) is raised, each naming what to fix, never a
    secret; BrokerUnavailable when no broker answers. Passes quickly where nothing is
    enforced (PLAINTEXT without an authorizer, the embedded broker)."""
    from streams.kafka.preflight import preflight

    preflight(kafka, role, grants(role, app_id), timeout=timeout)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or argv[0] not in ROLES:
        print(
            "usage: python -m streams.kafka.access <role> <principal> [app id]\n"
            f"roles: {', '.join(ROLES)}",
            file=sys.stderr,
        )
        return 2
    app_id = argv[2] if len(argv) == 3 else "wedsync"
    print("\n".join(acl_commands(argv[0], argv[1], app_id)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
