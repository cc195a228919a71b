"""Test certificates for a Flower SuperLink and authentication keys for SuperNodes.

:func:`make_certs` writes, into one directory:

========================  ==========================================================
``ca.crt``, ``ca.key``    a self-signed CA (ECDSA P-256); ``ca.crt`` is what every
                          SuperNode and the ``flwr`` CLI trust (``--root-certificates``,
                          ``root-certificates`` in ``config.toml``)
``server.pem``,           the SuperLink's TLS certificate and key, signed by the CA,
``server.key``            with a subject alternative name per host (IP SANs for
                          addresses): ``flower-superlink --ssl-ca-certfile ca.crt
                          --ssl-certfile server.pem --ssl-keyfile server.key``
``supernode-<i>.key``,    one ECDSA P-384 key pair per SuperNode, OpenSSH format, as
``supernode-<i>.pub``     ``flower-supernode --auth-supernode-private-key`` and
                          ``flwr supernode register <public key>`` read them
========================  ==========================================================

Private keys are written unencrypted with mode 0600.

Warnings
--------
This is a *test* CA. In production the coordinator's certificate comes from the
bank's PKI, and each bank generates its SuperNode key pair itself and sends only the
public key to the coordinator; a private key never leaves the bank that owns it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from privacy.errors import InputError

__all__ = ["CertPaths", "NodeKey", "make_certs"]

_CA_NAME = "covault test CA"


@dataclass(frozen=True)
class NodeKey:
    """One SuperNode's authentication key pair (OpenSSH format, NIST P-384)."""

    private_key: Path
    public_key: Path


@dataclass(frozen=True)
class CertPaths:
    """Where :func:`make_certs` wrote each file."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    node_keys: tuple[NodeKey, ...]


def _names(directory: Path, num_nodes: int) -> CertPaths:
    nodes = tuple(
        NodeKey(directory / f"supernode-{i}.key", directory / f"supernode-{i}.pub")
        for i in range(num_nodes)
    )
    return CertPaths(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        node_keys=nodes,
    )


def _all_files(paths: CertPaths) -> list[Path]:
    files = [paths.ca_cert, paths.ca_key, paths.server_cert, paths.server_key]
    for node in paths.node_keys:
        files += [node.private_key, node.public_key]
    return files


def _write(path: Path, data: bytes, *, private: bool) -> None:
    """Write ``data`` to a temporary file with its final mode, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for host in hosts:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(entries)


def _ca(days: int) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _CA_NAME)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _server(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, hosts: Sequence[str],
    days: int,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _node_key_pair(index: int) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, public + f" supernode-{index}\n".encode()


def make_certs(
    directory: str | os.PathLike[str],
    hosts: Sequence[str] = ("127.0.0.1", "localhost"),
    *,
    days: int = 30,
    num_nodes: int = 0,
    force: bool = False,
) -> CertPaths:
    """Write a test CA, a SuperLink certificate and ``num_nodes`` SuperNode key pairs.

    Parameters
    ----------
    directory:
        Where to write the files (created if missing).
    hosts:
        Names and addresses the SuperLink is reached at; the first is also the
        certificate's common name. Addresses become IP SANs, names DNS SANs.
    days:
        Validity of the CA and server certificates.
    num_nodes:
        How many SuperNode authentication key pairs to write.
    force:
        Overwrite existing files. Without it, an existing file is an error and nothing
        is written.

    Returns
    -------
    CertPaths
        The paths of everything written.

    Raises
    ------
    InputError
        If ``hosts`` is empty, ``days`` or ``num_nodes`` is out of range, or a file
        exists and ``force`` is false.

    Warnings
    --------
    The private keys are unencrypted (mode 0600): the Flower processes read them
    without a passphrase. Keep the directory private.
    """
    if not hosts:
        raise InputError("make_certs: hosts must name at least one host or address")
    if days < 1:
        raise InputError(f"make_certs: days must be at least 1, got {days}")
    if num_nodes < 0:
        raise InputError(f"make_certs: num_nodes must be >= 0, got {num_nodes}")
    root = Path(directory)
    paths = _names(root, num_nodes)
    existing = [str(p) for p in _all_files(paths) if p.exists()]
    if existing and not force:
        raise InputError(
            f"make_certs: {', '.join(existing)} already exist(s); pass force=True to replace"
        )
    root.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca(days)
    server_key, server_cert = _server(ca_key, ca_cert, list(hosts), days)
    _write(paths.ca_key, _pem_key(ca_key), private=True)
    _write(paths.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), private=False)
    _write(paths.server_key, _pem_key(server_key), private=True)
    _write(
        paths.server_cert, server_cert.public_bytes(serialization.Encoding.PEM), private=False
    )
    for index, node in enumerate(paths.node_keys):
        private, public = _node_key_pair(index)
        _write(node.private_key, private, private=True)
        _write(node.public_key, public, private=False)
    return paths
