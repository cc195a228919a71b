"""Fuzz HE files (``privacy/he/serial.py``): Paillier public and private keys, signed
encrypted vectors, CKKS contexts and vectors; and the vertical-FL ciphertext lists and
CKKS key bundles (``privacy/he/linear.py``).

Mutations are made both below the SHA-256 digest (byte edits the digest must catch)
and above it (the file re-packed with a fresh digest, as anyone can: metadata JSON,
field bytes, header bytes, missing, extra and oversized fields).

Nothing accepted wrongly:

* a key file that loads under the original key id holds the original parameters (the id
  is recomputed from ``n``, ``h_s`` and the exponent length, or the whole CKKS context);
* a vector that passes :func:`~privacy.he.signing.check_contributions` with the party's
  key holds the original ciphertexts and metadata, and decrypts to the original values.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from covault.cli import main
from privacy.errors import HEError, SerializationError
from privacy.he import serial
from privacy.he.ckks import HEContext, TensealVector, generate_context
from privacy.he.paillier import EncryptedVector, PaillierPrivateKey, PaillierPublicKey
from privacy.he.secure_sum import aggregate, contribute, decrypt_aggregate
from privacy.he.signing import check_contributions
from privacy.keys import Kek
from privacy.ledger.checkpoint import generate_signing_key, save_public_key, save_signing_key

from ._fuzz import (
    DEEP_LIST,
    DEEP_OBJECT,
    HUGE_INT,
    World,
    cli,
    fuzz_settings,
    mutate_bytes,
    mutate_json,
    note,
    outcome,
    random_bytes,
)

VALUES = [5, -7, 1_000_000]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    d = tmp_path_factory.mktemp("fuzz-he")
    keys = d / "keys"
    kek_file = d / "kek.hex"
    kek_file.write_text(bytes(range(32)).hex())
    kek_file.chmod(0o600)
    kek = Kek.from_key_file(kek_file)
    res = cli("HE setup", main, ["he", "keygen", "--bits", "2048", "--parties", "4",
                                 "--kek-file", str(kek_file), "-o", str(keys)])
    assert res.exit_code == 0, res.output
    signer = generate_signing_key()
    save_signing_key(signer, d / "party.pem")
    save_public_key(signer, d / "party.pub")
    (d / "a.csv").write_text("id,amount\n" + "".join(f"r{i},{v}\n" for i, v in enumerate(VALUES)))
    vec_path = d / "a.cvhe"
    res = cli("HE setup", main, ["he", "encrypt", "--public", str(keys), "--column", "amount",
                                 "--id-column", "id", "--party", "bank-a", "--signing-key",
                                 str(d / "party.pem"), str(d / "a.csv"), "-o", str(vec_path)])
    assert res.exit_code == 0, res.output
    (d / "b.csv").write_text("id,amount\n" + "".join(f"r{i},1\n" for i in range(len(VALUES))))
    res = cli("HE setup", main, ["he", "encrypt", "--public", str(keys), "--column", "amount",
                                 "--id-column", "id", "--party", "bank-b", str(d / "b.csv"),
                                 "-o", str(d / "b.cvhe")])
    assert res.exit_code == 0, res.output
    pub = serial.read_file(keys, kind="public_key")
    priv = serial.read_file(keys, kind="private_key", kek=kek)
    ctx = generate_context("ckks-128-8192")
    cpub = ctx.public()
    cvec = contribute(cpub, [1.5, -2.25, 3.0], party="bank-c")
    cvec_d = contribute(cpub, [1.0, 1.0, 1.0], party="bank-d")
    return World(
        dir=d, keys=keys, kek=kek, kek_file=kek_file, signer=signer, pub=pub, priv=priv,
        sealed=(keys / serial.PRIVATE_FILE).read_bytes(),
        files={"paillier public": (keys / serial.PUBLIC_FILE).read_bytes(),
               "paillier private": serial.dump_private_key(priv),
               "paillier vector": vec_path.read_bytes(),
               "ckks public": serial.dump_context(cpub),
               "ckks private": serial.dump_context(ctx),
               "ckks vector": serial.dump_vector(cvec)},
        vec_b=serial.read_file(d / "b.cvhe"), ctx=ctx, cpub=cpub, cvec_d=cvec_d)


# --------------------------------------------------------------------------- mutations
_HEAD = struct.Struct(">4sBBB32sH")


def _pack(head: tuple[Any, ...], fields: list[tuple[bytes, bytes]]) -> bytes:
    """A container with any header values and fields, and a correct digest."""
    parts = [_HEAD.pack(*head)]
    for name, value in fields:
        parts += [struct.pack(">B", len(name)), name, struct.pack(">Q", len(value)), value]
    body = b"".join(parts)
    return body + hashlib.sha256(body).digest()


def mutate_container(data: st.DataObject, blob: bytes) -> bytes:
    """A structure-aware mutation of an HE file, re-packed with a valid digest (or, for
    ``below digest``, a byte edit the digest must catch)."""
    magic, version, kind, scheme, fp, _ = _HEAD.unpack_from(blob)
    c = serial.unpack_container(blob)
    fields = [(k.encode(), v) for k, v in c.fields.items()]
    op = data.draw(st.sampled_from(["meta", "meta", "field", "field", "drop", "add",
                                    "inflate", "header", "below digest"]), label="op")
    if op == "below digest":
        return mutate_bytes(data, blob)
    names = [n for n, _ in fields]
    if op == "meta":
        meta = c.meta()
        i = names.index(b"meta")
        fields[i] = (b"meta", mutate_json(data, meta).encode("utf-8", "surrogatepass"))
    elif op == "field":
        i = data.draw(st.integers(0, len(fields) - 1), label="field")
        fields[i] = (fields[i][0], mutate_bytes(data, fields[i][1]))
    elif op == "drop":
        del fields[data.draw(st.integers(0, len(fields) - 1), label="field")]
    elif op == "add":
        fields.append((data.draw(st.sampled_from([b"n", b"hs", b"p", b"ids", b"meta",
                                                  b"endorsements", b"x", b"\xff"])),
                       data.draw(st.binary(max_size=64))))
    elif op == "inflate":
        i = data.draw(st.integers(0, len(fields) - 1), label="field")
        size = data.draw(st.sampled_from([4096, 65536, 1 << 20]), label="size")
        fields[i] = (fields[i][0], b"\xff" * (size - 1) + b"\x01")
    else:
        which = data.draw(st.integers(0, 4), label="header field")
        head = [magic, version, kind, scheme, fp, len(fields)]
        if which == 4:
            head[4] = mutate_bytes(data, fp, rounds=1).ljust(32, b"\0")[:32]
        elif which == 0:
            head[0] = data.draw(st.binary(min_size=4, max_size=4))
        else:
            head[which] = data.draw(st.integers(0, 255))
        return _pack(tuple(head), fields)
    return _pack((magic, version, kind, scheme, fp, len(fields)), fields)


# --------------------------------------------------------------------------- checks
def _same_vector(a: Any, b: Any) -> bool:
    return (type(a) is type(b) and a.length == b.length and a.weight == b.weight
            and tuple(a.contributors) == tuple(b.contributors) and a.name == b.name
            and a.layout == b.layout and getattr(a, "rows", None) == getattr(b, "rows", None))


def _check(world: World, which: str, blob: bytes) -> None:
    family = f"HE {which}"
    context = world["cpub"] if which == "ckks vector" else None
    got = outcome(family, lambda: serial.load(blob, source="fuzz.cvhe", context=context))
    if isinstance(got, HEError) or isinstance(got, Exception):
        return
    original = serial.load(world["files"][which], context=context)
    if isinstance(got, PaillierPublicKey):
        # a private key's file mutated into a public key's: compare with its public half
        if isinstance(original, PaillierPrivateKey):
            original = original.public_key
        if got.fingerprint == original.fingerprint:
            assert (got.n, got.hs, got.exponent_bits) == (original.n, original.hs,
                                                          original.exponent_bits)
            note(family, "accepted under the original key id, parameters unchanged")
    elif isinstance(got, PaillierPrivateKey):
        assert got.p * got.q == got.public_key.n
        if got.public_key.fingerprint == original.public_key.fingerprint:
            assert {got.p, got.q} == {original.p, original.q}
            note(family, "accepted under the original key id, parameters unchanged")
    elif isinstance(got, HEContext):
        if got.fingerprint == original.fingerprint:
            # the layout's scale is chosen per encryption, not part of the key (ckks.py)
            assert got.params == original.params and got.layout.same_bounds(original.layout)
            note(family, "accepted under the original key id, parameters unchanged")
    elif isinstance(got, EncryptedVector):
        signed = outcome(f"{family}: signature check",
                         lambda: check_contributions([got], [world["signer"].public_key()]))
        if isinstance(signed, list):
            assert _same_vector(got, original) and list(got.ciphertexts) == list(
                original.ciphertexts), "a vector altered after signing passed its signature"
            note(family, "signature valid with content unchanged")
        # whatever was accepted: decrypting and aggregating it never gives a traceback
        dec = outcome(f"{family}: decrypt", lambda: decrypt_aggregate(
            world["priv"], got, min_parties=1, workers=1))
        if isinstance(signed, list):
            assert list(np.asarray(dec)) == VALUES
        outcome(f"{family}: aggregate", lambda: aggregate([got, world["vec_b"]], workers=1))
    elif isinstance(got, TensealVector):
        if got.fingerprint != world["cpub"].fingerprint:
            raise AssertionError("a CKKS vector loaded under another context")
        outcome(f"{family}: decrypt", lambda: decrypt_aggregate(world["ctx"], got,
                                                                min_parties=1))
        outcome(f"{family}: aggregate", lambda: aggregate([got, world["cvec_d"]]))
    else:
        raise AssertionError(f"unexpected object {type(got).__name__}")


WHICH = ["paillier public", "paillier private", "paillier vector", "ckks public",
         "ckks private", "ckks vector"]


@pytest.mark.parametrize("which", WHICH)
def test_valid_files_load(world: World, which: str) -> None:
    _check(world, which, world["files"][which])


@fuzz_settings(30)
@given(st.sampled_from(WHICH), random_bytes())
@example("paillier public", b"CVHE\x02")
@example("paillier public", b"CVHE\x02\x01\x01" + b"\0" * 34 + b"\xff\xff" + b"\0" * 32)
def test_random_bytes(world: World, which: str, blob: bytes) -> None:
    _check(world, which, blob)


@pytest.mark.parametrize("raw", [HUGE_INT, DEEP_LIST, DEEP_OBJECT])
@pytest.mark.parametrize("which", WHICH)
def test_meta_too_deep_or_too_long_is_a_serialization_error(world: World, which: str,
                                                            raw: str) -> None:
    """Found by this campaign: metadata JSON with a 5,000-digit integer or nested 50,000
    deep raised ``ValueError``/``RecursionError`` out of ``serial.load`` (a traceback in
    every ``covault he`` command); now a ``SerializationError`` naming the file."""
    c = serial.unpack_container(world["files"][which])
    fields = {**c.fields, "meta": b'{"length": ' + raw.encode() + b"}"}
    blob = serial.pack_container(c.kind, c.scheme, c.fingerprint, fields)
    with pytest.raises(SerializationError, match="fuzz.cvhe: .*metadata"):
        serial.load(blob, source="fuzz.cvhe", context=world["cpub"])


@fuzz_settings(60, deadline_s=5)
@given(st.sampled_from(WHICH[:3]), st.data())
def test_paillier_mutations(world: World, which: str, data: st.DataObject) -> None:
    _check(world, which, mutate_container(data, world["files"][which]))


@fuzz_settings(20, deadline_s=5)
@given(st.sampled_from(WHICH[3:]), st.data())
def test_ckks_mutations(world: World, which: str, data: st.DataObject) -> None:
    _check(world, which, mutate_container(data, world["files"][which]))


@fuzz_settings(20, deadline_s=10)
@given(st.data())
def test_cli_decrypt_and_aggregate(world: World, data: st.DataObject) -> None:
    blob = mutate_container(data, world["files"]["paillier vector"])
    d: Path = world["dir"]
    (d / "fuzz.cvhe").write_bytes(blob)
    for out in ("out.csv", "agg.cvhe"):
        (d / out).unlink(missing_ok=True)
    if data.draw(st.booleans(), label="decrypt"):
        cli("HE vector", main, ["he", "decrypt", "--key", str(world["keys"]),
                                "--kek-file", str(world["kek_file"]), str(d / "fuzz.cvhe"),
                                "--min-parties", "1", "--signer", str(d / "party.pub"),
                                "-o", str(d / "out.csv")])
    else:
        cli("HE vector", main, ["he", "aggregate", str(d / "fuzz.cvhe"), str(d / "b.cvhe"),
                                "-o", str(d / "agg.cvhe")])


@fuzz_settings(40)
@given(st.data())
def test_sealed_private_key(world: World, data: st.DataObject) -> None:
    """The KEK envelope of private key files (``privacy/sealed.py``): authenticated, so
    a mutated file that opens holds the original key."""
    sealed: bytes = world["sealed"]
    if data.draw(st.booleans(), label="json"):
        blob = mutate_json(data, json.loads(sealed)).encode("utf-8", "surrogatepass")
    else:
        blob = mutate_bytes(data, sealed)
    path: Path = world["dir"] / "fuzz-private.cvhe"
    path.write_bytes(blob)
    got = outcome("HE sealed private key", lambda: serial.read_file(
        path, kind="private_key", kek=world["kek"]))
    if isinstance(got, PaillierPrivateKey):
        assert {got.p, got.q} == {world["priv"].p, world["priv"].q}
        note("HE sealed private key", "accepted with the original key")


# --------------------------------------------------------------------------- linear.py
@pytest.fixture(scope="module")
def linear() -> World:
    from privacy.he.linear import LinearEvaluator, LinearKeys, galois_steps

    keys = LinearKeys(galois_steps(4))
    bundle = keys.public_bundle()
    ev = LinearEvaluator(bundle)
    blobs = keys.encrypt_tiled(np.array([1.0, 2.0, 3.0, 4.0]), 4)
    return World(keys=keys, bundle=bundle, ev=ev, blobs=blobs, saved=keys.export())


@fuzz_settings(60)
@given(st.one_of(random_bytes(), st.data()))
@example(b"\xff" * 8 + b"\x00")
@example(b"\x00" * 8)
def test_unpack_blobs(linear: World, blob: Any) -> None:
    from privacy.he.linear import pack_blobs, unpack_blobs

    if not isinstance(blob, bytes):
        blob = mutate_bytes(blob, bytes(pack_blobs(linear["blobs"])))
    arr = np.frombuffer(blob, dtype=np.uint8)
    got = outcome("HE ciphertext list (vertical FL)",
                  lambda: unpack_blobs(arr, what="fuzz", limit=1000))
    if isinstance(got, list):
        assert all(isinstance(b, bytes) and b for b in got)


@fuzz_settings(25, deadline_s=5)
@given(st.data())
def test_linear_ciphertexts_and_bundles(linear: World, data: st.DataObject) -> None:
    from privacy.he.linear import LinearEvaluator, LinearKeys

    target = data.draw(st.sampled_from(["matvec", "decrypt", "bundle", "restore"]))
    if target in ("matvec", "decrypt"):
        blobs = list(linear["blobs"])
        i = data.draw(st.integers(0, len(blobs) - 1))
        blobs[i] = data.draw(st.one_of(random_bytes(), st.just(b"").map(
            lambda _: mutate_bytes(data, blobs[i]))))
        if target == "matvec":
            outcome("HE vertical-FL ciphertexts", lambda: linear["ev"].matvec(
                np.ones((3, 4)), blobs, columns=4))
        else:
            outcome("HE vertical-FL ciphertexts", lambda: linear["keys"].decrypt(
                blobs[i], 4, what="fuzz"))
    else:
        src = dict(linear["bundle"] if target == "bundle" else linear["saved"])
        name = data.draw(st.sampled_from(sorted(src)))
        src[name] = mutate_bytes(data, src[name]) if data.draw(st.booleans()) else \
            data.draw(random_bytes())
        outcome("HE vertical-FL key bundle",
                (lambda: LinearEvaluator(src)) if target == "bundle"
                else (lambda: LinearKeys.restore(src)), limit_s=20)


def test_found_altered_ciphertext_decrypts_to_a_packing_error(world: World) -> None:
    """Found by this campaign: one bit flipped in an (unsigned) Paillier ciphertext made
    ``decrypt_aggregate`` die with ``OverflowError: int too big to convert`` in
    ``packing.unpack``; a plaintext outside the layout is now a ``PackingOverflowError``
    (``he decrypt`` exit 2)."""
    from privacy.errors import PackingOverflowError

    c = serial.unpack_container(world["files"]["paillier vector"])
    cts = bytearray(c.fields["ciphertexts"])
    cts[0] ^= 1
    blob = serial.pack_container(c.kind, c.scheme, c.fingerprint,
                                 {**c.fields, "ciphertexts": bytes(cts)})
    vec = serial.load(blob)
    with pytest.raises(PackingOverflowError, match="does not fit the packing layout"):
        decrypt_aggregate(world["priv"], vec, min_parties=1, workers=1)


@pytest.mark.parametrize("raw", ["Infinity", "2.5", "1e400", '"16"', "true"])
def test_found_float_layout_is_a_serialization_error(world: World, raw: str) -> None:
    """Found by this campaign: a layout field ``"parties": Infinity`` raised
    ``OverflowError`` from ``int(inf)`` in ``PackingLayout.from_dict`` (and ``2.5`` was
    silently truncated to 2); layout fields must now be integers."""
    c = serial.unpack_container(world["files"]["ckks public"])
    meta = json.loads(c.fields["meta"])
    text = json.dumps({**meta, "layout": {**meta["layout"], "parties": "@"}})
    fields = {**c.fields, "meta": text.replace('"@"', raw).encode()}
    blob = serial.pack_container(c.kind, c.scheme, c.fingerprint, fields)
    with pytest.raises(SerializationError, match="must be integers"):
        serial.load(blob, source="fuzz.cvhe")
