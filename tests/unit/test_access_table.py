"""The table of what each process needs from Kafka (`streams.kafka.access`): least
privilege derived from the catalog, its ACLs and kafka-acls.sh lines, the preflight's
decision on the broker's answers, and deploy/kafka/ACLS.md made from it."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AclOperation, AclPermissionType, ResourcePatternType, ResourceType
from streams import topics
from streams.errors import ConfigurationError, KafkaAccessDenied
from streams.kafka.access import (
    ABSENT,
    ALLOWED,
    CATALOG_PREFIX,
    DENIED,
    ROLES,
    SINK_KINDS,
    Grant,
    Missing,
    acl_bindings,
    acl_commands,
    grants,
    main,
    markdown,
    problems,
)
from streams.kafka.preflight import _raise_problems
from streams.settings import REPO_ROOT

APP = "faults-1a2b"
CATALOG = {t.name for t in topics.ALL}


def rows(role: str, app_id: str = APP) -> tuple[Grant, ...]:
    return grants(role, app_id)


@pytest.mark.parametrize("role", ROLES)
def test_every_topic_a_role_names_is_in_the_catalog_or_its_deployments_own(role: str) -> None:
    named = {g.name for g in rows(role) if g.resource == "topic"}
    assert named - CATALOG <= {f"{APP}-", CATALOG_PREFIX}


def test_every_catalog_name_starts_with_the_catalog_prefix() -> None:
    assert CATALOG_PREFIX == "wedsync."
    assert all(name.startswith(CATALOG_PREFIX) for name in CATALOG)


@pytest.mark.parametrize("role", ROLES)
def test_no_role_may_create_a_catalog_topic(role: str) -> None:
    creating = [g for g in rows(role) if "CREATE" in g.operations]
    assert all(g.prefixed and g.name == f"{APP}-" for g in creating)


def test_only_the_worker_and_the_routing_process_create_topics() -> None:
    creating = [r for r in ROLES if any("CREATE" in g.operations for g in rows(r))]
    assert creating == ["worker", "route"]


def test_only_the_cdc_source_has_a_cluster_right_and_only_to_read_configs() -> None:
    cluster = {r: [g.operations for g in rows(r) if g.resource == "cluster"] for r in ROLES}
    assert {r: ops for r, ops in cluster.items() if ops} == {"cdc": [("DESCRIBE_CONFIGS",)]}


@pytest.mark.parametrize("role", ROLES)
def test_no_role_is_given_all_or_idempotent_write(role: str) -> None:
    ops = {op for g in rows(role) for op in g.operations}
    assert not ops & {"ALL", "IDEMPOTENT_WRITE", "ALTER", "ALTER_CONFIGS", "DELETE"}


def test_every_sink_kind_has_a_role_and_the_in_app_gateway_its_own() -> None:
    assert set(SINK_KINDS) == {d.value for d in topics.Destination} - {"inapp"}
    assert {f"sink:{k}" for k in SINK_KINDS} | {"inapp"} <= set(ROLES)


@pytest.mark.parametrize("kind", SINK_KINDS)
def test_a_sink_reads_only_its_own_deliveries(kind: str) -> None:
    read = {g.name for g in rows(f"sink:{kind}") if "READ" in g.operations}
    own = topics.DELIVER[topics.Destination(kind)]
    assert read == {
        own.deliver.name,
        own.retry.name,
        topics.DELIVERY_RESULTS.name,
        topics.LEDGER[topics.Destination(kind)].name,
        f"wedsync-sink-{kind}",
    }


def test_the_worker_group_is_its_app_id() -> None:
    groups = {g.name for g in rows("worker") if g.resource == "group"}
    assert groups == {APP}
    assert not any(g.prefixed for g in rows("worker") if g.resource == "group")


def test_the_routing_groups_are_named_after_the_app_id() -> None:
    groups = {g.name: g.operations for g in rows("route") if g.resource == "group"}
    assert groups == {APP: ("DESCRIBE",), f"{APP}-route": ("READ",),
                      f"{APP}-route-state": ("DESCRIBE",),
                      f"{APP}-route-seen-reader": ("DESCRIBE",)}  # fmt: skip


def test_only_the_routing_process_writes_deliveries() -> None:
    deliver = {t.deliver.name for t in topics.DELIVER.values()}
    writing = {r for r in ROLES for g in rows(r) if g.name in deliver and "WRITE" in g.operations}
    assert writing == {"route"}


@pytest.mark.parametrize("role", ["worker", "route"])
def test_the_deployment_prefix_covers_its_internal_topics(role: str) -> None:
    (own,) = [g for g in rows(role) if g.prefixed]
    assert set(own.covers) == {t.name for t in topics.app_topics(APP).all}
    assert all(name.startswith(own.name) for name in own.covers)


def test_the_sla_agent_describes_groups_under_both_prefixes_once() -> None:
    def prefixes(app_id: str) -> list[str]:
        return [g.name for g in grants("sla", app_id) if g.resource == "group"]

    assert prefixes("wedsync") == ["wedsync"]
    assert prefixes("wedsync-eu") == ["wedsync"]
    assert prefixes(APP) == ["wedsync", APP]


def test_an_unknown_role_names_the_roles() -> None:
    with pytest.raises(ValueError, match="sink:webhook"):
        grants("sink:inapp", APP)


# ---- as ACLs -----------------------------------------------------------------------------
def test_bindings_are_one_allow_per_row_and_operation() -> None:
    bindings = acl_bindings("sink:email", "wedsync-sink-email", APP)
    assert len(bindings) == sum(len(g.operations) for g in rows("sink:email"))
    assert {b.principal for b in bindings} == {"User:wedsync-sink-email"}
    assert {b.host for b in bindings} == {"*"}
    assert {b.permission_type for b in bindings} == {AclPermissionType.ALLOW}


def test_a_cluster_row_binds_librdkafkas_broker_type_named_kafka_cluster() -> None:
    (b,) = [b for b in acl_bindings("cdc", "User:cdc", APP) if b.restype == ResourceType.BROKER]
    assert (b.name, b.operation) == ("kafka-cluster", AclOperation.DESCRIBE_CONFIGS)


def test_a_prefixed_row_binds_a_prefixed_pattern() -> None:
    prefixed = [
        b
        for b in acl_bindings("worker", "w", APP)
        if b.resource_pattern_type == ResourcePatternType.PREFIXED
    ]
    assert {(b.name, b.operation) for b in prefixed} == {
        (f"{APP}-", AclOperation.CREATE),
        (f"{APP}-", AclOperation.READ),
        (f"{APP}-", AclOperation.WRITE),
    }


def test_commands_are_kafka_acls_lines_one_per_row() -> None:
    lines = acl_commands("cdc", "wedsync-cdc", APP)
    assert len(lines) == len(rows("cdc"))
    assert lines[0] == (
        'kafka-acls.sh --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --command-config '
        "admin.properties --add --allow-principal User:wedsync-cdc --operation Write "
        f"--operation DescribeConfigs --topic {topics.INGEST_CDC.name}"
    )
    assert lines[-1].endswith(
        "--allow-principal User:wedsync-cdc --operation DescribeConfigs --cluster"
    )


def test_a_prefixed_command_says_so() -> None:
    (line,) = [c for c in acl_commands("worker", "w", APP) if "prefixed" in c]
    assert line.endswith(f"--topic {APP}- --resource-pattern-type prefixed")


def test_the_module_prints_a_roles_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "User:wedsync-ingest"]) == 0
    assert capsys.readouterr().out.splitlines() == acl_commands(
        "ingest", "User:wedsync-ingest", "wedsync"
    )


def test_the_module_refuses_an_unknown_role(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nope", "User:x"]) == 2
    assert "roles: cdc, worker" in capsys.readouterr().err


def test_the_deploy_document_shows_the_table() -> None:
    assert markdown() in (REPO_ROOT / "deploy" / "kafka" / "ACLS.md").read_text()


# ---- the preflight's decision ------------------------------------------------------------
EVENTS, SLA_EVENTS = topics.EVENTS.name, topics.SLA_EVENTS.name
READ_ROW = Grant("topic", EVENTS, ("READ", "WRITE"), "why")
PREFIX_ROW = Grant(
    "topic", "app-", ("CREATE", "READ"), "why", prefixed=True, covers=("app-a", "app-b")
)


def test_operations_the_broker_allows_are_not_missing() -> None:
    seen = {("topic", EVENTS): frozenset({"READ", "WRITE", "DESCRIBE"})}
    assert problems([READ_ROW], seen) == []


def test_an_operation_the_broker_does_not_list_is_missing() -> None:
    (found,) = problems([READ_ROW], {("topic", EVENTS): frozenset({"READ"})})
    assert found.operations == ("WRITE",)


def test_a_topic_it_may_not_describe_lacks_the_whole_row() -> None:
    (found,) = problems([READ_ROW], {("topic", EVENTS): DENIED})
    assert found.operations == ("READ", "WRITE")


def test_nothing_reported_is_never_a_problem() -> None:
    assert problems([READ_ROW, PREFIX_ROW], {}) == []
    assert problems([READ_ROW], {("topic", EVENTS): None}) == []


def test_an_absent_topic_it_may_not_create_is_named() -> None:
    seen = {("topic", EVENTS): ABSENT, ("create", EVENTS): DENIED}
    (found,) = problems([READ_ROW], seen)
    assert (found.absent, found.operations) == (EVENTS, ())


def test_an_absent_topic_it_may_create_is_fine() -> None:
    seen = {("topic", EVENTS): ABSENT, ("create", EVENTS): ALLOWED}
    assert problems([READ_ROW], seen) == []


def test_an_absent_own_topic_it_may_not_create_lacks_create() -> None:
    seen = {
        ("topic", "app-a"): ABSENT,
        ("create", "app-a"): DENIED,
        ("topic", "app-b"): ABSENT,
        ("create", "app-b"): DENIED,
    }
    (found,) = problems([PREFIX_ROW], seen)
    assert found.operations == ("CREATE",)


def test_a_group_row_is_checked_by_its_name() -> None:
    row = Grant("group", "wedsync-sink-sms", ("READ",), "why", covers=("wedsync-sink-sms",))
    (found,) = problems([row], {("group", "wedsync-sink-sms"): frozenset({"DESCRIBE"})})
    assert found.operations == ("READ",)


# ---- what the preflight says -------------------------------------------------------------
def test_a_missing_acl_is_told_with_principal_resource_operation_and_the_command() -> None:
    with pytest.raises(KafkaAccessDenied) as raised:
        _raise_problems("User:wedsync-route", [Missing(READ_ROW, ("WRITE",))])
    said = str(raised.value)
    assert f"User:wedsync-route lacks ACLs its role needs: WRITE on topic '{EVENTS}'" in said
    assert f"--add --allow-principal User:wedsync-route --operation Write --topic {EVENTS}" in said


def test_only_absent_topics_are_a_configuration_error_naming_topics_create() -> None:
    with pytest.raises(ConfigurationError) as raised:
        _raise_problems("User:wedsync-sla", [Missing(READ_ROW, (), absent=SLA_EVENTS)])
    assert not isinstance(raised.value, KafkaAccessDenied)
    assert f"{SLA_EVENTS} do not exist" in str(raised.value)
    assert "wedsync topics create" in str(raised.value)


def test_the_ingest_role_may_write_state_table_changes_where_the_cdc_source_does() -> None:
    written = {g.name for g in grants("ingest", "wedsync") if "WRITE" in g.operations}
    assert topics.INGEST_STATE.name in written
