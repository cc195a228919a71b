"""Signed checkpoints of a ledger: Ed25519 note keys, signed notes, checkpoint notes.

A checkpoint is a signed tree head in the transparency-log *checkpoint* note format
(C2SP ``tlog-checkpoint`` over C2SP ``signed-note``): origin, tree size, base64 root and
time, then one Ed25519 signature line per signer. A party that keeps a checkpoint outside
the ledger can later prove the log still contains everything it contained then
(:meth:`privacy.ledger.Ledger.verify`).

Keys are Ed25519 (``cryptography``). Private key files (mode 0600) are PKCS#8 PEM, sealed
under a key-encryption key as keysets are (:mod:`privacy.sealed`, with the public key
readable) when saved with ``kek``, or password-encrypted PKCS#8 (``password``), or plain;
a plain one is read with a :class:`~privacy.sealed.PlaintextKeyWarning`. Public key files
are SubjectPublicKeyInfo PEM.

The public names are re-exported by :mod:`privacy.ledger`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeAlias

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from privacy.atomic import atomic_output, atomic_write_text
from privacy.errors import InputError, IntegrityError, KeyfileError, SerializationError
from privacy.keys import Kek
from privacy.ledger import merkle
from privacy.sealed import KekSource, is_sealed, read_public, seal, unseal

__all__ = [
    "Checkpoint",
    "NoteSignature",
    "StrPath",
    "PrivateKeySource",
    "PublicKeySource",
    "generate_signing_key",
    "save_signing_key",
    "save_public_key",
    "load_signing_key",
    "load_public_key",
    "raw_public_key",
    "note_key_id",
    "sign_note",
    "check_name",
    "coerce_checkpoint",
    "verify_with_any",
]

StrPath: TypeAlias = str | os.PathLike[str]
PrivateKeySource: TypeAlias = Ed25519PrivateKey | bytes | StrPath
PublicKeySource: TypeAlias = Ed25519PublicKey | Ed25519PrivateKey | bytes | StrPath

_sha256 = hashlib.sha256
SEALED_CONTENT = "ledger-signing-key"


def check_name(value: object, what: str) -> str:
    """Return ``value`` if it is a valid origin / key name, else raise :class:`InputError`.

    A name is 1-255 printable characters without spaces or ``+`` (signed-note rules).
    """
    if (not isinstance(value, str) or not value or len(value) > 255 or "+" in value
            or any(c.isspace() or not c.isprintable() for c in value)):
        raise InputError(f"{what} must be 1-255 printable characters without spaces or "
                         f"'+', got {value!r}")
    return value


# --------------------------------------------------------------------------- keys


def generate_signing_key() -> Ed25519PrivateKey:
    """Return a new Ed25519 checkpoint signing key."""
    return Ed25519PrivateKey.generate()


def save_signing_key(key: Ed25519PrivateKey, path: StrPath, *,
                     password: bytes | None = None, kek: Kek | None = None) -> None:
    """Write ``key`` as a private key file readable by its owner only (mode 0600).

    With ``kek``: a PKCS#8 PEM sealed under the key-encryption key (AES-256-GCM, scrypt or
    key-file KEK, as keysets; :mod:`privacy.sealed`). With ``password``: PKCS#8 PEM
    encrypted by ``cryptography`` (OpenSSL can read it). Not both.

    Warnings
    --------
    With neither, the key is stored unencrypted; protect the file accordingly.
    """
    if password and kek is not None:
        raise InputError("save_signing_key: give a password or a KEK, not both")
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password
        else serialization.NoEncryption())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            enc)
    if kek is not None:
        pem = seal(pem, kek, content=SEALED_CONTENT,
                   public={"ed25519": base64.b64encode(raw_public_key(key.public_key()))
                           .decode()})
    with atomic_output(path, "wb") as fh:
        os.fchmod(fh.fileno(), stat.S_IRUSR | stat.S_IWUSR)
        fh.write(pem)


def save_public_key(key: Ed25519PrivateKey | Ed25519PublicKey, path: StrPath) -> None:
    """Write the public half of ``key`` as a SubjectPublicKeyInfo PEM file (mode 0644)."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    pem = pub.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    with atomic_output(path, "wb") as fh:
        os.fchmod(fh.fileno(), 0o644)
        fh.write(pem)


def _read_key_file(source: StrPath) -> bytes:
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise KeyfileError(f"{source}: cannot read key file: {exc.strerror}") from None


def load_signing_key(source: PrivateKeySource, *, password: bytes | None = None,
                     kek: KekSource = None, warn: bool = True) -> Ed25519PrivateKey:
    """Return an Ed25519 private key from a key object, 32 raw bytes, PEM bytes, sealed
    bytes or a file.

    A sealed key (:func:`save_signing_key` with ``kek``) is opened with ``kek`` (a KEK or a
    function returning one). A plain (unencrypted) key file is read with a
    :class:`~privacy.sealed.PlaintextKeyWarning` unless ``warn`` is false.

    Raises
    ------
    KeyfileError
        Unreadable file, a sealed key without its KEK or with a wrong one, an altered sealed
        file, a wrong password, or not an Ed25519 private key.
    """
    if isinstance(source, Ed25519PrivateKey):
        return source
    where = "key bytes" if isinstance(source, bytes) else str(source)
    data = source if isinstance(source, bytes) else _read_key_file(source)
    if is_sealed(data):
        named = read_public(data, content=SEALED_CONTENT, source=where).get("ed25519")
        key = _parse_private(unseal(data, kek, content=SEALED_CONTENT, source=where),
                             None, where)
        if named != base64.b64encode(raw_public_key(key.public_key())).decode():
            raise KeyfileError(f"{where}: the sealed key is not the key its envelope names")
        return key
    if warn and not isinstance(source, bytes) and b"ENCRYPTED" not in data[:64]:
        import warnings

        from privacy.sealed import PlaintextKeyWarning

        warnings.warn(PlaintextKeyWarning(f"{where}: private key is not encrypted at rest"),
                      stacklevel=2)
    return _parse_private(data, password, where)


def _parse_private(data: bytes, password: bytes | None, where: str) -> Ed25519PrivateKey:
    if len(data) == 32:
        return Ed25519PrivateKey.from_private_bytes(data)
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm):  # the last: an unknown key type
        raise KeyfileError(f"{where}: not a readable PEM private key (or wrong password)"
                           ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyfileError(f"{where}: not an Ed25519 private key")
    return key


def load_public_key(source: PublicKeySource) -> Ed25519PublicKey:
    """Return an Ed25519 public key from a key object, 32 raw bytes, PEM bytes or a file.

    Raises
    ------
    KeyfileError
        Unreadable file or not an Ed25519 public key.
    """
    if isinstance(source, Ed25519PublicKey):
        return source
    if isinstance(source, Ed25519PrivateKey):
        return source.public_key()
    where = "key bytes" if isinstance(source, bytes) else str(source)
    data = source if isinstance(source, bytes) else _read_key_file(source)
    try:
        if len(data) == 32:
            return Ed25519PublicKey.from_public_bytes(data)
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):  # the last: an unknown key type
        raise KeyfileError(f"{where}: not a readable PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyfileError(f"{where}: not an Ed25519 public key")
    return key


def raw_public_key(pub: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def note_key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """Signed-note key id: ``SHA-256(name || "\\n" || 0x01 || public key)[:4]``."""
    return _sha256(name.encode() + b"\n\x01" + raw_public_key(public_key)).digest()[:4]


# --------------------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a signed note: key name, 4-byte key id, signature."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """The signature line: ``— <name> <base64(key id || signature)>`` and a newline."""
        return f"{_DASH} {self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"


def sign_note(text: str, signing_key: PrivateKeySource, name: str) -> NoteSignature:
    """Sign a note's text (C2SP signed-note, Ed25519) as the key called ``name``."""
    key = load_signing_key(signing_key)
    check_name(name, "key name")
    return NoteSignature(name, note_key_id(name, key.public_key()),
                         key.sign(text.encode("utf-8")))


_SIZE_RE = re.compile(r"0|[1-9][0-9]{0,19}")
_DASH = "\u2014"


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head in the transparency-log checkpoint note format.

    Text form (each line ends with a newline)::

        <origin>
        <size>
        <base64 root>
        time <ISO-8601 UTC>

        — <key name> <base64(key id (4 bytes) || Ed25519 signature)>

    The signature covers the four body lines (origin, size, root, time), as in the
    C2SP signed-note and tlog-checkpoint specifications, so standard note verifiers can
    check it with the key's ``name+keyid+key`` form.
    """

    origin: str
    size: int
    root: bytes
    time: str
    signatures: tuple[NoteSignature, ...] = ()

    def body(self) -> str:
        """The signed text: origin, size, base64 root and time lines."""
        return (f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"
                f"time {self.time}\n")

    def to_text(self) -> str:
        """The whole note: body, a blank line, one line per signature."""
        return self.body() + "\n" + "".join(s.line() for s in self.signatures)

    @classmethod
    def from_text(cls, text: str | bytes) -> Checkpoint:
        """Parse a checkpoint note. Raises :class:`SerializationError` when malformed."""
        def bad(what: str) -> SerializationError:
            return SerializationError(f"malformed checkpoint: {what}")

        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise bad("not UTF-8") from None
        if len(text) > 65536 or any(c < " " and c != "\n" for c in text):
            raise bad("too long or contains control characters")
        body, sep, sigs = text.partition("\n\n")
        lines = body.split("\n")
        if not sep or not sigs.endswith("\n") or len(lines) != 4:
            raise bad("expected 4 body lines, a blank line and signature lines")
        origin, size, root_b64, time_line = lines
        if not _SIZE_RE.fullmatch(size) or not time_line.startswith("time "):
            raise bad("bad size or time line")
        try:
            root = base64.b64decode(root_b64, validate=True)
            datetime.fromisoformat(time_line[5:].replace("Z", "+00:00"))
        except ValueError:
            raise bad("bad root or time") from None
        if len(root) != merkle.HASH_SIZE or base64.b64encode(root).decode() != root_b64:
            raise bad("root is not a base64 SHA-256 hash")
        signatures = []
        for line in sigs[:-1].split("\n"):
            parts = line.split(" ")
            if len(parts) != 3 or parts[0] != _DASH or not parts[1]:
                raise bad("bad signature line")
            try:
                blob = base64.b64decode(parts[2], validate=True)
            except ValueError:
                raise bad("bad signature encoding") from None
            if len(blob) < 5:
                raise bad("signature too short")
            signatures.append(NoteSignature(parts[1], blob[:4], blob[4:]))
        try:
            check_name(origin, "origin")
        except InputError:
            raise bad("bad origin line") from None
        return cls(origin, int(size), root, time_line[5:], tuple(signatures))

    def verify(self, public_key: PublicKeySource, *, key_name: str | None = None) -> None:
        """Check that a signature line by ``public_key`` (and ``key_name``) signs the body.

        Raises
        ------
        IntegrityError
            No signature by this key, or the signature does not match the body.
        """
        pub = load_public_key(public_key)
        message = self.body().encode("utf-8")
        for sig in self.signatures:
            if key_name is not None and sig.name != key_name:
                continue
            if sig.key_id != note_key_id(sig.name, pub):
                continue
            try:
                pub.verify(sig.signature, message)
            except InvalidSignature:
                raise IntegrityError("checkpoint signature is invalid") from None
            return
        raise IntegrityError("checkpoint is not signed by this key")

    def save(self, path: StrPath) -> None:
        """Write the note to ``path`` atomically."""
        atomic_write_text(path, self.to_text())

    @classmethod
    def load(cls, path: StrPath) -> Checkpoint:
        """Read a checkpoint note from a file."""
        try:
            return cls.from_text(Path(path).read_bytes())
        except OSError as exc:
            raise InputError(f"{path}: cannot read checkpoint: {exc.strerror}") from None


def coerce_checkpoint(value: Checkpoint | StrPath) -> Checkpoint:
    """A checkpoint from an object, note text (contains a newline) or a file path."""
    if isinstance(value, Checkpoint):
        return value
    if isinstance(value, str) and "\n" in value:
        return Checkpoint.from_text(value)
    return Checkpoint.load(value)


def verify_with_any(cp: Checkpoint, keys: list[Ed25519PublicKey], failure: IntegrityError
                    ) -> None:
    """Return if any of ``keys`` signed ``cp``; raise ``failure`` otherwise."""
    for key in keys:
        with contextlib.suppress(IntegrityError):
            cp.verify(key)
            return
    raise failure
