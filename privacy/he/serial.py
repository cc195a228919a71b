"""Versioned, pickle-free files for HE keys, contexts and ciphertext vectors.

Layout (all integers big-endian)::

    b"CVHE" | version u8 | kind u8 | scheme u8 | fingerprint (32 bytes) | nfields u16
    nfields x ( name_len u8 | name (ASCII) | data_len u64 | data )
    SHA-256 of everything above (32 bytes)

The fingerprint names the key (Paillier: SHA-256 of ``n``; TenSEAL: SHA-256 of the
public context). Metadata is a JSON field; big numbers are raw bytes.

Warnings
--------
The SHA-256 digest detects corruption and truncation, not forgery: anyone can rewrite a
file and its digest. Authenticity (who produced a ciphertext, that the contributor list
is honest) needs the ledger and signatures. Private key files are written with mode 0600
but are not encrypted at rest; keep them on protected storage.
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

__all__ = [
    "MAGIC", "FORMAT_VERSION", "Container", "pack_container", "unpack_container",
    "dump_public_key", "dump_private_key", "dump_context", "dump_vector", "load",
    "save", "read_file", "PUBLIC_FILE", "PRIVATE_FILE", "write_key_dir",
]

MAGIC = b"CVHE"
FORMAT_VERSION = 1
KINDS = {"public_key": 1, "private_key": 2, "vector": 4}
SCHEMES = {"paillier": 1, "ckks": 2, "bfv": 3}
PUBLIC_FILE = "public.cvhe"
PRIVATE_FILE = "private.cvhe"
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
        except (KeyError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SerializationError("HE file has no readable metadata") from exc
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

    meta: dict[str, Any] = {"length": vec.length, "weight": vec.weight,
                            "contributors": list(vec.contributors), "name": vec.name,
                            "layout": vec.layout.to_dict()}
    if isinstance(vec, EncryptedVector):
        width = 2 * (-(-vec.public_key.bits // 8))
        blob = b"".join(int(c).to_bytes(width, "big") for c in vec.ciphertexts)
        meta.update(width=width, count=len(vec.ciphertexts),
                    exponent_bits=vec.public_key.exponent_bits)
        return pack_container("vector", "paillier", vec.public_key.fingerprint,
                              {"meta": _meta(meta), "n": _ib(vec.public_key.n),
                               "hs": _ib(vec.public_key.hs), "ciphertexts": blob})
    chunks = [c.serialize() for c in vec.chunks]
    meta.update(params=vec.params.name, n_limbs=vec.n_limbs,
                multiplications=vec.multiplications, chunk_sizes=[len(c) for c in chunks])
    return pack_container("vector", vec.scheme, vec.fingerprint,
                          {"meta": _meta(meta), "chunks": b"".join(chunks)})


# ------------------------------------------------------------------------ loading
def _paillier_pub(c: Container, meta: dict[str, Any]) -> Any:
    from privacy.he.paillier import PaillierPublicKey, fingerprint_of, security_bits

    n = int.from_bytes(c.fields["n"], "big")
    if fingerprint_of(n) != c.fingerprint:
        raise SerializationError("HE file: key fingerprint does not match the key")
    eb = meta.get("exponent_bits") or 2 * security_bits(n.bit_length())
    return PaillierPublicKey(n=n, hs=int.from_bytes(c.fields["hs"], "big"), exponent_bits=int(eb))


def load(data: bytes, *, source: str = "HE file", kind: str | None = None,
         context: Any = None) -> Any:
    """Rebuild the object a container holds.

    Returns a ``PaillierPublicKey``, ``PaillierPrivateKey``, ``HEContext``,
    ``EncryptedVector`` or ``TensealVector``. TenSEAL vectors need ``context`` (an
    :class:`~privacy.he.ckks.HEContext` with the same fingerprint).

    Raises
    ------
    SerializationError
        Malformed, truncated or tampered data.
    HEError
        ``context`` belongs to another key than the vector.
    """
    c = unpack_container(data, source=source, kind=kind)
    meta = c.meta()
    try:
        return _load(c, meta, source, context)
    except (KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, HEError):
            raise
        raise SerializationError(f"{source}: malformed {c.kind} ({exc})") from exc


def _load(c: Container, meta: dict[str, Any], source: str, context: Any) -> Any:
    lay = PackingLayout.from_dict(meta["layout"]) if meta.get("layout") else None
    if c.scheme == "paillier":
        if c.kind == "public_key":
            return _paillier_pub(c, meta)
        if c.kind == "private_key":
            from privacy.he.paillier import PaillierPrivateKey

            return PaillierPrivateKey(_paillier_pub(c, meta), int.from_bytes(c.fields["p"], "big"),
                                      int.from_bytes(c.fields["q"], "big"))
        if c.kind == "vector":
            import gmpy2

            from privacy.he.paillier import EncryptedVector

            pub = _paillier_pub(c, meta)
            width, count, blob = int(meta["width"]), int(meta["count"]), c.fields["ciphertexts"]
            if len(blob) != width * count:
                raise SerializationError(f"{source}: ciphertext block has the wrong size")
            cts = [gmpy2.mpz(int.from_bytes(blob[i:i + width], "big"))
                   for i in range(0, len(blob), width)]
            assert lay is not None
            return EncryptedVector(pub, lay, cts, int(meta["length"]), int(meta["weight"]),
                                   tuple(meta["contributors"]), meta.get("name"))
        raise SerializationError(f"{source}: unexpected {c.kind} for Paillier")
    import tenseal as ts

    from privacy.he.ckks import HEContext, TensealVector, get_params

    if c.kind in ("public_key", "private_key"):
        ctx = ts.context_from(c.fields["context"])
        assert lay is not None
        return HEContext(get_params(meta["params"]), ctx, c.fingerprint, lay,
                         int(meta.get("plain_modulus", 0)))
    if context is None:
        raise HEError(f"{source}: loading a {c.scheme} vector needs its context")
    if context.fingerprint != c.fingerprint:
        raise HEError(f"ciphertext was encrypted under key {c.fingerprint[:8].hex()}, "
                      f"not {context.key_id}")
    blob, pos, chunks = c.fields["chunks"], 0, []
    make = ts.ckks_vector_from if c.scheme == "ckks" else ts.bfv_vector_from
    for size in meta["chunk_sizes"]:
        if pos + int(size) > len(blob):
            raise SerializationError(f"{source}: truncated chunk table")
        try:
            chunks.append(make(context.context, blob[pos:pos + int(size)]))
        except Exception as exc:  # TenSEAL raises bare exceptions on bad bytes
            raise SerializationError(f"{source}: unreadable {c.scheme} ciphertext") from exc
        pos += int(size)
    assert lay is not None
    return TensealVector(get_params(meta["params"]), c.fingerprint, lay, chunks,
                         int(meta["length"]), int(meta["n_limbs"]), int(meta["weight"]),
                         int(meta["multiplications"]), tuple(meta["contributors"]),
                         meta.get("name"))


# ------------------------------------------------------------------------ files
def save(path: str | os.PathLike[str], data: bytes, *, private: bool = False) -> None:
    """Write ``data`` atomically; ``private`` files get mode 0600, others 0644."""
    with atomic_output(path, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600 if private else 0o644)
        fh.write(data)


def read_file(path: str | os.PathLike[str], *, kind: str | None = None, context: Any = None
              ) -> Any:
    """Load the object stored in ``path`` (a file, or a key folder for keys)."""
    p = Path(path)
    if p.is_dir():
        p = p / (PRIVATE_FILE if kind == "private_key" else PUBLIC_FILE)
    return load(p.read_bytes(), source=str(p), kind=kind, context=context)


def write_key_dir(
    folder: str | os.PathLike[str], public: bytes, private: bytes
) -> tuple[Path, Path]:
    """Write ``public.cvhe`` (0644) and ``private.cvhe`` (0600) into ``folder``.

    Both files are written in full (and the private one synced) beside their targets
    before either replaces an existing one, so a failure while writing leaves an old pair
    as it was; then the public key is renamed into place, the private key last.
    """
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
