"""`covault he` end to end: keygen, encrypt x3, aggregate, decrypt; exit codes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from covault.commands.he import he

# private keys are sealed under a KEK (issue 11, finding 5): a fixed test key file
KEK_ENV = {"COVAULT_KEK_FILE": str(Path(__file__).resolve().parent / "vectors" / "test.kek")}


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(he, list(args), env=KEK_ENV)
    return res.exit_code, res.output


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("id,amount\n" + "".join(f"{i},{v}\n" for i, v in enumerate(rows)))
    return path


def read_out(path: Path) -> list[str]:
    """The totals column (the last) of a decrypted CSV, header first."""
    with path.open() as fh:
        return [r[-1] for r in csv.reader(fh)]


@pytest.fixture(scope="module")
def paillier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pk")
    code, out = run("keygen", "--scheme", "paillier", "--bits", "2048", "-o", str(d / "keys"))
    assert code == 0, out
    return d / "keys"


def test_help() -> None:
    for cmd in ([], ["keygen"], ["encrypt"], ["aggregate"], ["decrypt"]):
        code, out = run(*cmd, "--help")
        assert code == 0 and "Usage" in out


@pytest.mark.parametrize("scale,rows,expected", [
    ("1", [["5", "-7"], ["10", "9223372036854775807"], ["-1", "9223372036854775807"]],
     ["14", "18446744073709551607"]),
    ("100", [["1.25", "-0.01"], ["2", "3.10"], ["-0.25", "0"]], ["3.00", "3.09"]),
])
def test_paillier_end_to_end(paillier_dir: Path, tmp_path: Path, scale: str,
                             rows: list[list[str]], expected: list[str]) -> None:
    encs = []
    for i, r in enumerate(rows):
        src = write_csv(tmp_path / f"bank{i}.csv", r)
        out = tmp_path / f"bank{i}.cvhe"
        code, msg = run("encrypt", "--public", str(paillier_dir), "--column", "amount",
                        "--id-column", "id", "--scale", scale, str(src), "-o", str(out))
        assert code == 0, msg
        encs.append(str(out))
    total = tmp_path / "sum.cvhe"
    code, msg = run("aggregate", *encs, "-o", str(total), "--format", "json")
    assert code == 0 and '"inputs": 3' in msg, msg
    # two contributions only: refused
    code, msg = run("aggregate", *encs[:2], "-o", str(tmp_path / "two.cvhe"))
    assert code == 0
    code, msg = run("decrypt", "--key", str(paillier_dir), str(tmp_path / "two.cvhe"),
                    "-o", str(tmp_path / "two.csv"))
    assert code == 2 and "at least 3" in msg and not (tmp_path / "two.csv").exists()
    code, msg = run("decrypt", "--key", str(paillier_dir), str(total), "-o",
                    str(tmp_path / "out.csv"))
    assert code == 0, msg
    assert read_out(tmp_path / "out.csv") == ["amount", *expected]


def test_errors_exit_2(paillier_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    assert run("keygen", "--bits", "2048", "-o", str(other))[0] == 0
    a = write_csv(tmp_path / "a.csv", ["1", "2"])
    b = write_csv(tmp_path / "b.csv", ["1", "2", "3"])
    for name, key, src in (("a", paillier_dir, a), ("b", paillier_dir, b), ("c", other, a)):
        code, msg = run("encrypt", "--public", str(key), "--column", "amount", str(src),
                        "--no-ids", "--party", name, "-o", str(tmp_path / f"{name}.cvhe"))
        assert code == 0, msg
    code, msg = run("aggregate", str(tmp_path / "a.cvhe"), str(tmp_path / "a.cvhe"), "-o",
                    str(tmp_path / "x.cvhe"))
    assert code == 2 and "more than once" in msg
    code, msg = run("aggregate", str(tmp_path / "a.cvhe"), str(tmp_path / "b.cvhe"), "-o",
                    str(tmp_path / "x.cvhe"))
    assert code == 2 and "lengths differ" in msg
    code, msg = run("aggregate", str(tmp_path / "a.cvhe"), str(tmp_path / "c.cvhe"), "-o",
                    str(tmp_path / "x.cvhe"))
    assert code == 2 and "encrypted under key" in msg and not (tmp_path / "x.cvhe").exists()
    data = (tmp_path / "a.cvhe").read_bytes()
    (tmp_path / "t.cvhe").write_bytes(data[:-40])
    code, msg = run("aggregate", str(tmp_path / "t.cvhe"), "-o", str(tmp_path / "x.cvhe"))
    assert code == 2 and "truncated" in msg
    code, msg = run("keygen", "--bits", "1024", "-o", str(tmp_path / "weak"))
    assert code == 2 and "at least 2048" in msg
    code, msg = run("encrypt", "--public", str(paillier_dir), "--column", "nope", str(a),
                    "--id-column", "id", "-o", str(tmp_path / "n.cvhe"))
    assert code == 2 and "no such column" in msg
    bad = write_csv(tmp_path / "bad.csv", ["1", "x"])
    code, msg = run("encrypt", "--public", str(paillier_dir), "--column", "amount", str(bad),
                    "--id-column", "id", "-o", str(tmp_path / "n.cvhe"))
    assert code == 2 and "not a number" in msg


@pytest.mark.parametrize("scheme", ["bfv", "ckks"])
def test_tenseal_end_to_end(tmp_path: Path, scheme: str) -> None:
    keys = tmp_path / "keys"
    params = "bfv-128-4096" if scheme == "bfv" else "ckks-128-8192"
    code, msg = run("keygen", "--scheme", scheme, "--params", params, "-o", str(keys))
    assert code == 0, msg
    encs = []
    for i in range(3):
        src = write_csv(tmp_path / f"p{i}.csv", [str(i), "-4", "1000"])
        out = tmp_path / f"p{i}.cvhe"
        code, msg = run("encrypt", "--public", str(keys), "--column", "amount", str(src),
                        "--id-column", "id", "-o", str(out))
        assert code == 0, msg
        encs.append(str(out))
    code, msg = run("aggregate", *encs, "-o", str(tmp_path / "s.cvhe"))
    assert code == 2 and "need --public" in msg
    code, msg = run("aggregate", *encs, "--public", str(keys), "-o", str(tmp_path / "s.cvhe"))
    assert code == 0, msg
    code, msg = run("decrypt", "--key", str(keys), str(tmp_path / "s.cvhe"), "-o",
                    str(tmp_path / "o.csv"))
    assert code == 0, msg
    got = read_out(tmp_path / "o.csv")
    assert got[0] == "amount"
    if scheme == "bfv":
        assert got[1:] == ["3", "-12", "3000"]
    else:
        assert [round(float(x), 4) for x in got[1:]] == [3.0, -12.0, 3000.0]
