"""`covault he` protects its users (issue 13, item 8).

Before: `he encrypt` recorded no ids, so `he aggregate` added files whose rows were in
different orders without a word and `he decrypt` wrote totals without ids; CKKS keys
held values up to 32,768 only (16 parties), and the error did not say what to change.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from covault.commands.he import he
from privacy.errors import HEError, SerializationError
from privacy.he import serial
from privacy.he.ckks import ckks_max_abs, ckks_params_for
from privacy.he.paillier import generate_keypair
from privacy.he.rows import RowIds, check_aligned
from privacy.he.secure_sum import aggregate, contribute
from privacy.ledger import Ledger

# private keys are sealed under a KEK (issue 11, finding 5): a fixed test key file
KEK_ENV = {"COVAULT_KEK_FILE": str(Path(__file__).resolve().parent / "vectors" / "test.kek")}


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(he, list(args), env=KEK_ENV)
    return res.exit_code, res.output


def table(path: Path, rows: list[tuple[str, str]], header: str = "cust,amount") -> Path:
    path.write_text(header + "\n" + "".join(f"{a},{b}\n" for a, b in rows), encoding="utf-8")
    return path


def read(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.reader(fh))


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("he") / "keys"
    code, out = run("keygen", "--bits", "2048", "--parties", "4", "-o", str(d))
    assert code == 0, out
    return d


def encrypt(keys: Path, src: Path, *extra: str) -> tuple[int, str, str]:
    out = src.with_suffix(".cvhe")
    code, msg = run("encrypt", "--public", str(keys), "--column", "amount", "--party",
                    src.stem, str(src), "-o", str(out), *extra)
    return code, msg, str(out)


BANKS = {
    "a": [("007", "1"), ("C2", "2"), ("C3", "3")],
    "b": [("007", "10"), ("C2", "20"), ("C3", "30")],
    "c": [("007", "100"), ("C2", "200"), ("C3", "300")],
}


def test_decrypt_writes_ids_with_totals(keys: Path, tmp_path: Path) -> None:
    files = []
    for bank, rows in BANKS.items():
        code, msg, out = encrypt(keys, table(tmp_path / f"{bank}.csv", rows), "--id-column",
                                 "cust")
        assert code == 0, msg
        files.append(out)
    code, msg = run("aggregate", *files, "-o", str(tmp_path / "sum.cvhe"), "--format", "json")
    assert code == 0 and json.loads(msg)["ids"] == "cust", msg
    code, msg = run("decrypt", "--key", str(keys), str(tmp_path / "sum.cvhe"), "-o",
                    str(tmp_path / "totals.csv"))
    assert code == 0, msg
    assert read(tmp_path / "totals.csv") == [["cust", "amount"], ["007", "111"],
                                             ["C2", "222"], ["C3", "333"]]


def test_rows_in_another_order_are_refused(keys: Path, tmp_path: Path) -> None:
    files = []
    for bank, rows in BANKS.items():
        rows = list(reversed(rows)) if bank == "c" else rows
        code, msg, out = encrypt(keys, table(tmp_path / f"{bank}.csv", rows), "--id-column",
                                 "cust")
        assert code == 0, msg
        files.append(out)
    code, msg = run("aggregate", *files, "-o", str(tmp_path / "sum.cvhe"))
    assert code == 2 and not (tmp_path / "sum.cvhe").exists()
    assert "c.cvhe" in msg and "different order" in msg and "row 1: '007' vs 'C3'" in msg


def test_other_ids_or_missing_ids_are_refused(keys: Path, tmp_path: Path) -> None:
    a = encrypt(keys, table(tmp_path / "a.csv", BANKS["a"]), "--id-column", "cust")[2]
    other = [("007", "1"), ("C2", "2"), ("C9", "3")]
    b = encrypt(keys, table(tmp_path / "b.csv", other), "--id-column", "cust")[2]
    code, msg = run("aggregate", a, b, "-o", str(tmp_path / "s.cvhe"))
    assert code == 2 and "different ids" in msg and "'C3'" in msg
    c = encrypt(keys, table(tmp_path / "c.csv", BANKS["c"]), "--no-ids")[2]
    code, msg = run("aggregate", a, c, "-o", str(tmp_path / "s.cvhe"))
    assert code == 2 and "records its row ids but" in msg and "--id-column" in msg


def test_ids_are_required_or_explicitly_waived(keys: Path, tmp_path: Path) -> None:
    src = table(tmp_path / "a.csv", BANKS["a"])
    code, msg, out = encrypt(keys, src)
    assert code == 2 and "--id-column" in msg and "--no-ids" in msg
    assert not Path(out).exists()
    code, msg, _ = encrypt(keys, src, "--id-column", "nope")
    assert code == 2 and "column 'nope'" in msg and "no such column" in msg
    dup = table(tmp_path / "d.csv", [("C1", "1"), ("C2", "2"), ("C1", "3")])
    code, msg, _ = encrypt(keys, dup, "--id-column", "cust")
    assert code == 2 and "'C1' appears twice" in msg and "rows 1 and 3" in msg
    empty = table(tmp_path / "e.csv", [("C1", "1"), ("", "2")])
    code, msg, _ = encrypt(keys, empty, "--id-column", "cust")
    assert code == 2 and "empty id" in msg and "row 2" in msg
    code, msg, _ = encrypt(keys, src, "--id-column", "amount")
    assert code == 2 and "is the column being encrypted" in msg


def test_digest_mode_keeps_ids_back(keys: Path, tmp_path: Path) -> None:
    files = []
    for bank, rows in BANKS.items():
        code, msg, out = encrypt(keys, table(tmp_path / f"{bank}.csv", rows), "--id-column",
                                 "cust", "--id-mode", "digest")
        assert code == 0, msg
        assert b"C2" not in Path(out).read_bytes()  # the ids do not travel
        files.append(out)
    total = tmp_path / "sum.cvhe"
    assert run("aggregate", *files, "-o", str(total))[0] == 0
    out = tmp_path / "t.csv"
    code, msg = run("decrypt", "--key", str(keys), str(total), "-o", str(out))
    assert code == 2 and "--ids FILE" in msg and not out.exists()
    wrong = table(tmp_path / "ids.csv", list(reversed(BANKS["a"])))
    code, msg = run("decrypt", "--key", str(keys), str(total), "-o", str(out), "--ids",
                    str(wrong))
    assert code == 2 and "not the 3 ids" in msg and not out.exists()
    code, msg = run("decrypt", "--key", str(keys), str(total), "-o", str(out), "--ids",
                    str(tmp_path / "a.csv"))
    assert code == 0, msg
    assert read(out)[1] == ["007", "111"]


def test_ids_are_bound_to_the_file(keys: Path, tmp_path: Path) -> None:
    """Rewriting the ids of a file (and its unkeyed digest) is detected on load."""
    src = table(tmp_path / "a.csv", BANKS["a"])
    out = encrypt(keys, src, "--id-column", "cust")[2]
    c = serial.unpack_container(Path(out).read_bytes())
    fields = dict(c.fields)
    fields["ids"] = json.dumps(["C3", "C2", "007"]).encode()
    forged = serial.pack_container(c.kind, c.scheme, c.fingerprint, fields)
    with pytest.raises(SerializationError, match="do not match the digest"):
        serial.load(forged, kind="vector")


def test_signatures_cover_the_row_ids(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from privacy.he.signing import SignatureError

    pub, _ = generate_keypair(2048)
    signers = {p: Ed25519PrivateKey.generate() for p in "ab"}
    rows = RowIds.of("cust", ["C1", "C2"])
    vecs = [contribute(pub, np.array([1, 2]), party=p, signing_key=signers[p], rows=rows,
                       workers=1) for p in "ab"]
    trusted = [k.public_key() for k in signers.values()]
    assert aggregate(vecs, signers=trusted, workers=1).rows == rows
    relabelled = RowIds.of("cust", ["C2", "C1"])
    vecs[1].rows = relabelled  # the values of C1 now claim to be C2's, and the reverse
    with pytest.raises(HEError, match="not aligned"):
        aggregate(vecs, signers=trusted, workers=1)
    vecs[0].rows = relabelled
    with pytest.raises(SignatureError, match="does not match"):
        aggregate(vecs, signers=trusted, workers=1)


def test_ledger_records_the_digest_not_the_ids(keys: Path, tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    encrypt(keys, table(tmp_path / "a.csv", BANKS["a"]), "--id-column", "cust",
            "--ledger", str(db))
    with Ledger(db) as log:
        rec = list(log.records())[-1].payload
    assert rec["rows"]["column"] == "cust" and len(rec["rows"]["digest"]) == 64
    assert "C2" not in json.dumps(rec)


def test_check_aligned_without_ids() -> None:
    class V:
        def __init__(self, rows: Any, who: str) -> None:
            self.rows, self.contributors = rows, (who,)

    assert check_aligned([V(None, "a"), V(None, "b")]) is None
    with pytest.raises(HEError, match="a and b are not aligned: their id digests differ"):
        check_aligned([V(RowIds.of("c", ["1"], keep_ids=False), "a"),
                       V(RowIds.of("c", ["2"], keep_ids=False), "b")])


# ------------------------------------------------------------------ CKKS bounds
def test_ckks_parameters_follow_the_declared_bound() -> None:
    p = ckks_params_for(32768, 16)
    assert p.name == "ckks-128-8192"  # the old default still serves small values
    for bound, parties in ((1e6, 16), (1e9, 16), (1e9, 3), (3e10, 16)):
        p = ckks_params_for(bound, parties)
        assert ckks_max_abs(p) / parties >= bound
    with pytest.raises(HEError, match="BFV or Paillier"):
        ckks_params_for(1e12, 16)


def test_ckks_money_amounts(tmp_path: Path) -> None:
    keys = tmp_path / "ck"
    code, msg = run("keygen", "--scheme", "ckks", "-o", str(keys))
    assert code == 2 and "--max-value" in msg and not keys.exists()
    code, msg = run("keygen", "--scheme", "ckks", "--max-value", "1e12", "-o", str(keys))
    assert code == 2 and "--max-value" in msg and "--parties" in msg and "bfv" in msg
    code, msg = run("keygen", "--scheme", "ckks", "--params", "ckks-128-8192",
                    "--max-value", "1e9", "-o", str(keys))
    assert code == 2 and "below --max-value" in msg
    code, msg = run("keygen", "--scheme", "ckks", "--max-value", "1e9", "--parties", "3",
                    "-o", str(keys), "--format", "json")
    assert code == 0, msg
    info = json.loads(msg)
    assert info["max_value"] >= 1e9 and info["error_bound"] < 0.1
    amounts = [("C1", "987654321.25"), ("C2", "-12345678.5"), ("C3", "0.01")]
    files = []
    for bank in "abc":
        code, msg, out = encrypt(keys, table(tmp_path / f"{bank}.csv", amounts),
                                 "--id-column", "cust")
        assert code == 0, msg
        files.append(out)
    assert run("aggregate", *files, "--public", str(keys), "-o", str(tmp_path / "s.cvhe"))[0] == 0
    code, msg = run("decrypt", "--key", str(keys), str(tmp_path / "s.cvhe"), "-o",
                    str(tmp_path / "t.csv"))
    assert code == 0, msg
    got = read(tmp_path / "t.csv")
    assert [r[0] for r in got] == ["cust", "C1", "C2", "C3"]
    np.testing.assert_allclose([float(r[1]) for r in got[1:]],
                               [3 * 987654321.25, -3 * 12345678.5, 0.03], atol=0.05)


def test_ckks_value_beyond_the_bound_names_the_option(tmp_path: Path) -> None:
    keys = tmp_path / "ck"
    assert run("keygen", "--scheme", "ckks", "--params", "ckks-128-8192", "-o", str(keys))[0] == 0
    src = table(tmp_path / "a.csv", [("C1", "5"), ("C2", "123456789.5")])
    code, msg, out = encrypt(keys, src, "--id-column", "cust")
    assert code == 2 and not Path(out).exists()
    assert "row 2" in msg and "32768" in msg
    assert "--max-value 123456790 --parties 16" in msg


def test_paillier_overflow_names_the_options(tmp_path: Path) -> None:
    keys = tmp_path / "k"
    assert run("keygen", "--bits", "2048", "--value-bits", "16", "-o", str(keys))[0] == 0
    src = table(tmp_path / "a.csv", [("C1", "5"), ("C2", "70000")])
    code, msg, _ = encrypt(keys, src, "--id-column", "cust")
    assert code == 2 and "row 2" in msg and "--value-bits" in msg and "--scale" in msg
