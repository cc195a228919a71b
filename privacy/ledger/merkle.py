"""RFC 6962 / RFC 9162 Merkle tree math: hashes, tree heads, proofs and their checks.

Pure functions over SHA-256 leaf hashes; no storage. The tree is the one Certificate
Transparency uses:

* leaf hash ``SHA-256(0x00 || leaf)``, interior node ``SHA-256(0x01 || left || right)``;
* the Merkle Tree Hash (MTH) of ``n`` leaves splits at the largest power of two ``k < n``
  (RFC 6962 §2.1), so any size works, not just powers of two; the empty tree hashes to
  ``SHA-256("")``;
* inclusion (audit) paths and consistency proofs as in RFC 6962 §2.1.1 and §2.1.2,
  checked with the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2.

A *frontier* (compact range) is the list of hashes of the perfect subtrees that make up a
tree of ``n`` leaves, one per set bit of ``n``, largest (leftmost) first. Appending a leaf
updates it with amortised O(1) hashes and the tree head follows in O(log n).

The verifiers raise :class:`privacy.errors.IntegrityError`; they never return ``False``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from privacy.errors import InputError, IntegrityError

__all__ = [
    "HASH_SIZE",
    "EMPTY_ROOT",
    "leaf_hash",
    "node_hash",
    "root_of",
    "frontier_append",
    "frontier_root",
    "frontier_of",
    "inclusion_proof",
    "consistency_proof",
    "verify_inclusion",
    "verify_consistency",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 6962 leaf hash ``SHA-256(0x00 || data)``."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 interior node hash ``SHA-256(0x01 || left || right)``."""
    return _sha256(b"\x01" + left + right).digest()


def _mth(hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH of the leaf hashes ``hashes[lo:hi]``, level by level (an odd node moves up)."""
    if hi <= lo:
        return EMPTY_ROOT
    level = list(hashes[lo:hi])
    while len(level) > 1:
        odd = level[-1] if len(level) % 2 else None
        level = [
            _sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if odd is not None:
            level.append(odd)
    return level[0]


def root_of(hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash of a sequence of leaf hashes (any length, 0 included)."""
    return _mth(hashes, 0, len(hashes))


def frontier_append(frontier: list[bytes], size: int, leaf: bytes) -> None:
    """Add one leaf hash to the frontier of a tree of ``size`` leaves, in place.

    Each trailing set bit of ``size`` marks a perfect subtree that the new leaf completes:
    merge them right to left.
    """
    node = leaf
    while size & 1:
        node = _sha256(b"\x01" + frontier.pop() + node).digest()
        size >>= 1
    frontier.append(node)


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """Return the tree head of the tree a frontier describes (O(log n) hashes)."""
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1]
    for node in reversed(frontier[:-1]):
        root = _sha256(b"\x01" + node + root).digest()
    return root


def frontier_of(hashes: Sequence[bytes]) -> list[bytes]:
    """Return the frontier of the tree over ``hashes``."""
    frontier: list[bytes] = []
    for size, h in enumerate(hashes):
        frontier_append(frontier, size, h)
    return frontier


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_proof(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """Return the audit path PATH(index, D[n]) of RFC 6962 §2.1.1, leaf-side first.

    Raises
    ------
    InputError
        When ``index`` is not in ``0 .. len(hashes) - 1``.
    """
    n = len(hashes)
    if not 0 <= index < n:
        raise InputError(f"leaf index {index} is outside a tree of size {n}")
    path: list[bytes] = []
    lo, hi, m = 0, n, index
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            path.append(_mth(hashes, lo + k, hi))
            hi = lo + k
        else:
            path.append(_mth(hashes, lo, lo + k))
            lo, m = lo + k, m - k
    path.reverse()
    return path


def consistency_proof(old_size: int, hashes: Sequence[bytes]) -> list[bytes]:
    """Return PROOF(old_size, D[n]) of RFC 6962 §2.1.2 (empty when ``old_size`` is 0 or n).

    Raises
    ------
    InputError
        When ``old_size`` is not in ``0 .. len(hashes)``.
    """
    n = len(hashes)
    if not 0 <= old_size <= n:
        raise InputError(f"old size {old_size} is outside 0..{n}")
    if old_size in (0, n):
        return []
    proof: list[bytes] = []
    lo, hi, m, complete = 0, n, old_size, True
    # SUBPROOF(m, D[lo:hi], complete), unrolled; nodes are collected root side first.
    while True:
        size = hi - lo
        if m == size:
            if not complete:
                proof.append(_mth(hashes, lo, hi))
            break
        k = _split(size)
        if m <= k:
            proof.append(_mth(hashes, lo + k, hi))
            hi = lo + k
        else:
            proof.append(_mth(hashes, lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    proof.reverse()
    return proof


def _fail(what: str) -> IntegrityError:
    return IntegrityError(f"proof verification failed: {what}")


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, (bytes, bytearray)) or len(value) != HASH_SIZE:
        raise _fail(f"{what} is not a {HASH_SIZE}-byte hash")


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with ``root``.

    Implements RFC 9162 §2.1.3.2.

    Raises
    ------
    IntegrityError
        When the proof does not show inclusion (wrong leaf, index, size, root or path).
    """
    _check_hash(leaf_hash, "leaf hash")
    _check_hash(root, "root")
    if not 0 <= index < size:
        raise _fail("index outside the tree")
    fn, sn = index, size - 1
    r = bytes(leaf_hash)
    for p in proof:
        _check_hash(p, "proof node")
        if sn == 0:
            raise _fail("proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise _fail("proof is too short")
    if r != root:
        raise _fail("root does not match")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (``new_size``, ``new_root``) extends (``old_size``, ``old_root``).

    Implements RFC 9162 §2.1.4.2. An empty old tree (root ``SHA-256("")``) is extended by
    every tree, with an empty proof; equal sizes need equal roots and an empty proof.

    Raises
    ------
    IntegrityError
        When the proof does not show that the new tree is an append-only extension.
    """
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    if not 0 <= old_size <= new_size:
        raise _fail("sizes are not in order")
    if old_size == 0 or old_size == new_size:
        if proof:
            raise _fail("proof should be empty")
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise _fail("old root is not the empty tree's root")
        if old_size == new_size and old_root != new_root:
            raise _fail("roots differ for the same size")
        return
    if not proof:
        raise _fail("proof is empty")
    for p in proof:
        _check_hash(p, "proof node")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node itself
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise _fail("proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise _fail("proof is too short")
    if fr != old_root or sr != new_root:
        raise _fail("roots do not match")
