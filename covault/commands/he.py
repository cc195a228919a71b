"""``covault he``: homomorphic aggregation of a column across parties.

keygen (key holder) -> encrypt (each party) -> aggregate (anyone, no secret) ->
decrypt (key holder, only aggregates of >= --min-parties contributors).
"""

from __future__ import annotations

import contextlib
import csv
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import numpy as np

from covault.console import (
    emit_json,
    format_option,
    handle_errors,
    optional_ledger,
    print_table,
    refuse_overwrite,
)
from privacy.atomic import atomic_output
from privacy.errors import HEError, InputError

DEFAULT_PARAMS = {"ckks": "ckks-128-8192", "bfv": "bfv-128-8192"}

ledger_option = click.option(
    "--ledger", "ledger_path", type=click.Path(dir_okay=False), default=None,
    help="Append a record of what this step disclosed to this ledger database.",
)


signing_key_option = click.option(
    "--signing-key", "signing_key_path", default=None, type=click.Path(exists=True,
                                                                       dir_okay=False),
    help="Sign with this Ed25519 key (PEM, from `covault ledger keygen`).",
)
password_env_option = click.option(
    "--password-env", default=None, metavar="VAR",
    help="Environment variable holding the --signing-key's password.",
)
signer_option = click.option(
    "--signer", "signer_paths", multiple=True, type=click.Path(exists=True, dir_okay=False),
    help="A trusted party's Ed25519 public key (PEM); repeat for each party. Every "
         "contribution must then be signed by a distinct one of them.",
)


def _signing_key(path: str | None, password_env: str | None) -> Any:
    if path is None:
        if password_env is not None:
            raise InputError("--password-env needs --signing-key")
        return None
    from privacy.ledger.checkpoint import load_signing_key

    password = None
    if password_env is not None:
        value = os.environ.get(password_env)
        if not value:
            raise InputError(f"environment variable {password_env} is not set (--password-env)")
        password = value.encode("utf-8")
    return load_signing_key(path, password=password)


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


def _read_key(path: str, kind: str) -> tuple[Any, Any]:
    """(key object, layout stored with it or None)."""
    from privacy.he import serial
    from privacy.he.packing import PackingLayout

    p = Path(path)
    if p.is_dir():
        p = p / (serial.PRIVATE_FILE if kind == "private_key" else serial.PUBLIC_FILE)
    data = p.read_bytes()
    meta = serial.unpack_container(data, source=str(p), kind=kind).meta()
    lay = PackingLayout.from_dict(meta["layout"]) if meta.get("layout") else None
    return serial.load(data, source=str(p), kind=kind), lay


def _read_column(path: str, column: str, scheme: str) -> Any:
    import pyarrow as pa

    if path.lower().endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    else:
        from pyarrow import csv as pacsv

        from masking.io import csv_error_message, csv_read_options

        try:
            table = pacsv.read_csv(path, read_options=csv_read_options(),
                                   convert_options=pacsv.ConvertOptions(
                                       column_types={column: pa.string()},
                                       strings_can_be_null=True))
        except pa.ArrowInvalid as exc:
            raise InputError(f"cannot read CSV: {csv_error_message(str(exc))}",
                             file=path) from exc
    if column not in table.column_names:
        raise InputError(f"no such column; columns are {', '.join(table.column_names)}",
                         file=path, column=column)
    col = table.column(column).combine_chunks()
    if col.null_count:
        row = int(np.argmax(np.asarray(col.is_null())))
        raise InputError("empty value", file=path, column=column, row=row + 1)
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        arr = col.to_numpy()
        return arr.astype(np.float64) if scheme == "ckks" else arr
    values = col.to_pylist()
    if scheme == "ckks":
        try:
            return np.asarray([float(v) for v in values], dtype=np.float64)
        except ValueError as exc:
            raise InputError(f"not a number: {exc}", file=path, column=column) from exc
    return np.asarray(values, dtype=object)


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
              help="Signed bits of one (scaled) value.")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for public.cvhe and private.cvhe (0600).")
@click.option("--force", is_flag=True,
              help="Replace a key pair already in the folder (aggregates made under the "
                   "old private key can no longer be decrypted).")
@click.option("--fast-randomness", is_flag=True,
              help="Paillier: encrypt with a short DJN exponent (2*kappa bits, e.g. 224 "
                   "at 2048) instead of bits/2: about 5x faster encryption under a "
                   "stronger assumption. Part of the key; every party uses it.")
@ledger_option
@format_option
@handle_errors
def keygen(scheme: str, bits: int, params: str | None, parties: int, value_bits: int,
           out_dir: str, force: bool, fast_randomness: bool, ledger_path: str | None,
           fmt: str) -> None:
    """Generate a key pair: public part for the parties, private part for the key holder.

    Refuses a folder that already holds a key file unless --force is given.
    """
    from privacy.he import serial
    from privacy.he.packing import PackingLayout

    folder = Path(out_dir)
    refuse_overwrite(folder / serial.PRIVATE_FILE, folder / serial.PUBLIC_FILE, force=force)
    layout = PackingLayout(value_bits, parties)
    if fast_randomness and scheme != "paillier":
        raise InputError("--fast-randomness applies to Paillier keys only")
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
        if get_params(name).scheme != scheme:
            raise HEError(f"parameter set {name!r} is not a {scheme} set")
        ctx = generate_context(name, layout=layout)
        public, private = serial.dump_context(ctx.public()), serial.dump_context(ctx)
        key_id, detail = ctx.key_id, name
    pub_path, priv_path = serial.write_key_dir(out_dir, public, private)
    with optional_ledger(ledger_path) as led:
        if led is not None:
            led.append("he.keygen", {"scheme": scheme, "key_id": key_id, "detail": detail})
    info = {"scheme": scheme, "key_id": key_id, "detail": detail, "public": str(pub_path),
            "private": str(priv_path), "parties": parties, "value_bits": value_bits}
    if fmt == "json":
        emit_json(info)
    else:
        print_table("he keygen", ["field", "value"], [[k, v] for k, v in info.items()])


@he.command()
@click.option("--public", "public_path", required=True, type=click.Path(exists=True),
              help="Key folder (or public.cvhe) from keygen.")
@click.option("--column", required=True, help="Column to encrypt, one element per row.")
@click.option("--scale", type=int, default=1, show_default=True,
              help="Fixed-point factor for decimals (100 = cents). Paillier/BFV only.")
@click.option("--party", default=None, help="Party id recorded with the ciphertext "
              "(default: the input file's name).")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Encrypted vector file to write.")
@signing_key_option
@password_env_option
@ledger_option
@format_option
@handle_errors
def encrypt(public_path: str, column: str, scale: int, party: str | None, input_path: str,
            out_path: str, signing_key_path: str | None, password_env: str | None,
            ledger_path: str | None, fmt: str) -> None:
    """Encrypt one column of a CSV/Parquet file (int64, or decimals with --scale).

    With --signing-key the file carries the party's signature, which aggregators and the
    key holder check with --signer.
    """
    from privacy.he import serial
    from privacy.he.packing import PackingLayout
    from privacy.he.paillier import PaillierPublicKey
    from privacy.he.secure_sum import contribute

    key, layout = _read_key(public_path, "public_key")
    scheme = "paillier" if isinstance(key, PaillierPublicKey) else key.params.scheme
    if scheme == "ckks" and scale != 1:
        raise InputError("--scale applies to Paillier/BFV; CKKS encrypts floats directly")
    signing_key = _signing_key(signing_key_path, password_env)
    values = _read_column(input_path, column, scheme)
    who = party or Path(input_path).stem
    try:
        with optional_ledger(ledger_path) as led:
            if scheme == "paillier":
                lay = replace(layout or PackingLayout(), scale=scale)
                with _progress("encrypting", -(-len(values) // lay.slots(key.bits))) as tick:
                    vec = contribute(key, values, party=who, layout=lay, name=column,
                                     ledger=led, progress=tick, signing_key=signing_key)
            else:
                key = replace(key, layout=replace(key.layout, scale=scale))
                vec = contribute(key, values, party=who, name=column, ledger=led,
                                 signing_key=signing_key)
    except HEError as exc:
        raise InputError(str(exc), file=input_path, column=column) from exc
    serial.save(out_path, serial.dump_vector(vec))
    info = {"out": out_path, "scheme": scheme, "key_id": vec.key_id, "party": who,
            "elements": vec.length,
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
@ledger_option
@format_option
@handle_errors
def aggregate(inputs: tuple[str, ...], out_path: str, public_path: str | None,
              signer_paths: tuple[str, ...], signing_key_path: str | None,
              password_env: str | None, ledger_path: str | None, fmt: str) -> None:
    """Add encrypted vectors element-wise and re-randomise; needs no secret key.

    With --signer, every input must be signed by a distinct one of the trusted keys.
    """
    from privacy.he import serial
    from privacy.he.secure_sum import aggregate as he_aggregate

    signers = _public_keys(signer_paths)
    signing_key = _signing_key(signing_key_path, password_env)
    if signing_key is not None and signers is None:
        raise InputError("--signing-key needs --signer: the aggregate vouches for the "
                         "contribution signatures it checked")
    ctx = _read_key(public_path, "public_key")[0] if public_path else None
    if ctx is not None and not hasattr(ctx, "context"):
        ctx = None
    vecs = [_load_vector(p, ctx) for p in inputs]
    with optional_ledger(ledger_path) as led:
        total = he_aggregate(vecs, ledger=led, signers=signers, signing_key=signing_key)
    serial.save(out_path, serial.dump_vector(total))
    info = {"out": out_path, "inputs": len(vecs), "contributors": ",".join(total.contributors),
            "elements": total.length, "key_id": total.key_id,
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
              help="CSV to write: the column's name as header, one row per element.")
@click.option("--min-parties", type=int, default=3, show_default=True,
              help="Refuse aggregates of fewer contributors.")
@signer_option
@click.option("--aggregator", "aggregator_paths", multiple=True,
              type=click.Path(exists=True, dir_okay=False),
              help="The aggregator's Ed25519 public key (PEM); with --signer, the aggregate "
                   "must carry its signature.")
@ledger_option
@format_option
@handle_errors
def decrypt(key_path: str, sum_path: str, out_path: str, min_parties: int,
            signer_paths: tuple[str, ...], aggregator_paths: tuple[str, ...],
            ledger_path: str | None, fmt: str) -> None:
    """Decrypt an aggregate (only if it has >= --min-parties contributors) to CSV.

    The aggregate's layout must match the one stored with the key. With --signer and
    --aggregator, only distinct trusted signers count towards --min-parties.
    """
    from privacy.he.secure_sum import decrypt_aggregate

    signers, aggregators = _public_keys(signer_paths), _public_keys(aggregator_paths)
    if (signers is None) != (aggregators is None):
        raise InputError("--signer and --aggregator go together: contribution signatures "
                         "count only inside an aggregate signed by a trusted aggregator")
    key, key_layout = _read_key(key_path, "private_key")
    ctx = key if hasattr(key, "context") else None
    vec = _load_vector(sum_path, ctx)
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
        w.writerow([vec.name or "value"])
        w.writerows([c] for c in cells)
    info = {"out": out_path, "elements": len(cells), "contributors": len(vec.contributors)}
    if fmt == "json":
        emit_json(info)
    else:
        print_table("he decrypt", ["field", "value"], [[k, v] for k, v in info.items()])
