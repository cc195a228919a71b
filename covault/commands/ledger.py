"""``covault ledger``: read, verify, checkpoint and prove the tamper-evident disclosure log.

keygen (once, the log's operator) -> checkpoint (periodically; hand the file to the
parties concerned) -> verify (anyone holding the database, a checkpoint and the public
key) -> prove (an inclusion proof for one record against the current root).
"""

from __future__ import annotations

import base64
import os
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from covault.console import emit_json, err, format_option, handle_errors, out, print_table
from covault.keyopts import (
    UNPINNED_WARNING,
    check_pinning,
    kek_for_writing,
    open_signing_key,
    private_key_kek_options,
    unpinned_option,
)
from privacy.errors import InputError, IntegrityError
from privacy.ledger import (
    Checkpoint,
    Ledger,
    LedgerRecord,
    canonical_json,
    generate_signing_key,
    load_public_key,
    save_public_key,
    save_signing_key,
    verify_inclusion,
)

__all__ = ["ledger"]

_SUMMARY = 72


@click.group("ledger")
def ledger() -> None:
    """The tamper-evident disclosure log (RFC 6962 Merkle tree in SQLite).

    Every release of data appends a record; `verify` recomputes the tree and compares it
    with the stored head and with signed checkpoints. Keep checkpoints (and the public
    key) outside the database: only they catch a log rewritten by its administrator.
    Exit codes: 0 verified, 1 verification failed, 2 bad input.
    """


_db_argument = click.argument("db", type=click.Path(dir_okay=True))


def _open(path: str, *, write: bool = False) -> Ledger:
    """Open an existing ledger file; never create one (unlike ``Ledger(path)``).

    Read-only unless ``write``: show, verify and prove leave the file, its timestamps and
    its journal mode as they were. With ``write`` the file is checked read-only first, so
    a missing file, another SQLite database or an empty one is refused untouched.
    """
    ledger = Ledger(path, read_only=True)
    if not write:
        return ledger
    ledger.close()
    return Ledger(path)


def _password(env: str | None) -> bytes | None:
    if env is None:
        return None
    value = os.environ.get(env)
    if not value:
        raise InputError(f"environment variable {env} is not set (--password-env)")
    return value.encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _summary(payload: Any) -> str:
    text = canonical_json(payload)
    return text if len(text) <= _SUMMARY else text[:_SUMMARY - 1] + "\u2026"


def _record_json(r: LedgerRecord) -> dict[str, Any]:
    return {"index": r.index, "ts": r.ts, "kind": r.kind, "payload": dict(r.payload),
            "leaf_hash": r.leaf_hash.hex()}


def _select(lg: Ledger, kind: str | None, last: int | None) -> Iterable[LedgerRecord]:
    if last is None:
        return lg.records(kind)
    if kind is None:
        return lg.records(start=max(0, lg.size - last))
    return deque(lg.records(kind), maxlen=last)


@ledger.command("show")
@_db_argument
@click.option("--kind", "-k", default=None, help="Only records of this kind.")
@click.option("--last", "-n", type=click.IntRange(1, None), default=None,
              help="Only the last N records (after --kind).")
@format_option
@handle_errors
def show(db: str, kind: str | None, last: int | None, fmt: str) -> None:
    """List the records of DB: index, timestamp, kind and payload.

    Each record's leaf hash is re-checked as it is read (exit 1 on a mismatch); run
    `verify` for the whole tree.
    """
    with _open(db) as lg:
        records = list(_select(lg, kind, last))
        if fmt == "json":
            emit_json({"file": db, "origin": lg.origin, "size": lg.size,
                       "records": [_record_json(r) for r in records]})
            return
        print_table(f"{db} — {lg.origin}, {lg.size} records",
                    ["index", "ts", "kind", "payload"],
                    [[r.index, r.ts, r.kind, _summary(r.payload)] for r in records])


@ledger.command("verify")
@_db_argument
@click.option("--checkpoint", "-c", "checkpoint_path", type=click.Path(dir_okay=False),
              default=None, help="A checkpoint file kept outside the database; the log must "
                                 "extend it. Needs --public-key (or --unpinned).")
@click.option("--public-key", "-p", "public_key_path", type=click.Path(dir_okay=False),
              default=None, help="PEM public key that must have signed --checkpoint.")
@unpinned_option
@format_option
@handle_errors
def verify(db: str, checkpoint_path: str | None, public_key_path: str | None,
           unpinned: bool, fmt: str) -> None:
    """Recompute every leaf and the tree of DB; check the stored head and checkpoints.

    With --checkpoint and --public-key, also catch a log rewritten consistently by
    someone with write access. Exit 1 when any check fails.
    """
    check_pinning(checkpoint_path, public_key_path, unpinned)
    cp = Checkpoint.load(checkpoint_path) if checkpoint_path is not None else None
    pub = load_public_key(public_key_path) if public_key_path is not None else None
    with _open(db) as lg:
        try:
            report = lg.verify(cp, public_key=pub)
        except IntegrityError as exc:
            if fmt == "json":
                emit_json({"file": db, "origin": lg.origin, "verified": False,
                           "error": str(exc)})
            raise
    warning = None
    if report.signer_pinned is False:
        warning = UNPINNED_WARNING
        err.print(f"warning: {warning}", markup=False)
    result = {"file": db, "origin": report.origin, "verified": True, "size": report.size,
              "root": report.root.hex(), "root_base64": _b64(report.root),
              "stored_checkpoints": report.stored_checkpoints,
              "checkpoint_size": report.checkpoint_size,
              "signer_pinned": report.signer_pinned}
    if warning is not None:
        result["warning"] = warning
    if fmt == "json":
        emit_json(result)
        return
    out.print(f"verified {db} ({report.origin}): {report.size} records", markup=False)
    out.print(f"root {report.root.hex()}", markup=False)
    out.print(f"stored checkpoints checked: {report.stored_checkpoints}", markup=False)
    if report.checkpoint_size is not None:
        signer = ("signer pinned by --public-key" if report.signer_pinned
                  else "signer NOT pinned (--unpinned)")
        out.print(f"extends checkpoint {checkpoint_path} at size {report.checkpoint_size}; "
                  f"{signer}", markup=False)


@ledger.command("checkpoint")
@_db_argument
@click.option("--key", "-k", "key_path", required=True, type=click.Path(dir_okay=False),
              help="Ed25519 signing key (from `covault ledger keygen`; sealed under the KEK "
                   "of --kek-file/--passphrase-env).")
@click.option("--out", "-o", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Checkpoint file to write (atomically).")
@click.option("--key-name", default=None, help="Signer name on the signature line "
                                               "[default: the ledger's origin].")
@click.option("--password-env", default=None, metavar="VAR",
              help="Environment variable holding the signing key's password (a "
                   "password-encrypted PKCS#8 key).")
@private_key_kek_options(write=False, what="the signing key")
@click.option("--force", is_flag=True, help="Overwrite an existing checkpoint file.")
@format_option
@handle_errors
def checkpoint(db: str, key_path: str, out_path: str, key_name: str | None,
               password_env: str | None, kek_file: str | None, passphrase_env: str,
               force: bool, fmt: str) -> None:
    """Sign the current tree head of DB, record it in the log and write it to --out.

    Hand the file to the parties the disclosures concern, or keep it away from the
    database: the log can later be checked against it with `verify --checkpoint`.
    """
    if Path(out_path).exists() and not force:
        raise InputError(f"{out_path} exists; pass --force to overwrite it")
    key = open_signing_key(key_path, kek_file, passphrase_env, _password(password_env))
    with _open(db, write=True) as lg:
        lg.verify()  # never sign a head that does not match the records
        cp = lg.checkpoint(key, key_name=key_name)
    cp.save(out_path)
    sig = cp.signatures[0]
    if fmt == "json":
        emit_json({"file": out_path, "origin": cp.origin, "size": cp.size,
                   "root": cp.root.hex(), "root_base64": _b64(cp.root), "time": cp.time,
                   "key_name": sig.name, "key_id": sig.key_id.hex()})
        return
    out.print(f"wrote checkpoint {out_path} ({cp.origin}, size {cp.size})", markup=False)
    out.print(cp.to_text(), markup=False, end="")


@ledger.command("keygen")
@click.option("--out", "-o", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Private key file to write (mode 0600; sealed under the KEK).")
@click.option("--public-out", default=None, type=click.Path(dir_okay=False),
              help="Also write the public key (PEM) here, for verifiers.")
@click.option("--password-env", default=None, metavar="VAR",
              help="Instead of a KEK, encrypt the private key as PKCS#8 PEM with the "
                   "password in this environment variable (readable by OpenSSL).")
@private_key_kek_options(write=True, what="the signing key")
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
@format_option
@handle_errors
def keygen(out_path: str, public_out: str | None, password_env: str | None,
           kek_file: str | None, passphrase_env: str, unencrypted_key: bool, force: bool,
           fmt: str) -> None:
    """Create an Ed25519 signing key (ledger checkpoints, signed HE contributions).

    The private key is sealed under a key-encryption key, as keysets are: a passphrase
    in $COVAULT_PASSPHRASE (or --passphrase-env VAR; scrypt) or a 32-byte --kek-file
    ($COVAULT_KEK_FILE); commands that sign need the same. --password-env encrypts it as
    PKCS#8 instead; --unencrypted-key writes it in the clear (readable by its owner
    only). Keep it off the machine that holds the ledger when you can.
    """
    for path in (out_path, public_out):
        if path is not None and Path(path).exists() and not force:
            raise InputError(f"{path} exists; pass --force to overwrite it")
    if public_out is not None and Path(public_out).resolve() == Path(out_path).resolve():
        raise InputError("--public-out must differ from --out")
    password = _password(password_env)
    if password is not None and (unencrypted_key or kek_file):
        raise InputError("--password-env excludes --kek-file and --unencrypted-key")
    kek = None if password is not None else kek_for_writing(
        kek_file, passphrase_env, unencrypted_key, what="the signing key")
    key = generate_signing_key()
    save_signing_key(key, out_path, password=password, kek=kek)
    if public_out is not None:
        save_public_key(key, public_out)
    raw = load_public_key(key).public_bytes_raw()
    protection = ("sealed under the KEK" if kek is not None else
                  "password-encrypted" if password is not None else "unencrypted")
    if fmt == "json":
        emit_json({"file": out_path, "public_file": public_out, "public_key": _b64(raw),
                   "encrypted": password is not None or kek is not None,
                   "protection": protection})
        return
    out.print(f"wrote signing key {out_path} (mode 0600, {protection})", markup=False)
    if public_out is not None:
        out.print(f"wrote public key {public_out}", markup=False)
    out.print(f"public key (raw, base64): {_b64(raw)}", markup=False)


@ledger.command("prove")
@_db_argument
@click.argument("index", type=int)
@format_option
@handle_errors
def prove(db: str, index: int, fmt: str) -> None:
    """Print an inclusion proof of record INDEX in DB against the current root.

    The proof is checked (RFC 9162) before it is printed; the record's leaf hash is
    re-checked against its content.
    """
    with _open(db) as lg:
        size = lg.size
        if not 0 <= index < size:
            raise InputError(f"index {index} is outside 0..{size - 1}" if size
                             else f"{db}: the ledger has no records")
        record = lg.get(index)
        proof = lg.inclusion_proof(index, size)
        root = lg.root_at(size)
        origin = lg.origin
    verify_inclusion(record.leaf_hash, index, size, proof, root)
    if fmt == "json":
        emit_json({"file": db, "origin": origin, "index": index, "size": size,
                   "root": root.hex(), "leaf_hash": record.leaf_hash.hex(),
                   "proof": [h.hex() for h in proof], "record": _record_json(record),
                   "verified": True})
        return
    out.print(f"record {index} of {size} in {db} ({origin}): {record.kind} at {record.ts}",
              markup=False)
    out.print(f"leaf hash {record.leaf_hash.hex()}", markup=False)
    out.print(f"root      {root.hex()}", markup=False)
    for i, h in enumerate(proof):
        out.print(f"proof[{i}]  {h.hex()}", markup=False)
    out.print("inclusion proof verified", markup=False)

