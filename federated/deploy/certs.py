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

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from privacy.errors import InputError
from privacy.tls import issue, new_ca, pem_certificate, pem_private_key
from privacy.tls import write_file as _write

__all__ = ["CertPaths", "NodeKey", "make_certs"]


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
    ca_key, ca_cert = new_ca(days)  # CA and server certificate: privacy.tls, as PSI's
    server_key, server_cert = issue(ca_key, ca_cert, hosts[0], hosts=list(hosts),
                                    server=True, days=days)
    _write(paths.ca_key, pem_private_key(ca_key), private=True)
    _write(paths.ca_cert, pem_certificate(ca_cert), private=False)
    _write(paths.server_key, pem_private_key(server_key), private=True)
    _write(paths.server_cert, pem_certificate(server_cert), private=False)
    for index, node in enumerate(paths.node_keys):
        private, public = _node_key_pair(index)
        _write(node.private_key, private, private=True)
        _write(node.public_key, public, private=False)
    return paths
