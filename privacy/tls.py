"""Mutual TLS for covault's own channels: test certificates and ``ssl`` contexts.

:func:`make_test_pki` writes a self-signed test CA, a server certificate for the hosts it
will be reached at, and one client certificate per name, all ECDSA P-256 signed with
SHA-256. :func:`server_context` and :func:`client_context` build the ``ssl`` contexts of
a mutually authenticated channel: TLS 1.2 or later, the server requires a client
certificate signed by its CA, the client checks the server's certificate against its CA
and the host name or IP address it connects to. PSI (:mod:`privacy.psi.net`) uses them;
the federated deployment's certificates (``covault fl certs``) are made with the same
:func:`new_ca` / :func:`issue`.

Warnings
--------
This is a *test* CA: in production certificates come from the bank's PKI. Private keys
are written unencrypted with mode 0600 (``ssl`` and Flower read them without a
passphrase); keep the folder private. A CA's holder can issue certificates every peer
trusting it accepts: give each partnership its own CA, or pin peers out of band.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from privacy.errors import InputError, KeyfileError

__all__ = [
    "CA_NAME",
    "TestPki",
    "new_ca",
    "issue",
    "san",
    "pem_private_key",
    "pem_certificate",
    "write_file",
    "make_test_pki",
    "server_context",
    "client_context",
    "peer_name",
]

CA_NAME = "covault test CA"


@dataclass(frozen=True)
class TestPki:
    """Where :func:`make_test_pki` wrote each file."""

    __test__ = False  # not a pytest test class

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    clients: tuple[tuple[Path, Path], ...]  # (certificate, key) per client name


def san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    """A subject alternative name per host: IP addresses as IP SANs, names as DNS SANs."""
    entries: list[x509.GeneralName] = []
    for host in hosts:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(entries)


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False,
    )


def new_ca(days: int, name: str = CA_NAME
           ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed CA (ECDSA P-256) valid for ``days``, able to sign end certificates
    only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, common_name: str, *,
    hosts: Sequence[str] = (), server: bool = False, client: bool = False, days: int = 30,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new key (ECDSA P-256) and its certificate signed by the CA.

    ``server`` and ``client`` set the extended key usages; ``hosts`` become subject
    alternative names (a server certificate needs one per name or address it is reached
    at).
    """
    if not server and not client:
        raise InputError("a certificate needs server or client usage")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), False)
    )
    if hosts:
        builder = builder.add_extension(san(hosts), critical=False)
    cert = (
        builder
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def pem_private_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    """``key`` as unencrypted PKCS#8 PEM."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def pem_certificate(cert: x509.Certificate) -> bytes:
    """``cert`` as PEM."""
    return cert.public_bytes(serialization.Encoding.PEM)


def write_file(path: Path, data: bytes, *, private: bool) -> None:
    """Write ``data`` to a temporary file created with its final mode (0600 if
    ``private``, else 0644), then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def make_test_pki(
    directory: str | os.PathLike[str],
    hosts: Sequence[str] = ("127.0.0.1", "localhost"),
    *,
    clients: Sequence[str] = ("client",),
    days: int = 30,
    force: bool = False,
) -> TestPki:
    """Write a test CA, a server certificate for ``hosts`` and a client certificate per
    name in ``clients``.

    Files: ``ca.crt``, ``ca.key``, ``server.pem``, ``server.key``, and ``NAME.pem``,
    ``NAME.key`` per client. Private keys are 0600, certificates 0644.

    Raises
    ------
    InputError
        No hosts, bad ``days`` or client names, or a file exists and ``force`` is false
        (then nothing is written).
    """
    if not hosts:
        raise InputError("make_test_pki: hosts must name at least one host or address")
    if days < 1:
        raise InputError(f"make_test_pki: days must be at least 1, got {days}")
    reserved = {"ca", "server"}
    for name in clients:
        if (not name or name in reserved or len(name) > 64
                or not all(c.isalnum() or c in "-_." for c in name) or name[0] == "."):
            raise InputError(f"client name {name!r}: use 1-64 letters, digits, '-', '_' or "
                             "'.', not 'ca' or 'server'")
    if len(set(clients)) != len(clients):
        raise InputError("client names must differ")
    root = Path(directory)
    pki = TestPki(root / "ca.crt", root / "ca.key", root / "server.pem", root / "server.key",
                  tuple((root / f"{n}.pem", root / f"{n}.key") for n in clients))
    files = [pki.ca_cert, pki.ca_key, pki.server_cert, pki.server_key,
             *[p for pair in pki.clients for p in pair]]
    existing = [str(p) for p in files if p.exists()]
    if existing and not force:
        raise InputError(f"{', '.join(existing)} exist(s); pass --force to replace")
    root.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = new_ca(days)
    write_file(pki.ca_key, pem_private_key(ca_key), private=True)
    write_file(pki.ca_cert, pem_certificate(ca_cert), private=False)
    key, cert = issue(ca_key, ca_cert, hosts[0], hosts=hosts, server=True, days=days)
    write_file(pki.server_key, pem_private_key(key), private=True)
    write_file(pki.server_cert, pem_certificate(cert), private=False)
    for name, (cert_path, key_path) in zip(clients, pki.clients, strict=True):
        key, cert = issue(ca_key, ca_cert, name, client=True, days=days)
        write_file(key_path, pem_private_key(key), private=True)
        write_file(cert_path, pem_certificate(cert), private=False)
    return pki


def _load(ctx: ssl.SSLContext, cert: str | os.PathLike[str], key: str | os.PathLike[str],
          ca: str | os.PathLike[str]) -> ssl.SSLContext:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    for what, path in (("certificate", cert), ("key", key), ("CA certificate", ca)):
        if not Path(path).is_file():
            raise KeyfileError(f"{path}: no such TLS {what} file")
    try:
        ctx.load_verify_locations(cafile=os.fspath(ca))
    except (ssl.SSLError, ValueError) as exc:
        raise KeyfileError(f"{ca}: not a readable CA certificate (PEM): {exc}") from None
    try:
        ctx.load_cert_chain(certfile=os.fspath(cert), keyfile=os.fspath(key))
    except (ssl.SSLError, ValueError) as exc:
        raise KeyfileError(f"{cert}, {key}: not a readable certificate and matching "
                           f"private key (PEM): {exc}") from None
    return ctx


def server_context(cert: str | os.PathLike[str], key: str | os.PathLike[str],
                   ca: str | os.PathLike[str]) -> ssl.SSLContext:
    """The server side of mutual TLS: presents ``cert``/``key``, requires a client
    certificate signed by ``ca``; TLS 1.2 or later.

    Raises
    ------
    KeyfileError
        A missing or unreadable file, or a key that does not match the certificate.
    """
    return _load(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), cert, key, ca)


def client_context(cert: str | os.PathLike[str], key: str | os.PathLike[str],
                   ca: str | os.PathLike[str]) -> ssl.SSLContext:
    """The client side of mutual TLS: presents ``cert``/``key``, checks the server's
    certificate against ``ca`` and its host name or IP address (pass the host as
    ``server_hostname``); TLS 1.2 or later.

    Raises
    ------
    KeyfileError
        A missing or unreadable file, or a key that does not match the certificate.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = True
    return _load(ctx, cert, key, ca)


def peer_name(sock: ssl.SSLSocket) -> str | None:
    """The common name of the peer's (verified) certificate, if any."""
    der = sock.getpeercert(binary_form=True)
    if not der:
        return None
    names = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(
        NameOID.COMMON_NAME)
    return str(names[0].value) if names else None
