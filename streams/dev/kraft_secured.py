"""What makes a `streams.dev.kraft` node a secured one (`KafkaCluster(secured=True)`): its
TLS files, its listener and authorizer properties, its SCRAM users at format time and the log
of what the authorizer denied.

The main client listener (also the inter-broker one) is SASL_SSL with SCRAM-SHA-512 and
SCRAM-SHA-256; the broker's keystore and truststore are PEM files (`streams.dev.certs`: a CA
and a certificate for 127.0.0.1 and localhost). Two more client listeners carry the other
protocols a deployment may use: `SSL` with client certificates required (mutual TLS; the
principal is the certificate's CN, `User:<CN>`) and `SASL_PLAINTEXT` with PLAIN (the users
given at start, in the listener's JAAS line) and SCRAM. ACLs are enforced by
`StandardAuthorizer` with `allow.everyone.if.no.acl.found=false`; the admin is a super user.

The controller listener stays PLAINTEXT on 127.0.0.1: the broker's own requests to its
controller arrive there unauthenticated, as `User:ANONYMOUS`, which must therefore be a super
user too. Anything that can reach the controller port on this machine has every right on the
cluster; the port is not advertised to clients, and a production cluster puts its
controllers on an authenticated listener (SASL_SSL or mutual TLS) instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streams.dev.certs import Authority

SCRAM = ("SCRAM-SHA-512", "SCRAM-SHA-256")

LOG4J2_AUTHORIZER = """\
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <File name="file" fileName="{log}"><PatternLayout pattern="[%d] %p %m (%c)%n"/></File>
    <File name="acl" fileName="{acl}"><PatternLayout pattern="[%d] %m%n"/></File>
  </Appenders>
  <Loggers>
    <Logger name="kafka.authorizer.logger" level="INFO" additivity="false">
      <AppenderRef ref="acl"/>
    </Logger>
    <Root level="WARN"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
"""


def scram_safe(text: str) -> bool:
    """StorageTool's `--add-scram` value and the JAAS line take these without quoting."""
    return bool(text) and all(c.isalnum() or c in "-_" for c in text)


# listener name -> security protocol of the secured node's client listeners
LISTENERS = {"SASL_SSL": "SASL_SSL", "MTLS": "SSL", "SASLPLAIN": "SASL_PLAINTEXT"}


def make_tls(tls_dir: Path) -> Authority:
    """`ca.pem` (truststore: the CA of the broker's and the clients' certificates) and
    `broker.keystore.pem` in `tls_dir`; the CA, to sign client certificates with."""
    from streams.dev.certs import authority

    tls_dir.mkdir(parents=True, exist_ok=True)
    ca = authority("wedsync dev Kafka CA")
    ca.write(tls_dir / "ca.pem")
    ca.server_keystore(tls_dir / "broker.keystore.pem")
    return ca


def oauth_properties(jwks_url: str) -> dict[str, str]:
    """The OAUTH listener (SASL_SSL with OAUTHBEARER): tokens are JWTs checked against the
    issuer's keys at `jwks_url` (Kafka's OAuthBearerValidatorCallbackHandler), the principal
    their `sub`. The JVM must also allow the URL (`oauth_jvm_options`)."""
    from streams.dev.fakes.oidc import AUDIENCE, ISSUER

    login = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"
    handler = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
    return {
        "listener.name.oauth.sasl.enabled.mechanisms": "OAUTHBEARER",
        "listener.name.oauth.oauthbearer.sasl.jaas.config": login,
        "listener.name.oauth.oauthbearer.sasl.server.callback.handler.class": handler,
        "sasl.oauthbearer.jwks.endpoint.url": jwks_url,
        "sasl.oauthbearer.expected.audience": AUDIENCE,
        "sasl.oauthbearer.expected.issuer": ISSUER,
    }


def oauth_jvm_options(jwks_url: str) -> list[str]:
    """Kafka 4 reads only the JWKS and token URLs this system property allows."""
    return [f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={jwks_url}"]


def secured_properties(
    ports: dict[str, int], controller_port: int, tls_dir: Path, users: dict[str, str],
    admin: str,
) -> dict[str, str]:  # fmt: skip
    """server.properties entries over the PLAINTEXT defaults of `streams.dev.kraft`: one
    client listener per name of LISTENERS in `ports` (OAUTH too, when there);
    `users` (the admin's included) log in with PLAIN on SASLPLAIN."""
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{admin}" password="{users[admin]}";'
    )
    plain = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{admin}" password="{users[admin]}" '
        + " ".join(f'user_{name}="{password}"' for name, password in users.items())
        + ";"
    )
    protocols = {**LISTENERS, "OAUTH": "SASL_SSL"}
    clients = [f"{name}://127.0.0.1:{port}" for name, port in ports.items()]
    return {
        "listeners": ",".join([*clients, f"CONTROLLER://127.0.0.1:{controller_port}"]),
        "advertised.listeners": ",".join(clients),
        "inter.broker.listener.name": "SASL_SSL",
        "listener.security.protocol.map": ",".join(
            [
                *(f"{name}:{protocols[name]}" for name in ports),
                "CONTROLLER:PLAINTEXT",
            ]
        ),
        "sasl.enabled.mechanisms": ",".join(SCRAM),
        "sasl.mechanism.inter.broker.protocol": SCRAM[0],
        **{f"listener.name.sasl_ssl.{m.lower()}.sasl.jaas.config": jaas for m in SCRAM},
        "listener.name.saslplain.sasl.enabled.mechanisms": ",".join(["PLAIN", *SCRAM]),
        "listener.name.saslplain.plain.sasl.jaas.config": plain,
        **{f"listener.name.saslplain.{m.lower()}.sasl.jaas.config": jaas for m in SCRAM},
        "listener.name.mtls.ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]*).*$/$1/,DEFAULT",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(tls_dir / "broker.keystore.pem"),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls_dir / "ca.pem"),
        "ssl.endpoint.identification.algorithm": "https",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        # ANONYMOUS: the broker's own requests on the PLAINTEXT controller listener
        "super.users": f"User:{admin};User:ANONYMOUS",
    }


def scram_arguments(users: dict[str, str]) -> list[str]:
    """StorageTool format's `--add-scram` arguments: each user, both mechanisms."""
    return [
        arg
        for name, password in users.items()
        for mechanism in SCRAM
        for arg in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
    ]
