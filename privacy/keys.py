"""Keysets: named templates, 32-bit key ids, one primary key, rotation, envelope-encrypted files.

A :class:`Keyset` holds one or more keys of one template (``AES256_SIV``, ...). New
tokens and ciphertexts use the primary key; every token carries the id of the key that
made it, so old tokens keep decrypting after :meth:`Keyset.rotate`.

On disk a keyset is a JSON file. Its metadata (template, key ids, status, creation
time, primary) is readable; the key material is encrypted with AES-256-GCM under a
key-encryption key (KEK) with the whole metadata bound as associated data, so neither
the material nor the metadata can be changed without the KEK. The KEK comes from a
passphrase (scrypt) or from a 32-byte key file (:class:`Kek`).

Examples
--------
>>> ks = Keyset.create("AES256_SIV")
>>> new_id = ks.rotate()
>>> ks.primary_id == new_id
True

Warnings
--------
A keyset refuses to be pickled and its ``repr`` shows no secrets. The only way to
serialise it is :meth:`Keyset.save` / :meth:`Keyset.to_json` with a KEK.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import stat
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final, NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from privacy.atomic import atomic_output
from privacy.errors import KeyfileError, KeyNotFoundError, KeysetError

__all__ = ["TEMPLATES", "Template", "KeyInfo", "Keyset", "Kek", "InsecureKeyFileWarning",
           "format_key_id"]

FILE_FORMAT: Final = "covault-keyset"
FILE_VERSION: Final = 1
DEFAULT_PASSPHRASE_ENV: Final = "COVAULT_PASSPHRASE"
DEFAULT_KEK_FILE_ENV: Final = "COVAULT_KEK_FILE"
#: scrypt cost of newly written passphrase-protected files (N = 2^17, r = 8, p = 1: 128 MiB,
#: about 0.3 s). Files keep the parameters they were written with, so older files
#: (N = 2^15) still open.
_SCRYPT_N: Final = 2**17
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1
#: The most a file header may ask for, checked before anything is derived (the header
#: is only authenticated by the key derived from it): N = 2^20, r = 8, p = 1, i.e. at most
#: 1 GiB of memory (128 * N * r bytes) and the work of N * r * p = 2^23 block mixes.
SCRYPT_MAX_N: Final = 2**20
SCRYPT_MAX_R: Final = 8
SCRYPT_MAX_P: Final = 1
_SCRYPT_MIN_N: Final = 2**14


@dataclass(frozen=True)
class Template:
    """A named key template: the primitive and the size of its key material."""

    name: str
    primitive: str  # "aead" | "daead" | "prf" | "fpe"
    key_size: int
    description: str


TEMPLATES: Final[Mapping[str, Template]] = {
    t.name: t
    for t in (
        Template("AES256_GCM", "aead", 32, "randomized AEAD, AES-256-GCM"),
        Template("SM4_GCM", "aead", 16, "randomized AEAD, SM4-GCM (GB/T 32907)"),
        Template("AES256_SIV", "daead", 64, "deterministic AEAD, AES-SIV (RFC 5297), 2x256-bit"),
        Template("HMAC_SHA256", "prf", 32, "keyed pseudonyms, HMAC-SHA256"),
        Template("HMAC_SM3", "prf", 32, "keyed pseudonyms, HMAC-SM3 (GB/T 32905)"),
        Template("FF1_AES256", "fpe", 32, "format-preserving encryption, FF1 over AES-256"),
    )
}

KEY_STATUSES: Final = ("enabled", "disabled")


def format_key_id(key_id: int) -> str:
    """Render a key id the way every covault message and table shows it (``0x1a2b3c4d``)."""
    return f"0x{key_id:08x}"


@dataclass(frozen=True)
class KeyInfo:
    """Public facts about one key of a keyset (never its material)."""

    key_id: int
    status: str
    created: str
    primary: bool


class _Key:
    __slots__ = ("material", "status", "created")

    def __init__(self, material: bytes, status: str, created: str) -> None:
        self.material = material
        self.status = status
        self.created = created


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


class Keyset:
    """Keys of one template with key ids and a primary key.

    Create with :meth:`create`, open with :meth:`load`. Ciphers in
    :mod:`privacy.fields` and :mod:`privacy.fpe` take a keyset, not raw key bytes.

    Warnings
    --------
    Pickling raises :class:`TypeError`; use :meth:`save` with a :class:`Kek`.
    """

    __slots__ = ("_template", "_keys", "_primary")

    def __init__(self, template: str, keys: dict[int, _Key], primary: int) -> None:
        if template not in TEMPLATES:
            raise KeysetError(
                f"unknown keyset template {template!r}; expected one of {', '.join(TEMPLATES)}"
            )
        if primary not in keys or keys[primary].status != "enabled":
            raise KeysetError(f"primary key {format_key_id(primary)} is missing or disabled")
        self._template = TEMPLATES[template]
        self._keys = keys
        self._primary = primary

    # -- construction ------------------------------------------------------------------
    @classmethod
    def create(cls, template: str) -> Keyset:
        """A new keyset with one fresh primary key of ``template`` (e.g. ``"AES256_SIV"``)."""
        if template not in TEMPLATES:
            raise KeysetError(
                f"unknown keyset template {template!r}; expected one of {', '.join(TEMPLATES)}"
            )
        key_id = _new_key_id(set())
        key = _Key(secrets.token_bytes(TEMPLATES[template].key_size), "enabled", _now())
        return cls(template, {key_id: key}, key_id)

    # -- facts ------------------------------------------------------------------------
    @property
    def template(self) -> str:
        """The template name, e.g. ``"AES256_SIV"``."""
        return self._template.name

    @property
    def primitive(self) -> str:
        """``"aead"``, ``"daead"``, ``"prf"`` or ``"fpe"``."""
        return self._template.primitive

    @property
    def primary_id(self) -> int:
        """Key id of the primary key (used for everything new)."""
        return self._primary

    @property
    def key_ids(self) -> list[int]:
        """All key ids, in the order they were added."""
        return list(self._keys)

    def info(self) -> list[KeyInfo]:
        """Public facts about every key: id, status, creation time, whether primary."""
        return [
            KeyInfo(kid, k.status, k.created, kid == self._primary) for kid, k in self._keys.items()
        ]

    # -- lifecycle --------------------------------------------------------------------
    def rotate(self) -> int:
        """Add a fresh key and make it the primary; older keys still decrypt.

        Returns
        -------
        int
            The new primary key id.
        """
        key_id = _new_key_id(set(self._keys))
        self._keys[key_id] = _Key(
            secrets.token_bytes(self._template.key_size), "enabled", _now()
        )
        self._primary = key_id
        return key_id

    def disable(self, key_id: int) -> None:
        """Disable a key: tokens made with it no longer decrypt. The primary cannot be
        disabled (rotate first)."""
        self._require(key_id, enabled_only=False)
        if key_id == self._primary:
            raise KeysetError(
                f"key {format_key_id(key_id)} is the primary key; rotate before disabling it"
            )
        self._keys[key_id].status = "disabled"

    def enable(self, key_id: int) -> None:
        """Re-enable a disabled key."""
        self._require(key_id, enabled_only=False)
        self._keys[key_id].status = "enabled"

    # -- hazardous access (for privacy.fields / privacy.fpe) -----------------------------
    def _require(self, key_id: int, *, enabled_only: bool = True) -> _Key:
        key = self._keys.get(key_id)
        if key is None:
            raise KeyNotFoundError(
                f"key id {format_key_id(key_id)} is not in this {self.template} keyset "
                f"(it holds {', '.join(format_key_id(k) for k in self._keys)})"
            )
        if enabled_only and key.status != "enabled":
            raise KeyNotFoundError(f"key id {format_key_id(key_id)} is disabled in this keyset")
        return key

    def key_material(self, key_id: int | None = None) -> bytes:
        """Raw material of ``key_id`` (default: the primary). For covault's ciphers only.

        Warnings
        --------
        Hazardous: never log, print or store the result.
        """
        return self._require(self._primary if key_id is None else key_id).material

    def require_primitive(self, *primitives: str, user: str) -> None:
        """Raise a clear :class:`KeysetError` unless this keyset's primitive is one of
        ``primitives``; ``user`` names the class asking (for the message)."""
        if self.primitive not in primitives:
            fitting = [t.name for t in TEMPLATES.values() if t.primitive in primitives]
            raise KeysetError(
                f"{user} needs a keyset of template {' or '.join(fitting)}, "
                f"not {self.template}"
            )

    # -- safety -----------------------------------------------------------------------
    def __repr__(self) -> str:
        return (
            f"Keyset(template={self.template!r}, primary={format_key_id(self._primary)}, "
            f"keys={len(self._keys)})"
        )

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "a Keyset refuses to be pickled; save it with Keyset.save(path, kek), "
            "which encrypts the key material"
        )

    def __copy__(self) -> NoReturn:
        raise TypeError("a Keyset cannot be copied; load it again from its file")

    def __deepcopy__(self, memo: object) -> NoReturn:
        raise TypeError("a Keyset cannot be copied; load it again from its file")

    # -- files ------------------------------------------------------------------------
    def to_json(self, kek: Kek) -> str:
        """Serialise with the key material encrypted under ``kek``."""
        header: dict[str, Any] = {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "template": self.template,
            "primary_key_id": self._primary,
            "keys": [
                {"key_id": kid, "status": k.status, "created": k.created}
                for kid, k in self._keys.items()
            ],
            "kek": kek._params(),
        }
        material = json.dumps(
            {str(kid): base64.b64encode(k.material).decode() for kid, k in self._keys.items()}
        ).encode()
        doc = dict(header, encrypted_keys=kek.seal(material, header))
        return json.dumps(doc, indent=2) + "\n"

    def save(self, path: str | os.PathLike[str], kek: Kek) -> None:
        """Write the keyset file atomically (mode 0600)."""
        text = self.to_json(kek)
        with atomic_output(path, "w") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(text)

    @classmethod
    def from_json(cls, text: str, kek: Kek, *, source: str = "<keyset>") -> Keyset:
        """Open a keyset document; ``source`` names it in error messages."""
        doc = _parse_document(text, source)
        header = {k: v for k, v in doc.items() if k != "encrypted_keys"}
        material = kek.unseal(doc["encrypted_keys"], header, source=source, what="keyset")
        raw = json.loads(material)
        keys = {
            int(entry["key_id"]): _Key(
                base64.b64decode(raw[str(entry["key_id"])]), entry["status"], entry["created"]
            )
            for entry in doc["keys"]
        }
        return cls(doc["template"], keys, int(doc["primary_key_id"]))

    @classmethod
    def load(cls, path: str | os.PathLike[str], kek: Kek) -> Keyset:
        """Read a keyset file written by :meth:`save`."""
        p = Path(path)
        return cls.from_json(_keyset_text(p), kek, source=str(p))

    @staticmethod
    def read_info(path: str | os.PathLike[str]) -> tuple[str, list[KeyInfo]]:
        """Template and key facts from a keyset file without opening its key material.

        Warnings
        --------
        Unverified: only :meth:`load` with the KEK proves the metadata was not altered.
        """
        p = Path(path)
        doc = _parse_document(_keyset_text(p), str(p))
        primary = int(doc["primary_key_id"])
        return doc["template"], [
            KeyInfo(int(e["key_id"]), e["status"], e["created"], int(e["key_id"]) == primary)
            for e in doc["keys"]
        ]


def _new_key_id(taken: set[int]) -> int:
    while True:
        key_id = secrets.randbits(32)
        if key_id and key_id not in taken:
            return key_id


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _keyset_text(p: Path) -> str:
    """A keyset file's text (:class:`KeyfileError` when missing or not UTF-8)."""
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyfileError(f"{p}: no such keyset file") from None
    except UnicodeDecodeError:
        raise KeyfileError(f"{p}: not a keyset file (not UTF-8 text)") from None


def _parse_document(text: str, source: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeyfileError(
            f"{source}:{exc.lineno}:{exc.colno}: not a keyset file (invalid JSON: {exc.msg})"
        ) from None
    except (ValueError, RecursionError):  # an integer of > 4,300 digits; nesting too deep
        raise KeyfileError(f"{source}: not a keyset file (an integer of too many digits "
                           "or JSON nested too deeply)") from None
    if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
        raise KeyfileError(f"{source}: not a covault keyset file (no 'format': '{FILE_FORMAT}')")
    if doc.get("version") != FILE_VERSION:
        raise KeyfileError(
            f"{source}: keyset file version {doc.get('version')!r} is not supported "
            f"(expected {FILE_VERSION})"
        )
    for field in ("template", "primary_key_id", "keys", "kek", "encrypted_keys"):
        if field not in doc:
            raise KeyfileError(f"{source}: keyset file is missing field {field!r}")
    if not isinstance(doc["template"], str) or doc["template"] not in TEMPLATES:
        raise KeyfileError(f"{source}: unknown template {doc['template']!r:.80}")
    if not _is_key_id(doc["primary_key_id"]):
        raise KeyfileError(f"{source}: 'primary_key_id' must be an integer from 1 to 2^32-1")
    keys = doc["keys"]
    if not isinstance(keys, list) or not keys:
        raise KeyfileError(f"{source}: 'keys' must be a non-empty list")
    for i, entry in enumerate(keys):
        if not isinstance(entry, dict) or not {"key_id", "status", "created"} <= set(entry):
            raise KeyfileError(f"{source}: keys[{i}] needs key_id, status and created")
        if not isinstance(entry["status"], str) or entry["status"] not in KEY_STATUSES:
            raise KeyfileError(f"{source}: keys[{i}] has unknown status {entry['status']!r:.80}")
        if not _is_key_id(entry["key_id"]) or not isinstance(entry["created"], str):
            raise KeyfileError(f"{source}: keys[{i}] needs an integer key_id from 1 to "
                               "2^32-1 and a text 'created'")
    if not isinstance(doc["kek"], dict) or not isinstance(doc["encrypted_keys"], str):
        raise KeyfileError(f"{source}: 'kek' must be an object and 'encrypted_keys' text")
    return doc


def _is_key_id(value: object) -> bool:
    return type(value) is int and 0 < value < 2**32


class InsecureKeyFileWarning(UserWarning):
    """A key-encryption key file is readable or writable by other users."""


class Kek:
    """A key-encryption key for keyset files: from a passphrase (scrypt) or a key file.

    Examples
    --------
    >>> kek = Kek.from_passphrase("correct horse battery staple")

    Warnings
    --------
    Its ``repr`` shows only the kind. Passphrases should come from the environment
    (:meth:`from_env`), never from a command-line argument.
    """

    __slots__ = ("_kind", "_secret")

    def __init__(self, kind: str, secret: bytes) -> None:
        self._kind = kind
        self._secret = secret

    @property
    def kind(self) -> str:
        """``"scrypt"`` (from a passphrase) or ``"keyfile"`` (32 key bytes)."""
        return self._kind

    @classmethod
    def from_passphrase(cls, passphrase: str) -> Kek:
        """A KEK derived with scrypt and a per-file random salt.

        New files are written with N=2^17, r=8, p=1; a file is opened with the
        parameters stored in it, up to N=2^20, r=8, p=1 (1 GiB of memory).
        """
        if not passphrase:
            raise KeysetError("the passphrase is empty")
        return cls("scrypt", passphrase.encode("utf-8"))

    @classmethod
    def from_key_bytes(cls, key: bytes) -> Kek:
        """A KEK from 32 random bytes (HKDF-expanded per file)."""
        if len(key) != 32:
            raise KeysetError(f"a KEK must be 32 bytes, got {len(key)}")
        return cls("keyfile", bytes(key))

    @classmethod
    def from_key_file(cls, path: str | os.PathLike[str]) -> Kek:
        """Read a 32-byte KEK: raw bytes, 64 hex digits, or base64 of 32 bytes.

        A file other users may read or write (POSIX mode bits for group or others) gives
        an :class:`InsecureKeyFileWarning`: whoever reads it opens every file under it."""
        p = Path(path)
        try:
            data = p.read_bytes()
            mode = p.stat().st_mode
        except FileNotFoundError:
            raise KeyfileError(f"{p}: no such KEK file") from None
        if os.name == "posix" and stat.S_ISREG(mode) and mode & 0o077:
            warnings.warn(f"{p}: KEK file is open to other users (mode "
                          f"{stat.S_IMODE(mode):04o}); restrict it: chmod 600 {p}",
                          InsecureKeyFileWarning, stacklevel=2)
        if len(data) == 32:
            return cls.from_key_bytes(data)
        text = data.strip()
        for decode in (bytes.fromhex, base64.b64decode):
            try:
                key = decode(text.decode("ascii"))
            except (ValueError, UnicodeDecodeError, binascii.Error):
                continue
            if len(key) == 32:
                return cls.from_key_bytes(key)
        raise KeyfileError(
            f"{p}: a KEK file must hold 32 bytes (raw, 64 hex digits or base64), "
            f"found {len(data)} bytes"
        )

    @staticmethod
    def generate_key_file(path: str | os.PathLike[str]) -> None:
        """Write a new random KEK file (64 hex digits, mode 0600)."""
        with atomic_output(path, "w") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(secrets.token_hex(32) + "\n")

    @classmethod
    def from_env(
        cls,
        passphrase_var: str = DEFAULT_PASSPHRASE_ENV,
        key_file_var: str = DEFAULT_KEK_FILE_ENV,
    ) -> Kek:
        """The KEK named by the environment: a key file path in ``COVAULT_KEK_FILE`` or a
        passphrase in ``COVAULT_PASSPHRASE``."""
        key_file = os.environ.get(key_file_var)
        if key_file:
            return cls.from_key_file(key_file)
        passphrase = os.environ.get(passphrase_var)
        if passphrase:
            return cls.from_passphrase(passphrase)
        empty = [v for v in (passphrase_var, key_file_var) if os.environ.get(v) == ""]
        raise KeysetError(
            f"no key-encryption key: set {passphrase_var} to a passphrase or "
            f"{key_file_var} to a 32-byte key file"
            + (f" ({' and '.join(empty)} {'is' if len(empty) == 1 else 'are'} set but empty)"
               if empty else "")
        )

    def __repr__(self) -> str:
        return f"Kek(kind={self._kind!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Kek refuses to be pickled")

    def _params(self) -> dict[str, Any]:
        salt = base64.b64encode(secrets.token_bytes(16)).decode()
        if self._kind == "scrypt":
            return {"kind": "scrypt", "salt": salt, "n": _SCRYPT_N, "r": _SCRYPT_R, "p": _SCRYPT_P}
        return {"kind": "keyfile", "salt": salt}

    # -- sealing: the one AEAD of every file covault encrypts under a KEK -----------------
    def seal(self, data: bytes, header: Mapping[str, Any]) -> str:
        """Encrypt ``data`` under the key this KEK derives for ``header["kek"]`` (made by
        :meth:`_params`), with the whole ``header`` (canonical JSON) as associated data.

        Returns base64 of ``nonce (12 bytes) || AES-256-GCM ciphertext and tag``. Keyset
        files and sealed private key files (:mod:`privacy.sealed`) both use it.
        """
        wrapping_key = self._derive(header["kek"])
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(wrapping_key).encrypt(nonce, bytes(data), _canonical(header))
        return base64.b64encode(nonce + sealed).decode()

    def unseal(self, blob: object, header: Mapping[str, Any], *, source: str,
               what: str = "file") -> bytes:
        """Open what :meth:`seal` made; ``source`` and ``what`` (``"keyset"``, ...) name
        the file in errors.

        Raises
        ------
        KeyfileError
            Another kind of KEK, malformed or excessive KEK parameters, or - opaquely - a
            wrong KEK or any change to the header or the ciphertext.
        """
        wrapping_key = self._derive(header.get("kek"), source, what=f"{what} file")
        try:
            if not isinstance(blob, str):
                raise TypeError
            raw = base64.b64decode(blob, validate=True)
            return AESGCM(wrapping_key).decrypt(raw[:12], raw[12:], _canonical(header))
        except (InvalidTag, ValueError, binascii.Error, TypeError):
            raise KeyfileError(
                f"{source}: cannot open {what}: wrong passphrase or key-encryption key, "
                "or the file was altered"
            ) from None

    def _derive(self, params: Any, source: str = "<keyset>", *,
                what: str = "keyset file") -> bytes:
        if not isinstance(params, dict) or params.get("kind") != self._kind:
            kind = params.get("kind") if isinstance(params, dict) else None
            raise KeyfileError(
                f"{source}: this {what} is protected by a {kind!r} KEK, but a "
                f"{self._kind!r} KEK was given"
            )
        try:
            salt = base64.b64decode(params["salt"], validate=True)
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise KeyfileError(f"{source}: {what} has a malformed KEK salt") from None
        if self._kind == "scrypt":
            n, r, p = _scrypt_params(params, source, what)
            return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(self._secret)
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=salt, info=b"covault keyset KEK v1"
        ).derive(self._secret)


def _scrypt_params(params: Mapping[str, Any], source: str,
                   what: str = "keyset file") -> tuple[int, int, int]:
    """The scrypt ``(N, r, p)`` of a file header, refused before any work when malformed
    or above :data:`SCRYPT_MAX_N`, :data:`SCRYPT_MAX_R`, :data:`SCRYPT_MAX_P`.

    The header is authenticated only by the key derived from it, so whoever can write the
    file chooses these numbers: unchecked, ``N=2^20, r=32`` made every reader allocate
    4 GiB before it could tell the file was forged.
    """
    values = [params.get(k) for k in ("n", "r", "p")]
    n, r, p = (v if type(v) is int else -1 for v in values)
    if -1 in (n, r, p):
        raise KeyfileError(f"{source}: {what} has malformed scrypt parameters "
                           "(n, r and p must be integers)")
    if n < _SCRYPT_MIN_N or n & (n - 1) or r < 1 or p < 1:
        raise KeyfileError(f"{source}: {what} has invalid scrypt parameters "
                           f"N={n}, r={r}, p={p} (N must be a power of 2 from 2^14, "
                           "r and p at least 1)")
    if n > SCRYPT_MAX_N or r > SCRYPT_MAX_R or p > SCRYPT_MAX_P:
        mib = 128 * n * r // 2**20
        raise KeyfileError(
            f"{source}: {what} asks for scrypt N={n}, r={r}, p={p} ({mib:,} MiB of "
            f"memory); covault derives keys with at most N=2^20, r={SCRYPT_MAX_R}, "
            f"p={SCRYPT_MAX_P} (1 GiB) and refuses this file before deriving anything"
        )
    return n, r, p
