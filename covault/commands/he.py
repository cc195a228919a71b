"""``covault he``: homomorphic aggregation of a column across parties.

keygen (key holder) -> encrypt (each party) -> aggregate (anyone, no secret) ->
decrypt (key holder, only aggregates of >= --min-parties contributors).

Each contribution records the ids of its rows (--id-column, :mod:`privacy.he.rows`):
aggregate refuses inputs whose ids or row order differ, decrypt writes ids with totals.
CKKS keys are sized from the declared bound (--max-value) and --parties.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import numpy as np

from covault.console import (
    check_outputs,
    emit_json,
    force_option,
    format_option,
    handle_errors,
    optional_ledger,
    print_table,
    refuse_overwrite,
)
from covault.keyopts import (
    kek_for_reading,
    kek_for_writing,
    open_signing_key,
    private_key_kek_options,
    warn_if_plain,
)
from privacy.atomic import atomic_output
from privacy.errors import HEError, InputError, PackingOverflowError
from privacy.normalize import DECIMAL

DEFAULT_PARAMS = {"ckks": "ckks-128-8192", "bfv": "bfv-128-8192"}

ledger_option = click.option(
    "--ledger", "ledger_path", type=click.Path(dir_okay=False), default=None,
    help="Append a record of what this step disclosed to this ledger database.",
)


signing_key_option = click.option(
    "--signing-key", "signing_key_path", default=None, type=click.Path(exists=True,
                                                                       dir_okay=False),
    help="Sign with this Ed25519 key (from `covault ledger keygen`; sealed under the KEK "
         "of --kek-file/--passphrase-env).",
)
password_env_option = click.option(
    "--password-env", default=None, metavar="VAR",
    help="Environment variable holding the --signing-key's password (a password-encrypted "
         "PKCS#8 key).",
)
signer_option = click.option(
    "--signer", "signer_paths", multiple=True, type=click.Path(exists=True, dir_okay=False),
    help="A trusted party's Ed25519 public key (PEM); repeat for each party. Every "
         "contribution must then be signed by a distinct one of them.",
)


def _signing_key(path: str | None, password_env: str | None, kek_file: str | None = None,
                 passphrase_env: str = "COVAULT_PASSPHRASE") -> Any:
    if path is None:
        if password_env is not None:
            raise InputError("--password-env needs --signing-key")
        return None
    password = None
    if password_env is not None:
        value = os.environ.get(password_env)
        if not value:
            raise InputError(f"environment variable {password_env} is not set (--password-env)")
        password = value.encode("utf-8")
    return open_signing_key(path, kek_file, passphrase_env, password)


def _public_keys(paths: tuple[str, ...]) -> list[Any] | None:
    if not paths:
        return None
    from privacy.ledger.checkpoint import load_public_key

    return [load_public_key(p) for p in paths]


@contextlib.contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[int], None] | None]:
    if not sys.stderr.isatty() or total < 64:
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda k: bar.advance(task, k)


def _read_key(path: str, kind: str, kek: Any = None) -> tuple[Any, Any]:
    """(key object, layout stored with it or None); a private key is unsealed with ``kek``
    (a function giving the KEK) or read plain with a warning."""
    from privacy.he import serial
    from privacy.he.packing import PackingLayout

    p = Path(path)
    if p.is_dir():
        p = p / (serial.PRIVATE_FILE if kind == "private_key" else serial.PUBLIC_FILE)
    data = p.read_bytes()
    _check_key_kind(data, str(p), kind)
    if kind == "private_key":
        warn_if_plain(data, str(p))
        data = serial.open_private(data, kek, source=str(p), warn=False)
    meta = serial.unpack_container(data, source=str(p), kind=kind).meta()
    lay = PackingLayout.from_dict(meta["layout"]) if meta.get("layout") else None
    return serial.load(data, source=str(p), kind=kind), lay


def _check_key_kind(data: bytes, path: str, kind: str) -> None:
    """Refuse a key file of the wrong kind (a private key given as --public, a public key
    or a vector as --key) with a message saying which file to give, before any warning
    about the private key's protection."""
    from privacy.errors import SerializationError
    from privacy.he import serial
    from privacy.sealed import is_sealed

    if is_sealed(data):
        found = "private_key"
    else:
        try:
            found = serial.unpack_container(data, source=path).kind
        except SerializationError:
            return  # reported as it is by the reader below
    if found == kind:
        return
    if kind == "public_key" and found == "private_key":
        raise InputError(f"{path} is the private key: give --public the public key "
                         f"({serial.PUBLIC_FILE} beside it, or the key folder); the private "
                         "key stays with the key holder")
    if kind == "private_key" and found == "public_key":
        raise InputError(f"{path} is the public key: give --key the private key "
                         f"({serial.PRIVATE_FILE} from he keygen, or the key folder)")
    what = found.replace("_", " ")
    raise InputError(f"{path} holds a {what}, not a {kind.replace('_', ' ')}: give the "
                     "key folder from he keygen")


def _read_table(path: str, columns: list[str]) -> Any:
    """The ``columns`` of a CSV (read as text) or Parquet file."""
    import pyarrow as pa

    if path.lower().endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"cannot read Parquet: {exc}", file=path) from None
    else:
        from pyarrow import csv as pacsv

        from masking.io import csv_error_message, csv_read_options

        try:
            table = pacsv.read_csv(path, read_options=csv_read_options(),
                                   convert_options=pacsv.ConvertOptions(
                                       column_types=dict.fromkeys(columns, pa.string()),
                                       strings_can_be_null=True))
        except pa.ArrowInvalid as exc:
            raise InputError(f"cannot read CSV: {csv_error_message(str(exc))}",
                             file=path) from exc
    for column in columns:
        if column not in table.column_names:
            raise InputError(f"no such column; columns are {', '.join(table.column_names)}",
                             file=path, column=column)
    return table


def _read_ids(table: Any, path: str, column: str) -> list[str]:
    """The id column as text, one non-empty id per row."""
    import pyarrow as pa

    col = table.column(column).combine_chunks()
    if not pa.types.is_string(col.type):
        col = col.cast(pa.string())
    ids = col.to_pylist()
    for row, v in enumerate(ids, start=1):
        if v is None or not v.strip():
            raise InputError("empty id: every row needs its id", file=path, column=column,
                             row=row)
    return ids  # type: ignore[no-any-return]


#: A number as a CSV cell may hold it: ASCII digits, an optional sign, a decimal point
#: and exponent (``-12``, ``+7``, ``19.99``, ``1e9``). Python's int()/float()/Decimal
#: also take ``1_000``, spaces and non-ASCII digits (Arabic-Indic, full-width); those
#: are refused, so a typo never becomes a different number.
NUMBER = re.compile(DECIMAL)
_NON_FINITE = re.compile(r"[+-]?(?:inf|infinity|nan)", re.IGNORECASE)


def _in_rows(exc: Exception) -> str:
    """An HE error about a value "at index i" (of the column, from 0) as "in row i+1",
    the row numbering of every other message about an input file."""
    return re.sub(r"at index (\d+)", lambda m: f"in row {int(m.group(1)) + 1}", str(exc))


def _check_numbers(values: list[Any], path: str, column: str, scheme: str) -> None:
    """Refuse text cells that are not plain ASCII numbers (file, row and column named)."""
    for row, v in enumerate(values, start=1):
        if isinstance(v, str) and not NUMBER.fullmatch(v) and not (
                scheme == "ckks" and _NON_FINITE.fullmatch(v)):
            raise InputError(f"not a number: {v!r} (write ASCII digits with an optional "
                             "sign, decimal point and exponent, e.g. -1234.5; no spaces, "
                             "'_' separators or other digit forms)",
                             file=path, column=column, row=row)


def _read_column(table: Any, path: str, column: str, scheme: str) -> Any:
    import pyarrow as pa

    col = table.column(column).combine_chunks()
    if col.null_count:
        row = int(np.argmax(np.asarray(col.is_null())))
        raise InputError("no value (an empty cell, or one read as missing: NA, NaN, null)",
                         file=path, column=column, row=row + 1)
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        arr = col.to_numpy()
        return arr.astype(np.float64) if scheme == "ckks" else arr
    values = col.to_pylist()
    _check_numbers(values, path, column, scheme)
    if scheme == "ckks":
        out = np.zeros(len(values), dtype=np.float64)
        for row, v in enumerate(values, start=1):
            try:
                out[row - 1] = float(v)
            except ValueError:
                raise InputError(f"not a number: {v!r}", file=path, column=column,
                                 row=row) from None
        if not np.all(np.isfinite(out)):
            row = int(np.argmax(~np.isfinite(out))) + 1
            raise InputError("not a finite number", file=path, column=column, row=row)
        return out
    return np.asarray(values, dtype=object)


def _check_ckks_bound(values: Any, key: Any, path: str, column: str) -> None:
    """Refuse a value beyond what the CKKS key takes from one party, naming the row and
    the keygen options that set the bound."""
    from privacy.he.ckks import ckks_max_abs

    limit = ckks_max_abs(key.params) / key.layout.parties
    big = np.abs(values) > limit
    if big.any():
        row = int(np.argmax(big))
        raise InputError(
            f"value {float(values[row])} exceeds {limit:g}, the largest value this CKKS "
            f"key ({key.params.name}, {key.layout.parties} parties) takes from one party; "
            f"the key holder must make a key for this bound: covault he keygen --scheme ckks "
            f"--max-value {math.ceil(float(np.max(np.abs(values))))} --parties "
            f"{key.layout.parties} "
            "(fewer --parties also raise it)", file=path, column=column, row=row + 1)


def _rows_of(table: Any, path: str, id_column: str | None, no_ids: bool, id_mode: str) -> Any:
    from privacy.he.rows import RowIds

    if id_column is None:
        if not no_ids:
            raise InputError(
                "name the column that identifies each row with --id-column (e.g. "
                "--id-column borrower_id): aggregate then refuses files whose ids or row "
                "order differ; --no-ids adds rows by position, unchecked")
        return None
    if no_ids:
        raise InputError("--id-column and --no-ids exclude each other")
    try:
        return RowIds.of(id_column, _read_ids(table, path, id_column),
                         keep_ids=id_mode == "clear")
    except HEError as exc:
        raise InputError(str(exc), file=path, column=id_column) from None


def _format(values: Any, scale: int, scheme: str) -> list[str]:
    if scheme == "ckks":
        return [repr(float(v)) for v in values]
    digits = len(str(scale)) - 1
    if scale == 1 or 10**digits != scale:
        return [str(v) if scale == 1 else repr(int(v) / scale) for v in values]
    out = []
    for v in values:
        iv = int(v)
        sign = "-" if iv < 0 else ""
        q, r = divmod(abs(iv), scale)
        out.append(f"{sign}{q}.{r:0{digits}d}")
    return out


@click.group("he")
def he() -> None:
    """Homomorphic aggregation: joint sums across banks without sharing the rows.

    The key holder runs keygen and decrypt; each bank runs encrypt on its own column;
    anyone runs aggregate (no secret key needed). Paillier (exact, packed), BFV (exact
    integers) and CKKS (approximate floats) are available.
    """


@he.command()
@click.option("--scheme", type=click.Choice(["paillier", "ckks", "bfv"]), default="paillier",
              show_default=True, help="Encryption scheme.")
@click.option("--bits", type=int, default=3072, show_default=True,
              help="Paillier modulus size (>= 2048).")
@click.option("--params", "params", default=None,
              help="CKKS/BFV parameter set, e.g. ckks-128-8192, bfv-128-8192.")
@click.option("--parties", type=int, default=16, show_default=True,
              help="Most parties an aggregate may combine (sets the headroom).")
@click.option("--value-bits", type=int, default=64, show_default=True,
              help="Paillier/BFV: signed bits of one (scaled) value.")
@click.option("--max-value", type=float, default=None,
              help="CKKS: the largest |value| one party encrypts (e.g. 1e9 for amounts up "
                   "to 10 million yuan in fen); the parameters are chosen from it and "
                   "--parties.")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for public.cvhe and private.cvhe (0600, sealed under the KEK).")
@click.option("--force", is_flag=True,
              help="Replace a key pair already in the folder (aggregates made under the "
                   "old private key can no longer be decrypted).")
@click.option("--fast-randomness", is_flag=True,
              help="Paillier: encrypt with a short DJN exponent (2*kappa bits, e.g. 224 "
                   "at 2048) instead of bits/2: about 5x faster encryption under a "
                   "stronger assumption. Part of the key; every party uses it.")
@private_key_kek_options(write=True)
@ledger_option
@format_option
@handle_errors
def keygen(scheme: str, bits: int, params: str | None, parties: int, value_bits: int,
           max_value: float | None, out_dir: str, force: bool, fast_randomness: bool,
           kek_file: str | None, passphrase_env: str, unencrypted_key: bool,
           ledger_path: str | None, fmt: str) -> None:
    """Generate a key pair: public part for the parties, private part for the key holder.

    CKKS needs the bound of the values (--max-value) or a named --params set: its
    parameters are chosen so that sums of --parties values up to that bound fit, with
    the finest precision that allows. Refuses a folder that already holds a key file
    unless --force is given.

    private.cvhe is sealed under a key-encryption key, as keysets are: a passphrase in
    $COVAULT_PASSPHRASE (or --passphrase-env VAR; scrypt) or a 32-byte --kek-file
    ($COVAULT_KEK_FILE). `he decrypt` needs the same. --unencrypted-key writes it in
    the clear instead.
    """
    from privacy.he import serial
    from privacy.he.packing import PackingLayout

    folder = Path(out_dir)
    refuse_overwrite(folder / serial.PRIVATE_FILE, folder / serial.PUBLIC_FILE, force=force)
    if parties < 1:
        raise InputError(f"--parties must be at least 1, got {parties}")
    layout = PackingLayout(value_bits, parties)
    if fast_randomness and scheme != "paillier":
        raise InputError("--fast-randomness applies to Paillier keys only")
    if max_value is not None and scheme != "ckks":
        raise InputError("--max-value sets CKKS parameters; Paillier and BFV carry exact "
                         "integers of --value-bits signed bits (after each party's --scale)")
    kek = kek_for_writing(kek_file, passphrase_env, unencrypted_key, what="the HE private key")
    bound: dict[str, Any] = {}
    if scheme == "paillier":
        from privacy.he.paillier import generate_keypair

        pub, priv = generate_keypair(bits, fast_randomness=fast_randomness)
        public = serial.dump_public_key(pub, layout)
        private = serial.dump_private_key(priv, layout)
        key_id, detail = pub.key_id, (f"{bits}-bit Paillier, {layout.slots(pub.bits)} "
                                      f"values/ct, {pub.exponent_bits}-bit DJN exponent")
    else:
        from privacy.he.ckks import generate_context, get_params

        name = params or DEFAULT_PARAMS[scheme]
        if scheme == "ckks":
            name, bound = _ckks_params(params, max_value, parties)
        if get_params(name).scheme != scheme:
            raise HEError(f"parameter set {name!r} is not a {scheme} set")
        ctx = generate_context(name, layout=layout)
        public, private = serial.dump_context(ctx.public()), serial.dump_context(ctx)
        key_id, detail = ctx.key_id, name
    pub_path, priv_path = serial.write_key_dir(out_dir, public, private, kek=kek)
    with optional_ledger(ledger_path) as led:
        if led is not None:
            led.append("he.keygen", {"scheme": scheme, "key_id": key_id, "detail": detail})
    info = {"scheme": scheme, "key_id": key_id, "detail": detail, "public": str(pub_path),
            "private": str(priv_path), "private_encrypted": kek is not None,
            "parties": parties,
            **({"value_bits": value_bits} if scheme != "ckks" else bound)}
    if fmt == "json":
        emit_json(info)
    else:
        print_table("he keygen", ["field", "value"], [[k, v] for k, v in info.items()])


def _ckks_params(params: str | None, max_value: float | None, parties: int
                 ) -> tuple[str, dict[str, Any]]:
    """The CKKS parameter set for the declared bound, and what it guarantees."""
    from privacy.he.ckks import ckks_fresh_error, ckks_max_abs, ckks_params_for, get_params

    if params is None and max_value is None:
        raise InputError(
            "CKKS needs the bound of the values: --max-value V, the largest |value| one "
            "party encrypts (e.g. --max-value 1e9 for amounts up to 10 million yuan in "
            "fen), with --parties; or a named --params set")
    if params is not None:
        p = get_params(params)
        if p.scheme != "ckks":
            raise InputError(f"parameter set {params!r} is not a ckks set")
    else:
        assert max_value is not None
        try:
            p = ckks_params_for(max_value, parties)
        except HEError as exc:
            raise InputError(f"--max-value {max_value:g} with --parties {parties}: {exc} "
                             "(--scheme bfv or paillier with --scale)") from None
    limit = ckks_max_abs(p) / parties
    if max_value is not None and limit < abs(max_value):
        raise InputError(f"--params {p.name} holds values up to {limit:g} from each of "
                         f"{parties} parties, below --max-value {max_value:g}; leave "
                         "--params out to have it chosen from --max-value")
    return p.name, {"max_value": limit, "error_bound": ckks_fresh_error(p) * parties}


@he.command()
@click.option("--public", "public_path", required=True, type=click.Path(exists=True),
              help="Key folder (or public.cvhe) from keygen.")
@click.option("--column", required=True, help="Column to encrypt, one element per row.")
@click.option("--scale", type=int, default=1, show_default=True,
              help="Fixed-point factor for decimals (100 = cents). Paillier/BFV only.")
@click.option("--party", default=None, help="Party id recorded with the ciphertext "
              "(default: the input file's name).")
@click.option("--id-column", default=None,
              help="Column identifying each row (e.g. borrower_id); its ids, in row order, "
                   "are recorded so that aggregate refuses files whose rows differ.")
@click.option("--id-mode", type=click.Choice(["clear", "digest"]), default="clear",
              show_default=True,
              help="clear: the ids travel with the file and decrypt writes them beside the "
                   "totals; digest: only their SHA-256 travels (decrypt then needs --ids).")
@click.option("--no-ids", is_flag=True,
              help="Record no ids: rows are added by position, and nothing checks that the "
                   "parties' rows are the same customers in the same order.")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Encrypted vector file to write.")
@signing_key_option
@password_env_option
@private_key_kek_options(write=False, what="the --signing-key")
@ledger_option
@force_option
@format_option
@handle_errors
def encrypt(public_path: str, column: str, scale: int, party: str | None,
            id_column: str | None, id_mode: str, no_ids: bool, input_path: str,
            out_path: str, signing_key_path: str | None, password_env: str | None,
            kek_file: str | None, passphrase_env: str, ledger_path: str | None,
            force: bool, fmt: str) -> None:
    """Encrypt one column of a CSV/Parquet file (int64, or decimals with --scale).

    --id-column records the row ids (required unless --no-ids), so that aggregate
    refuses files whose ids or row order differ. With --signing-key the file carries the
    party's signature (over the ids too), which aggregators and the key holder check
    with --signer.
    """
    from privacy.he import serial
    from privacy.he.packing import PackingLayout
    from privacy.he.paillier import PaillierPublicKey
    from privacy.he.secure_sum import contribute

    check_outputs([("--out", out_path)],
                  [("INPUT", input_path), ("--public", public_path),
                   ("--signing-key", signing_key_path), ("--ledger", ledger_path)],
                  force=force)
    key, layout = _read_key(public_path, "public_key")
    scheme = "paillier" if isinstance(key, PaillierPublicKey) else key.params.scheme
    if scheme == "ckks" and scale != 1:
        raise InputError("--scale applies to Paillier/BFV; CKKS encrypts floats directly")
    signing_key = _signing_key(signing_key_path, password_env, kek_file, passphrase_env)
    if id_column is not None and id_column == column:
        raise InputError(f"--id-column {id_column!r} is the column being encrypted")
    table = _read_table(input_path, [column] + ([id_column] if id_column else []))
    if table.num_rows == 0:
        raise InputError("no rows: the file holds only a header; nothing to encrypt",
                         file=input_path)
    rows = _rows_of(table, input_path, id_column, no_ids, id_mode)
    values = _read_column(table, input_path, column, scheme)
    if scheme == "ckks":
        _check_ckks_bound(values, key, input_path, column)
    who = party or Path(input_path).stem
    try:
        with optional_ledger(ledger_path) as led:
            if scheme == "paillier":
                lay = replace(layout or PackingLayout(), scale=scale)
                with _progress("encrypting", -(-len(values) // lay.slots(key.bits))) as tick:
                    vec = contribute(key, values, party=who, layout=lay, name=column,
                                     ledger=led, progress=tick, signing_key=signing_key,
                                     rows=rows)
            else:
                key = replace(key, layout=replace(key.layout, scale=scale))
                vec = contribute(key, values, party=who, name=column, ledger=led,
                                 signing_key=signing_key, rows=rows)
    except PackingOverflowError as exc:
        if scheme == "ckks":
            raise InputError(_in_rows(exc), file=input_path, column=column) from exc
        raise InputError(f"{_in_rows(exc)}: ask the key holder for a key with more "
                         f"--value-bits (now {(layout or key.layout).value_bits}, at most "
                         "64), or encrypt with a smaller --scale", file=input_path,
                         column=column) from exc
    except HEError as exc:
        raise InputError(_in_rows(exc), file=input_path, column=column) from exc
    serial.save(out_path, serial.dump_vector(vec))
    info = {"out": out_path, "scheme": scheme, "key_id": vec.key_id, "party": who,
            "elements": vec.length, "ids": id_column,
            "id_mode": None if rows is None else id_mode,
            "signer": vec.endorsements[0].signer.hex() if vec.endorsements else None}
    if fmt == "json":
        emit_json(info)
    else:
        print_table("he encrypt", ["field", "value"], [[k, v] for k, v in info.items()])


def _load_vector(path: str, context: Any) -> Any:
    from privacy.he import serial

    data = Path(path).read_bytes()
    head = serial.unpack_container(data, source=path, kind="vector")
    if head.scheme != "paillier" and context is None:
        raise InputError(f"{path}: {head.scheme} vectors need --public/--key with their context")
    return serial.load(data, source=path, kind="vector", context=context)


def _check_inputs(vecs: list[Any], paths: tuple[str, ...]) -> None:
    """Name the files when inputs were encrypted under different keys or repeat a party
    (the library's own checks cannot name files)."""
    first_key: dict[str, str] = {}
    party_of: dict[str, str] = {}
    for vec, path in zip(vecs, paths, strict=True):
        key_id = str(vec.key_id)
        if first_key and key_id not in first_key:
            other, other_path = next(iter(first_key.items()))
            raise InputError(f"{path} was encrypted under key {key_id}, {other_path} under "
                             f"key {other}: every input must be encrypted with the same "
                             "public key (he encrypt --public)")
        first_key.setdefault(key_id, path)
        for party in vec.contributors:
            if party in party_of:
                where = (f"{path} is given twice" if party_of[party] == path
                         else f"in both {party_of[party]} and {path}")
                raise InputError(f"party {party!r} contributed more than once ({where}); "
                                 "each party counts once (two files encrypted with the "
                                 "same --party?)")
            party_of[party] = path


@he.command()
@click.argument("inputs", metavar="IN...", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Aggregate file to write.")
@click.option("--public", "public_path", default=None, type=click.Path(exists=True),
              help="Public key folder; required for CKKS/BFV vectors.")
@signer_option
@click.option("--signing-key", "signing_key_path", default=None,
              type=click.Path(exists=True, dir_okay=False),
              help="Sign the aggregate with this Ed25519 key (PEM; needs --signer), for "
                   "the key holder's decrypt --aggregator.")
@password_env_option
@private_key_kek_options(write=False, what="the --signing-key")
@ledger_option
@force_option
@format_option
@handle_errors
def aggregate(inputs: tuple[str, ...], out_path: str, public_path: str | None,
              signer_paths: tuple[str, ...], signing_key_path: str | None,
              password_env: str | None, kek_file: str | None, passphrase_env: str,
              ledger_path: str | None, force: bool, fmt: str) -> None:
    """Add encrypted vectors element-wise and re-randomise; needs no secret key.

    Refuses inputs whose recorded row ids or row orders differ (naming the first row
    that differs), or of which some record ids and others not. With --signer, every
    input must be signed by a distinct one of the trusted keys.
    """
    from privacy.he import serial
    from privacy.he.secure_sum import aggregate as he_aggregate

    check_outputs([("--out", out_path)],
                  [*(("IN", p) for p in inputs), ("--public", public_path),
                   *(("--signer", p) for p in signer_paths),
                   ("--signing-key", signing_key_path), ("--ledger", ledger_path)],
                  force=force)
    signers = _public_keys(signer_paths)
    signing_key = _signing_key(signing_key_path, password_env, kek_file, passphrase_env)
    if signing_key is not None and signers is None:
        raise InputError("--signing-key needs --signer: the aggregate vouches for the "
                         "contribution signatures it checked")
    ctx = _read_key(public_path, "public_key")[0] if public_path else None
    if ctx is not None and not hasattr(ctx, "context"):
        ctx = None
    vecs = [_load_vector(p, ctx) for p in inputs]
    _check_inputs(vecs, inputs)
    try:
        with optional_ledger(ledger_path) as led:
            total = he_aggregate(vecs, ledger=led, signers=signers, signing_key=signing_key,
                                 labels=list(inputs))
    except PackingOverflowError as exc:
        raise InputError(f"{exc}; the key holder sets this headroom with `he keygen "
                         "--parties`") from exc
    serial.save(out_path, serial.dump_vector(total))
    rows = total.rows
    info = {"out": out_path, "inputs": len(vecs), "contributors": ",".join(total.contributors),
            "elements": total.length, "key_id": total.key_id,
            "ids": None if rows is None else rows.column,
            "signed": signing_key is not None}
    if fmt == "json":
        emit_json(info)
    else:
        print_table("he aggregate", ["field", "value"], [[k, v] for k, v in info.items()])


@he.command()
@click.option("--key", "key_path", required=True, type=click.Path(exists=True),
              help="Key folder (or private.cvhe) from keygen.")
@click.argument("sum_path", metavar="SUM", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="CSV to write: the id column and the total per row (header: their "
                   "names).")
@click.option("--ids", "ids_path", default=None, type=click.Path(exists=True, dir_okay=False),
              help="For aggregates encrypted with --id-mode digest: the CSV/Parquet file "
                   "holding the ids, in row order (checked against the digest).")
@click.option("--id-column", default=None,
              help="The id column in --ids (default: the one recorded at encryption).")
@click.option("--min-parties", type=int, default=3, show_default=True,
              help="Refuse aggregates of fewer contributors.")
@signer_option
@click.option("--aggregator", "aggregator_paths", multiple=True,
              type=click.Path(exists=True, dir_okay=False),
              help="The aggregator's Ed25519 public key (PEM); with --signer, the aggregate "
                   "must carry its signature.")
@private_key_kek_options(write=False)
@ledger_option
@force_option
@format_option
@handle_errors
def decrypt(key_path: str, sum_path: str, out_path: str, ids_path: str | None,
            id_column: str | None, min_parties: int, signer_paths: tuple[str, ...],
            aggregator_paths: tuple[str, ...], kek_file: str | None, passphrase_env: str,
            ledger_path: str | None, force: bool, fmt: str) -> None:
    """Decrypt an aggregate (only if it has >= --min-parties contributors) to CSV: each
    row's id (recorded at encryption) and its total.

    The aggregate's layout must match the one stored with the key. With --signer and
    --aggregator, only distinct trusted signers count towards --min-parties.
    """
    from privacy.he.secure_sum import decrypt_aggregate

    check_outputs([("--out", out_path)],
                  [("--key", key_path), ("SUM", sum_path), ("--ids", ids_path),
                   *(("--signer", p) for p in signer_paths),
                   *(("--aggregator", p) for p in aggregator_paths),
                   ("--ledger", ledger_path), ("--kek-file", kek_file)], force=force)
    signers, aggregators = _public_keys(signer_paths), _public_keys(aggregator_paths)
    if (signers is None) != (aggregators is None):
        raise InputError("--signer and --aggregator go together: contribution signatures "
                         "count only inside an aggregate signed by a trusted aggregator")
    key, key_layout = _read_key(key_path, "private_key",
                                kek_for_reading(kek_file, passphrase_env))
    ctx = key if hasattr(key, "context") else None
    vec = _load_vector(sum_path, ctx)
    ids = _decrypt_ids(vec.rows, ids_path, id_column)
    scheme = "paillier" if ctx is None else vec.scheme
    with optional_ledger(ledger_path) as led, _progress(
        "decrypting", len(getattr(vec, "ciphertexts", []))
    ) as tick:
        ints = decrypt_aggregate(key, vec, min_parties=min_parties, scaled=True,
                                 ledger=led, progress=tick, layout=key_layout,
                                 signers=signers, aggregators=aggregators)
    cells = _format(ints, vec.layout.scale, scheme)
    with atomic_output(out_path, "w") as fh:
        w = csv.writer(fh, lineterminator="\n")
        if ids is None:
            w.writerow([vec.name or "value"])
            w.writerows([c] for c in cells)
        else:
            w.writerow([vec.rows.column, vec.name or "value"])
            w.writerows(zip(ids, cells, strict=True))
    info = {"out": out_path, "elements": len(cells), "contributors": len(vec.contributors),
            "ids": None if ids is None else vec.rows.column}
    if fmt == "json":
        emit_json(info)
    else:
        print_table("he decrypt", ["field", "value"], [[k, v] for k, v in info.items()])


def _decrypt_ids(rows: Any, ids_path: str | None, id_column: str | None) -> list[str] | None:
    """The ids to write beside the totals: recorded in the aggregate, or read from
    ``ids_path`` and checked against the recorded digest."""
    if rows is None:
        if ids_path is not None:
            raise InputError("--ids: this aggregate records no row ids (its inputs were "
                             "encrypted with --no-ids), so they cannot be checked")
        return None
    if ids_path is None:
        if rows.ids is None:
            raise InputError(
                f"the aggregate carries only the digest of its {rows.count} row ids "
                f"(encrypted with --id-mode digest): pass the file that holds them, in row "
                f"order, with --ids FILE (column {rows.column!r}, or name it with --id-column)")
        return list(rows.ids)
    from privacy.he.rows import RowIds

    column = id_column or rows.column
    got = _read_ids(_read_table(ids_path, [column]), ids_path, column)
    try:
        mine = RowIds.of(column, got)
    except HEError as exc:
        raise InputError(str(exc), file=ids_path, column=column) from None
    if not rows.same_rows(mine):
        raise InputError(
            f"these {mine.count} ids are not the {rows.count} ids the aggregate was "
            "encrypted with, in the same order (digests differ)", file=ids_path, column=column)
    return got
