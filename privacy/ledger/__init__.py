"""Tamper-evident, append-only disclosure log: an RFC 6962 Merkle tree kept in SQLite.

Every covault capability records what it released with :meth:`Ledger.append`; the log
hands out inclusion and consistency proofs and Ed25519-signed checkpoints. The modules,
each importing only those listed after it:

* :mod:`privacy.ledger.log` - :class:`Ledger`, the log (what it stores and detects);
* :mod:`privacy.ledger.verify` - full verification of a ledger file;
* :mod:`privacy.ledger.store` - the SQLite schema, transactions and the stored tree head;
* :mod:`privacy.ledger.records` - records as Merkle leaves (canonical JSON);
* :mod:`privacy.ledger.checkpoint` - signed checkpoints, signed notes, Ed25519 keys;
* :mod:`privacy.ledger.merkle` - RFC 6962 Merkle math: tree heads, proofs, their checks.
"""

from privacy.ledger import merkle
from privacy.ledger.checkpoint import (
    Checkpoint,
    NoteSignature,
    PrivateKeySource,
    PublicKeySource,
    StrPath,
    generate_signing_key,
    load_public_key,
    load_signing_key,
    note_key_id,
    save_public_key,
    save_signing_key,
    sign_note,
)
from privacy.ledger.log import Ledger
from privacy.ledger.merkle import verify_consistency, verify_inclusion
from privacy.ledger.records import LedgerRecord, canonical_json, leaf_bytes
from privacy.ledger.verify import VerifyReport

__all__ = [
    "Ledger",
    "LedgerRecord",
    "Checkpoint",
    "NoteSignature",
    "VerifyReport",
    "canonical_json",
    "leaf_bytes",
    "generate_signing_key",
    "save_signing_key",
    "save_public_key",
    "load_signing_key",
    "load_public_key",
    "note_key_id",
    "sign_note",
    "verify_inclusion",
    "verify_consistency",
    "merkle",
    "StrPath",
    "PrivateKeySource",
    "PublicKeySource",
]
