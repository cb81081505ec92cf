"""A throwaway certificate authority, and a server and a client certificate it signed, for TLS tests on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertificateFiles", "make_certificates"]


@dataclass(frozen=True)
class CertificateFiles:
    """PEM files: ``ca_file`` for clients to trust; ``cert_file`` and ``key_file`` for 127.0.0.1 and localhost;
    ``client_cert_file`` and ``client_key_file`` for a client that authenticates with a certificate."""

    ca_file: str
    cert_file: str
    key_file: str
    client_cert_file: str
    client_key_file: str

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(folder: Path) -> CertificateFiles:
    """Write a CA, and a server and a client certificate it signed, into ``folder`` (P-256 keys: milliseconds)."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    # Key usages and key identifiers, not just CA=true: OpenSSL's strict mode (Python 3.13's default)
    # refuses certificates without them.
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Telemetra Test CA"))
        .issuer_name(_name("Telemetra Test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key, server_cert = _leaf(ca_key, ca_cert, ca_ski, "localhost", ExtendedKeyUsageOID.SERVER_AUTH, now)
    client_key, client_cert = _leaf(ca_key, ca_cert, ca_ski, "telemetra-client", ExtendedKeyUsageOID.CLIENT_AUTH, now)
    paths = CertificateFiles(
        ca_file=str(folder / "ca.pem"),
        cert_file=str(folder / "server.pem"),
        key_file=str(folder / "server.key"),
        client_cert_file=str(folder / "client.pem"),
        client_key_file=str(folder / "client.key"),
    )
    Path(paths.ca_file).write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    for cert, key, cert_file, key_file in (
        (server_cert, server_key, paths.cert_file, paths.key_file),
        (client_cert, client_key, paths.client_cert_file, paths.client_key_file),
    ):
        Path(cert_file).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        Path(key_file).write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return paths


def _leaf(ca_key, ca_cert, ca_ski, common_name: str, usage, now: dt.datetime):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert
