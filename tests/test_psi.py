"""Private set intersection: correctness of every mode, transports, framing, misuse."""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privacy.errors import PSIError
from privacy.psi import (
    PsiParty,
    PsiResult,
    finish_files,
    join,
    normalize_id,
    reveal_files,
    serve,
    write_request,
    write_response,
)
from privacy.psi.group import blind, hash_tag, hash_to_group
from privacy.psi.wire import (
    FRAME_VERSION,
    MAGIC,
    MAX_PAYLOAD,
    Frame,
    FrameReader,
    encode_end,
    encode_frame,
    encode_json,
)

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from covault.cli import main; main()", "psi"]
BITS = 2048  # smallest allowed Paillier key keeps the tests fast


def run_pair(a_ids: list[Any], b_ids: list[Any], mode: str = "intersection",
             values: list[int] | None = None,
             **kw: Any) -> tuple[PsiResult, PsiParty, PsiParty]:
    a = PsiParty(a_ids, mode=mode, workers=1, **kw)
    b = PsiParty(b_ids, mode=mode, values=values, workers=1, paillier_bits=BITS, **kw)
    accept = b.accept(a.hello())
    reply = b.reply(a.points())
    return a.finish(accept, b.records(), reply), a, b


def truth(a_ids: list[str], b_ids: list[str]) -> set[str]:
    return {normalize_id(x) for x in a_ids if normalize_id(x)} & {
        normalize_id(x) for x in b_ids if normalize_id(x)}


# -- normalisation and hashing ---------------------------------------------------------

def test_normalize_id_documented_examples() -> None:
    assert normalize_id(" AbC 123\u3000") == "abc123"
    assert normalize_id("ＡＢＣ１２３") == "abc123"  # fullwidth (NFKC)
    assert normalize_id("Straße") == normalize_id("STRASSE")  # casefold
    assert normalize_id(" \t ") == ""


def test_hash_is_domain_separated_by_context() -> None:
    scalar = bytes([7]) + bytes(31)
    one = hash_to_group([b"alice"], "ctx-1", scalar, workers=1)
    assert one == hash_to_group([b"alice"], "ctx-1", scalar, workers=1)
    assert one != hash_to_group([b"alice"], "ctx-2", scalar, workers=1)
    assert hash_tag("a") != hash_tag("a\x00")


def test_different_contexts_never_match() -> None:
    a = PsiParty(["x", "y"], context="one", workers=1)
    b = PsiParty(["x", "y"], context="two", workers=1)
    with pytest.raises(PSIError, match="context"):
        b.accept(a.hello())


# -- modes -----------------------------------------------------------------------------

def test_intersection_fixed_case() -> None:
    a_ids = [" Alice", "bob", "CAROL ", "dave", None, "  ", "ALICE", "x 1"]
    b_ids = ["alice", "BOB", "eve", "bob ", "X1"]
    result, _, _ = run_pair(a_ids, b_ids)
    assert result.size == 3
    assert sorted(result.ids or []) == ["alice", "bob", "x1"]
    assert result.mask == [True, True, False, False, False, False, True, True]
    assert (result.own_size, result.peer_size) == (5, 4)


ids_st = st.lists(st.text(alphabet="abcAB \t1", max_size=4), max_size=25)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ids_st, ids_st)
def test_intersection_equals_true_intersection(a_ids: list[str], b_ids: list[str]) -> None:
    if not any(normalize_id(x) for x in a_ids) or not any(normalize_id(x) for x in b_ids):
        return
    result, _, _ = run_pair(a_ids, b_ids)
    assert set(result.ids or []) == truth(a_ids, b_ids)
    assert result.mask == [normalize_id(x) in truth(a_ids, b_ids) for x in a_ids]


def test_cardinality_returns_only_the_count() -> None:
    result, _, _ = run_pair(["A", "b", "c", "d"], ["a", "B ", "z"], mode="cardinality")
    assert result.size == 2 and result.ids is None and result.mask is None
    # the reply is shuffled: not in the order of the initiator's points
    a = PsiParty([str(i) for i in range(40)], mode="cardinality", workers=1)
    b = PsiParty(["1"], mode="cardinality", workers=1)
    b.accept(a.hello())
    reply = b.reply(a.points())
    in_order = blind(a.points(), b._scalar, workers=1)
    assert reply != in_order and sorted(_chunks(reply)) == sorted(_chunks(in_order))


def _chunks(data: bytes) -> list[bytes]:
    return [data[i : i + 32] for i in range(0, len(data), 32)]


def test_intersection_sum() -> None:
    a_ids = ["alice", "BOB", "carol", "nobody"]
    b_ids = ["Alice", "bob", "bob ", "dave", "carol"]
    values = [10, 5, -2, 1000, 7]
    result, a, b = run_pair(a_ids, b_ids, mode="intersection-sum", values=values)
    assert result.size == 3 and result.ids is None and result.sum is None
    revealed = b.reveal(a.encrypted_sum())
    assert revealed.sum == 10 + 5 - 2 + 7 and revealed.size == 3


def test_intersection_sum_needs_values_and_big_keys() -> None:
    with pytest.raises(PSIError, match="2048"):
        PsiParty(["a"], mode="intersection-sum", paillier_bits=1024)
    a = PsiParty(["a"], mode="intersection-sum", workers=1)
    b = PsiParty(["a"], mode="intersection-sum", workers=1, paillier_bits=BITS)
    with pytest.raises(PSIError, match="values"):
        b.accept(a.hello())


def test_mode_mismatch_and_pickling_rejected() -> None:
    a = PsiParty(["a"], mode="cardinality", workers=1)
    b = PsiParty(["a"], workers=1)
    with pytest.raises(PSIError, match="mode"):
        b.accept(a.hello())
    with pytest.raises(TypeError):
        pickle.dumps(a)
    with pytest.raises(PSIError, match="unknown PSI mode"):
        PsiParty(["a"], mode="union")


def test_invalid_peer_point_rejected() -> None:
    a = PsiParty(["a", "b"], workers=1)
    b = PsiParty(["a"], workers=1)
    b.accept(a.hello())
    with pytest.raises(PSIError, match="invalid ristretto255"):
        b.reply(b"\xff" * 64)
    with pytest.raises(PSIError, match="announced 2"):
        b.reply(a.points()[:32])


def test_multiprocess_pool_matches_inline() -> None:
    ids = [str(i).encode() for i in range(9000)]
    scalar = bytes([9]) + bytes(31)
    assert hash_to_group(ids, "c", scalar, workers=2) == hash_to_group(ids, "c", scalar, workers=1)


# -- framing ---------------------------------------------------------------------------

def read_all(data: bytes) -> list[tuple[Frame, bytes]]:
    reader = FrameReader(io.BytesIO(data), "msg")
    frames = []
    while (got := reader.next(allow_eof=True)) is not None:
        frames.append(got)
    return frames


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"XXXX" + encode_frame(Frame.HELLO, b"{}")[4:], "bad magic"),
        (MAGIC + bytes([FRAME_VERSION + 1, 1, 0, 0]) + bytes(4), "unsupported frame version"),
        (MAGIC + bytes([FRAME_VERSION, 99, 0, 0]) + bytes(4), "unknown frame type"),
        (MAGIC + bytes([FRAME_VERSION, 1, 0, 1]) + bytes(4), "reserved flags"),
        (MAGIC + bytes([FRAME_VERSION, 3, 0, 0]) + (MAX_PAYLOAD + 1).to_bytes(4, "big"),
         "exceeds"),
        (encode_frame(Frame.HELLO, b"{}")[:-1], "truncated"),
        (MAGIC + bytes([1]), "truncated"),
        (encode_json(Frame.ERROR, {"message": "no thanks"}), "peer aborted: no thanks"),
    ],
)
def test_malformed_frames_rejected(data: bytes, match: str) -> None:
    with pytest.raises(PSIError, match=match):
        read_all(data)


def test_malformed_streams_rejected() -> None:
    def stream(data: bytes) -> bytes:
        return FrameReader(io.BytesIO(data), "m").read_stream(Frame.REPLY_CHUNK, 32, limit=3)

    point = bytes(32)
    assert stream(encode_frame(Frame.REPLY_CHUNK, point * 2) + encode_end(Frame.REPLY_CHUNK, 2))
    with pytest.raises(PSIError, match="multiple of the 32-byte"):
        stream(encode_frame(Frame.REPLY_CHUNK, point[:31]))
    with pytest.raises(PSIError, match="count 3, received 2"):
        stream(encode_frame(Frame.REPLY_CHUNK, point * 2) + encode_end(Frame.REPLY_CHUNK, 3))
    with pytest.raises(PSIError, match="exceeds 3 records"):
        stream(encode_frame(Frame.REPLY_CHUNK, point * 4))
    with pytest.raises(PSIError, match="expected REPLY_CHUNK frames, got HELLO"):
        stream(encode_json(Frame.HELLO, {}))
    with pytest.raises(PSIError, match="not a JSON object"):
        FrameReader(io.BytesIO(encode_frame(Frame.HELLO, b"[1]")), "m").expect_json(Frame.HELLO)
    with pytest.raises(PSIError, match="exceeds"):
        encode_frame(Frame.REPLY_CHUNK, bytes(MAX_PAYLOAD + 1))


# -- transports in process -------------------------------------------------------------

def test_socket_transport_in_process() -> None:
    ready = threading.Event()
    port: list[int] = []
    reports: list[Any] = []

    def on_listen(_h: str, p: int) -> None:
        port.append(p)
        ready.set()

    server = PsiParty(["a", "b", "c"], mode="intersection-sum", values=[1, 2, 3], workers=1,
                      paillier_bits=BITS)
    thread = threading.Thread(target=lambda: reports.extend(
        serve(server, port=0, on_listen=on_listen, timeout=30)))
    thread.start()
    assert ready.wait(10)
    result = join(PsiParty(["B", "c", "q"], mode="intersection-sum", workers=1), "127.0.0.1",
                  port[0], timeout=30)
    thread.join(30)
    assert (result.size, result.sum) == (2, 5)
    assert reports[0].sum == 5 and reports[0].peer_size == 3


def test_server_rejects_mismatched_peer_and_joiner_sees_why() -> None:
    ready = threading.Event()
    port: list[int] = []
    errors: list[Exception] = []

    def run() -> None:
        try:
            serve(PsiParty(["a"], workers=1), port=0, timeout=10,
                  on_listen=lambda _h, p: (port.append(p), ready.set()))
        except PSIError as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert ready.wait(10)
    with pytest.raises(PSIError, match="peer aborted: hello: PSI modes differ"):
        join(PsiParty(["a"], mode="cardinality", workers=1), "127.0.0.1", port[0], timeout=10)
    thread.join(10)
    assert errors


def test_file_flow_in_process(tmp_path: Path) -> None:
    a_ids, b_ids = ["x", "Y", "z"], ["y", "z ", "w"]
    write_request(PsiParty(a_ids, mode="intersection-sum", workers=1),
                  tmp_path / "req.msg", tmp_path / "a.state")
    assert (os.stat(tmp_path / "a.state").st_mode & 0o077) == 0
    b = PsiParty(b_ids, mode="intersection-sum", values=[4, 5, 6], workers=1, paillier_bits=BITS)
    write_response(b, tmp_path / "req.msg", tmp_path / "resp.msg", tmp_path / "b.state")
    result = finish_files(a_ids, tmp_path / "a.state", tmp_path / "resp.msg",
                          sum_message=tmp_path / "sum.msg")
    assert result.size == 2
    assert reveal_files(tmp_path / "b.state", tmp_path / "sum.msg").sum == 9
    with pytest.raises(PSIError, match="ids differ"):
        finish_files(["x"], tmp_path / "a.state", tmp_path / "resp.msg",
                     sum_message=tmp_path / "s2.msg")
    (tmp_path / "bad.msg").write_bytes((tmp_path / "resp.msg").read_bytes()[:-5])
    with pytest.raises(PSIError, match="truncated"):
        finish_files(a_ids, tmp_path / "a.state", tmp_path / "bad.msg",
                     sum_message=tmp_path / "s3.msg")
    assert not (tmp_path / "s3.msg").exists()


# -- command line (real processes) -----------------------------------------------------

def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def tables(tmp_path: Path) -> tuple[Path, Path]:
    a = write_csv(tmp_path / "a.csv", [
        {"cust_id": " ID001", "name": "张三", "score": "007"},
        {"cust_id": "id002", "name": "李四", "score": "8"},
        {"cust_id": "ID009", "name": "王五", "score": "9"},
        {"cust_id": "id001 ", "name": "dup", "score": "1"},
    ])
    b = write_csv(tmp_path / "b.csv", [
        {"id": "id001", "amount": "100"}, {"id": "ID002", "amount": "-30"},
        {"id": "id003", "amount": "5"},
    ])
    return a, b


@pytest.mark.parametrize("mode", ["intersection", "intersection-sum"])
def test_cli_serve_and_join_two_processes(tables: tuple[Path, Path], tmp_path: Path,
                                          mode: str) -> None:
    a, b = tables
    port = free_port()
    extra = ["--value-column", "amount", "--paillier-bits", str(BITS)]
    if mode == "intersection":
        extra = []
    pki = tmp_path / "pki"
    cli("certs", str(pki))  # mutual TLS, as in production
    server = subprocess.Popen(
        [*CLI, "serve", "--ids", str(b), "--column", "id", "--port", str(port), "--once",
         "--mode", mode, "--format", "json", "--cert", str(pki / "server.pem"),
         "--key", str(pki / "server.key"), "--ca", str(pki / "ca.crt"), *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out = tmp_path / "shared.csv"
        joined = cli("join", "--ids", str(a), "--column", "cust_id", "--connect",
                     f"127.0.0.1:{port}", "-o", str(out), "--mode", mode, "--format", "json",
                     "--cert", str(pki / "client.pem"), "--key", str(pki / "client.key"),
                     "--ca", str(pki / "ca.crt"))
        s_out, s_err = server.communicate(timeout=60)
    finally:
        server.kill()
    assert server.returncode == 0, s_err
    summary, served = json.loads(joined.stdout), json.loads(s_out)
    assert summary["intersection_size"] == 2 and served["peer_size"] == 3
    if mode == "intersection":
        text = out.read_text(encoding="utf-8").splitlines()
        assert text[0] == '"cust_id","name","score"'
        assert text[1:] == ['" ID001","张三","007"', '"id002","李四","8"', '"id001 ","dup","1"']
    else:
        assert summary["sum"] == 70 and served["sum"] == 70 and not out.exists()


def test_cli_file_flow(tables: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = tables
    req, resp, state = tmp_path / "req.msg", tmp_path / "resp.msg", tmp_path / "a.state"
    cli("request", "--ids", str(a), "-c", "cust_id", "--out-message", str(req),
        "--state", str(state), "--mode", "cardinality")
    cli("respond", "--ids", str(b), "-c", "id", "--in-message", str(req),
        "--out-message", str(resp), "--mode", "cardinality")
    done = cli("finish", "--ids", str(a), "-c", "cust_id", "--state", str(state),
               "--in-message", str(resp), "--format", "json")
    assert json.loads(done.stdout)["intersection_size"] == 2
    wrong = cli("respond", "--ids", str(b), "-c", "id", "--in-message", str(req),
                "--out-message", str(tmp_path / "x.msg"), check=False)
    assert wrong.returncode == 2 and "mode" in wrong.stderr
    assert not (tmp_path / "x.msg").exists()


@pytest.mark.parametrize(
    ("content", "column", "match"),
    [
        ("cust_id,name\n,a\n  ,b\n", "cust_id", "id column is empty"),
        ("cust_id,name\nx,a\n", "nope", "no column 'nope'"),
        ("", "cust_id", "empty file"),
        (None, "cust_id", "no such file"),
    ],
)
def test_cli_input_errors_exit_2_and_write_nothing(tmp_path: Path, content: str | None,
                                                   column: str, match: str) -> None:
    path = tmp_path / "in.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    out, msg = tmp_path / "out.csv", tmp_path / "req.msg"
    proc = cli("request", "--ids", str(path), "-c", column, "--out-message", str(msg),
               "--state", str(tmp_path / "s"), check=False)
    assert proc.returncode == 2 and match in proc.stderr
    proc = cli("join", "--ids", str(path), "-c", column, "--connect", "127.0.0.1:1",
               "-o", str(out), "--insecure-plaintext", check=False)
    assert proc.returncode == 2 and match in proc.stderr
    assert not out.exists() and not msg.exists() and not (tmp_path / "s").exists()


def test_cli_ledger_records_disclosure(tables: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("privacy.ledger")
    a, b = tables
    req, resp, state, db = (tmp_path / n for n in ("req", "resp", "st", "l.db"))
    cli("request", "--ids", str(a), "-c", "cust_id", "--out-message", str(req),
        "--state", str(state), "--mode", "cardinality")
    cli("respond", "--ids", str(b), "-c", "id", "--in-message", str(req),
        "--out-message", str(resp), "--mode", "cardinality", "--ledger", str(db))
    cli("finish", "--ids", str(a), "-c", "cust_id", "--state", str(state),
        "--in-message", str(resp), "--ledger", str(db))
    from privacy.ledger import Ledger

    with Ledger(db) as ledger:
        records = list(ledger.records())
    assert [r.kind for r in records] == ["psi.respond", "psi.finish"]
    assert records[1].payload["intersection_size"] == 2 and records[0].payload["peer_size"] == 3


# -- identifier normalisation (issue 13) -----------------------------------------------

def _mobiles(n: int) -> list[str]:
    return [f"1{'3456789'[i % 7]}{(12345678 + 7919 * i) % 10**9:09d}" for i in range(n)]


def _written(m: str, form: int) -> str:
    return [f"+86 {m[:3]} {m[3:7]} {m[7:]}", m, "+86" + m, f"{m[:3]}-{m[3:7]}-{m[7:]}"][form]


def test_id_type_finds_every_shared_mobile_written_differently() -> None:
    mobiles = _mobiles(100)
    a_ids = [_written(m, i % 4) for i, m in enumerate(mobiles)]
    b_ids = [_written(m, (2, 0, 3, 1)[i % 4]) for i, m in enumerate(mobiles)]
    assert not set(a_ids) & set(b_ids)
    text, _, _ = run_pair(a_ids, b_ids)
    assert text.size == 25  # whitespace and case only: the walls of issue 13
    result, a, _ = run_pair(a_ids, b_ids, id_type="mobile")
    assert result.size == 100 and result.mask == [True] * 100
    assert a.hello()["id_type"] == "mobile"
    assert run_pair(a_ids, b_ids, id_type="auto")[0].size == 100


def test_id_type_mismatch_and_misuse_are_refused(tmp_path: Path) -> None:
    a = PsiParty(["18781618495"], id_type="mobile", workers=1)
    b = PsiParty(["+86 187 8161 8495"], workers=1)
    with pytest.raises(PSIError, match="normalises ids as 'mobile', ours as 'text'"):
        b.accept(a.hello())
    with pytest.raises(PSIError, match="unknown id type 'phone'"):
        PsiParty(["x"], id_type="phone")
    with pytest.raises(PSIError, match="either normalize= or id_type="):
        PsiParty(["x"], id_type="mobile", normalize=str.strip)
    # the file flow keeps the id type in the initiator's state
    write_request(a, tmp_path / "req.msg", tmp_path / "a.state")
    write_response(PsiParty(["+86 187 8161 8495"], id_type="mobile", workers=1),
                   tmp_path / "req.msg", tmp_path / "resp.msg")
    assert finish_files(["18781618495"], tmp_path / "a.state", tmp_path / "resp.msg").size == 1


def test_cli_id_type(tmp_path: Path) -> None:
    mobiles = _mobiles(8)
    a = write_csv(tmp_path / "a.csv", [{"mobile": _written(m, i % 4)}
                                       for i, m in enumerate(mobiles)])
    b = write_csv(tmp_path / "b.csv", [{"phone": _written(m, (i + 1) % 4)}
                                       for i, m in enumerate(mobiles[:6])])
    req, resp, state = tmp_path / "req.msg", tmp_path / "resp.msg", tmp_path / "a.state"
    cli("request", "--ids", str(a), "-c", "mobile", "--out-message", str(req),
        "--state", str(state), "--mode", "cardinality", "--id-type", "mobile")
    cli("respond", "--ids", str(b), "-c", "phone", "--in-message", str(req),
        "--out-message", str(resp), "--mode", "cardinality", "--id-type", "mobile")
    done = cli("finish", "--ids", str(a), "-c", "mobile", "--state", str(state),
               "--in-message", str(resp), "--format", "json")
    assert json.loads(done.stdout)["intersection_size"] == 6
    wrong = cli("respond", "--ids", str(b), "-c", "phone", "--in-message", str(req),
                "--out-message", str(tmp_path / "x.msg"), "--mode", "cardinality",
                check=False)
    assert wrong.returncode == 2 and "id type" in wrong.stderr
