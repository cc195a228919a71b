"""Private key files sealed under a key-encryption key, as keysets are.

HE private keys (:mod:`privacy.he.serial`) and Ed25519 signing keys
(:mod:`privacy.ledger.checkpoint`) are written as one small JSON envelope::

    {"format": "covault-sealed-key", "version": 1,
     "content": "he-private-key" | "ledger-signing-key",
     "public": {...},                  # what the key is, readable without the KEK
     "kek": {"kind": "scrypt" | "keyfile", "salt": ..., [n, r, p]},
     "sealed": base64(nonce || AES-256-GCM(private key file bytes))}

The KEK, its parameters and the AEAD are those of keyset files (:class:`privacy.keys.Kek`,
:meth:`~privacy.keys.Kek.seal`): scrypt N=2^17, r=8, p=1 from a passphrase, or HKDF over a
32-byte key file, a fresh salt per file, and the whole header (format, content, public
facts, KEK parameters) bound as associated data. A wrong KEK and any edited byte give the
same opaque error. The sealed bytes are the key's plain file format (a ``CVHE`` container,
a PKCS#8 PEM), so one reader serves both.

Examples
--------
>>> from privacy.keys import Kek
>>> kek = Kek.from_key_bytes(bytes(32))
>>> blob = seal(b"secret", kek, content="ledger-signing-key", public={"k": 1})
>>> unseal(blob, kek, content="ledger-signing-key", source="k.pem")
b'secret'

Warnings
--------
A plain (unsealed) private key is still read, with a :class:`PlaintextKeyWarning`; write
one only on an explicit request (``--unencrypted-key``). The ``public`` facts are
authenticated only once the file is opened with its KEK.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeAlias

from privacy.atomic import atomic_output
from privacy.errors import KeyfileError, KeysetError
from privacy.keys import DEFAULT_KEK_FILE_ENV, DEFAULT_PASSPHRASE_ENV, Kek

__all__ = [
    "FORMAT",
    "CONTENTS",
    "PlaintextKeyWarning",
    "KekSource",
    "is_sealed",
    "seal",
    "unseal",
    "read_public",
    "write_private",
]

FORMAT: Final = "covault-sealed-key"
VERSION: Final = 1
CONTENTS: Final = ("he-private-key", "ledger-signing-key")
#: A sealed file larger than this is refused before it is parsed (a CKKS secret context
#: with its public key is a few MiB).
MAX_BYTES: Final = 64 * 1024 * 1024
_FIELDS: Final = ("format", "version", "content", "public", "kek", "sealed")

#: A KEK, or a function giving one only when a file turns out to be sealed (the command
#: line resolves its options lazily, so reading a plain key needs no KEK).
KekSource: TypeAlias = Kek | Callable[[], Kek] | None


class PlaintextKeyWarning(UserWarning):
    """A private key was read from, or written to, a file that is not encrypted."""


def is_sealed(data: bytes) -> bool:
    """Whether ``data`` looks like a sealed key file (a JSON object naming the format);
    the plain formats start with ``CVHE`` or ``-----BEGIN``, never with ``{``."""
    return data.lstrip()[:1] == b"{" and FORMAT.encode() in data[:4096]


def seal(data: bytes, kek: Kek, *, content: str, public: Mapping[str, Any]) -> bytes:
    """The sealed file holding ``data`` (a private key file's bytes).

    ``public`` holds what a reader may see before opening it (a key id, a public key):
    JSON values, bound to the ciphertext.
    """
    if content not in CONTENTS:
        raise ValueError(f"unknown sealed content {content!r}")
    header: dict[str, Any] = {"format": FORMAT, "version": VERSION, "content": content,
                              "public": dict(public), "kek": kek._params()}
    doc = dict(header, sealed=kek.seal(data, header))
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _header(data: bytes, content: str, source: str) -> dict[str, Any]:
    if len(data) > MAX_BYTES:
        raise KeyfileError(f"{source}: sealed key file of {len(data):,} bytes is larger "
                           f"than {MAX_BYTES:,}")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise KeyfileError(f"{source}: not a readable sealed key file (invalid JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise KeyfileError(f"{source}: not a covault sealed key file")
    if doc.get("version") != VERSION:
        raise KeyfileError(f"{source}: sealed key file version {doc.get('version')!r} is "
                           f"not supported (expected {VERSION})")
    missing = [f for f in _FIELDS if f not in doc]
    if missing or set(doc) - set(_FIELDS):
        raise KeyfileError(f"{source}: malformed sealed key file (fields must be "
                           f"{', '.join(_FIELDS)})")
    if doc["content"] != content:
        raise KeyfileError(f"{source}: holds a {doc['content']!r}, expected a {content!r}")
    if not isinstance(doc["public"], dict):
        raise KeyfileError(f"{source}: malformed sealed key file ('public' is not an object)")
    return doc


def read_public(data: bytes, *, content: str, source: str) -> dict[str, Any]:
    """The ``public`` facts of a sealed file, without its KEK.

    Warnings
    --------
    Unverified until :func:`unseal` succeeds.
    """
    return dict(_header(data, content, source)["public"])


def _no_kek(source: str) -> KeyfileError:
    return KeyfileError(
        f"{source}: the private key is encrypted at rest; give its key-encryption key "
        f"(--kek-file, ${DEFAULT_KEK_FILE_ENV} or ${DEFAULT_PASSPHRASE_ENV})")


def unseal(data: bytes, kek: KekSource, *, content: str, source: str,
           warn: bool = True) -> bytes:
    """The private key file's bytes: opened with ``kek`` when sealed, as they are when
    plain (with a :class:`PlaintextKeyWarning` unless ``warn`` is false).

    Raises
    ------
    KeyfileError
        A sealed file without a KEK, of another content, malformed, opened with a wrong
        KEK, or altered (the last two opaquely).
    """
    if not is_sealed(data):
        if warn:
            warnings.warn(PlaintextKeyWarning(f"{source}: private key is not encrypted at "
                                              "rest"), stacklevel=2)
        return data
    doc = _header(data, content, source)
    if kek is None:
        raise _no_kek(source)
    try:
        key = kek if isinstance(kek, Kek) else kek()
    except KeyfileError:
        raise
    except KeysetError as exc:  # no KEK named (e.g. by the environment)
        raise KeyfileError(f"{source}: the private key is sealed under a key-encryption "
                           f"key, and none was given: {exc}") from None
    header = {k: v for k, v in doc.items() if k != "sealed"}
    return key.unseal(doc["sealed"], header, source=source, what="private key")


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a private key file (sealed or not) atomically with mode 0600."""
    with atomic_output(path, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(data)
