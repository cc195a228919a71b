"""Fixes from a new user's trial of `covault he` and `covault psi`.

1. `psi finish` refuses a response to another request (the session id is echoed).
2. HE and PSI outputs refuse an existing file without --force, and an input always.
3. Numbers are parsed strictly (no `1_000`, non-ASCII digits or padded spaces).
4. `he aggregate` explains ids that differ only in spaces/case (PSI's normalisation).
5. Messages: a private key as --public, a public key as --key, inputs under different
   keys, a header-only input.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from covault.commands.he import he
from covault.commands.psi import psi
from privacy.errors import PSIError
from privacy.psi import PsiParty

KEK_ENV = {"COVAULT_KEK_FILE": str(Path(__file__).resolve().parent / "vectors" / "test.kek")}


def run(group: object, *args: str) -> tuple[int, str]:
    res = CliRunner().invoke(group, list(args), env=KEK_ENV)  # type: ignore[arg-type]
    return res.exit_code, res.output


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("he") / "keys"
    code, out = run(he, "keygen", "--bits", "2048", "--parties", "4", "-o", str(d))
    assert code == 0, out
    return d


def encrypt(keys: Path, src: Path, out: Path, *extra: str) -> tuple[int, str]:
    return run(he, "encrypt", "--public", str(keys), "--column", "v", "--id-column", "id",
               str(src), "-o", str(out), *extra)


# -- 1. a response bound to its request ------------------------------------------------

def psi_files(tmp_path: Path) -> tuple[Path, Path]:
    a = write(tmp_path / "a.csv", "id\nx1\nx2\nx3\nx4\n")
    b = write(tmp_path / "b.csv", "id\nx1\nx2\nx3\ny9\ny8\n")
    return a, b


def test_finish_refuses_a_response_to_another_request(tmp_path: Path) -> None:
    a, b = psi_files(tmp_path)
    p = {n: str(tmp_path / n) for n in ("req1", "s1", "resp1", "req2", "s2", "out", "ok")}
    assert run(psi, "request", "--ids", str(a), "-c", "id", "--out-message", p["req1"],
               "--state", p["s1"])[0] == 0
    assert run(psi, "respond", "--ids", str(b), "-c", "id", "--in-message", p["req1"],
               "--out-message", p["resp1"])[0] == 0
    assert run(psi, "request", "--ids", str(a), "-c", "id", "--out-message", p["req2"],
               "--state", p["s2"])[0] == 0
    code, out = run(psi, "finish", "--ids", str(a), "-c", "id", "--state", p["s2"],
                    "--in-message", p["resp1"], "-o", p["out"])
    assert code == 2, out
    assert "this response answers another request" in out
    assert not os.path.exists(p["out"])
    code, out = run(psi, "finish", "--ids", str(a), "-c", "id", "--state", p["s1"],
                    "--in-message", p["resp1"], "-o", p["ok"])
    assert code == 0, out
    assert "intersection_size: 3" in out


def test_party_accept_echoes_the_session_and_absorb_checks_it() -> None:
    a, b, c = PsiParty(["x1", "x2"]), PsiParty(["x1"]), PsiParty(["x1", "x3"])
    accept = b.accept(a.hello())
    assert accept["session"] == a.session
    with pytest.raises(PSIError, match="answers another request"):
        c.absorb(accept, b.records())
    stale = {k: v for k, v in accept.items() if k != "session"}
    with pytest.raises(PSIError, match="no session id"):
        a.absorb(stale, b.records())
    assert a.finish(accept, b.records(), b.reply(a.points())).size == 1


def test_reveal_refuses_a_sum_from_another_session(tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", "id\nx1\nx2\nx3\n")
    b = write(tmp_path / "b.csv", "id,v\nx1,5\nx2,7\nx3,1\n")
    t = {n: str(tmp_path / n) for n in ("q1", "s1", "q2", "s2", "r1", "rs1", "r2", "rs2",
                                        "sum1", "sum2")}
    for q, s in (("q1", "s1"), ("q2", "s2")):
        assert run(psi, "request", "--ids", str(a), "-c", "id", "--mode", "intersection-sum",
                   "--out-message", t[q], "--state", t[s])[0] == 0
    for q, r, rs in (("q1", "r1", "rs1"), ("q2", "r2", "rs2")):
        assert run(psi, "respond", "--ids", str(b), "-c", "id", "--mode", "intersection-sum",
                   "--value-column", "v", "--paillier-bits", "2048", "--in-message", t[q],
                   "--out-message", t[r], "--state", t[rs])[0] == 0
    for s, r, m in (("s1", "r1", "sum1"), ("s2", "r2", "sum2")):
        assert run(psi, "finish", "--ids", str(a), "-c", "id", "--state", t[s],
                   "--in-message", t[r], "--out-message", t[m])[0] == 0
    code, out = run(psi, "reveal", "--state", t["rs1"], "--in-message", t["sum2"])
    assert code == 2 and "answers another response" in out, out
    code, out = run(psi, "reveal", "--state", t["rs1"], "--in-message", t["sum1"])
    assert code == 0 and "sum: 13" in out, out


# -- 2. no overwriting ------------------------------------------------------------------

def test_psi_outputs_refuse_existing_files_and_inputs(tmp_path: Path) -> None:
    a, b = psi_files(tmp_path)
    before = a.read_bytes()
    req, state = tmp_path / "req.msg", tmp_path / "s.state"
    # the state must not replace the id file, even with --force
    code, out = run(psi, "request", "--ids", str(a), "-c", "id", "--out-message", str(req),
                    "--state", str(a), "--force")
    assert code == 2 and "--state" in out and "--ids" in out, out
    assert a.read_bytes() == before and not req.exists()
    code, out = run(psi, "request", "--ids", str(a), "-c", "id", "--out-message", str(req),
                    "--state", str(req))
    assert code == 2 and "the same file" in out, out
    assert run(psi, "request", "--ids", str(a), "-c", "id", "--out-message", str(req),
               "--state", str(state))[0] == 0
    kept = state.read_bytes()
    code, out = run(psi, "request", "--ids", str(a), "-c", "id", "--out-message",
                    str(tmp_path / "req2.msg"), "--state", str(state))
    assert code == 2 and "exists; pass --force" in out, out
    assert state.read_bytes() == kept
    resp = tmp_path / "resp.msg"
    assert run(psi, "respond", "--ids", str(b), "-c", "id", "--in-message", str(req),
               "--out-message", str(resp))[0] == 0
    code, out = run(psi, "finish", "--ids", str(a), "-c", "id", "--state", str(state),
                    "--in-message", str(resp), "-o", str(a), "--force")
    assert code == 2 and "--output" in out and "--ids" in out, out
    assert a.read_bytes() == before
    existing = write(tmp_path / "shared.csv", "keep me\n")
    code, out = run(psi, "finish", "--ids", str(a), "-c", "id", "--state", str(state),
                    "--in-message", str(resp), "-o", str(existing))
    assert code == 2 and "exists; pass --force" in out, out
    assert existing.read_text() == "keep me\n"
    code, out = run(psi, "finish", "--ids", str(a), "-c", "id", "--state", str(state),
                    "--in-message", str(resp), "-o", str(existing), "--force")
    assert code == 0, out
    assert existing.read_text().splitlines()[0] == "\"id\""


def test_he_outputs_refuse_existing_files_and_inputs(keys: Path, tmp_path: Path) -> None:
    srcs = [write(tmp_path / f"b{i}.csv", f"id,v\n1,{i}\n2,{i + 10}\n") for i in range(3)]
    vecs = [tmp_path / f"b{i}.cvhe" for i in range(3)]
    for s, v in zip(srcs, vecs, strict=True):
        assert encrypt(keys, s, v)[0] == 0
    existing = write(tmp_path / "existing.txt", "keep\n")
    code, out = encrypt(keys, srcs[0], existing)
    assert code == 2 and "exists; pass --force" in out, out
    assert existing.read_text() == "keep\n"
    code, out = encrypt(keys, srcs[0], srcs[0], "--force")
    assert code == 2 and "INPUT" in out, out
    first = vecs[0].read_bytes()
    code, out = run(he, "aggregate", *map(str, vecs), "-o", str(vecs[0]), "--force")
    assert code == 2 and "--out" in out and "IN" in out, out
    assert vecs[0].read_bytes() == first
    total = tmp_path / "sum.cvhe"
    assert run(he, "aggregate", *map(str, vecs), "-o", str(total))[0] == 0
    code, out = run(he, "aggregate", *map(str, vecs), "-o", str(total))
    assert code == 2 and "exists; pass --force" in out, out
    src_before = srcs[1].read_bytes()
    code, out = run(he, "decrypt", "--key", str(keys), str(total), "-o", str(srcs[1]))
    assert code == 2 and "exists" in out, out
    code, out = run(he, "decrypt", "--key", str(keys), str(total), "-o", str(total),
                    "--force")
    assert code == 2 and "SUM" in out, out
    assert srcs[1].read_bytes() == src_before
    code, out = run(he, "decrypt", "--key", str(keys), str(total), "-o", str(srcs[1]),
                    "--force")
    assert code == 0, out
    assert srcs[1].read_text().splitlines() == ["id,v", "1,3", "2,33"]


# -- 3. strict numbers ------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["1_000", "\u0663", "\uff11\uff12", " 5 ", "5 ", ""])
def test_psi_values_are_parsed_strictly(tmp_path: Path, cell: str) -> None:
    a = write(tmp_path / "a.csv", "id\nx1\nx2\n")
    b = write(tmp_path / "b.csv", f"id,v\nx1,4\nx2,{cell}\n")
    req, state = tmp_path / "q.msg", tmp_path / "q.state"
    assert run(psi, "request", "--ids", str(a), "-c", "id", "--mode", "intersection-sum",
               "--out-message", str(req), "--state", str(state))[0] == 0
    resp, rstate = tmp_path / "r.msg", tmp_path / "r.state"
    code, out = run(psi, "respond", "--ids", str(b), "-c", "id", "--mode", "intersection-sum",
                    "--value-column", "v", "--paillier-bits", "2048", "--in-message",
                    str(req), "--out-message", str(resp), "--state", str(rstate))
    assert code == 2, out
    assert "b.csv" in out and "row 2" in out and "'v'" in out and "not an integer" in out
    assert not resp.exists() and not rstate.exists()


@pytest.mark.parametrize("cell", ["1_000", "\u0663", "\uff11\uff12", " 5 ", "1.5.2"])
def test_he_values_are_parsed_strictly(keys: Path, tmp_path: Path, cell: str) -> None:
    src = write(tmp_path / "odd.csv", f"id,v\n1,+7\n2,{cell}\n")
    out_path = tmp_path / "odd.cvhe"
    code, out = encrypt(keys, src, out_path)
    assert code == 2, out
    assert "odd.csv" in out and "row 2" in out and "'v'" in out and "not a number" in out
    assert not out_path.exists()


def test_he_accepts_the_documented_number_forms(keys: Path, tmp_path: Path) -> None:
    src = write(tmp_path / "ok.csv", "id,v\n1,+7\n2,-1.25\n3,.5\n4,2e2\n")
    code, out = encrypt(keys, src, tmp_path / "ok.cvhe", "--scale", "100")
    assert code == 0, out


# -- 4. ids PSI calls the same ----------------------------------------------------------

def test_aggregate_explains_ids_that_differ_only_in_form(keys: Path, tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", "id,v\n00126,1\nC001,2\n")
    b = write(tmp_path / "b.csv", "id,v\n 00126,1\nc001,2\n")
    for src in (a, b):
        assert encrypt(keys, src, src.with_suffix(".cvhe"))[0] == 0
    code, out = run(he, "aggregate", str(a.with_suffix(".cvhe")), str(b.with_suffix(".cvhe")),
                    "-o", str(tmp_path / "sum.cvhe"))
    assert code == 2, out
    assert "'00126'" in out and "' 00126'" in out and "write every id the same way" in out


# -- 5. messages --------------------------------------------------------------------------

def test_private_key_given_as_public(keys: Path, tmp_path: Path) -> None:
    src = write(tmp_path / "a.csv", "id,v\n1,2\n")
    code, out = run(he, "encrypt", "--public", str(keys / "private.cvhe"), "--column", "v",
                    "--id-column", "id", str(src), "-o", str(tmp_path / "a.cvhe"))
    assert code == 2 and "is the private key" in out and "bad magic" not in out, out


def test_public_key_given_as_key_fails_before_any_warning(keys: Path, tmp_path: Path) -> None:
    srcs = [write(tmp_path / f"b{i}.csv", f"id,v\n1,{i}\n") for i in range(3)]
    for s in srcs:
        assert encrypt(keys, s, s.with_suffix(".cvhe"))[0] == 0
    total = tmp_path / "sum.cvhe"
    assert run(he, "aggregate", *(str(s.with_suffix(".cvhe")) for s in srcs),
               "-o", str(total))[0] == 0
    code, out = run(he, "decrypt", "--key", str(keys / "public.cvhe"), str(total),
                    "-o", str(tmp_path / "t.csv"))
    assert code == 2 and "is the public key" in out, out
    assert "warning" not in out


def test_aggregate_names_the_file_under_another_key(keys: Path, tmp_path: Path) -> None:
    other = tmp_path / "k2"
    assert run(he, "keygen", "--bits", "2048", "-o", str(other))[0] == 0
    srcs = [write(tmp_path / f"b{i}.csv", f"id,v\n1,{i}\n") for i in range(3)]
    assert encrypt(keys, srcs[0], tmp_path / "b0.cvhe")[0] == 0
    assert encrypt(other, srcs[1], tmp_path / "b1.cvhe")[0] == 0
    code, out = run(he, "aggregate", str(tmp_path / "b0.cvhe"), str(tmp_path / "b1.cvhe"),
                    "-o", str(tmp_path / "sum.cvhe"))
    assert code == 2 and "b1.cvhe" in out and "b0.cvhe" in out and "same public key" in out


def test_header_only_input_is_refused(keys: Path, tmp_path: Path) -> None:
    src = write(tmp_path / "empty.csv", "id,v\n")
    out_path = tmp_path / "empty.cvhe"
    code, out = encrypt(keys, src, out_path)
    assert code == 2 and "no rows" in out and "empty.csv" in out, out
    assert not out_path.exists()


def test_value_errors_count_rows_as_every_message_does(keys: Path, tmp_path: Path) -> None:
    """A value the key cannot take is named by its row (from 1), not its index (from 0);
    a cell read as missing says so."""
    src = write(tmp_path / "v.csv", "id,v\na,1.5\nb,2.25\nc,3.125\n")
    code, out = encrypt(keys, src, tmp_path / "v.cvhe", "--scale", "2")
    assert code == 2 and "in row 2 (2.25)" in out and "index" not in out
    src = write(tmp_path / "n.csv", "id,v\na,1\nb,nan\n")
    code, out = encrypt(keys, src, tmp_path / "n.cvhe")
    assert code == 2 and "row 2" in out and "NaN" in out
