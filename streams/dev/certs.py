"""A throwaway certificate authority and a TLS server certificate, made in-process with the
`cryptography` package: what `streams.dev.kraft` gives a SASL_SSL broker, and what tests use
to play a client that trusts another CA.

Files are PEM, as Kafka reads them with `ssl.keystore.type=PEM` / `ssl.truststore.type=PEM`
and librdkafka with `ssl.ca.location`: `ca.pem` (the CA certificate: the truststore and the
clients' CA file) and `<name>.keystore.pem` (the server's private key as unencrypted PKCS#8,
file mode 0600, then its certificate and the CA's). Unencrypted because Java 17, which Kafka
runs on, cannot read a PKCS#8 key encrypted with PBES2 (`PBES2 SecretKeyFactory not
available`), the only encryption `cryptography` writes for PKCS#8; Kafka 4 reads a PEM
keystore file without `ssl.key.password`.

Keys are EC P-256 (made in milliseconds); certificates live a day. Development and tests only:
the CA's private key stays in memory and is never written.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LIFETIME = dt.timedelta(days=1)


@dataclass(frozen=True)
class Authority:
    """A CA able to sign server certificates; `certificate_pem` is what clients trust."""

    name: str
    key: Any  # cryptography's EllipticCurvePrivateKey
    certificate: Any  # cryptography's x509.Certificate

    @property
    def certificate_pem(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding

        return bytes(self.certificate.public_bytes(Encoding.PEM))

    def write(self, path: Path) -> Path:
        """The CA certificate as a PEM file (a truststore, a client's ssl.ca.location)."""
        path.write_bytes(self.certificate_pem)
        return path

    def server_keystore(
        self,
        path: Path,
        *,
        hosts: tuple[str, ...] = ("localhost",),
        addresses: tuple[str, ...] = ("127.0.0.1",),
    ) -> Path:
        """A PEM keystore at `path` for a server known as `hosts` and `addresses` (subject
        alternative names): the private key, its certificate, this CA's."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            NoEncryption,
            PrivateFormat,
        )
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        names: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts]
        names += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + LIFETIME)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        path.touch(mode=0o600)
        path.write_bytes(pem + cert.public_bytes(Encoding.PEM) + self.certificate_pem)
        return path


def authority(name: str = "wedsync test CA") -> Authority:
    """A new self-signed CA called `name`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(name, key, cert)
