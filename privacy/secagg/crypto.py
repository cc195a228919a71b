"""The primitives of secure aggregation, all from ``cryptography``; nothing new.

* key agreement: X25519 (RFC 7748);
* key derivation: HKDF-SHA256 (RFC 5869), salted with the session id (the SHA-256 of the
  roster), with an ``info`` string naming the purpose, the round and both client ids;
* share encryption: ChaCha20-Poly1305 (RFC 8439) with a random 96-bit nonce and
  associated data binding session, sender, receiver, label and the sender's public
  mask key for that label (so a receiver knows the key is the sender's own);
* mask expansion (the PRG): the ChaCha20 keystream under a 256-bit seed, read as
  little-endian ``uint64`` words; every seed is used for one vector only;
* commitment to a self-mask seed: SHA-256 over a domain string, the session, the owner,
  the label and the seed (the seed has 256 bits of entropy, so the hash hides it).
"""

from __future__ import annotations

import hashlib
import os
import struct

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from privacy.errors import SecAggError

__all__ = [
    "KEY_BYTES",
    "NONCE_BYTES",
    "TAG_BYTES",
    "SEED_BYTES",
    "agree",
    "public_bytes",
    "check_public_key",
    "pairwise_seed",
    "share_cipher",
    "seal",
    "open_box",
    "expand",
    "commit",
]

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
SEED_BYTES = 32
_DOMAIN = b"covault/secagg/v1/"
_ZERO_NONCE = bytes(16)
_IDS = struct.Struct(">QQ")
_AD = struct.Struct(">32sQQI32s")


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def public_bytes(key: X25519PrivateKey) -> bytes:
    """The 32-byte public key of ``key``."""
    return key.public_key().public_bytes_raw()


def agree(key: X25519PrivateKey, peer_public: bytes, *, peer: int) -> bytes:
    """X25519 shared secret with ``peer``'s public key.

    Raises
    ------
    SecAggError
        When the public key is malformed or of low order (an all-zero shared secret),
        naming the peer.
    """
    try:
        return key.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError:
        raise SecAggError(
            f"client {peer}: public key is invalid (low order or malformed)", sender=peer
        ) from None


def check_public_key(public: bytes, *, peer: int) -> None:
    """Reject a public key that cannot be used for key agreement, naming its owner."""
    agree(X25519PrivateKey.generate(), public, peer=peer)


def pairwise_seed(shared: bytes, session: bytes, round_no: int, u: int, v: int, *,
                  purpose: bytes = b"pairwise-mask") -> bytes:
    """The round-``round_no`` mask seed of the pair ``{u, v}`` from the X25519 secret of
    their mask keys for that round (``purpose`` separates the protocols: the one-exchange
    sums of :mod:`privacy.secagg.pairwise` use ``b"sum-mask"``)."""
    lo, hi = (u, v) if u < v else (v, u)
    info = _DOMAIN + purpose + struct.pack(">I", round_no) + _IDS.pack(lo, hi)
    return _hkdf(shared, session, info)


def share_cipher(shared: bytes, session: bytes, u: int, v: int) -> ChaCha20Poly1305:
    """The AEAD used for shares between ``u`` and ``v`` (one key for both directions)."""
    lo, hi = (u, v) if u < v else (v, u)
    return ChaCha20Poly1305(_hkdf(shared, session, _DOMAIN + b"share-key" + _IDS.pack(lo, hi)))


def _ad(session: bytes, sender: int, receiver: int, label: int, mask_key: bytes) -> bytes:
    return _DOMAIN + b"shares" + _AD.pack(session, sender, receiver, label, mask_key)


def seal(
    aead: ChaCha20Poly1305,
    plaintext: bytes,
    *,
    session: bytes,
    sender: int,
    receiver: int,
    label: int,
    mask_key: bytes,
) -> bytes:
    """Encrypt ``plaintext``; returns ``nonce || ciphertext || tag``."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + aead.encrypt(nonce, plaintext, _ad(session, sender, receiver, label, mask_key))


def open_box(
    aead: ChaCha20Poly1305,
    box: bytes,
    *,
    session: bytes,
    sender: int,
    receiver: int,
    label: int,
    mask_key: bytes,
) -> bytes:
    """Decrypt a box from :func:`seal`.

    Raises
    ------
    SecAggError
        When it does not authenticate (tampered, or not from ``sender`` for this
        receiver, session, label and mask key); the message names the sender only.
    """
    try:
        return aead.decrypt(
            box[:NONCE_BYTES], box[NONCE_BYTES:], _ad(session, sender, receiver, label, mask_key)
        )
    except InvalidTag:
        raise SecAggError(
            f"client {sender}: an encrypted share did not authenticate", sender=sender
        ) from None


def expand(seed: bytes, length: int) -> npt.NDArray[np.uint64]:
    """Expand a 32-byte seed into ``length`` pseudorandom ``uint64`` words (read-only)."""
    encryptor = Cipher(algorithms.ChaCha20(seed, _ZERO_NONCE), mode=None).encryptor()
    return np.frombuffer(encryptor.update(bytes(8 * length)), dtype="<u8")


def commit(seed: bytes, session: bytes, owner: int, label: int) -> bytes:
    """The SHA-256 commitment to ``owner``'s self-mask seed number ``label``."""
    return hashlib.sha256(
        _DOMAIN + b"seed-commitment" + session + struct.pack(">QI", owner, label) + seed
    ).digest()
