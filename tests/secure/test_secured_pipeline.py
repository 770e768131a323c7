"""The pipeline on a cluster run as production runs one: SASL_SSL with SCRAM, ACLs enforced.
Each process (`wedsync cdc`, `wedsync worker`, `wedsync route`, the email, CRM, webhook and
Slack sinks) logs in as its own SCRAM user holding exactly the ACLs of its role in
`streams.kafka.access`, made by the test through the admin user (the worker logs in with
SCRAM-SHA-256 and reads its password from a file, the others SCRAM-SHA-512 from the
environment); the catalog's topics are created by the admin (`wedsync topics create`). The
fault suite's rig runs it (its `Pipeline`, receivers and load), with each process's KAFKA_*
settings added."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import pytest
from streams.dev.db import slot_streaming
from streams.dev.kraft import KafkaCluster
from streams.kafka.access import CATALOG_PREFIX
from streams.kafka.codec import TopicCodecs

from tests.faults.load import Load, seed
from tests.faults.pipeline import SINKS, SLACK_TOKEN, Pipeline, Proc
from tests.faults.receivers import HttpReceivers, Ledger, SmtpReceiver
from tests.faults.run import Run
from tests.integration.cdc_support import PlatformDb
from tests.secure.support import kafka_env, role_user, wait_allowed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROWS = 20
SUPPLIERS = 5


def role_of(process: str) -> str:
    return process if process in ("cdc", "worker", "route") else f"sink:{process}"


@dataclass
class SecuredPipeline(Pipeline):
    """The rig's pipeline, each process with its role's credentials; commands run by the
    test itself (`wedsync topics create`, `audit`) as the admin."""

    cluster: KafkaCluster | None = None
    users: dict[str, tuple[str, str]] = field(default_factory=dict)  # role -> (name, password)

    def common_env(self) -> dict[str, str]:
        assert self.cluster is not None
        return {**super().common_env(), **kafka_env(self.cluster.connection())}

    def _proc(self, name: str, args: list[str], env: dict[str, str]) -> Proc:
        assert self.cluster is not None
        user, password = self.users[role_of(name)]
        # the worker (Faust's aiokafka and its librdkafka clients) as a mounted secret would
        # have it: the password in a file, and the other SCRAM mechanism
        worker = name == "worker"
        secret = self.workdir / f"{name}.password" if worker else None
        mechanism = "SCRAM-SHA-256" if worker else "SCRAM-SHA-512"
        conn = self.cluster.connection(user, password, mechanism=mechanism)
        own = kafka_env(conn, password_file=secret)
        env = {k: v for k, v in env.items() if k != "KAFKA_SASL_PASSWORD"}
        return super()._proc(name, args, {**env, **own})


def _denials(cluster: KafkaCluster, users: dict[str, tuple[str, str]]) -> list[str]:
    """What the authorizer refused the pipeline's users, but creating catalog topics (the
    worker's idempotent create of the whole catalog is refused by design)."""
    log = cluster.node(1).directory / "authorizer.log"
    who = tuple(f"Principal = User:{name} is Denied" for name, _ in users.values())
    lines = log.read_text().splitlines() if log.exists() else []
    catalog = (
        f"operation = CREATE from host = 127.0.0.1 on resource = Topic:LITERAL:{CATALOG_PREFIX}"
    )
    return [ln for ln in lines if any(w in ln for w in who) and catalog not in ln]


def test_form_responses_reach_every_destination_with_only_each_roles_acls(
    secured_cluster: KafkaCluster, platform: PlatformDb, codecs: TopicCodecs, tmp_path: Path
) -> None:
    app_id = f"secure-{uuid.uuid4().hex[:8]}"
    users = {}
    for process in ("cdc", "worker", "route", *SINKS):
        role = role_of(process)
        users[role] = role_user(secured_cluster, role, app_id)
    ledger = Ledger()
    http = HttpReceivers(ledger, SLACK_TOKEN).start()
    smtp = SmtpReceiver(ledger, latency_s=0.0).start()
    load = Load(platform, seed(platform, http, SUPPLIERS))
    pipeline = SecuredPipeline(
        secured_cluster.bootstrap_servers,
        platform,
        tmp_path,
        app_id,
        http.url,
        smtp.port,
        cluster=secured_cluster,
        users=users,
        route_apart=True,
    )
    try:
        pipeline.create_topics()  # as the admin
        for role, (user, password) in users.items():
            wait_allowed(secured_cluster.connection(user, password), role, app_id)

        def streaming(slot: str) -> bool:
            with psycopg2.connect(platform.dsn) as conn, conn.cursor() as cur:
                return slot_streaming(cur, slot)

        pipeline.start(streaming)
        run = Run(pipeline, load, ledger, codecs, secured_cluster, smtp, 0.0)
        run.warm_up(rows=ROWS, timeout=240)
        assert pipeline.dead() == [], "\n".join(pipeline.tail(n) for n in pipeline.dead())
        assert _denials(secured_cluster, users) == []
    finally:
        load.shutdown()
        pipeline.stop()
        smtp.stop()
        http.stop()
