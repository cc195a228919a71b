"""Pairwise secrets between the parties of a vertical run, through a relaying coordinator.

Each party makes an X25519 key for the run and publishes its public key; the pairwise
secret of two parties is ``HKDF(X25519(a, B), run, names)``. It keys

* the alignment tags: the guest tells a host which of its customers are in the
  intersection as ``HMAC(pair key, normalised id)``, so the coordinator relaying them
  learns only their number; and
* boxes (ChaCha20-Poly1305) for the hosts' shared mask seed, which the guest must not
  learn.

The coordinator is trusted to relay public keys faithfully (semi-honest model).
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from privacy.errors import FederationError

__all__ = ["new_key", "private_bytes", "public_of", "pair_key", "tags", "box", "unbox"]

_DOMAIN = b"covault/vfl/v1/"


def new_key() -> X25519PrivateKey:
    """A fresh X25519 key for this run."""
    return X25519PrivateKey.generate()


def private_bytes(key: X25519PrivateKey) -> bytes:
    """Raw private key (kept in the party's own state only)."""
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def public_of(raw_private: bytes) -> bytes:
    """The 32-byte public key of a raw private key."""
    return X25519PrivateKey.from_private_bytes(raw_private).public_key().public_bytes_raw()


def pair_key(raw_private: bytes, peer_public: bytes, *, run: str, me: str, peer: str) -> bytes:
    """The 32-byte secret this party shares with ``peer`` in run ``run``."""
    try:
        shared = X25519PrivateKey.from_private_bytes(raw_private).exchange(
            X25519PublicKey.from_public_bytes(peer_public))
    except ValueError:
        raise FederationError(f"party {peer!r}: its public key is invalid") from None
    lo, hi = sorted((me, peer))
    info = _DOMAIN + f"pair/{lo}/{hi}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=run.encode(), info=info).derive(shared)


def tags(key: bytes, ids: list[str]) -> bytes:
    """``HMAC-SHA256(key, id)`` truncated to 16 bytes, concatenated in ``ids`` order."""
    return b"".join(hmac.new(key, i.encode(), hashlib.sha256).digest()[:16] for i in ids)


def box(key: bytes, plaintext: bytes, *, label: str) -> bytes:
    """Encrypt for the holder of ``key``; returns ``nonce || ciphertext``."""
    nonce = os.urandom(12)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, _DOMAIN + label.encode())


def unbox(key: bytes, data: bytes, *, label: str, sender: str) -> bytes:
    """Decrypt a :func:`box`; raises :class:`FederationError` naming the sender."""
    from cryptography.exceptions import InvalidTag

    try:
        return ChaCha20Poly1305(key).decrypt(data[:12], data[12:], _DOMAIN + label.encode())
    except (InvalidTag, ValueError):
        raise FederationError(f"party {sender!r}: a sealed message did not "
                              "authenticate") from None
