"""Issue 11 (10): one line that is not UTF-8 must not fail a whole `covault audit ingest`.

For every supported log format, a file with one bad-byte record (a GBK-encoded name, as a
server with a Chinese ``lc_messages``/client encoding writes) among good ones: the good
records are stored, the bad one is quarantined with its exact bytes in base64 and the
reason ``line N: not UTF-8 at byte K``, and the command exits 0 without a traceback.
Before the fix the quarantine insert raised ``UnicodeEncodeError`` (surrogates) and the
whole ingest failed.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from covault.cli import main
from privacy.audit.store import AuditStore

GBK_NAME = "张三".encode("gbk")  # b"\xd5\xc5\xc8\xfd": \xd5 starts a UTF-8 pair, \xc5 breaks it


def _jsonl() -> tuple[list[bytes], int, int, int]:
    def rec(actor: bytes, stmt: bytes) -> bytes:
        return b'{"ts":"2026-03-02T01:30:05Z","actor":"' + actor + b'","statement":"' + stmt + b'"}'

    bad = rec(b"teller01", b"select * from customers where name = '" + GBK_NAME + b"'")
    good = [rec(b"teller01", b"select 1"), rec(b"teller02", "select '张三'".encode())]
    return [good[0], bad, good[1]], 2, 2, bad.index(GBK_NAME)


def _csv() -> tuple[list[bytes], int, int, int]:
    bad = b"2026-03-02T01:30:06Z,teller01,\"select * from customers where name = '" + \
        GBK_NAME + b"'\""
    lines = [b"ts,actor,statement", b"2026-03-02T01:30:05Z,teller01,select 1", bad,
             "2026-03-02T01:30:07Z,teller02,select '张三'".encode()]
    return lines, 3, 3, bad.index(GBK_NAME)


_STDERR_HEAD = b"2026-03-02 01:30:0%d.200 UTC [42%02d] teller01@corebank 10.1.2.3(52344) teller-ui "


def _stderr() -> tuple[list[bytes], int, int, int]:
    def rec(i: int, stmt: bytes) -> bytes:
        return (_STDERR_HEAD % (i, i) + b"LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,"
                + stmt + b",<not logged>,1")

    bad = rec(6, b"select * from customers where name = '" + GBK_NAME + b"'")
    lines = [b"2026-03-02 01:30:00.100 UTC [4100] LOG:  database system is ready",
             rec(5, b"select 1"), bad, rec(7, "select '张三'".encode())]
    return lines, 3, 3, bad.index(GBK_NAME)


_CSVLOG_TAIL = b",,,,,,,,,teller-ui,client backend,,0"


def _csvlog() -> tuple[list[bytes], int, int, int]:
    def rec(i: int, stmt: bytes) -> bytes:
        return (b"2026-03-02 09:30:0%d.200 +08,teller01,corebank,42%02d,10.1.2.3:52344,"
                b"65e2c3a1.1068,1,SELECT,2026-03-02 09:30:04 +08,3/2,0,LOG,00000,"
                b'"AUDIT: SESSION,1,1,READ,SELECT,,,' % (i, i) + stmt
                + b',<not logged>,1"' + _CSVLOG_TAIL)

    bad = rec(6, b"select * from customers where name = '" + GBK_NAME + b"'")
    lines = [rec(5, b"select 1"), bad, rec(7, "select '张三'".encode())]
    return lines, 2, 2, bad.index(GBK_NAME)


FORMATS = {"jsonl": _jsonl, "csv": _csv, "pgaudit-stderr": _stderr, "pgaudit-csvlog": _csvlog}


def _ingest(path: Path, fmt: str, db: Path) -> tuple[int, dict[str, Any]]:
    # catch_exceptions=False: a traceback fails the test instead of becoming exit 1
    res = CliRunner().invoke(main, ["audit", "ingest", str(path), "--format", fmt,
                                    "--db", str(db), "--json"], catch_exceptions=False)
    return res.exit_code, json.loads(res.stdout) if res.exit_code == 0 else {"out": res.output}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_one_bad_line_is_quarantined_and_the_rest_ingested(tmp_path: Path, fmt: str) -> None:
    lines, bad_no, reason_no, k = FORMATS[fmt]()
    path = tmp_path / f"log.{fmt}"
    path.write_bytes(b"\n".join(lines) + b"\n")
    db = tmp_path / "audit.db"
    code, rep = _ingest(path, fmt, db)
    assert code == 0, rep
    assert rep["added"] == 2 and rep["quarantined"] == 1, rep
    assert rep["quarantined_lines"] == [
        {"line": bad_no, "reason": f"line {reason_no}: not UTF-8 at byte {k} (raw is base64)"}]
    store = AuditStore(db)
    try:
        (q,) = store.quarantine()
        assert q["line"] == bad_no
        assert base64.b64decode(q["raw"], validate=True) == lines[bad_no - 1]
        actors = sorted(e.actor for e in store.events())
        assert len(actors) == 2
        store.verify()
    finally:
        store.close()
    # ingesting again adds nothing and still does not fail
    code, rep = _ingest(path, fmt, db)
    assert code == 0 and rep["added"] == 0 and rep["duplicates"] == 2, rep


@pytest.mark.parametrize("fmt", ["pgaudit-stderr", "pgaudit-csvlog", "csv"])
def test_bad_byte_on_a_continuation_line_keeps_the_whole_record(tmp_path: Path,
                                                               fmt: str) -> None:
    """A multi-line record (quoted statement, stderr continuation) with the bad byte on its
    second line: the reason names that line, raw holds every line of the record."""
    if fmt == "pgaudit-stderr":
        lines = [(_STDERR_HEAD % (5, 5) + b"LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,\"select *"),
                 b"\t  from customers where name = '" + GBK_NAME + b"'\",<not logged>,1",
                 _STDERR_HEAD % (6, 6) + b"LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,select 1,"
                 b"<not logged>,1"]
        record, k = lines[:2], len(b"\t  from customers where name = '")
    elif fmt == "pgaudit-csvlog":
        head = (b"2026-03-02 09:30:0%d.200 +08,teller01,corebank,42%02d,10.1.2.3:52344,"
                b"65e2c3a1.1068,1,SELECT,2026-03-02 09:30:04 +08,3/2,0,LOG,00000,")
        lines = [head % (5, 5) + b'"AUDIT: SESSION,1,1,READ,SELECT,,,""select *',
                 b"  from customers where name = '" + GBK_NAME + b"'\"\",<not logged>,1\""
                 + _CSVLOG_TAIL,
                 head % (6, 6) + b'"AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<not logged>,1"'
                 + _CSVLOG_TAIL]
        record, k = lines[:2], len(b"  from customers where name = '")
    else:
        lines = [b"ts,actor,statement", b'2026-03-02T01:30:05Z,teller01,"select *',
                 b"  from customers where name = '" + GBK_NAME + b"'\"",
                 b"2026-03-02T01:30:06Z,teller01,select 1"]
        record, k = lines[1:3], len(b"  from customers where name = '")
    first = 2 if fmt == "csv" else 1
    path = tmp_path / "log"
    path.write_bytes(b"\n".join(lines) + b"\n")
    db = tmp_path / "audit.db"
    code, rep = _ingest(path, fmt, db)
    assert code == 0, rep
    assert rep["added"] == 1 and rep["quarantined_lines"] == [
        {"line": first, "reason": f"line {first + 1}: not UTF-8 at byte {k} (raw is base64)"}]
    store = AuditStore(db)
    try:
        (q,) = store.quarantine()
        assert base64.b64decode(q["raw"]) == b"\n".join(record)
    finally:
        store.close()


def test_csv_header_not_utf8_is_a_clear_input_error(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_bytes(b"ts,actor,statement,\xff\n2026-03-02T01:30:05Z,a,select 1,x\n")
    res = CliRunner().invoke(main, ["audit", "ingest", str(path), "--format", "csv",
                                    "--db", str(tmp_path / "a.db")], catch_exceptions=False)
    assert res.exit_code == 2
    assert "line 1: header is not UTF-8 at byte 19" in res.output
