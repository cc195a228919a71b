"""Full verification of a ledger database: leaves, tree head, stored and external checkpoints.

Internal to :mod:`privacy.ledger`; call :meth:`privacy.ledger.Ledger.verify`, which runs
:func:`verify_database` in a read transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from privacy.errors import InputError, SerializationError
from privacy.ledger import merkle
from privacy.ledger.checkpoint import Checkpoint, PublicKeySource, load_public_key, verify_with_any
from privacy.ledger.records import leaf_hash_of, verification_failed
from privacy.ledger.store import read_head

__all__ = ["VerifyReport", "verify_database"]

_fail = verification_failed


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`Ledger.verify` checked: tree size and root, checkpoints compared.

    ``signer_pinned`` says whose signature the external checkpoint was checked against:
    ``True`` a key the caller gave (``public_key``), ``False`` any signer key the ledger
    itself recorded (which whoever can rewrite the database can add), ``None`` no
    external checkpoint.
    """

    origin: str
    size: int
    root: bytes
    stored_checkpoints: int
    checkpoint_size: int | None
    signer_pinned: bool | None = None


def _stored_signers(db: sqlite3.Connection) -> list[Ed25519PublicKey]:
    rows = db.execute("SELECT public_key FROM signers").fetchall()
    # raw 32-byte keys only: bytes(n) of an integer n would allocate n bytes
    if any(not isinstance(r[0], bytes) or len(r[0]) != 32 for r in rows):
        raise _fail("a stored signer key is malformed")
    try:
        return [load_public_key(r[0]) for r in rows]
    except ValueError:
        raise _fail("a stored signer key is malformed") from None


def verify_database(db: sqlite3.Connection, origin: str, cp: Checkpoint | None,
                    public_key: PublicKeySource | None) -> VerifyReport:
    """Recompute every leaf and the tree; compare with the stored head and checkpoints.

    ``origin`` is the log's stored origin; ``cp`` an external checkpoint to check the log
    against (signed by ``public_key``, or by a signer the log recorded when ``None``).

    Raises
    ------
    IntegrityError
        Any check failed; the message names the check, never the data.
    InputError
        ``cp`` is given, ``public_key`` is not and the log recorded no signer.
    """
    size, root, frontier_stored = read_head(db)
    stored = db.execute("SELECT size, root, note FROM checkpoints").fetchall()
    if any(type(s) is not int or s < 0 or not isinstance(r, bytes) or not isinstance(t, str)
           for s, r, t in stored):
        raise _fail("a stored checkpoint row has fields of the wrong type")
    signers = _stored_signers(db)
    targets = sorted({s for s, _, _ in stored} | ({cp.size} if cp else set()))
    roots: dict[int, bytes] = {0: merkle.EMPTY_ROOT}
    pending = iter(t for t in targets if t > 0)
    nxt = next(pending, -1)
    frontier: list[bytes] = []
    n = 0
    for idx, ts, kind, text, stored_hash in db.execute(
            "SELECT idx, ts, kind, payload, leaf_hash FROM records ORDER BY idx"):
        if idx != n:
            raise _fail("record indices are not contiguous")
        if not (isinstance(ts, str) and isinstance(kind, str) and isinstance(text, str)):
            raise _fail("record fields have the wrong type")
        h = leaf_hash_of(n, ts, kind, text)
        if h != stored_hash:
            raise _fail("record content does not match its leaf hash")
        merkle.frontier_append(frontier, n, h)
        n += 1
        if n == nxt:
            roots[n] = merkle.frontier_root(frontier)
            nxt = next(pending, -1)
    if n < size:
        raise _fail("records are missing at the end of the log")
    if n > size:
        raise _fail("the log has records beyond its tree head")
    if frontier != frontier_stored or merkle.frontier_root(frontier) != root:
        raise _fail("tree head does not match the records")
    for s, r, note in stored:
        if s > n or roots.get(s) != r:
            raise _fail("the log does not extend a checkpoint it issued")
        try:
            issued = Checkpoint.from_text(note)
        except SerializationError:
            raise _fail("a stored checkpoint is malformed") from None
        if (issued.origin, issued.size, issued.root) != (origin, s, r):
            raise _fail("a stored checkpoint does not match its row")
        verify_with_any(issued, signers, _fail("a stored checkpoint's signature is invalid"))
    if cp is not None:
        if cp.origin != origin:
            raise _fail("the checkpoint is for a different log")
        if public_key is not None:
            keys = [load_public_key(public_key)]
        elif signers:
            keys = signers
        else:
            raise InputError("no public key to check the checkpoint's signature: "
                             "pass public_key")
        verify_with_any(cp, keys, _fail("the checkpoint's signature is invalid or from "
                                        "another key"))
        if cp.size > n:
            raise _fail("the log is shorter than the checkpoint (truncated)")
        if roots[cp.size] != cp.root:
            raise _fail("the log is not consistent with the checkpoint")
    return VerifyReport(origin, n, root, len(stored), cp.size if cp else None,
                        None if cp is None else public_key is not None)
