"""The asking half of `streams.kafka.access.check_access`: one admin client, a few requests,
a bounded time, and the translation of what goes wrong into errors that name the setting.

1. DescribeCluster, which makes the connection. librdkafka reports a refused SASL login
   (`_AUTHENTICATION`) and a failed TLS handshake (`_SSL`) through `error_cb` while it retries
   for ever, so the callback's first such error ends the wait (KafkaAuthenticationFailed,
   KafkaTlsFailed); no answer within the time is BrokerUnavailable naming
   KAFKA_BOOTSTRAP_SERVERS and KAFKA_SECURITY_PROTOCOL.
2. DescribeTopics of every topic the role's rows name, with authorized operations: a list,
   TOPIC_AUTHORIZATION_FAILED (may not describe it), UNKNOWN_TOPIC_OR_PART (absent).
3. An absent topic: CreateTopics with validate_only (creates nothing): refused or not.
4. DescribeGroups of every group, with authorized operations (a group that never existed
   answers too, as Dead); the coordinator may still be loading on a fresh cluster, so those
   answers are asked again until the time is up.
5. The cluster's DESCRIBE_CONFIGS (the CDC source's): one broker's DescribeConfigs, as the
   source asks it (Kafka tells the cluster's authorized operations only to who may DESCRIBE
   the cluster, a right no process has).

Where every answer carries every operation (no authorizer, or a super user), or none carries
any (the embedded Tansu broker), nothing more is asked. An answer that does not come in time
is not a problem found: the process starts and meets its own errors later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from streams.errors import (
    BrokerUnavailable,
    ConfigurationError,
    KafkaAccessDenied,
    KafkaAuthenticationFailed,
    KafkaTlsFailed,
)
from streams.kafka.access import (
    ABSENT,
    ALLOWED,
    CLUSTER,
    DENIED,
    Grant,
    Missing,
    Seen,
    acl_command,
    problems,
)
from streams.kafka.connection import Kafka, KafkaConnection, client_config, connection

log = logging.getLogger(__name__)

ALL_TOPIC_OPERATIONS = frozenset(
    {"READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"}
)
COORDINATOR_BUSY = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError._TIMED_OUT,
    }
)
DENIALS = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    }
)


def principal(conn: KafkaConnection) -> str:
    if conn.sasl_username:
        return f"User:{conn.sasl_username}"
    if conn.sasl_mechanism == "OAUTHBEARER":
        return f"the principal of client {conn.sasl_oauthbearer_client_id!r}'s tokens (their sub)"
    if conn.ssl_certificate_location:
        return f"the principal of the certificate in {conn.ssl_certificate_location}"
    return "User:ANONYMOUS"


class _Admin:
    """An admin client whose waits serve `error_cb` and end at one deadline."""

    def __init__(self, conn: KafkaConnection, deadline: float) -> None:
        self.conn = conn
        self.deadline = deadline
        self.errors: list[KafkaError] = []
        options = {"error_cb": self.errors.append, "log.connection.close": False}
        self.client = AdminClient(client_config(conn, options))

    def left(self) -> float:
        return max(0.1, self.deadline - time.monotonic())

    def wait(self, futures: Iterable[Any]) -> bool:
        """Until every future is done (True) or the deadline (False); raises on a refused
        login or TLS handshake."""
        pending = list(futures)
        while True:
            self._raise_connection_errors()
            pending = [f for f in pending if not f.done()]
            if not pending:
                return True
            if time.monotonic() >= self.deadline:
                return False
            self.client.poll(0.05)

    def _raise_connection_errors(self) -> None:
        for error in self.errors:
            if error.code() == KafkaError._AUTHENTICATION:
                advice = _authentication_advice(self.conn)
                raise KafkaAuthenticationFailed(self._said(error, advice))
            said = error.str()
            if (
                error.code() == KafkaError._SSL
                or "SSL handshake failed" in said
                or (_client_certificate_refused(said))
            ):
                raise KafkaTlsFailed(self._said(error, _tls_advice(self.conn, said)))

    def _said(self, error: KafkaError, advice: str) -> str:
        text = error.str()
        for secret in (self.conn.sasl_password, self.conn.ssl_key_password,
                       self.conn.sasl_oauthbearer_client_secret):  # fmt: skip
            if secret is not None and secret.get_secret_value():
                text = text.replace(secret.get_secret_value(), "**********")
        return f"{advice}. Kafka said: {text}"

    def unreachable(self) -> BrokerUnavailable:
        last = next(
            (e.str() for e in reversed(self.errors) if e.code() != KafkaError._ALL_BROKERS_DOWN),
            "no answer",
        )
        return BrokerUnavailable(
            f"no broker of KAFKA_BOOTSTRAP_SERVERS={self.conn.bootstrap_servers} answered "
            f"with KAFKA_SECURITY_PROTOCOL={self.conn.security_protocol} in time ({last}): "
            "check the addresses, and that the protocol is the one of that listener"
        )


def _authentication_advice(conn: KafkaConnection) -> str:
    if conn.sasl_mechanism == "OAUTHBEARER":
        return (
            f"no OAUTHBEARER login for client {conn.sasl_oauthbearer_client_id!r}: check "
            "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL, KAFKA_SASL_OAUTHBEARER_CLIENT_ID and "
            "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET (and _SCOPE), and that the cluster accepts "
            "that issuer's tokens"
        )
    return (
        f"the Kafka cluster refused the SASL login of user {conn.sasl_username!r} "
        f"({conn.sasl_mechanism}): check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (or the "
        "file KAFKA_SASL_PASSWORD_FILE names), and that KAFKA_SASL_MECHANISM is one the "
        "cluster enables for that user"
    )


# what a broker's TLS alert says when it refused this client's certificate, or its absence
# (42 bad certificate, 48 unknown CA, 116 certificate required)
REFUSED_CLIENT_CERTIFICATE = (
    "alert bad certificate", "alert unknown ca", "certificate required",
    "alert number 42", "alert number 116",
)  # fmt: skip


def _client_certificate_refused(said: str) -> bool:
    return any(words in said.lower() for words in REFUSED_CLIENT_CERTIFICATE)


def _tls_advice(conn: KafkaConnection, said: str) -> str:
    if _client_certificate_refused(said):
        given = conn.ssl_certificate_location or "unset"
        return (
            f"the broker at {conn.bootstrap_servers} refused this process's TLS client "
            "certificate: the listener requires mutual TLS; set "
            "KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION to a certificate "
            f"signed by a CA the cluster trusts (now {given})"
        )
    ca = conn.ssl_ca_location or "unset: the system's CAs"
    text = (
        f"no TLS session with {conn.bootstrap_servers}: the broker's certificate is not "
        f"signed by a CA this process trusts: set KAFKA_SSL_CA_LOCATION to the cluster's CA "
        f"certificate (now {ca})"
    )
    if "hostname" in said.lower() or "mismatch" in said.lower():
        text += (
            " and connect by a name the certificate holds (KAFKA_BOOTSTRAP_SERVERS), or, "
            "knowingly, KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM=none"
        )
    return text


def _operations(answer: Any) -> frozenset[str] | None:
    ops = getattr(answer, "authorized_operations", None)
    return None if ops is None else frozenset(op.name for op in ops)


def _code(exc: BaseException) -> int | None:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return int(exc.args[0].code())
    return None


def _ask(
    admin: _Admin,
    futures: dict[str, Any],
    verdict: Callable[[Any], Seen],
    retry: frozenset[int] = frozenset(),
) -> tuple[dict[str, Seen], set[str]]:
    """Each future's answer as `verdict(result)`, DENIED, ABSENT or None (not known); and
    the names whose answer said "ask again"."""
    admin.wait(futures.values())
    seen: dict[str, Seen] = {}
    again: set[str] = set()
    for name, future in futures.items():
        if not future.done():
            continue
        try:
            seen[name] = verdict(future.result())
        except KafkaException as exc:
            code = _code(exc)
            if code in DENIALS:
                seen[name] = DENIED
            elif code == KafkaError.UNKNOWN_TOPIC_OR_PART:
                seen[name] = ABSENT
            elif code in retry:
                again.add(name)
            else:
                log.debug("access check: %s not answered: %s", name, exc)
    return seen, again


def preflight(kafka: Kafka, role: str, wanted: tuple[Grant, ...], *, timeout: float) -> None:
    conn = connection(kafka)
    started = time.monotonic()
    admin = _Admin(conn, started + timeout)
    # the cluster's authorized operations are only told to who may DESCRIBE it (not asked:
    # no process needs that right, and each refusal is an audit line on the broker)
    cluster = admin.client.describe_cluster(request_timeout=admin.left())
    if not admin.wait([cluster]) or cluster.exception() is not None:
        raise admin.unreachable()
    seen: dict[tuple[str, str], Seen] = {}

    names = sorted({n for g in wanted if g.resource == "topic" for n in g.probes})
    described = admin.client.describe_topics(
        TopicCollection(names), request_timeout=admin.left(), include_authorized_operations=True
    )
    answers, _ = _ask(admin, described, _operations)
    seen.update({("topic", n): v for n, v in answers.items()})
    listed = [v for v in answers.values() if isinstance(v, frozenset)]
    if listed and all(v == ALL_TOPIC_OPERATIONS for v in listed) and DENIED not in answers.values():
        return _done(role, started, "every operation allowed")  # no authorizer, or a super user
    if not listed and None in answers.values():
        return _done(role, started, "no operations reported")  # no authorizer answers (Tansu)

    creatable = {  # absent topics whose creation matters: a literal row's, a CREATE row's
        n for g in wanted if g.resource == "topic" and (not g.prefixed or "CREATE" in g.operations)
        for n in g.probes
    }  # fmt: skip
    absent = [n for n, v in answers.items() if v == ABSENT and n in creatable]
    if absent:
        tried = admin.client.create_topics(
            [NewTopic(n, 1, -1) for n in absent], validate_only=True, request_timeout=admin.left()
        )
        created, _ = _ask(admin, tried, lambda _: ALLOWED)
        seen.update({("create", n): created.get(n, ALLOWED) for n in absent})

    if any(g.resource == "cluster" and "DESCRIBE_CONFIGS" in g.operations for g in wanted):
        seen[("cluster", CLUSTER)] = _cluster_configs(admin, cluster.result())

    groups = sorted({n for g in wanted if g.resource == "group" for n in g.probes})
    while groups and time.monotonic() < admin.deadline:
        asked = admin.client.describe_consumer_groups(
            groups, request_timeout=admin.left(), include_authorized_operations=True
        )
        found, again = _ask(admin, asked, _operations, retry=COORDINATOR_BUSY)
        seen.update({("group", n): v for n, v in found.items()})
        groups = sorted(again)
        if groups:
            time.sleep(0.2)
    _raise_problems(principal(conn), problems(wanted, seen))
    _done(role, started, "every ACL of the role present")


def _cluster_configs(admin: _Admin, described: Any) -> Seen:
    """DESCRIBE_CONFIGS on the cluster, by describing one broker's configuration."""
    node = described.controller or (described.nodes or [None])[0]
    if node is None:
        return None
    resource = ConfigResource(ResourceType.BROKER, str(node.id))
    futures = admin.client.describe_configs([resource], request_timeout=admin.left())
    answer, _ = _ask(
        admin, {"broker": futures[resource]}, lambda _: frozenset({"DESCRIBE_CONFIGS"})
    )
    found = answer.get("broker")
    return frozenset() if found == DENIED else found


def _done(role: str, started: float, why: str) -> None:
    log.info("Kafka access of role %s checked in %.2f s: %s", role, time.monotonic() - started, why)


def _raise_problems(who: str, found: list[Missing]) -> None:
    """KafkaAccessDenied naming each missing ACL and the `kafka-acls.sh` lines that grant
    it; ConfigurationError when only topics are absent that the role may not create."""
    absent = sorted(m.absent for m in found if m.absent)
    lacking = [m for m in found if m.operations]
    text = []
    if lacking:
        needs = "; ".join(
            f"{', '.join(m.operations)} on {m.grant.target} ({m.grant.why})" for m in lacking
        )
        grantee = who if who.startswith("User:") else "<principal>"
        commands = [
            acl_command(replace(m.grant, operations=m.operations), grantee) for m in lacking
        ]
        text.append(
            f"{who} lacks ACLs its role needs: {needs}. An admin grants them (the "
            "role's whole list: deploy/kafka/ACLS.md):\n  " + "\n  ".join(commands)
        )
    if absent:
        text.append(
            f"topics {', '.join(absent)} do not exist and {who} may not create them: "
            "an admin creates the catalog's topics (`wedsync topics create` with the "
            "admin's KAFKA_SASL_* settings)"
        )
    if lacking:
        raise KafkaAccessDenied("\n".join(text))
    if absent:
        raise ConfigurationError("\n".join(text))
