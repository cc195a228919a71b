"""Plaintext-matrix times encrypted-vector products under CKKS (SEAL through TenSEAL's
``sealapi``), for protocols where one party holds a matrix and another the key.

The key holder (:class:`LinearKeys`) encrypts a vector ``v`` of ``S = N/2`` slots as
``n1`` *baby-step* ciphertexts ``Enc(rot(v, b))``, ``b < n1``, each a fresh encryption
(so no key-switching noise enters before the products). The matrix holder
(:class:`LinearEvaluator`, public key and Galois keys only) computes

* :meth:`~LinearEvaluator.matvec` ``y = X v`` for ``X`` of ``S`` rows and ``P`` columns
  (``P`` a power of two dividing ``S``; ``v`` holds ``P`` values tiled ``S/P`` times), and
* :meth:`~LinearEvaluator.rmatvec` ``g = X^T d`` for ``d`` of ``S`` values (result in the
  first ``P`` slots),

with the diagonal method and baby-step/giant-step rotations (Halevi and Shoup, CRYPTO
2014): ``sum_k rot(v, k) * diag_k = sum_g rot(sum_b rot(v, b) * rot(diag_{g n1 + b},
-g n1), g n1)`` -- ``P`` plaintext products and ``P/n1 - 1`` giant-step rotations, made
before rescaling so their noise is negligible. :meth:`~LinearEvaluator.blocksum`
computes ``X^T r`` for an *encrypted* ``X`` (row-packed, :meth:`LinearKeys.encrypt_rows`)
and a plaintext ``r``. Every result uses one level, so the default parameters are
``N = 8192``, primes of 60/35/60 bits (155 of the 218 bits the 128-bit bound allows),
scale ``2**35``: results are exact to about ``1e-5`` for values up to ``2**23``
(:data:`MAX_ABS`).

Warnings
--------
CKKS decryptions leak a little about the secret key through their noise (Li and
Micciancio, EUROCRYPT 2021): a key holder must not return decrypted values to the party
that computed the ciphertext. Masks added by the evaluator are real numbers: a value
``|x| <= V`` under a uniform mask on ``[-M, M]`` is hidden up to statistical distance
``V / M``.
"""

from __future__ import annotations

import math
import os
import secrets
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from privacy.errors import HEError

__all__ = [
    "POLY_DEGREE", "SLOTS", "SCALE_BITS", "MAX_ABS", "baby_steps", "galois_steps",
    "LinearKeys", "LinearEvaluator", "pack_blobs", "unpack_blobs",
]

FloatArray = npt.NDArray[np.float64]

POLY_DEGREE = 8192
SLOTS = POLY_DEGREE // 2
PRIMES = (60, 35, 60)
SCALE_BITS = 35
#: Largest absolute value a one-level result may hold (the last prime's headroom).
MAX_ABS = float(2 ** (PRIMES[0] - SCALE_BITS - 1))
_MAX_BLOB = 64 << 20


def _seal() -> Any:
    try:
        import tenseal.sealapi as seal
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise HEError("this needs TenSEAL: pip install 'covault[he]'") from exc
    return seal


def baby_steps(columns: int) -> int:
    """Baby-step count for ``columns`` (a power of two): about ``sqrt(columns)``."""
    return 1 << (max(columns.bit_length() - 1, 0) // 2)


def galois_steps(columns: int) -> list[int]:
    """Rotation steps the evaluator needs for a ``columns``-wide matrix."""
    n1 = baby_steps(columns)
    steps = {g * n1 for g in range(1, columns // n1)}
    width = columns
    while width < SLOTS:
        steps.add(width)
        width *= 2
    return sorted(steps)


def _check_columns(columns: int) -> None:
    if columns < 1 or columns > SLOTS or columns & (columns - 1):
        raise HEError(f"matrix width {columns} must be a power of two up to {SLOTS}")


class _Files:
    """SEAL objects (de)serialise through files: one private scratch folder."""

    def __init__(self) -> None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.dir = Path(tempfile.mkdtemp(prefix="covault-seal-", dir=base))

    def dump(self, obj: Any) -> bytes:
        path = self.dir / secrets.token_hex(8)
        try:
            obj.save(str(path))
            return path.read_bytes()
        finally:
            path.unlink(missing_ok=True)

    def load(self, obj: Any, context: Any, blob: bytes, what: str) -> Any:
        if not isinstance(blob, bytes) or not blob or len(blob) > _MAX_BLOB:
            raise HEError(f"{what}: not a serialised SEAL object of a sane size")
        path = self.dir / secrets.token_hex(8)
        try:
            path.write_bytes(blob)
            obj.load(context, str(path))
        except (RuntimeError, ValueError) as exc:
            raise HEError(f"{what}: not valid for these parameters ({exc})") from None
        finally:
            path.unlink(missing_ok=True)
        return obj


_FILES: _Files | None = None


def _files() -> _Files:
    global _FILES
    if _FILES is None or not _FILES.dir.is_dir():
        _FILES = _Files()
    return _FILES


def pack_blobs(blobs: Sequence[bytes]) -> npt.NDArray[np.uint8]:
    """Several byte strings as one uint8 array (8-byte big-endian length before each)."""
    out = bytearray()
    for b in blobs:
        out += len(b).to_bytes(8, "big") + b
    return np.frombuffer(bytes(out), dtype=np.uint8).copy()


def unpack_blobs(array: Any, *, what: str, limit: int = 100_000) -> list[bytes]:
    """Inverse of :func:`pack_blobs`; raises :class:`HEError` on a malformed array."""
    data = np.asarray(array, dtype=np.uint8).tobytes()
    out: list[bytes] = []
    i = 0
    while i < len(data):
        if i + 8 > len(data) or len(out) >= limit:
            raise HEError(f"{what}: malformed ciphertext list")
        n = int.from_bytes(data[i:i + 8], "big")
        if n < 1 or i + 8 + n > len(data):
            raise HEError(f"{what}: malformed ciphertext list")
        out.append(data[i + 8:i + 8 + n])
        i += 8 + n
    return out


def _context(parms_blob: bytes | None = None) -> tuple[Any, Any]:
    seal = _seal()
    parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
    parms.set_poly_modulus_degree(POLY_DEGREE)
    parms.set_coeff_modulus(seal.CoeffModulus.Create(POLY_DEGREE, list(PRIMES)))
    if parms_blob is not None:
        path = _files().dir / secrets.token_hex(8)
        try:
            path.write_bytes(parms_blob)
            loaded = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
            loaded.load(str(path))
        except (RuntimeError, ValueError) as exc:
            raise HEError(f"CKKS parameters: malformed ({exc})") from None
        finally:
            path.unlink(missing_ok=True)
        if (loaded.poly_modulus_degree() != POLY_DEGREE
                or [m.value() for m in loaded.coeff_modulus()]
                != [m.value() for m in parms.coeff_modulus()]):
            raise HEError("CKKS parameters differ from covault's (N = 8192, 60/35/60 bits)")
    ctx = seal.SEALContext(parms, True, seal.SEC_LEVEL_TYPE.TC128)
    if not ctx.parameters_set():
        raise HEError(f"CKKS parameters rejected: {ctx.parameters_error_message()}")
    return parms, ctx


@dataclass
class _Core:
    ctx: Any
    encoder: Any
    evaluator: Any
    encryptor: Any

    @property
    def scale(self) -> float:
        return float(2.0 ** SCALE_BITS)

    def plain(self, values: FloatArray, like: Any = None) -> Any:
        seal = _seal()
        v = np.asarray(values, dtype=np.float64)
        if v.shape != (SLOTS,) or not np.all(np.isfinite(v)):
            raise HEError(f"a plaintext needs {SLOTS} finite values")
        pt = seal.Plaintext()
        if like is None:
            self.encoder.encode(v.tolist(), self.scale, pt)
        else:
            self.encoder.encode(v.tolist(), like.parms_id(), like.scale, pt)
        return pt

    def encrypt(self, values: FloatArray) -> Any:
        ct = _seal().Ciphertext()
        self.encryptor.encrypt(self.plain(values), ct)
        return ct

    def dump(self, ct: Any) -> bytes:
        return _files().dump(ct)

    def load(self, blob: bytes, what: str) -> Any:
        return _files().load(_seal().Ciphertext(), self.ctx, blob, what)


class LinearKeys:
    """The key holder: a fresh CKKS key pair; encrypts vectors, decrypts results.

    ``steps`` are the rotations evaluators will need (:func:`galois_steps` of each
    matrix width); their Galois keys go into :meth:`public_bundle`.
    """

    def __init__(self, steps: Sequence[int], *, _saved: dict[str, bytes] | None = None) -> None:
        seal = _seal()
        self._parms, ctx = _context(None if _saved is None else _saved["parms"])
        self._galois = seal.GaloisKeys()
        public = seal.PublicKey()
        if _saved is None:
            keygen = seal.KeyGenerator(ctx)
            self._secret = keygen.secret_key()
            keygen.create_public_key(public)
            elements = sorted({pow(3, int(s), 2 * POLY_DEGREE) for s in steps if 0 < s < SLOTS})
            if elements:
                keygen.create_galois_keys(elements, self._galois)
            self.has_galois = bool(elements)
        else:
            f = _files()
            self._secret = f.load(seal.SecretKey(), ctx, _saved["secret"], "CKKS secret key")
            public = f.load(public, ctx, _saved["public"], "CKKS public key")
            self.has_galois = "galois" in _saved
            if self.has_galois:
                f.load(self._galois, ctx, _saved["galois"], "CKKS Galois keys")
        self._public = public
        self._core = _Core(ctx, seal.CKKSEncoder(ctx), seal.Evaluator(ctx),
                           seal.Encryptor(ctx, public))
        self._decryptor = seal.Decryptor(ctx, self._secret)

    def export(self) -> dict[str, bytes]:
        """Everything, the secret key included, to :meth:`restore` later (keep private)."""
        return {**self.public_bundle(), "secret": _files().dump(self._secret)}

    @classmethod
    def restore(cls, saved: dict[str, bytes]) -> LinearKeys:
        """Inverse of :meth:`export`."""
        if not isinstance(saved, dict) or not {"parms", "public", "secret"} <= set(saved):
            raise HEError("saved CKKS keys: needs 'parms', 'public' and 'secret'")
        return cls((), _saved=saved)

    def public_bundle(self) -> dict[str, bytes]:
        """What evaluators need: parameters, public key and Galois keys (no secret)."""
        f = _files()
        out = {"parms": f.dump(self._parms), "public": f.dump(self._public)}
        if self.has_galois:
            out["galois"] = f.dump(self._galois)
        return out

    def encrypt_vector(self, values: FloatArray, *, rotations: int = 1) -> list[bytes]:
        """``rotations`` baby-step ciphertexts ``Enc(rot(v, b))`` of an ``S``-slot vector."""
        v = np.asarray(values, dtype=np.float64)
        if v.shape != (SLOTS,):
            raise HEError(f"a vector to encrypt needs {SLOTS} values, not {v.shape}")
        return [self._core.dump(self._core.encrypt(np.roll(v, -b))) for b in range(rotations)]

    def encrypt_tiled(self, values: FloatArray, columns: int) -> list[bytes]:
        """Baby steps of ``values`` (at most ``columns``) padded and tiled for :meth:`
        LinearEvaluator.matvec` of a ``columns``-wide matrix."""
        _check_columns(columns)
        v = np.zeros(columns)
        w = np.asarray(values, dtype=np.float64)
        if w.ndim != 1 or w.size > columns:
            raise HEError(f"{w.size} values do not fit a {columns}-wide matrix")
        v[:w.size] = w
        return self.encrypt_vector(np.tile(v, SLOTS // columns), rotations=baby_steps(columns))

    def encrypt_rows(self, X: FloatArray, columns: int) -> list[bytes]:
        """An ``S x columns`` matrix, row-major, ``S/columns`` rows per ciphertext (for
        :meth:`LinearEvaluator.blocksum`)."""
        _check_columns(columns)
        M = np.zeros((SLOTS, columns))
        A = np.asarray(X, dtype=np.float64)
        if A.ndim != 2 or A.shape[0] > SLOTS or A.shape[1] > columns:
            raise HEError(f"a {A.shape} matrix does not fit {SLOTS} x {columns}")
        M[:A.shape[0], :A.shape[1]] = A
        flat = M.ravel()
        return [self._core.dump(self._core.encrypt(flat[i:i + SLOTS]))
                for i in range(0, flat.size, SLOTS)]

    def decrypt(self, blob: bytes, size: int, *, what: str) -> FloatArray:
        """The first ``size`` slots of a result ciphertext."""
        seal = _seal()
        ct = self._core.load(blob, what)
        pt = seal.Plaintext()
        try:
            self._decryptor.decrypt(ct, pt)
        except (RuntimeError, ValueError) as exc:
            raise HEError(f"{what}: cannot be decrypted ({exc})") from None
        out = np.asarray(self._core.encoder.decode_double(pt)[:size], dtype=np.float64)
        if not np.all(np.isfinite(out)) or np.max(np.abs(out), initial=0.0) > MAX_ABS:
            raise HEError(f"{what}: decrypts to values out of range (a malformed result)")
        return out


class LinearEvaluator:
    """The matrix holder: public key and Galois keys of a :class:`LinearKeys`."""

    def __init__(self, bundle: dict[str, bytes]) -> None:
        seal = _seal()
        if not isinstance(bundle, dict) or "parms" not in bundle or "public" not in bundle:
            raise HEError("CKKS public bundle: needs 'parms' and 'public'")
        _, ctx = _context(bundle["parms"])
        f = _files()
        public = f.load(seal.PublicKey(), ctx, bundle["public"], "CKKS public key")
        self._galois = (f.load(seal.GaloisKeys(), ctx, bundle["galois"], "CKKS Galois keys")
                        if "galois" in bundle else None)
        self._core = _Core(ctx, seal.CKKSEncoder(ctx), seal.Evaluator(ctx),
                           seal.Encryptor(ctx, public))

    # -- helpers --------------------------------------------------------------------

    def _rotate(self, ct: Any, step: int) -> Any:
        if self._galois is None or not self._galois.has_key(pow(3, step, 2 * POLY_DEGREE)):
            raise HEError(f"no Galois key for a rotation by {step}")
        out = _seal().Ciphertext()
        self._core.evaluator.rotate_vector(ct, step, self._galois, out)
        return out

    def _fresh(self, blobs: Sequence[bytes], count: int, what: str) -> list[Any]:
        if len(blobs) != count:
            raise HEError(f"{what}: {len(blobs)} ciphertexts, expected {count}")
        cts = [self._core.load(b, what) for b in blobs]
        top = self._core.ctx.first_parms_id()
        for ct in cts:
            if ct.parms_id() != top or ct.size() != 2 or abs(
                    math.log2(ct.scale) - SCALE_BITS) > 1e-9:
                raise HEError(f"{what}: not a fresh ciphertext of these parameters")
        return cts

    def _product(self, ct: Any, values: FloatArray) -> Any:
        """``ct * values`` (None when ``values`` is all zero: SEAL refuses a transparent
        result)."""
        if not np.any(values):
            return None
        prod = _seal().Ciphertext()
        self._core.evaluator.multiply_plain(ct, self._core.plain(values, ct), prod)
        return prod

    def _zero(self, like: Any) -> Any:
        """A fresh ``Enc(0)`` at the level and scale of a product of ``like``."""
        return self._product(self._core.encrypt(np.zeros(SLOTS)), np.ones(SLOTS))

    def _accumulate(self, acc: Any, term: Any) -> Any:
        if term is None:
            return acc
        if acc is None:
            return term
        self._core.evaluator.add_inplace(acc, term)
        return acc

    def _diagonals(self, baby: list[Any], columns: int,
                   diagonal: Callable[[int], FloatArray]) -> Any:
        n1 = len(baby)
        acc: Any = None
        for g in range(columns // n1):
            inner: Any = None
            for b in range(n1):
                inner = self._accumulate(inner, self._product(
                    baby[b], np.roll(diagonal(g * n1 + b), g * n1)))
            if inner is None:
                continue
            if g:
                inner = self._rotate(inner, g * n1)
            acc = self._accumulate(acc, inner)
        return acc if acc is not None else self._zero(baby[0])

    def _fold(self, ct: Any, columns: int) -> None:
        width = columns
        while width < SLOTS:
            self._core.evaluator.add_inplace(ct, self._rotate(ct, width))
            width *= 2

    def _finish(self, ct: Any, add: FloatArray | None) -> bytes:
        self._core.evaluator.rescale_to_next_inplace(ct)
        if add is not None:
            self._core.evaluator.add_plain_inplace(ct, self._core.plain(add, ct))
        return self._core.dump(ct)

    @staticmethod
    def _matrix(X: FloatArray, columns: int) -> FloatArray:
        _check_columns(columns)
        A = np.asarray(X, dtype=np.float64)
        if A.ndim != 2 or A.shape[0] > SLOTS or A.shape[1] > columns:
            raise HEError(f"a {A.shape} matrix does not fit {SLOTS} x {columns}")
        if not np.all(np.isfinite(A)):
            raise HEError("the matrix holds NaN or infinite values")
        M = np.zeros((SLOTS, columns))
        M[:A.shape[0], :A.shape[1]] = A
        return M

    # -- products -------------------------------------------------------------------

    def matvec(self, X: FloatArray, v_blobs: Sequence[bytes], *, columns: int,
               add: FloatArray | None = None, what: str = "vector") -> bytes:
        """``Enc(X v + add)``: ``X`` has at most ``S`` rows and ``columns`` columns;
        ``v_blobs`` are :meth:`LinearKeys.encrypt_tiled` baby steps; ``add`` an optional
        plaintext of ``S`` values added to the result."""
        M = self._matrix(X, columns)
        baby = self._fresh(v_blobs, baby_steps(columns), what)
        rows = np.arange(SLOTS)
        acc = self._diagonals(baby, columns, lambda k: M[rows, (rows + k) % columns])
        return self._finish(acc, add)

    def rmatvec(self, X: FloatArray, d_blobs: Sequence[bytes], *, columns: int,
                shift: FloatArray | None = None, add: FloatArray | None = None,
                what: str = "vector") -> bytes:
        """``Enc(X^T (d + shift) + add)`` in the first ``columns`` slots: ``d_blobs`` are
        :meth:`LinearKeys.encrypt_vector` baby steps of ``d`` (``S`` values); ``shift``
        is a plaintext added to ``d`` first; ``add`` is added to the result."""
        M = self._matrix(X, columns)
        n1 = baby_steps(columns)
        baby = self._fresh(d_blobs, n1, what)
        if shift is not None:
            s = np.asarray(shift, dtype=np.float64)
            for b, ct in enumerate(baby):
                self._core.evaluator.add_plain_inplace(ct, self._core.plain(np.roll(s, -b), ct))
        rows = np.arange(SLOTS)
        acc = self._diagonals(baby, columns, lambda k: M[(rows + k) % SLOTS, rows % columns])
        self._fold(acc, columns)
        full = None
        if add is not None:
            full = np.zeros(SLOTS)
            a = np.asarray(add, dtype=np.float64)
            full[:a.size] = a
        return self._finish(acc, full)

    def add(self, a: bytes, b: bytes, *, what: str = "sum") -> bytes:
        """``Enc(x + y)`` of two results of the same kind (same level and scale)."""
        ca, cb = self._core.load(a, what), self._core.load(b, what)
        if ca.parms_id() != cb.parms_id() or abs(ca.scale - cb.scale) > 1e-6 * ca.scale:
            raise HEError(f"{what}: ciphertexts at different levels cannot be added")
        self._core.evaluator.add_inplace(ca, cb)
        return self._core.dump(ca)

    def blocksum(self, x_blobs: Sequence[bytes], r: FloatArray, *, columns: int,
                 what: str = "matrix") -> bytes:
        """``Enc(X^T r)`` in the first ``columns`` slots for a row-packed encrypted ``X``
        (:meth:`LinearKeys.encrypt_rows`) and a plaintext ``r`` of ``S`` values."""
        _check_columns(columns)
        per = SLOTS // columns
        cts = self._fresh(x_blobs, SLOTS // per, what)
        rv = np.zeros(SLOTS)
        rr = np.asarray(r, dtype=np.float64)
        if rr.ndim != 1 or rr.size > SLOTS:
            raise HEError(f"{rr.size} row weights do not fit {SLOTS} rows")
        rv[:rr.size] = rr
        acc: Any = None
        for i, ct in enumerate(cts):
            acc = self._accumulate(acc, self._product(
                ct, np.repeat(rv[i * per:(i + 1) * per], columns)))
        if acc is None:
            acc = self._zero(cts[0])
        self._fold(acc, columns)
        return self._finish(acc, None)
