"""What the secured-cluster tests share: a process's environment for a connection (the
variables the README documents), and a SCRAM user per role holding exactly the ACLs
`streams.kafka.access` lists for it, made through the cluster's admin user."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from confluent_kafka.admin import AclBinding, AdminClient
from streams.dev.kraft import KafkaCluster
from streams.errors import ConfigurationError
from streams.kafka.access import acl_bindings, check_access
from streams.kafka.connection import KafkaConnection, client_config


def kafka_env(conn: KafkaConnection, password_file: Path | None = None) -> dict[str, str]:
    """KAFKA_* variables for `conn`; the password in a file (KAFKA_SASL_PASSWORD_FILE) when
    `password_file` is given, as a mounted secret."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": conn.bootstrap_servers,
        "KAFKA_SECURITY_PROTOCOL": conn.security_protocol,
    }
    if conn.sasl_mechanism and conn.sasl_username and conn.sasl_password:
        env["KAFKA_SASL_MECHANISM"] = conn.sasl_mechanism
        env["KAFKA_SASL_USERNAME"] = conn.sasl_username
        if password_file is None:
            env["KAFKA_SASL_PASSWORD"] = conn.sasl_password.get_secret_value()
        else:
            password_file.write_text(conn.sasl_password.get_secret_value() + "\n")
            env["KAFKA_SASL_PASSWORD_FILE"] = str(password_file)
    if conn.sasl_mechanism == "OAUTHBEARER" and conn.sasl_oauthbearer_client_secret:
        env["KAFKA_SASL_MECHANISM"] = "OAUTHBEARER"
        env["KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL"] = str(
            conn.sasl_oauthbearer_token_endpoint_url
        )
        env["KAFKA_SASL_OAUTHBEARER_CLIENT_ID"] = str(conn.sasl_oauthbearer_client_id)
        secret = conn.sasl_oauthbearer_client_secret.get_secret_value()
        env["KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET"] = secret
        if conn.sasl_oauthbearer_scope:
            env["KAFKA_SASL_OAUTHBEARER_SCOPE"] = conn.sasl_oauthbearer_scope
    if conn.ssl_ca_location:
        env["KAFKA_SSL_CA_LOCATION"] = str(conn.ssl_ca_location)
    if conn.ssl_certificate_location and conn.ssl_key_location:
        env["KAFKA_SSL_CERTIFICATE_LOCATION"] = str(conn.ssl_certificate_location)
        env["KAFKA_SSL_KEY_LOCATION"] = str(conn.ssl_key_location)
    return env


def user_name(role: str, suffix: str = "") -> str:
    return "wedsync-" + role.replace(":", "-") + (f"-{suffix}" if suffix else "")


def grant(cluster: KafkaCluster, bindings: list[AclBinding]) -> None:
    admin = AdminClient(client_config(cluster.connection()))
    for future in admin.create_acls(bindings).values():
        future.result(timeout=15)


def role_user(
    cluster: KafkaCluster,
    role: str,
    app_id: str,
    *,
    leave_out: int | None = None,
    suffix: str = "",
) -> tuple[str, str]:
    """A new SCRAM user with `role`'s ACLs (all but binding number `leave_out`), created as
    the admin; (name, password)."""
    name, password = user_name(role, suffix), secrets.token_hex(12)
    cluster.add_user(name, password)
    bindings = acl_bindings(role, name, app_id)
    if leave_out is not None:
        del bindings[leave_out]
    grant(cluster, bindings)
    return name, password


def wait_allowed(conn: KafkaConnection, role: str, app_id: str, timeout: float = 15.0) -> None:
    """Until the preflight passes (ACLs reach the authorizer through the metadata log)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            check_access(conn, role, app_id)
            return
        except ConfigurationError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
