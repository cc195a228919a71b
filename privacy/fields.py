"""Field-level encryption: randomized AEAD, deterministic AES-SIV, keyed HMAC tokens.

Three recipes over a :class:`~privacy.keys.Keyset`:

=======================  ===========================  =========  ==========  ======
class                    keyset templates             same in,   reversible  prefix
                                                      same out
=======================  ===========================  =========  ==========  ======
:class:`FieldCipher`     ``AES256_GCM``, ``SM4_GCM``  no         yes         ``enc:``
:class:`DeterministicCipher` ``AES256_SIV``           yes        yes         ``det:``
:class:`Tokenizer`       ``HMAC_SHA256``, ``HMAC_SM3`` yes       no          ``tok:``
=======================  ===========================  =========  ==========  ======

Every token is ``prefix + base64url(version || key_id || body)`` (unpadded): one
version byte (``0x01``), the 4-byte big-endian id of the key that made it, then the
scheme's bytes. The *context* (e.g. ``"cif.customers.id_no"``) is bound into every
token: as associated data for the two ciphers, through an HKDF-derived per-context
key for the tokenizer, so a token from one column never matches or decrypts in
another.

Each class has a batch form over Arrow (``encrypt_many``; nulls stay null) and the
reverse where one exists (``decrypt_many``).

Warnings
--------
Deterministic tokens (``det:``, ``tok:``) reveal which rows hold equal values; that is
what makes them joinable. Use :class:`FieldCipher` where equality must stay hidden.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Callable
from typing import Any, Final

import numpy as np
import pyarrow as pa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from privacy.columns import (
    as_string_array,
    assemble,
    b64url_decode_rows,
    b64url_encode_rows,
    length_groups,
)
from privacy.errors import DecryptionError, InputError
from privacy.keys import Keyset, format_key_id
from privacy.siv import BatchSIV

__all__ = [
    "FieldCipher",
    "DeterministicCipher",
    "Tokenizer",
    "TOKEN_VERSION",
    "token_key_id",
    "metadata_mac",
    "verify_metadata_mac",
]

TOKEN_VERSION: Final = 0x01
_HEADER_LEN: Final = 5
_NONCE_LEN: Final = 12
_TAG_LEN: Final = 16
#: Entries a cipher object caches: key schedules (one per key of its keyset) and, for
#: :class:`Tokenizer`, per-(key, context) keys. Nothing derived from key material is
#: cached at module level.
_CACHE_SIZE: Final = 64
_CONTEXT_KEYS: Final = 256


def _header(key_id: int) -> bytes:
    return bytes([TOKEN_VERSION]) + key_id.to_bytes(4, "big")


def _as_bytes(value: str | bytes, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise InputError(f"{what} takes str or bytes, not {type(value).__name__}")


def _context_bytes(context: str) -> bytes:
    if not isinstance(context, str):
        raise InputError(f"context must be a str such as 'db.table.column', not {context!r}")
    return context.encode("utf-8")


def _encode(prefix: str, raw: bytes) -> str:
    return prefix + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(prefix: str, token: str, minimum: int) -> tuple[int, bytes]:
    """Split a text token into (key_id, body); every malformation is a DecryptionError."""
    if not isinstance(token, str) or not token.startswith(prefix):
        raise DecryptionError(f"not a {prefix!r} token")
    text = token[len(prefix) :]
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise DecryptionError() from None
    if _encode(prefix, raw) != token or len(raw) < _HEADER_LEN + minimum:
        raise DecryptionError()
    if raw[0] != TOKEN_VERSION:
        raise DecryptionError("unsupported token version")
    return int.from_bytes(raw[1:5], "big"), raw[5:]


def token_key_id(token: str) -> int:
    """The key id a ``enc:``/``det:``/``tok:`` token was made with."""
    prefix = token[:4]
    if prefix not in ("enc:", "det:", "tok:"):
        raise DecryptionError("not a covault token")
    return _decode(prefix, token, 0)[0]


class _DerivedKeys:
    """Objects derived from key material (cipher instances, per-context keys), cached on
    the cipher object that made them, at most ``size`` entries.

    Per object, not per module: the derived keys live exactly as long as the cipher (which
    holds the keyset anyway), and :meth:`clear` drops them at once. Entries are keyed by
    the key material as :meth:`Keyset.key_material` returns it, so a key disabled after
    its first use is still refused.
    """

    __slots__ = ("_items", "_size")

    def __init__(self, size: int) -> None:
        self._items: dict[tuple[Any, ...], Any] = {}
        self._size = size

    def get(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        value = self._items.get(key)
        if value is None:
            if len(self._items) >= self._size:
                self._items.clear()
            value = self._items[key] = make()
        return value

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class _TokenCodec:
    """Shared batch plumbing: text tokens <-> (key id, body) matrices, per length group."""

    prefix: str
    _derived: _DerivedKeys

    def clear_cache(self) -> None:
        """Drop the key schedules and derived keys this object cached (it rebuilds them
        on next use); they are also dropped with the object."""
        self._derived.clear()

    def _encode_column(
        self, arr: pa.Array, seal: Callable[[np.ndarray], np.ndarray], key_id: int
    ) -> pa.Array:
        header = np.frombuffer(_header(key_id), dtype=np.uint8)
        groups = []
        for idx, mat in length_groups(arr):
            body = seal(mat)
            raw = np.empty((body.shape[0], _HEADER_LEN + body.shape[1]), dtype=np.uint8)
            raw[:, :_HEADER_LEN] = header
            raw[:, _HEADER_LEN:] = body
            groups.append((idx, b64url_encode_rows(raw)))
        return assemble(len(arr), groups, prefix=self.prefix.encode())

    def _decode_column(
        self, tokens: Any
    ) -> tuple[pa.Array, list[tuple[np.ndarray, int, np.ndarray]]]:
        """Return (array, [(row_idx, key_id, body_matrix)]) or raise DecryptionError."""
        arr = as_string_array(tokens)
        plen = len(self.prefix)
        pre = np.frombuffer(self.prefix.encode(), dtype=np.uint8)
        out: list[tuple[np.ndarray, int, np.ndarray]] = []
        for idx, mat in length_groups(arr):
            bad = np.ones(idx.size, dtype=bool)
            if mat.shape[1] > plen:
                raw, ok = b64url_decode_rows(np.ascontiguousarray(mat[:, plen:]))
                ok &= np.all(mat[:, :plen] == pre, axis=1)
                if raw.shape[1] > _HEADER_LEN:
                    ok &= raw[:, 0] == TOKEN_VERSION
                    bad = ~ok
            if bad.any():
                raise DecryptionError(f"decryption failed for row {int(idx[np.argmax(bad)])}")
            key_ids = raw[:, 1:5].copy().view(">u4").reshape(-1).astype(np.int64)
            for kid in np.unique(key_ids):
                sel = key_ids == kid
                out.append((idx[sel], int(kid), raw[sel, _HEADER_LEN:]))
        return arr, out


class _ReversibleCodec(_TokenCodec):
    """A token scheme whose key holders can recover the value."""

    def decrypt_bytes(self, token: str, context: str) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def decrypt(self, token: str, context: str) -> str:
        """Decrypt a token to text; :class:`DecryptionError` if it does not authenticate
        under ``context`` or is not UTF-8 (use :meth:`decrypt_bytes` for binary values)."""
        return _utf8(self.decrypt_bytes(token, context))


class FieldCipher(_ReversibleCodec):
    """Randomized authenticated encryption of field values (AES-256-GCM or SM4-GCM).

    The same value encrypts differently each time; the context is bound as associated
    data, so a token only decrypts with the context it was made for.

    Parameters
    ----------
    keyset:
        A keyset of template ``AES256_GCM`` or ``SM4_GCM``.

    Examples
    --------
    >>> from privacy.keys import Keyset
    >>> fc = FieldCipher(Keyset.create("AES256_GCM"))
    >>> fc.decrypt(fc.encrypt("110105194912310021", context="cif.id_no"), context="cif.id_no")
    '110105194912310021'
    """

    prefix = "enc:"

    def __init__(self, keyset: Keyset) -> None:
        keyset.require_primitive("aead", user="FieldCipher")
        self._keyset = keyset
        self._sm4 = keyset.template == "SM4_GCM"
        self._derived = _DerivedKeys(_CACHE_SIZE)

    def _aesgcm(self, key: bytes) -> AESGCM:
        aead: AESGCM = self._derived.get((key,), lambda: AESGCM(key))
        return aead

    def _seal(self, key_id: int, nonce: bytes, plain: bytes, aad: bytes) -> bytes:
        key = self._keyset.key_material(key_id)
        if not self._sm4:
            return self._aesgcm(key).encrypt(nonce, plain, aad)
        enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(aad)
        return enc.update(plain) + enc.finalize() + enc.tag

    def _open(self, key_id: int, body: bytes, aad: bytes) -> bytes:
        key = self._keyset.key_material(key_id)
        nonce, sealed = body[:_NONCE_LEN], body[_NONCE_LEN:]
        try:
            if self._sm4:
                dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, sealed[-_TAG_LEN:])).decryptor()
                dec.authenticate_additional_data(aad)
                return dec.update(sealed[:-_TAG_LEN]) + dec.finalize()
            return self._aesgcm(key).decrypt(nonce, sealed, aad)
        except (InvalidTag, ValueError):
            raise DecryptionError() from None

    def encrypt(self, value: str | bytes, context: str) -> str:
        """Encrypt one value under the primary key; returns an ``enc:`` token."""
        key_id = self._keyset.primary_id
        header = _header(key_id)
        nonce = os.urandom(_NONCE_LEN)
        aad = header + _context_bytes(context)
        sealed = self._seal(key_id, nonce, _as_bytes(value, "encrypt"), aad)
        return _encode(self.prefix, header + nonce + sealed)

    def decrypt_bytes(self, token: str, context: str) -> bytes:
        """Decrypt an ``enc:`` token to bytes; :class:`DecryptionError` if it does not
        authenticate under ``context``."""
        key_id, body = _decode(self.prefix, token, _NONCE_LEN + _TAG_LEN)
        return self._open(key_id, body, _header(key_id) + _context_bytes(context))

    def encrypt_many(self, values: Any, context: str) -> pa.Array:
        """Encrypt a column (Arrow array, Series or sequence); nulls stay null."""
        arr = as_string_array(values)
        ctx = _context_bytes(context)
        key_id = self._keyset.primary_id
        header = _header(key_id)
        aad = header + ctx

        def seal(mat: np.ndarray) -> np.ndarray:
            # Fresh random nonces for the rows of this group: never reused across groups.
            nonces = os.urandom(_NONCE_LEN * mat.shape[0])
            sealed = []
            for i, row in enumerate(_rows(mat)):
                nonce = nonces[i * _NONCE_LEN : (i + 1) * _NONCE_LEN]
                sealed.append(nonce + self._seal(key_id, nonce, row, aad))
            return np.frombuffer(b"".join(sealed), dtype=np.uint8).reshape(mat.shape[0], -1)

        return self._encode_column(arr, seal, key_id)

    def decrypt_many(self, tokens: Any, context: str) -> pa.Array:
        """Decrypt a column of ``enc:`` tokens; nulls stay null."""
        ctx = _context_bytes(context)
        arr, groups = self._decode_column(tokens)
        result: list[Any] = [None] * len(arr)
        for idx, key_id, body in groups:
            aad = _header(key_id) + ctx
            for i, row in zip(idx.tolist(), _rows(body), strict=True):
                result[i] = _utf8(self._open(key_id, row, aad))
        return pa.array(result, type=pa.string())


class DeterministicCipher(_ReversibleCodec):
    """Deterministic authenticated encryption (AES-SIV, RFC 5297) for joinable tokens.

    The same value and context give the same ``det:`` token, so parties holding the
    same keyset can join on tokens; key holders can decrypt them.

    Parameters
    ----------
    keyset:
        A keyset of template ``AES256_SIV``.

    Warnings
    --------
    Equal values give equal tokens: frequencies stay visible.
    """

    prefix = "det:"

    def __init__(self, keyset: Keyset) -> None:
        keyset.require_primitive("daead", user="DeterministicCipher")
        self._keyset = keyset
        self._derived = _DerivedKeys(_CACHE_SIZE)

    def _batch_siv(self, key: bytes) -> BatchSIV:
        siv: BatchSIV = self._derived.get((key,), lambda: BatchSIV(key))
        return siv

    def encrypt(self, value: str | bytes, context: str) -> str:
        """Encrypt one value under the primary key; returns a ``det:`` token."""
        key_id = self._keyset.primary_id
        header = _header(key_id)
        sealed = AESSIV(self._keyset.key_material(key_id)).encrypt(
            _as_bytes(value, "encrypt"), [header, _context_bytes(context)]
        )
        return _encode(self.prefix, header + sealed)

    def decrypt_bytes(self, token: str, context: str) -> bytes:
        """Decrypt a ``det:`` token to bytes."""
        key_id, body = _decode(self.prefix, token, 16)
        try:
            return AESSIV(self._keyset.key_material(key_id)).decrypt(
                body, [_header(key_id), _context_bytes(context)]
            )
        except InvalidTag:
            raise DecryptionError() from None

    def encrypt_many(self, values: Any, context: str) -> pa.Array:
        """Encrypt a column; each group of equal-length values is one vector pass."""
        arr = as_string_array(values)
        ctx = _context_bytes(context)
        key_id = self._keyset.primary_id
        siv = self._batch_siv(self._keyset.key_material(key_id))
        header = _header(key_id)
        return self._encode_column(arr, lambda mat: siv.encrypt(mat, [header, ctx]), key_id)

    def decrypt_many(self, tokens: Any, context: str) -> pa.Array:
        """Decrypt a column of ``det:`` tokens; nulls stay null."""
        ctx = _context_bytes(context)
        arr, groups = self._decode_column(tokens)
        plain_groups = []
        for idx, key_id, body in groups:
            siv = self._batch_siv(self._keyset.key_material(key_id))
            plain, ok = siv.decrypt(np.ascontiguousarray(body), [_header(key_id), ctx])
            if not ok.all():
                raise DecryptionError(f"decryption failed for row {int(idx[np.argmin(ok)])}")
            plain_groups.append((idx, plain))
        out = assemble(len(arr), plain_groups, binary=True)
        try:
            return out.cast(pa.string())
        except pa.ArrowInvalid:
            raise DecryptionError("a decrypted value is not UTF-8 text") from None


class Tokenizer(_TokenCodec):
    """Keyed pseudonyms: HMAC-SHA256 (or HMAC-SM3) under a per-context key.

    The per-context key is derived with HKDF from the keyset's key and the context, so
    the same value gives unrelated tokens in different columns. Not reversible.

    Parameters
    ----------
    keyset:
        A keyset of template ``HMAC_SHA256`` or ``HMAC_SM3``.
    """

    prefix = "tok:"

    def __init__(self, keyset: Keyset) -> None:
        keyset.require_primitive("prf", user="Tokenizer")
        self._keyset = keyset
        self._sm3 = keyset.template == "HMAC_SM3"
        self._derived = _DerivedKeys(_CONTEXT_KEYS)

    def _context_key(self, key_id: int, context: str) -> bytes:
        material = self._keyset.key_material(key_id)
        key: bytes = self._derived.get(
            (material, context), lambda: _derive_context_key(material, context, self._sm3))
        return key

    def _mac(self, key: bytes, data: bytes) -> bytes:
        if self._sm3:
            h = crypto_hmac.HMAC(key, hashes.SM3())
            h.update(data)
            return h.finalize()
        return hmac.digest(key, data, "sha256")

    def encrypt(self, value: str | bytes, context: str, *, key_id: int | None = None) -> str:
        """Pseudonymise one value; ``key_id`` picks a non-primary key (for re-keying)."""
        kid = self._keyset.primary_id if key_id is None else key_id
        mac = self._mac(self._context_key(kid, context), _as_bytes(value, "encrypt"))
        return _encode(self.prefix, _header(kid) + mac)

    def verify(self, value: str | bytes, token: str, context: str) -> None:
        """Raise :class:`DecryptionError` unless ``token`` is the pseudonym of ``value``."""
        key_id, body = _decode(self.prefix, token, 32)
        expected = self._mac(self._context_key(key_id, context), _as_bytes(value, "verify"))
        if not hmac.compare_digest(expected, body):
            raise DecryptionError("token does not match the value")

    def encrypt_many(self, values: Any, context: str, *, key_id: int | None = None) -> pa.Array:
        """Pseudonymise a column; nulls stay null."""
        arr = as_string_array(values)
        kid = self._keyset.primary_id if key_id is None else key_id
        key = self._context_key(kid, context)
        if self._sm3:
            def seal(mat: np.ndarray) -> np.ndarray:
                macs = b"".join(self._mac(key, row) for row in _rows(mat))
                return np.frombuffer(macs, dtype=np.uint8).reshape(mat.shape[0], 32)
        else:
            base = hmac.new(key, digestmod="sha256")

            def seal(mat: np.ndarray) -> np.ndarray:
                out = bytearray()
                for row in _rows(mat):
                    h = base.copy()
                    h.update(row)
                    out += h.digest()
                return np.frombuffer(bytes(out), dtype=np.uint8).reshape(mat.shape[0], 32)

        return self._encode_column(arr, seal, kid)


def _rows(mat: np.ndarray) -> list[bytes]:
    width = mat.shape[1]
    if width == 0:
        return [b""] * mat.shape[0]
    buf = np.ascontiguousarray(mat).tobytes()
    return [buf[i : i + width] for i in range(0, len(buf), width)]


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptionError("decrypted value is not UTF-8 text; use decrypt_bytes") from None


def _derive_context_key(material: bytes, context: str, sm3: bool) -> bytes:
    algorithm: hashes.HashAlgorithm = hashes.SM3() if sm3 else hashes.SHA256()
    return HKDF(
        algorithm=algorithm, length=32, salt=b"covault tokenizer v1", info=_context_bytes(context)
    ).derive(material)


_MAC_PREFIX: Final = "mac:"


def _metadata_key(keyset: Keyset, key_id: int, purpose: str) -> bytes:
    info = keyset.template.encode("ascii") + b"\x00" + _context_bytes(purpose)
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"covault metadata mac v1", info=info
    ).derive(keyset.key_material(key_id))


def metadata_mac(keyset: Keyset, data: bytes, purpose: str, *, key_id: int | None = None) -> str:
    """Authenticate ``data`` (canonical bytes of some metadata) under ``keyset``.

    HMAC-SHA256 under a key derived with HKDF-SHA256 from the key material, the
    template and ``purpose`` (e.g. ``"covault.plan"``), so the tag is unrelated to
    every other use of the key. Works for every template. Returns
    ``mac:`` + base64url(version ‖ key id ‖ 32-byte tag), like the other tokens, so a
    tag made before a rotation still verifies.
    """
    kid = keyset.primary_id if key_id is None else key_id
    tag = hmac.digest(_metadata_key(keyset, kid, purpose), data, "sha256")
    return _encode(_MAC_PREFIX, _header(kid) + tag)


def verify_metadata_mac(keyset: Keyset, data: bytes, tag: str, purpose: str) -> int:
    """Check a tag made by :func:`metadata_mac`; returns the key id it names.

    Raises
    ------
    KeyNotFoundError
        The tag names a key this keyset does not hold (or has disabled).
    DecryptionError
        The tag is malformed or does not match ``data`` (deliberately opaque).
    """
    key_id, body = _decode(_MAC_PREFIX, tag, 32)
    if len(body) != 32:
        raise DecryptionError("malformed authentication tag")
    expected = hmac.digest(_metadata_key(keyset, key_id, purpose), data, "sha256")
    if not hmac.compare_digest(expected, body):
        raise DecryptionError("authentication tag does not match")
    return key_id


def describe_token(token: str) -> str:
    """A one-line description of a token (kind and key id) for people."""
    kinds = {"enc:": "randomized AEAD", "det:": "deterministic AES-SIV", "tok:": "HMAC pseudonym"}
    return f"{kinds.get(token[:4], 'unknown')} token, key {format_key_id(token_key_id(token))}"
