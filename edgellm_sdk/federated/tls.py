"""Certificates for the SuperLink's TLS, made with ``cryptography`` (no openssl program needed).

``make_certificates(dir, hosts)`` writes ``ca.crt`` (a fresh EC P-256 CA), ``server.pem`` (the
SuperLink's certificate, signed by it, for ``hosts``: DNS names and IP addresses) and
``server.key``. Devices get ``ca.crt`` only (``--root-certificates``); keep ``server.key`` and the
CA key on the server (the CA key is not written: make a new set to add a host). For a fleet,
prefer your own PKI; this is for a quick start and for the tests.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from ..errors import MissingDependency


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path

    @classmethod
    def in_dir(cls, directory: str | Path) -> TlsFiles:
        d = Path(directory)
        return cls(d / "ca.crt", d / "server.pem", d / "server.key")

    def missing(self) -> list[Path]:
        return [p for p in (self.ca, self.cert, self.key) if not p.is_file()]


def san_entries(hosts: list[str]):
    from cryptography import x509

    entries: list[x509.GeneralName] = []
    for host in hosts:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host))
    return entries


def make_certificates(directory: str | Path, hosts: list[str] | None = None, *, days: int = 30) -> TlsFiles:
    """A CA and a server certificate for ``hosts`` and loopback (localhost, 127.0.0.1, ::1)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as e:
        raise MissingDependency("cryptography", "federated") from e
    hosts = list(dict.fromkeys([*(hosts or []), "localhost", "127.0.0.1", "::1"]))  # + loopback: flwr run
    files = TlsFiles.in_dir(directory)
    files.ca.parent.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    start, end = now - dt.timedelta(minutes=5), now + dt.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edgellm federated CA")])
    usage = dict.fromkeys(
        ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement", "encipher_only"), False
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, decipher_only=False, **usage),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(san_entries(hosts)), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files.ca.write_bytes(ca.public_bytes(pem))
    files.cert.write_bytes(cert.public_bytes(pem))
    files.key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    files.key.chmod(0o600)
    return files
