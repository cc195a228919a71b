"""Issue 11 (9): HE vector metadata was unauthenticated and unchecked.

Before the fix a vector file's ``weight`` and ``contributors`` were taken as written:

* copies of one contribution relabelled with ``weight: 0`` added nothing to the
  aggregate's weight, so more contributions than the layout's headroom were summed and
  the packed slots overflowed silently (wrong totals, no error);
* one party's vector relabelled as ``contributors: [a, b, c]`` passed ``--min-parties 3``
  alone, and the key holder decrypted a single party's values;
* an aggregate whose layout was rewritten to more ``parties`` passed the weight check.

Now weight and contributor counts are range-checked against the packing layout on every
load and by aggregate/decrypt (weight >= 1, contributors distinct and no more than the
weight, weight <= parties, the layout equal to the key's), and contributions can be
signed (Ed25519): the aggregator accepts only distinct trusted signers and signs the
aggregate, the key holder counts only distinct trusted signers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from covault.commands.he import he
from privacy.errors import HEError, InsufficientPartiesError, SerializationError
from privacy.he import serial
from privacy.he.ckks import generate_context
from privacy.he.packing import PackingLayout
from privacy.he.paillier import (
    EncryptedVector,
    PaillierPrivateKey,
    PaillierPublicKey,
    generate_keypair,
)
from privacy.he.secure_sum import aggregate, contribute, decrypt_aggregate
from privacy.he.signing import SignatureError
from privacy.ledger.checkpoint import save_public_key, save_signing_key

LAYOUT = PackingLayout(16, 3)
TOP = 2**15 - 1  # the largest 16-bit value


@pytest.fixture(scope="module")
def keys() -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    return generate_keypair(2048)


@pytest.fixture(scope="module")
def signers() -> dict[str, Ed25519PrivateKey]:
    return {p: Ed25519PrivateKey.generate() for p in ("a", "b", "c", "agg", "mallory")}


def rewrite(data: bytes, **meta: Any) -> bytes:
    """Change metadata and recompute the (unkeyed) digest, as anyone can."""
    c = serial.unpack_container(data)
    fields = dict(c.fields)
    fields["meta"] = json.dumps({**c.meta(), **meta}, sort_keys=True).encode()
    return serial.pack_container(c.kind, c.scheme, c.fingerprint, fields)


def contributions(keys: Any, signers: dict[str, Any] | None = None) -> list[Any]:
    return [contribute(keys[0], np.array([TOP, 1]), party=p, layout=LAYOUT, workers=1,
                       signing_key=signers[p] if signers else None) for p in "abc"]


# ------------------------------------------------------------------ range checks
def test_weight_zero_copies_are_refused(keys: Any, tmp_path: Path) -> None:
    vecs = contributions(keys)
    copy = serial.dump_vector(vecs[0])
    forged = [rewrite(copy, weight=0, contributors=[f"copy{i}"]) for i in range(3)]
    for i, data in enumerate(forged):
        (tmp_path / f"copy{i}.cvhe").write_bytes(data)
        with pytest.raises(SerializationError, match="weight 0"):
            serial.read_file(tmp_path / f"copy{i}.cvhe", kind="vector")
    # in memory as well: six contributions of TOP under a 3-party layout would wrap
    zero = [EncryptedVector(v.public_key, v.layout, v.ciphertexts, v.length, 0, (f"z{i}",))
            for i, v in enumerate(vecs)]
    with pytest.raises(HEError, match="weight 0"):
        aggregate([*vecs, *zero], workers=1)
    with pytest.raises(HEError, match="must be a positive integer"):
        serial.dump_vector(zero[0])


@pytest.mark.parametrize("weight", [-1, True, "1", 1.0, 4])
def test_weight_out_of_range_is_refused(keys: Any, weight: Any) -> None:
    data = rewrite(serial.dump_vector(contributions(keys)[0]), weight=weight)
    with pytest.raises(SerializationError, match="refused|not an integer"):
        serial.load(data, kind="vector")


def test_relabelled_contributors_without_weight_are_refused(keys: Any) -> None:
    data = rewrite(serial.dump_vector(contributions(keys)[0]), contributors=["a", "b", "c"])
    with pytest.raises(SerializationError, match="names 3 contributors but holds only "
                                                 "weight 1: its contributor list was "
                                                 "relabelled"):
        serial.load(data, kind="vector")
    for bad in (["a", "a"], [""], [7], "abc"):
        with pytest.raises(SerializationError):
            serial.load(rewrite(serial.dump_vector(contributions(keys)[0]), weight=2,
                                contributors=bad), kind="vector")


def test_layout_rewritten_to_more_parties_is_refused_by_the_key_holder(keys: Any) -> None:
    pub, priv = keys
    vecs = contributions(keys)
    total = aggregate(vecs, workers=1)
    # two more contributions would overflow 3-party slots; claim a 1000-party layout
    wide = {"value_bits": 16, "parties": 1000, "scale": 1}
    forged = serial.load(rewrite(serial.dump_vector(total), layout=wide), kind="vector")
    assert forged.layout.parties == 1000
    with pytest.raises(HEError, match="differs from the key's"):
        decrypt_aggregate(priv, forged, layout=LAYOUT)
    with pytest.raises(HEError, match="exceeds the 3 parties"):
        decrypt_aggregate(priv, total, layout=LAYOUT, min_parties=4)
    assert decrypt_aggregate(priv, total, layout=LAYOUT).tolist() == [3 * TOP, 3]


def test_tenseal_vector_metadata_is_checked_against_the_context(tmp_path: Path) -> None:
    bfv = generate_context("bfv-128-4096", layout=PackingLayout(20, 3))
    pub = bfv.public()
    vecs = [contribute(pub, np.array([2**19 - 1, 5]), party=p) for p in "abc"]
    data = serial.dump_vector(vecs[0])
    for meta in ({"weight": 0, "contributors": ["x"]},
                 {"layout": {"value_bits": 20, "parties": 64, "scale": 1}},
                 {"n_limbs": 2}, {"chunk_sizes": []}, {"length": 5000},
                 {"multiplications": 1}):
        with pytest.raises(SerializationError):
            serial.load(rewrite(data, **meta), kind="vector", context=pub)
    total = aggregate([serial.load(serial.dump_vector(v), context=pub) for v in vecs])
    assert decrypt_aggregate(bfv, total).tolist() == [3 * (2**19 - 1), 15]


# ------------------------------------------------------------------ signatures
def test_relabelled_single_contribution_passes_min_parties_unless_signed(
        keys: Any, signers: dict[str, Any]) -> None:
    pub, priv = keys
    a = contributions(keys, signers)[0]
    data = rewrite(serial.dump_vector(a), weight=3, contributors=["a", "b", "c"])
    forged = serial.load(data, kind="vector")
    # the documented limit of unsigned metadata: a consistent relabel still loads...
    assert decrypt_aggregate(priv, forged, layout=LAYOUT).tolist() == [TOP, 1]
    trusted = [signers[p].public_key() for p in "abc"]
    # ...but not past signature checks, at the aggregator or at the key holder
    with pytest.raises(SignatureError, match="does not match what key"):
        aggregate([forged], signers=trusted, workers=1)
    with pytest.raises(SignatureError, match="aggregate carries 0 signatures by a trusted "
                                             "aggregator"):
        decrypt_aggregate(priv, forged, layout=LAYOUT, signers=trusted,
                          aggregators=[signers["agg"].public_key()])


def test_signed_flow_counts_distinct_trusted_signers(keys: Any, signers: dict[str, Any],
                                                     tmp_path: Path) -> None:
    pub, priv = keys
    trusted = [signers[p].public_key() for p in "abc"]
    agg_key = [signers["agg"].public_key()]
    vecs = [serial.load(serial.dump_vector(v), kind="vector")
            for v in contributions(keys, signers)]
    total = aggregate(vecs, signers=trusted, signing_key=signers["agg"], workers=1)
    back = serial.load(serial.dump_vector(total), kind="vector")
    assert decrypt_aggregate(priv, back, layout=LAYOUT, signers=trusted,
                             aggregators=agg_key).tolist() == [3 * TOP, 3]
    # the aggregate's contributor list or weight rewritten after signing
    with pytest.raises(SignatureError, match="does not match what aggregator key"):
        bad = serial.load(rewrite(serial.dump_vector(total), contributors=["a", "b", "z"]),
                          kind="vector")
        decrypt_aggregate(priv, bad, layout=LAYOUT, signers=trusted, aggregators=agg_key)
    with pytest.raises(SerializationError, match="too many"):  # 4 signatures, weight 2
        serial.load(rewrite(serial.dump_vector(total), weight=2, contributors=["a", "b"]),
                    kind="vector")
    # only two trusted signers for a threshold of three
    two = aggregate(vecs[:2], signers=trusted, signing_key=signers["agg"], workers=1)
    with pytest.raises(InsufficientPartiesError):
        decrypt_aggregate(priv, two, layout=LAYOUT, signers=trusted, aggregators=agg_key)
    # an aggregate signed by someone else than the trusted aggregator
    rogue = aggregate(vecs, signers=trusted, signing_key=signers["mallory"], workers=1)
    with pytest.raises(SignatureError, match="0 signatures by a trusted aggregator"):
        decrypt_aggregate(priv, rogue, layout=LAYOUT, signers=trusted, aggregators=agg_key)


def test_one_key_signing_several_contributions_is_refused(keys: Any,
                                                          signers: dict[str, Any]) -> None:
    pub, _ = keys
    sybil = [contribute(pub, np.array([1, 2]), party=p, layout=LAYOUT, workers=1,
                        signing_key=signers["a"]) for p in ("a", "b", "c")]
    trusted = [signers[p].public_key() for p in "abc"]
    with pytest.raises(SignatureError, match="signed by the same key"):
        aggregate(sybil, signers=trusted, workers=1)


def test_untrusted_unsigned_and_altered_contributions_are_refused(
        keys: Any, signers: dict[str, Any]) -> None:
    pub, _ = keys
    trusted = [signers[p].public_key() for p in "abc"]
    a, b, c = contributions(keys, signers)
    m = contribute(pub, np.array([1, 2]), party="c", layout=LAYOUT, workers=1,
                   signing_key=signers["mallory"])
    with pytest.raises(SignatureError, match="not a trusted signer"):
        aggregate([a, b, m], signers=trusted, workers=1)
    plain = contribute(pub, np.array([1, 2]), party="c", layout=LAYOUT, workers=1)
    with pytest.raises(SignatureError, match="carries 0 signatures"):
        aggregate([a, b, plain], signers=trusted, workers=1)
    # c's signature moved onto other ciphertexts (another party's values)
    swapped = EncryptedVector(c.public_key, c.layout, b.ciphertexts, c.length, 1,
                              c.contributors, c.name, c.endorsements)
    with pytest.raises(SignatureError, match="does not match what key"):
        aggregate([a, b, swapped], signers=trusted, workers=1)
    with pytest.raises(HEError, match="needs the trusted signer keys"):
        aggregate([a, b, c], signing_key=signers["agg"], workers=1)


def test_tenseal_contributions_are_signed_too(signers: dict[str, Any]) -> None:
    ckks = generate_context("ckks-128-8192", layout=PackingLayout(parties=3))
    pub = ckks.public()
    trusted = [signers[p].public_key() for p in "abc"]
    vecs = [serial.load(serial.dump_vector(contribute(pub, np.array([1.5, -2.0]), party=p,
                                                      signing_key=signers[p])), context=pub)
            for p in "abc"]
    total = aggregate(vecs, signers=trusted, signing_key=signers["agg"])
    back = serial.load(serial.dump_vector(total), context=pub)
    out = decrypt_aggregate(ckks, back, signers=trusted,
                            aggregators=[signers["agg"].public_key()])
    np.testing.assert_allclose(out, [4.5, -6.0], atol=1e-4)


# ------------------------------------------------------------------ command line
def test_cli_signed_end_to_end_and_relabel_refused(signers: dict[str, Any],
                                                   tmp_path: Path) -> None:
    kek = Path(__file__).resolve().parents[1] / "vectors" / "test.kek"  # seals the HE key

    def run(*args: str) -> tuple[int, str]:
        res = CliRunner().invoke(he, list(args), env={"COVAULT_KEK_FILE": str(kek)})
        return res.exit_code, res.output

    keys = tmp_path / "keys"
    assert run("keygen", "--bits", "2048", "--parties", "3", "--value-bits", "32",
               "-o", str(keys))[0] == 0
    for name, key in signers.items():
        save_signing_key(key, tmp_path / f"{name}.pem")
        save_public_key(key, tmp_path / f"{name}.pub")
    files = []
    for p in "abc":
        src = tmp_path / f"{p}.csv"
        src.write_text("amount\n10\n-3\n")
        out = tmp_path / f"{p}.cvhe"
        code, msg = run("encrypt", "--public", str(keys), "--column", "amount", "--party", p,
                        "--no-ids", "--signing-key", str(tmp_path / f"{p}.pem"), str(src),
                        "-o", str(out))
        assert code == 0, msg
        files.append(str(out))
    trust = [x for p in "abc" for x in ("--signer", str(tmp_path / f"{p}.pub"))]
    total = tmp_path / "sum.cvhe"
    code, msg = run("aggregate", *files, *trust, "--signing-key", str(tmp_path / "agg.pem"),
                    "-o", str(total))
    assert code == 0, msg
    code, msg = run("decrypt", "--key", str(keys), str(total), *trust, "--aggregator",
                    str(tmp_path / "agg.pub"), "-o", str(tmp_path / "out.csv"))
    assert code == 0, msg
    assert (tmp_path / "out.csv").read_text() == "amount\n30\n-9\n"
    # one bank's file relabelled as all three: refused by a checking aggregator
    forged = tmp_path / "forged.cvhe"
    forged.write_bytes(rewrite(Path(files[0]).read_bytes(), weight=3,
                               contributors=["a", "b", "c"]))
    code, msg = run("aggregate", str(forged), *trust, "-o", str(tmp_path / "f.cvhe"))
    assert code == 2 and "does not match what key" in msg
    # and by a checking key holder, even when someone aggregates it without checks
    code, msg = run("aggregate", str(forged), "-o", str(tmp_path / "f.cvhe"))
    assert code == 0, msg
    code, msg = run("decrypt", "--key", str(keys), str(tmp_path / "f.cvhe"), *trust,
                    "--aggregator", str(tmp_path / "agg.pub"), "-o", str(tmp_path / "f.csv"))
    assert code == 2 and "trusted aggregator" in msg and not (tmp_path / "f.csv").exists()
    code, msg = run("decrypt", "--key", str(keys), str(total), *trust,
                    "-o", str(tmp_path / "x.csv"))
    assert code == 2 and "go together" in msg
