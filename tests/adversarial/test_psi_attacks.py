"""Issue 11 (1) and (6): attacks on PSI ``intersection-sum`` and on ``psi serve``.

(1) Before the fix the key holder decrypted whatever ciphertext the joiner sent back as
the "sum" and returned it: a joiner who shares no id could pack every one of the
server's values into separate bit slots of one plaintext (a product of the server's
ciphertexts raised to ``2^(40 j)``), claim ``count: 0``, and read them all from the
reply, and the server wrote the value to its ledger. Now the server decrypts only a
count it can accept (``0 <= count <= min(both set sizes)``, ``>= min_count``), refuses
a plaintext beyond ``count * max|value|`` of its own column without saying what it
was, and its ledger never holds the sum. What a deviating joiner can still learn (one
bounded linear combination per session) is reproduced below, as documented.

(6) Before the fix one crafted SUM (a plaintext in phe's overflow band) raised an
uncaught ``OverflowError`` that killed ``psi serve``; one slow client blocked every
other (one connection at a time, per-read timeout only); a peer's ``ERROR`` text
reached the terminal with its control characters. Now each session runs on its own
thread under an overall deadline, any exception ends that session only, each
session's outcome goes to stderr and the ledger, and peer text is escaped.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from privacy.errors import PSIError
from privacy.psi import PsiParty, join, reveal_files
from privacy.psi.files import finish_files, write_request, write_response
from privacy.psi.group import POINT_BYTES
from privacy.psi.sums import ciphertext_bytes, public_key_from_accept
from privacy.psi.wire import Frame, FrameReader, encode_digest, encode_frame, encode_json

from ._psiserver import Server

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from covault.cli import main; main()", "psi"]
BITS = 2048
SLOT = 40  # bits per packed value
# distinctive values: none of them may ever appear in an error, a report or a ledger
VALUES = [7340033, 9110017, 5318011, 6620003]
IDS = ["c-101", "c-202", "c-303", "c-404"]


# -- the attacker ----------------------------------------------------------------------

def _ciphertexts(accept: dict[str, Any], records: bytes) -> tuple[Any, list[int]]:
    public = public_key_from_accept(accept)
    width = ciphertext_bytes(public)
    record = POINT_BYTES + width
    cts = [int.from_bytes(records[i + POINT_BYTES : i + record], "big")
           for i in range(0, len(records), record)]
    return public, cts


def packed_message(accept: dict[str, Any], records: bytes, count: int = 0) -> dict[str, Any]:
    """Enc(sum_j v_j * 2^(SLOT j)) from the server's own ciphertexts: every value in its
    own slot of one plaintext."""
    public, cts = _ciphertexts(accept, records)
    nsq = int(public.nsquare)
    total = 1
    for j, c in enumerate(cts):
        total = total * pow(c, 1 << (SLOT * j), nsq) % nsq
    return {"count": count, "ciphertext": format(total, "x")}


def with_digest(frames: bytes) -> bytes:
    """A message file: the frames and their SHA-256 digest frame (anyone can compute it)."""
    return frames + encode_digest(frames)


def unpack(plain: int, n: int) -> list[int]:
    return [(plain >> (SLOT * j)) & ((1 << SLOT) - 1) for j in range(n)]


def single_message(accept: dict[str, Any], records: bytes, j: int, count: int) -> dict[str, Any]:
    """The ciphertext of the server's j-th record alone, whoever's id it is."""
    _, cts = _ciphertexts(accept, records)
    return {"count": count, "ciphertext": format(cts[j], "x")}


class Packer(PsiParty):
    """A joiner who returns the packed product instead of the sum, with ``count: 0``."""

    def encrypted_sum(self) -> dict[str, Any]:
        return packed_message(self._accept, self._records, count=0)


class Overflower(PsiParty):
    """A joiner whose SUM decrypts into phe's overflow band (n/3 < m < 2n/3): phe's
    ``decrypt`` raised ``OverflowError`` on it, which ``psi serve`` did not catch."""

    def encrypted_sum(self) -> dict[str, Any]:
        public = public_key_from_accept(self._accept)
        n = int(public.n)
        c = (1 + (n // 2) * n) % int(public.nsquare)  # Enc(n/2) with r = 1
        return {"count": 1, "ciphertext": format(c, "x")}


def session(joiner_ids: list[str], *, min_count: int = 1) -> tuple[PsiParty, PsiParty,
                                                                    dict[str, Any], bytes]:
    a = PsiParty(joiner_ids, mode="intersection-sum", workers=1)
    extra = {} if min_count == 1 else {"min_count": min_count}
    b = PsiParty(IDS, mode="intersection-sum", values=VALUES, workers=1, paillier_bits=BITS,
                 **extra)
    accept = b.accept(a.hello())
    records = b.records()
    a.finish(accept, records, b.reply(a.points()))
    return a, b, accept, records


def assert_no_value(text: str) -> None:
    for v in VALUES:
        assert str(v) not in text, f"value {v} leaked: {text}"


# -- (1) the key holder decrypts only a sum it can bound --------------------------------

def test_packed_product_is_a_real_attack_and_is_refused() -> None:
    _, b, accept, records = session(["nobody-1", "nobody-2"])
    message = packed_message(accept, records, count=0)
    # the attack is real: the ciphertext holds every one of the server's values
    public, private = b._paillier
    plain = private.raw_decrypt(int(message["ciphertext"], 16))
    assert sorted(unpack(plain, len(VALUES))) == sorted(VALUES)
    with pytest.raises(PSIError, match="refused") as caught:
        b.reveal(message)
    assert_no_value(str(caught.value))
    assert str(plain) not in str(caught.value)
    # the same product with an honest-looking count is refused as well
    with pytest.raises(PSIError, match="refused"):
        b.reveal(packed_message(accept, records, count=2))


@pytest.mark.parametrize("count", [-1, 3, 4, True, "2", 2**80])
def test_count_must_be_within_both_set_sizes(count: Any) -> None:
    _, b, accept, records = session(["c-101", "x"])  # the joiner announced 2 ids
    with pytest.raises(PSIError):
        b.reveal(single_message(accept, records, 0, count))


def test_crafted_overflow_plaintext_is_refused_not_raised() -> None:
    a = Overflower(["c-101"], mode="intersection-sum", workers=1)
    b = PsiParty(IDS, mode="intersection-sum", values=VALUES, workers=1, paillier_bits=BITS)
    accept = b.accept(a.hello())
    a.finish(accept, b.records(), b.reply(a.points()))
    with pytest.raises(PSIError, match="refused"):  # was OverflowError
        b.reveal(a.encrypted_sum())


def test_honest_sum_and_negative_values_still_revealed() -> None:
    a = PsiParty(["C-101", "c-303", "zz"], mode="intersection-sum", workers=1)
    b = PsiParty(IDS, mode="intersection-sum", values=[-5, 9, -7, 2], workers=1,
                 paillier_bits=BITS)
    accept = b.accept(a.hello())
    a.finish(accept, b.records(), b.reply(a.points()))
    got = b.reveal(a.encrypted_sum())
    assert (got.sum, got.size) == (-12, 2)


def test_no_intersection_is_answered_with_zero() -> None:
    a, b, _, _ = session(["nobody"])
    got = b.reveal(a.encrypted_sum())
    assert (got.sum, got.size) == (0, 0)


def test_documented_limit_any_single_value_within_the_bound() -> None:
    """What remains, as the README says: a joiner sharing no id can still have any one
    of the server's values decrypted (count 1 is within both set sizes, and one value
    is within 1 x max|value|). ``min_count`` stops it only below that count."""
    _, b, accept, records = session(["nobody"])
    leaked = b.reveal(single_message(accept, records, 0, count=1)).sum
    assert leaked in VALUES
    _, b2, accept2, records2 = session(["nobody"], min_count=2)
    with pytest.raises(PSIError, match="minimum count 2"):
        b2.reveal(single_message(accept2, records2, 0, count=1))
    # ... but a joiner with two ids claims count 2 and still gets one value
    _, b3, accept3, records3 = session(["nobody", "no-one"], min_count=2)
    assert b3.reveal(single_message(accept3, records3, 0, count=2)).sum in VALUES


def test_file_flow_reveal_refuses_packed_product(tmp_path: Path) -> None:
    a_ids = ["c-101", "c-202"]
    write_request(PsiParty(a_ids, mode="intersection-sum", workers=1),
                  tmp_path / "req.msg", tmp_path / "a.state")
    b = PsiParty(IDS, mode="intersection-sum", values=VALUES, workers=1, paillier_bits=BITS)
    write_response(b, tmp_path / "req.msg", tmp_path / "resp.msg", tmp_path / "b.state")
    finish_files(a_ids, tmp_path / "a.state", tmp_path / "resp.msg",
                 sum_message=tmp_path / "sum.msg")
    assert reveal_files(tmp_path / "b.state", tmp_path / "sum.msg").sum == 7340033 + 9110017
    with open(tmp_path / "resp.msg", "rb") as fh:
        reader = FrameReader(fh, "resp")
        accept = reader.expect_json(Frame.ACCEPT)
        records = reader.read_stream(Frame.RESPONDER_CHUNK, int(accept["record"]), limit=4)
    (tmp_path / "evil.msg").write_bytes(  # the digest only catches accidents: recomputed
        with_digest(encode_json(Frame.SUM, packed_message(accept, records, count=0))))
    with pytest.raises(PSIError, match="refused") as caught:
        reveal_files(tmp_path / "b.state", tmp_path / "evil.msg")
    assert_no_value(str(caught.value))


@pytest.fixture()
def sum_server() -> Iterator[Server]:
    server = Server(PsiParty(IDS, mode="intersection-sum", values=VALUES, workers=1,
                             paillier_bits=BITS), timeout=20, session_timeout=60)
    yield server
    server.close()


def honest_join(port: int, ids: list[str] | None = None) -> Any:
    party = PsiParty(ids or ["c-202", "C-404 ", "zz"], mode="intersection-sum", workers=1)
    return join(party, "127.0.0.1", port, timeout=30, connect_timeout=5)


def test_server_refuses_packed_product_then_serves_honest_joiner(sum_server: Server) -> None:
    with pytest.raises(PSIError, match="peer aborted: .*refused") as caught:
        join(Packer(["nobody"], mode="intersection-sum", workers=1), "127.0.0.1",
             sum_server.port, timeout=30, connect_timeout=5)
    assert_no_value(str(caught.value))
    sum_server.wait_reports(1)
    result = honest_join(sum_server.port)
    assert (result.size, result.sum) == (2, 9110017 + 6620003)
    refused, ok = sum_server.wait_reports(2)
    assert refused.outcome == "refused" and refused.sum is None and refused.claimed_count == 0
    assert ok.outcome == "ok" and ok.sum == 9110017 + 6620003
    for report in (refused, ok):
        assert "sum" not in report.record()
        assert_no_value(json.dumps(report.record()))


def test_overflow_message_does_not_kill_the_server(sum_server: Server) -> None:
    with pytest.raises(PSIError, match="peer aborted"):
        join(Overflower(["c-101"], mode="intersection-sum", workers=1), "127.0.0.1",
             sum_server.port, timeout=30, connect_timeout=5)
    sum_server.wait_reports(1)
    assert honest_join(sum_server.port).sum == 9110017 + 6620003
    assert [r.outcome for r in sum_server.wait_reports(2)] == ["refused", "ok"]


def test_any_exception_ends_only_its_session(monkeypatch: pytest.MonkeyPatch) -> None:
    import privacy.psi.party as party_module

    calls: list[int] = []

    def boom(*_a: Any, **_k: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OverflowError("Overflow detected in decrypted number")
        raise ZeroDivisionError("a library bug")

    server = Server(PsiParty(IDS, mode="intersection-sum", values=VALUES, workers=1,
                             paillier_bits=BITS), timeout=20, session_timeout=60)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(party_module, "decrypt_sum", boom)
            for k in (1, 2):
                with pytest.raises(PSIError, match="peer aborted: internal error"):
                    honest_join(server.port)
                server.wait_reports(k)
        assert honest_join(server.port).sum == 9110017 + 6620003
        reports = server.wait_reports(3)
    finally:
        server.close()
    assert [r.outcome for r in reports] == ["error", "error", "ok"]
    assert "OverflowError" in (reports[0].error or "")
    assert reports[0].peer.startswith("peer 127.0.0.1:")


def test_slow_client_does_not_block_another() -> None:
    server = Server(PsiParty(IDS, workers=1), timeout=60, session_timeout=60)
    slow = socket.create_connection(("127.0.0.1", server.port))
    try:
        slow.sendall(encode_json(Frame.HELLO, {})[:5])  # half a header, then silence
        time.sleep(0.3)
        started = time.monotonic()
        result = join(PsiParty(["c-101", "q"], workers=1), "127.0.0.1", server.port,
                      timeout=20, connect_timeout=5)
        assert result.ids == ["c-101"] and time.monotonic() - started < 20
    finally:
        slow.close()
        server.close()
    assert sorted(r.outcome for r in server.reports) == ["failed", "ok"]


def test_session_deadline_ends_a_trickling_client() -> None:
    server = Server(PsiParty(IDS, workers=1), timeout=30, session_timeout=1.5)
    frame = encode_json(Frame.HELLO, {"protocol": "covault-psi/1"})
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as slow:
            for byte in frame[:-1]:  # one byte every 0.2 s: each read is "in time"
                try:
                    slow.sendall(bytes([byte]))
                except OSError:
                    break
                if server.reports:
                    break
                time.sleep(0.2)
            (report,) = server.wait_reports(1, limit=10)
    finally:
        server.close()
    assert report.outcome == "deadline" and "deadline of 1.5 s" in (report.error or "")
    assert time.monotonic() - started < 10


def test_sessions_beyond_the_limit_are_told_busy() -> None:
    server = Server(PsiParty(IDS, workers=1), timeout=30, session_timeout=30, max_sessions=1)
    slow = socket.create_connection(("127.0.0.1", server.port))
    try:
        time.sleep(0.5)
        with pytest.raises(PSIError, match="peer aborted: server busy"):
            join(PsiParty(["c-101"], workers=1), "127.0.0.1", server.port, timeout=10,
                 connect_timeout=5)
    finally:
        slow.close()
    try:
        server.wait_reports(2)
        assert join(PsiParty(["c-101"], workers=1), "127.0.0.1", server.port, timeout=20,
                    connect_timeout=5).ids == ["c-101"]
    finally:
        server.close()
    assert [r.outcome for r in server.reports][:2] == ["busy", "failed"]


# -- control characters in a peer's error text ------------------------------------------

NASTY = "no\x1b[2J\x1b]0;owned\x07 \u202egnp.exe\r\nforged: line\u2028x"


def _has_control(text: str) -> bool:
    return any(c in text for c in "\x1b\x07\r\n\u202e\u2028")


def test_joiner_escapes_the_servers_error_text() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def fake_server() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(encode_json(Frame.ERROR, {"message": NASTY}))

        thread = threading.Thread(target=fake_server, daemon=True)
        thread.start()
        with pytest.raises(PSIError) as caught:
            join(PsiParty(["a"], workers=1), "127.0.0.1", port, timeout=10, connect_timeout=5)
        thread.join(10)
    text = str(caught.value)
    assert not _has_control(text) and "\\x1b[2J" in text and "\\u202e" in text


def test_server_escapes_the_joiners_error_text() -> None:
    server = Server(PsiParty(IDS, workers=1), timeout=10, session_timeout=30)
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as conn:
            conn.sendall(encode_json(Frame.ERROR, {"message": NASTY}))
            conn.sendall(encode_frame(Frame.ERROR, json.dumps({"message": ["x"]}).encode()))
        (report,) = server.wait_reports(1)
    finally:
        server.close()
    assert report.outcome == "failed" and not _has_control(report.error or "")
    assert "\\x1b" in (report.error or "")


# -- the command line: stderr outcome lines and a ledger without values ------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _connect(port: int) -> socket.socket:
    """Connect once the server listens (it may still be importing)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=60)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _ledger(path: Path) -> list[Any]:
    from privacy.ledger import Ledger

    if not path.exists():
        return []
    with Ledger(path, read_only=True) as log:
        return list(log.records())


def _wait_ledger(path: Path, n: int) -> None:
    deadline = time.monotonic() + 30
    while len(_ledger(path)) < n and time.monotonic() < deadline:
        time.sleep(0.1)


def test_cli_serve_refuses_attack_logs_outcomes_keeps_values_out_of_ledger(
        tmp_path: Path) -> None:
    pytest.importorskip("privacy.ledger")
    table = tmp_path / "b.csv"
    table.write_text("id,amount\n" + "".join(f"{i},{v}\n" for i, v in zip(IDS, VALUES,
                                                                          strict=True)),
                     encoding="utf-8")
    db, port = tmp_path / "b.db", _free_port()
    server = subprocess.Popen(
        [*CLI, "serve", "--ids", str(table), "--column", "id", "--port", str(port),
         "--mode", "intersection-sum", "--value-column", "amount", "--paillier-bits",
         str(BITS), "--ledger", str(db), "--format", "json", "--timeout", "30",
         "--insecure-plaintext"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with pytest.raises(PSIError, match="refused") as caught:  # (1) the packed product
            join(Packer(["nobody"], mode="intersection-sum", workers=1), "127.0.0.1", port,
                 timeout=60, connect_timeout=60)
        assert_no_value(str(caught.value))
        _wait_ledger(db, 1)
        with pytest.raises(PSIError, match="peer aborted"):  # (6) phe's OverflowError
            join(Overflower(["c-101"], mode="intersection-sum", workers=1), "127.0.0.1",
                 port, timeout=60, connect_timeout=10)
        _wait_ledger(db, 2)
        with socket.create_connection(("127.0.0.1", port)) as conn:  # control characters
            conn.sendall(encode_json(Frame.ERROR, {"message": NASTY}))
        _wait_ledger(db, 3)
        result = join(PsiParty(["c-303", "c-404"], mode="intersection-sum", workers=1),
                      "127.0.0.1", port, timeout=60, connect_timeout=10)
        assert (result.size, result.sum) == (2, 5318011 + 6620003)
        _wait_ledger(db, 4)
    finally:
        server.terminate()
        s_out, s_err = server.communicate(timeout=30)
    records = _ledger(db)
    assert [r.kind for r in records] == ["psi.serve"] * 4
    assert [r.payload["outcome"] for r in records] == ["refused", "refused", "failed", "ok"]
    assert [r.payload["claimed_count"] for r in records] == [0, 1, None, 2]
    for record in records:
        assert "sum" not in record.payload
        assert_no_value(json.dumps(record.payload))
    assert records[3].payload["intersection_size"] == 2
    assert len(records[3].payload["sum_sha256"]) == 64
    # stderr: one line per session naming peer, mode and outcome, no raw control chars
    lines = [ln for ln in s_err.splitlines() if "mode intersection-sum:" in ln]
    assert len(lines) == 4 and all(ln.startswith("psi: peer 127.0.0.1:") for ln in lines)
    assert "\x1b" not in s_err and "\u202e" not in s_err and "\\x1b" in s_err
    assert_no_value(s_err)
    # stdout: the operator's own summary of the honest session only
    (summary,) = [json.loads(ln) for ln in s_out.splitlines() if ln.strip()]
    assert summary["sum"] == 5318011 + 6620003


def test_cli_slow_client_does_not_block_a_second(tmp_path: Path) -> None:
    table = tmp_path / "b.csv"
    table.write_text("id\n" + "".join(f"{i}\n" for i in IDS), encoding="utf-8")
    port = _free_port()
    server = subprocess.Popen(
        [*CLI, "serve", "--ids", str(table), "--column", "id", "--port", str(port),
         "--mode", "cardinality", "--format", "json", "--insecure-plaintext"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        slow = _connect(port)
        try:
            slow.sendall(b"CV")  # then nothing: the old server waited 600 s on this read
            result = join(PsiParty(["c-101", "c-404", "q"], mode="cardinality", workers=1),
                          "127.0.0.1", port, timeout=20, connect_timeout=30)
        finally:
            slow.close()
        assert result.size == 2
    finally:
        server.terminate()
        server.communicate(timeout=30)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.fixture()
def sum_tables(tmp_path: Path) -> tuple[Path, Path]:
    b = tmp_path / "b.csv"
    b.write_text("id,amount\n" + "".join(f"{i},{v}\n" for i, v in zip(IDS, VALUES,
                                                                      strict=True)),
                 encoding="utf-8")
    a = tmp_path / "a.csv"
    a.write_text("cust\nC-101\nc-202\nzz\n", encoding="utf-8")
    return a, b


def test_cli_honest_sum_ledgers_hold_no_sum(sum_tables: tuple[Path, Path],
                                            tmp_path: Path) -> None:
    pytest.importorskip("privacy.ledger")
    a, b = sum_tables
    a_db, b_db, port = tmp_path / "a.db", tmp_path / "b.db", _free_port()
    server = subprocess.Popen(
        [*CLI, "serve", "--ids", str(b), "--column", "id", "--port", str(port), "--once",
         "--mode", "intersection-sum", "--value-column", "amount", "--paillier-bits",
         str(BITS), "--ledger", str(b_db), "--format", "json", "--insecure-plaintext"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        joined = _cli("join", "--ids", str(a), "--column", "cust", "--connect",
                      f"127.0.0.1:{port}", "--mode", "intersection-sum", "--ledger", str(a_db),
                      "--format", "json", "--insecure-plaintext")
        s_out, s_err = server.communicate(timeout=60)
    finally:
        server.kill()
    assert joined.returncode == 0 and server.returncode == 0, joined.stderr + s_err
    total = 7340033 + 9110017
    assert json.loads(joined.stdout)["sum"] == total == json.loads(s_out)["sum"]
    for db, kind in ((a_db, "psi.join"), (b_db, "psi.serve")):
        (record,) = _ledger(db)
        assert record.kind == kind and record.payload["intersection_size"] == 2
        assert "sum" not in record.payload and str(total) not in json.dumps(record.payload)
    assert "mode intersection-sum: ok (peer_size 3, intersection_size 2" in s_err


def test_cli_reveal_refusal_is_recorded_without_values(sum_tables: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    pytest.importorskip("privacy.ledger")
    a, b = sum_tables
    f = {n: str(tmp_path / n) for n in ("req", "a.st", "resp", "b.st", "sum", "evil", "l.db")}
    for args in (
        ("request", "--ids", str(a), "-c", "cust", "--out-message", f["req"], "--state",
         f["a.st"], "--mode", "intersection-sum"),
        ("respond", "--ids", str(b), "-c", "id", "--in-message", f["req"], "--out-message",
         f["resp"], "--state", f["b.st"], "--value-column", "amount", "--mode",
         "intersection-sum", "--paillier-bits", str(BITS)),
        ("finish", "--ids", str(a), "-c", "cust", "--state", f["a.st"], "--in-message",
         f["resp"], "--out-message", f["sum"]),
    ):
        done = _cli(*args)
        assert done.returncode == 0, done.stderr
    with open(f["resp"], "rb") as fh:
        reader = FrameReader(fh, "resp")
        accept = reader.expect_json(Frame.ACCEPT)
        records = reader.read_stream(Frame.RESPONDER_CHUNK, int(accept["record"]), limit=4)
    Path(f["evil"]).write_bytes(with_digest(encode_json(Frame.SUM,
                                                        packed_message(accept, records))))
    evil = _cli("reveal", "--state", f["b.st"], "--in-message", f["evil"], "--ledger",
                f["l.db"], "--format", "json")
    assert evil.returncode == 2 and "refused" in evil.stderr and evil.stdout == ""
    assert_no_value(evil.stderr)
    ok = _cli("reveal", "--state", f["b.st"], "--in-message", f["sum"], "--ledger", f["l.db"],
              "--min-count", "2", "--format", "json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["sum"] == 7340033 + 9110017
    small = _cli("reveal", "--state", f["b.st"], "--in-message", f["sum"], "--min-count", "3")
    assert small.returncode == 2 and "minimum count 3" in small.stderr
    refused, revealed = _ledger(Path(f["l.db"]))
    assert refused.payload["outcome"] == "refused" and revealed.payload["outcome"] == "ok"
    assert revealed.payload["intersection_size"] == 2
    for record in (refused, revealed):
        assert "sum" not in record.payload and str(7340033 + 9110017) not in str(record.payload)
        assert_no_value(json.dumps(record.payload))
