"""Versioned, pickle-free files for HE keys, contexts and ciphertext vectors.

Layout (all integers big-endian)::

    b"CVHE" | version u8 | kind u8 | scheme u8 | key id (32 bytes) | nfields u16
    nfields x ( name_len u8 | name (ASCII) | data_len u64 | data )
    SHA-256 of everything above (32 bytes)

The key id (*fingerprint*) is a SHA-256 over a canonical encoding of *all* the key's
public parameters: for Paillier ``n``, the DJN base ``h_s`` and the exponent length
(:func:`privacy.he.paillier_keys.fingerprint_of`); for TenSEAL the parameter set, the
plain modulus, the layout's bounds and the whole public context
(:func:`privacy.he.ckks.context_fingerprint`). Every load recomputes it from the
parameters in the file and refuses a file whose stored id differs, naming the file; the
public numbers are also checked (:func:`~privacy.he.paillier_keys.check_public_numbers`,
:func:`~privacy.he.ckks.check_context`). Format version 1 files (ids over ``n`` alone,
or not recomputed) are refused: regenerate the keys and encrypt again.

Vector metadata (weight, contributors, lengths, limb and chunk counts) is range-checked
against the packing layout on every load and dump
(:meth:`~privacy.he.packing.PackingLayout.check_metadata`).

Metadata is a JSON field; big numbers are raw bytes.

Warnings
--------
The SHA-256 digest detects corruption and truncation, not forgery: anyone can rewrite a
file and its digest, and the key id only says *which* key a file holds. Compare key ids
with the key holder's out of band. Who produced a contribution, and that a contributor
list is honest, needs signatures (:mod:`privacy.he.signing`) and the ledger.

Private key files (``private.cvhe``) are written with mode 0600 and, given a KEK, sealed
under it (:mod:`privacy.sealed`: the AES-256-GCM envelope of keyset files, whose public
part names the scheme and key id) by :func:`write_key_dir`; :func:`read_file` opens them
with the KEK, and reads a plain one with a :class:`~privacy.sealed.PlaintextKeyWarning`.
The ``dump_*``/:func:`load` functions handle the plain container only.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from privacy.atomic import atomic_output
from privacy.errors import HEError, SerializationError
from privacy.he.packing import PackingLayout
from privacy.keys import Kek
from privacy.sealed import KekSource

__all__ = [
    "MAGIC", "FORMAT_VERSION", "Container", "pack_container", "unpack_container",
    "dump_public_key", "dump_private_key", "dump_context", "dump_vector", "load",
    "save", "read_file", "PUBLIC_FILE", "PRIVATE_FILE", "write_key_dir", "seal_private",
    "open_private", "SEALED_CONTENT",
]

MAGIC = b"CVHE"
FORMAT_VERSION = 2
KINDS = {"public_key": 1, "private_key": 2, "vector": 4}
SCHEMES = {"paillier": 1, "ckks": 2, "bfv": 3}
PUBLIC_FILE = "public.cvhe"
PRIVATE_FILE = "private.cvhe"
SEALED_CONTENT = "he-private-key"
_HEAD = struct.Struct(">4sBBB32sH")


@dataclass(frozen=True)
class Container:
    """A parsed file: kind, scheme, key fingerprint and named byte fields."""

    kind: str
    scheme: str
    fingerprint: bytes
    fields: dict[str, bytes]

    def meta(self) -> dict[str, Any]:
        """The JSON ``meta`` field."""
        try:
            out = json.loads(self.fields["meta"].decode("utf-8"))
        except (KeyError, ValueError, RecursionError) as exc:  # also too deep, too many digits
            raise SerializationError("HE file has no readable metadata (the 'meta' field "
                                     "is missing or not UTF-8 JSON of sane size and depth)"
                                     ) from exc
        if not isinstance(out, dict):
            raise SerializationError("HE file metadata is not an object")
        return out


def pack_container(kind: str, scheme: str, fingerprint: bytes, fields: dict[str, bytes]) -> bytes:
    """Serialise a container (see the module docstring)."""
    parts = [_HEAD.pack(MAGIC, FORMAT_VERSION, KINDS[kind], SCHEMES[scheme], fingerprint,
                        len(fields))]
    for name, data in fields.items():
        nb = name.encode("ascii")
        parts += [struct.pack(">B", len(nb)), nb, struct.pack(">Q", len(data)), data]
    body = b"".join(parts)
    return body + hashlib.sha256(body).digest()


def unpack_container(data: bytes, *, source: str = "HE file", kind: str | None = None
                     ) -> Container:
    """Parse and verify a container.

    Raises
    ------
    SerializationError
        Not a covault HE file, unknown version, truncated, or digest mismatch.
    """
    if len(data) < _HEAD.size + 32:
        raise SerializationError(f"{source}: truncated ({len(data)} bytes)")
    magic, version, k, s, fp, nfields = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise SerializationError(f"{source}: not a covault HE file (bad magic)")
    if version == 1:
        raise SerializationError(
            f"{source}: format version 1, written by an older covault whose key ids do not "
            "cover all public key parameters; it is no longer accepted. Regenerate the keys "
            "(covault he keygen) and encrypt again"
        )
    if version != FORMAT_VERSION:
        raise SerializationError(f"{source}: unsupported format version {version}")
    body, digest = data[:-32], data[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise SerializationError(
            f"{source}: integrity digest mismatch (file corrupted or truncated)"
        )
    kinds = {v: n for n, v in KINDS.items()}
    schemes = {v: n for n, v in SCHEMES.items()}
    if k not in kinds or s not in schemes:
        raise SerializationError(f"{source}: unknown object kind or scheme")
    fields: dict[str, bytes] = {}
    pos = _HEAD.size
    try:
        for _ in range(nfields):
            (nl,) = struct.unpack_from(">B", body, pos)
            name = body[pos + 1 : pos + 1 + nl].decode("ascii")
            pos += 1 + nl
            (dl,) = struct.unpack_from(">Q", body, pos)
            pos += 8
            if pos + dl > len(body):
                raise SerializationError(f"{source}: truncated field {name!r}")
            fields[name] = body[pos : pos + dl]
            pos += dl
    except (struct.error, UnicodeDecodeError) as exc:
        raise SerializationError(f"{source}: malformed field table") from exc
    if pos != len(body):
        raise SerializationError(f"{source}: trailing bytes after the last field")
    if kind is not None and kinds[k] != kind:
        raise SerializationError(f"{source}: holds a {kinds[k]}, expected a {kind}")
    return Container(kinds[k], schemes[s], fp, fields)


def _meta(d: dict[str, Any]) -> bytes:
    return json.dumps(d, sort_keys=True).encode("utf-8")


def _ib(x: int) -> bytes:
    return int(x).to_bytes((int(x).bit_length() + 7) // 8 or 1, "big")


# ------------------------------------------------------------------------ dumping
def dump_public_key(key: Any, layout: PackingLayout | None = None) -> bytes:
    """Serialise a :class:`~privacy.he.paillier.PaillierPublicKey`."""
    meta = {"exponent_bits": key.exponent_bits, "layout": layout.to_dict() if layout else None}
    return pack_container("public_key", "paillier", key.fingerprint,
                          {"meta": _meta(meta), "n": _ib(key.n), "hs": _ib(key.hs)})


def dump_private_key(key: Any, layout: PackingLayout | None = None) -> bytes:
    """Serialise a :class:`~privacy.he.paillier.PaillierPrivateKey` (its factors)."""
    pub = key.public_key
    meta = {"exponent_bits": pub.exponent_bits, "layout": layout.to_dict() if layout else None}
    return pack_container("private_key", "paillier", pub.fingerprint,
                          {"meta": _meta(meta), "n": _ib(pub.n), "hs": _ib(pub.hs),
                           "p": _ib(key.p), "q": _ib(key.q)})


def dump_context(ctx: Any) -> bytes:
    """Serialise an :class:`~privacy.he.ckks.HEContext` (with its secret key if it has one)."""
    data = ctx.context.serialize(save_public_key=True, save_secret_key=ctx.is_private,
                                 save_galois_keys=False, save_relin_keys=False)
    meta = {"params": ctx.params.name, "layout": ctx.layout.to_dict(),
            "plain_modulus": ctx.plain_modulus, "private": ctx.is_private}
    kind = "private_key" if ctx.is_private else "public_key"
    return pack_container(kind, ctx.params.scheme, ctx.fingerprint,
                          {"meta": _meta(meta), "context": data})


def dump_vector(vec: Any) -> bytes:
    """Serialise an encrypted vector (Paillier or TenSEAL) with its contributor list."""
    from privacy.he.paillier import EncryptedVector

    vec.layout.check_metadata(vec.weight, list(vec.contributors))
    meta: dict[str, Any] = {"length": vec.length, "weight": vec.weight,
                            "contributors": list(vec.contributors), "name": vec.name,
                            "layout": vec.layout.to_dict()}
    ids = _rows(vec, meta)
    if isinstance(vec, EncryptedVector):
        width = 2 * (-(-vec.public_key.bits // 8))
        blob = b"".join(int(c).to_bytes(width, "big") for c in vec.ciphertexts)
        meta.update(width=width, count=len(vec.ciphertexts),
                    exponent_bits=vec.public_key.exponent_bits)
        return pack_container("vector", "paillier", vec.public_key.fingerprint,
                              {"meta": _meta(meta), "n": _ib(vec.public_key.n),
                               "hs": _ib(vec.public_key.hs), "ciphertexts": blob,
                               **_endorsements(vec), **ids})
    chunks = [c.serialize() for c in vec.chunks]
    meta.update(params=vec.params.name, n_limbs=vec.n_limbs,
                multiplications=vec.multiplications, chunk_sizes=[len(c) for c in chunks])
    return pack_container("vector", vec.scheme, vec.fingerprint,
                          {"meta": _meta(meta), "chunks": b"".join(chunks),
                           **_endorsements(vec), **ids})


def _rows(vec: Any, meta: dict[str, Any]) -> dict[str, bytes]:
    """The id field of the vector's row ids (none when only the digest travels); their
    header goes into ``meta``."""
    rows = getattr(vec, "rows", None)
    if rows is None:
        return {}
    meta["rows"] = rows.to_meta()
    if rows.ids is None:
        return {}
    return {"ids": json.dumps(list(rows.ids), ensure_ascii=False).encode("utf-8")}


def _read_rows(c: Container, meta: dict[str, Any], length: int) -> Any:
    """The vector's :class:`~privacy.he.rows.RowIds` (``None`` without), checked: count
    equal to the length, digest recomputed from the ids when they travel."""
    head = meta.get("rows")
    if head is None:
        if "ids" in c.fields:
            raise _Malformed("ids without a row header")
        return None
    from privacy.he.rows import RowIds, rows_digest

    if not isinstance(head, dict) or not isinstance(head.get("column"), str) \
            or not isinstance(head.get("digest"), str) or len(head["digest"]) != 64:
        raise _Malformed("malformed row header")
    if _int(head, "count") != length:
        raise _Malformed(f"row header names {head['count']} rows for {length} values")
    if bool(head.get("ids")) != ("ids" in c.fields):
        raise _Malformed("row header and id field disagree")
    if "ids" not in c.fields:
        return RowIds(head["column"], length, head["digest"])
    try:
        ids = json.loads(c.fields["ids"].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _Malformed("unreadable id field") from None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise _Malformed("id field is not a list of strings")
    try:
        rows = RowIds.of(head["column"], ids)
    except HEError as exc:
        raise _Malformed(str(exc)) from None
    if rows.count != length or rows.digest != head["digest"] or rows_digest(ids) != rows.digest:
        raise _Malformed("ids do not match the digest in the row header (altered?)")
    return rows


def _endorsements(vec: Any) -> dict[str, bytes]:
    if not vec.endorsements:
        return {}
    from privacy.he.signing import endorsements_to_bytes

    return {"endorsements": endorsements_to_bytes(vec.endorsements)}


def _read_endorsements(c: Container, weight: int) -> tuple[Any, ...]:
    data = c.fields.get("endorsements")
    if data is None:
        return ()
    from privacy.he.signing import endorsements_from_bytes

    try:
        return endorsements_from_bytes(data, weight + 1)
    except HEError as exc:
        raise _Malformed(str(exc)) from None


# ------------------------------------------------------------------------ loading
class _Malformed(Exception):
    """Raised inside :func:`_load`; :func:`load` re-raises it as a
    :class:`SerializationError` naming the file."""


def _int(meta: dict[str, Any], name: str, lo: int = 0) -> int:
    v = meta.get(name)
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise _Malformed(f"metadata field {name!r} is not an integer >= {lo}")
    return v


def _mismatch(source: str, stored: bytes, actual: bytes) -> SerializationError:
    return SerializationError(
        f"{source}: key id {stored[:8].hex()} does not match the key's public parameters "
        f"(they hash to {actual[:8].hex()}): the file was altered or corrupted; do not use it"
    )


def _paillier_pub(c: Container, meta: dict[str, Any], source: str) -> Any:
    from privacy.he.paillier import PaillierPublicKey, fingerprint_of

    n = int.from_bytes(c.fields["n"], "big")
    hs = int.from_bytes(c.fields["hs"], "big")
    eb = _int(meta, "exponent_bits", 1)
    try:
        fp = fingerprint_of(n, hs, eb)
        if fp != c.fingerprint:
            raise _mismatch(source, c.fingerprint, fp)
        return PaillierPublicKey(n=n, hs=hs, exponent_bits=eb)
    except HEError as exc:
        raise SerializationError(f"{source}: unsound Paillier public key: {exc}") from None


def load(data: bytes, *, source: str = "HE file", kind: str | None = None,
         context: Any = None) -> Any:
    """Rebuild the object a container holds.

    Returns a ``PaillierPublicKey``, ``PaillierPrivateKey``, ``HEContext``,
    ``EncryptedVector`` or ``TensealVector``. TenSEAL vectors need ``context`` (an
    :class:`~privacy.he.ckks.HEContext` with the same fingerprint).

    Raises
    ------
    SerializationError
        Malformed, truncated or tampered data; a key id that does not match the key's
        public parameters; unsound public parameters; vector metadata out of range.
    HEError
        ``context`` belongs to another key than the vector.
    """
    c = unpack_container(data, source=source, kind=kind)
    try:
        meta = c.meta()
    except SerializationError as exc:
        raise SerializationError(f"{source}: {exc}") from None
    try:
        return _load(c, meta, source, context)
    except _Malformed as exc:
        raise SerializationError(f"{source}: {exc}") from None
    except (KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, SerializationError | HEError):
            raise
        raise SerializationError(f"{source}: malformed {c.kind} ({exc})") from exc


def _check_vector_meta(meta: dict[str, Any], lay: PackingLayout | None) -> PackingLayout:
    if lay is None:
        raise _Malformed("vector has no packing layout")
    try:
        lay.check_metadata(meta.get("weight"), meta.get("contributors"))
    except HEError as exc:
        raise _Malformed(f"refused: {exc}") from None
    _int(meta, "length")
    name = meta.get("name")
    if name is not None and not isinstance(name, str):
        raise _Malformed("metadata field 'name' is not a string")
    return lay


def _load(c: Container, meta: dict[str, Any], source: str, context: Any) -> Any:
    try:
        lay = PackingLayout.from_dict(meta["layout"]) if meta.get("layout") else None
    except HEError as exc:
        raise _Malformed(str(exc)) from None
    if c.scheme == "paillier":
        if c.kind == "public_key":
            return _paillier_pub(c, meta, source)
        if c.kind == "private_key":
            from privacy.he.paillier import PaillierPrivateKey

            pub = _paillier_pub(c, meta, source)
            try:
                return PaillierPrivateKey(pub, int.from_bytes(c.fields["p"], "big"),
                                          int.from_bytes(c.fields["q"], "big"))
            except HEError as exc:
                raise SerializationError(f"{source}: unsound Paillier private key: {exc}"
                                         ) from None
        if c.kind == "vector":
            import gmpy2

            from privacy.he.paillier import EncryptedVector, ciphertext_count

            pub = _paillier_pub(c, meta, source)
            lay = _check_vector_meta(meta, lay)
            width, count, blob = _int(meta, "width"), _int(meta, "count"), c.fields["ciphertexts"]
            length = _int(meta, "length")
            if width != 2 * (-(-pub.bits // 8)) or len(blob) != width * count:
                raise SerializationError(f"{source}: ciphertext block has the wrong size")
            if count != ciphertext_count(length, lay, pub.bits):
                raise SerializationError(f"{source}: {count} ciphertexts cannot hold "
                                         f"{length} values in this layout")
            n2 = gmpy2.mpz(pub.nsquare)
            cts = [gmpy2.mpz(int.from_bytes(blob[i:i + width], "big"))
                   for i in range(0, len(blob), width)]
            if any(not 0 < x < n2 for x in cts):
                raise SerializationError(f"{source}: a ciphertext lies outside 0 < c < n**2")
            return EncryptedVector(pub, lay, cts, length, int(meta["weight"]),
                                   tuple(meta["contributors"]), meta.get("name"),
                                   _read_endorsements(c, int(meta["weight"])),
                                   rows=_read_rows(c, meta, length))
        raise SerializationError(f"{source}: unexpected {c.kind} for Paillier")
    import tenseal as ts

    from privacy.he.ckks import (
        HEContext,
        TensealVector,
        bfv_limbs,
        check_context,
        context_fingerprint,
        get_params,
        public_context_bytes,
    )

    try:
        params = get_params(str(meta["params"]))
    except HEError as exc:
        raise _Malformed(str(exc)) from None
    if params.scheme != c.scheme:
        raise _Malformed(f"parameter set {params.name} is not {c.scheme}")
    if c.kind in ("public_key", "private_key"):
        if lay is None:
            raise SerializationError(f"{source}: context has no packing layout")
        try:
            ctx = ts.context_from(c.fields["context"])
        except Exception as exc:  # TenSEAL raises bare exceptions on bad bytes
            raise SerializationError(f"{source}: unreadable {c.scheme} context") from exc
        t = _int(meta, "plain_modulus")
        try:
            check_context(params, ctx, t, lay)
        except HEError as exc:
            raise SerializationError(f"{source}: {exc}") from None
        if c.kind == "private_key" and not ctx.has_secret_key():
            raise SerializationError(f"{source}: private key file holds no secret key")
        fp = context_fingerprint(params, lay, t, public_context_bytes(ctx))
        if fp != c.fingerprint:
            raise _mismatch(source, c.fingerprint, fp)
        return HEContext(params, ctx, fp, lay, t)
    if context is None:
        raise HEError(f"{source}: loading a {c.scheme} vector needs its context")
    if context.fingerprint != c.fingerprint:
        raise HEError(f"ciphertext was encrypted under key {c.fingerprint[:8].hex()}, "
                      f"not {context.key_id}")
    lay = _check_vector_meta(meta, lay)
    if params != context.params or not lay.same_bounds(context.layout):
        raise SerializationError(f"{source}: parameter set or layout differ from the "
                                 f"context's ({context.params.name}, {context.layout})")
    length, n_limbs = _int(meta, "length"), _int(meta, "n_limbs", 1)
    want_limbs = (bfv_limbs(context.plain_modulus.bit_length(), lay)[1]
                  if c.scheme == "bfv" else 1)
    mults = _int(meta, "multiplications")
    if n_limbs != want_limbs or mults > len(params.coeff_mod_bit_sizes) - 2 or (
            c.scheme == "bfv" and mults):
        raise SerializationError(f"{source}: limb or level count out of range")
    sizes = meta["chunk_sizes"]
    if not isinstance(sizes, list) or len(sizes) != n_limbs * -(-length // params.slot_count):
        raise SerializationError(f"{source}: chunk table does not fit {length} values")
    blob, pos, chunks = c.fields["chunks"], 0, []
    make = ts.ckks_vector_from if c.scheme == "ckks" else ts.bfv_vector_from
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0 \
                or pos + size > len(blob):
            raise SerializationError(f"{source}: truncated chunk table")
        try:
            chunks.append(make(context.context, blob[pos:pos + size]))
        except Exception as exc:  # TenSEAL raises bare exceptions on bad bytes
            raise SerializationError(f"{source}: unreadable {c.scheme} ciphertext") from exc
        pos += size
    if pos != len(blob):
        raise SerializationError(f"{source}: trailing bytes after the last chunk")
    per = -(-length // params.slot_count)
    for i, ch in enumerate(chunks):
        want = min(params.slot_count, length - (i % per) * params.slot_count) if per else 0
        if ch.size() != want:
            raise SerializationError(f"{source}: chunk {i} holds {ch.size()} values, "
                                     f"expected {want}")
    return TensealVector(params, c.fingerprint, lay, chunks, length, n_limbs,
                         int(meta["weight"]), mults, tuple(meta["contributors"]),
                         meta.get("name"), _read_endorsements(c, int(meta["weight"])),
                         rows=_read_rows(c, meta, length))


# ------------------------------------------------------------------------ files
def save(path: str | os.PathLike[str], data: bytes, *, private: bool = False) -> None:
    """Write ``data`` atomically; ``private`` files get mode 0600, others 0644."""
    with atomic_output(path, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600 if private else 0o644)
        fh.write(data)


def seal_private(private: bytes, kek: Kek) -> bytes:
    """A private key container (:func:`dump_private_key`, :func:`dump_context`) sealed
    under ``kek``; its scheme and key id stay readable (:func:`privacy.sealed.read_public`).
    """
    from privacy.sealed import seal

    c = unpack_container(private, source="private key", kind="private_key")
    return seal(private, kek, content=SEALED_CONTENT,
                public={"scheme": c.scheme, "key_id": c.fingerprint.hex()})


def open_private(data: bytes, kek: KekSource, *, source: str, warn: bool = True) -> bytes:
    """The plain container of a private key file: unsealed with ``kek`` (a KEK, or a
    function returning one) when sealed, as it is otherwise (warning unless not ``warn``).

    Raises
    ------
    KeyfileError
        A sealed file without a KEK, with a wrong one, or altered.
    SerializationError
        The sealed container's key id is not the one its envelope names.
    """
    from privacy.sealed import is_sealed, read_public, unseal

    plain = unseal(data, kek, content=SEALED_CONTENT, source=source, warn=False)
    if is_sealed(data):
        named = read_public(data, content=SEALED_CONTENT, source=source).get("key_id")
        c = unpack_container(plain, source=source, kind="private_key")
        if named != c.fingerprint.hex():
            raise SerializationError(f"{source}: the sealed key is not the key its "
                                     "envelope names")
    elif warn:
        import warnings

        from privacy.sealed import PlaintextKeyWarning

        warnings.warn(PlaintextKeyWarning(f"{source}: private key is not encrypted at rest"),
                      stacklevel=2)
    return plain


def read_file(path: str | os.PathLike[str], *, kind: str | None = None, context: Any = None,
              kek: KekSource = None) -> Any:
    """Load the object stored in ``path`` (a file, or a key folder for keys).

    A sealed private key is opened with ``kek``; a plain one is read with a
    :class:`~privacy.sealed.PlaintextKeyWarning`.
    """
    p = Path(path)
    if p.is_dir():
        p = p / (PRIVATE_FILE if kind == "private_key" else PUBLIC_FILE)
    data = p.read_bytes()
    if kind == "private_key":
        data = open_private(data, kek, source=str(p))
    return load(data, source=str(p), kind=kind, context=context)


def write_key_dir(
    folder: str | os.PathLike[str], public: bytes, private: bytes, *, kek: Kek | None = None
) -> tuple[Path, Path]:
    """Write ``public.cvhe`` (0644) and ``private.cvhe`` (0600) into ``folder``.

    With ``kek`` the private key is sealed under it (:func:`seal_private`); without, it is
    written in the clear (mode 0600 only).

    Both files are written in full (and the private one synced) beside their targets
    before either replaces an existing one, so a failure while writing leaves an old pair
    as it was; then the public key is renamed into place, the private key last.
    """
    if kek is not None:
        private = seal_private(private, kek)
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    with atomic_output(d / PRIVATE_FILE, "wb") as priv_fh, \
            atomic_output(d / PUBLIC_FILE, "wb") as pub_fh:
        os.fchmod(priv_fh.fileno(), 0o600)
        priv_fh.write(private)
        priv_fh.flush()
        os.fsync(priv_fh.fileno())  # on disk before the public key is renamed into place
        os.fchmod(pub_fh.fileno(), 0o644)
        pub_fh.write(public)
    return d / PUBLIC_FILE, d / PRIVATE_FILE
