"""Issue 11 (13): malformed input must give a one-line error and exit 2, never a traceback.

Only findings (a verification that failed, a gate not met) exit 1. Before the fix these
inputs raised past the readers and :func:`covault.console.handle_errors` (which maps only
covault errors), so the command died with a Python traceback and exit 1:

* keyset files with a field of the wrong type (``"template": [1]``), JSON nested
  100,000 deep, an integer of 5,000 digits, or (``keys show --no-verify``) a key id that
  is not a number or bytes that are not UTF-8;
* bytes that are not UTF-8 on the stdin of ``field encrypt``/``decrypt``, or in a value
  or ``--context`` given as an argument;
* audit JSON Lines with a 5,000-digit integer or 100,000-deep nesting (with the standard
  library's parser, used when orjson is not installed: ``ValueError``/``RecursionError``),
  a ``duration_ms`` integer too large for a float, an ``actor_kind`` or ``status``
  that is a list or an object (unhashable), and CSV ``rows`` beyond 64 bits
  (orjson could not serialise the event); pgAudit ``rows`` of 5,000 digits or
  non-ASCII digits, and ``%n`` epochs beyond the range of a date;
* `audit evaluate` answer keys and `audit detect` rules, lists and holidays files that
  are not UTF-8 or not JSON of the right shape;
* the metadata sidecar `mask reveal` reads (``OUTPUT.meta.json``) not UTF-8, nested
  100,000 deep or not an object;
* a ledger whose tree-head row holds a text size, a column plan nested 100,000 deep in
  that sidecar, and JSON Lines tables for `scan`/`mask apply` with a 5,000-digit integer
  or deep nesting.

Each is reproduced through the CLI with ``catch_exceptions=False``, so a traceback fails
the test rather than passing as some exit code.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from covault.cli import main
from privacy.audit import events as audit_events
from privacy.audit.events import QueryEvent
from privacy.audit.store import AuditStore, ledger_path_for
from privacy.keys import Kek, Keyset
from privacy.ledger import Ledger

HUGE_INT = "9" * 5000  # Python refuses int() past 4,300 digits
DEEP = "[" * 100_000 + "]" * 100_000


def run(*args: str | Path, stdin: bytes | None = None) -> Result:
    # catch_exceptions=False: an exception escaping the command fails the test
    return CliRunner().invoke(main, [str(a) for a in args], input=stdin,
                              catch_exceptions=False)


def assert_usage_error(res: Result, *needles: str) -> None:
    """Exit 2 with exactly one line on stderr, ``error: ...``."""
    lines = res.stderr.strip().splitlines()
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# --------------------------------------------------------------------------- keysets
@pytest.fixture()
def keyset_files(tmp_path: Path) -> tuple[Path, dict[str, object]]:
    """A KEK file (no scrypt: fast) and the JSON document of an AES256_SIV keyset."""
    kek = tmp_path / "kek"
    Kek.generate_key_file(kek)
    good = tmp_path / "good.json"
    Keyset.create("AES256_SIV").save(good, Kek.from_key_file(kek))
    return kek, json.loads(good.read_text())


def _keyset_text(doc: dict[str, object], case: str) -> bytes:
    d = json.loads(json.dumps(doc))
    text = None
    if case == "template is a list":
        d["template"] = [1]
    elif case == "deep nesting":
        text = json.dumps(d).replace('"version": 1', '"version": 1, "x": ' + DEEP)
    elif case == "huge integer":
        text = json.dumps(d).replace('"version": 1', '"version": ' + HUGE_INT)
    elif case == "key id is text":
        d["keys"][0]["key_id"] = "zz"  # type: ignore[index]
    elif case == "primary key id is a list":
        d["primary_key_id"] = [1]
    elif case == "not UTF-8":
        return json.dumps(d).encode().replace(b'"version": 1', b'"version": 1, "x": "\xff"')
    elif case == "kek salt missing":
        d["kek"] = {"kind": "keyfile"}
    else:  # pragma: no cover
        raise AssertionError(case)
    return (text if text is not None else json.dumps(d)).encode()


KEYSET_CASES = ["template is a list", "deep nesting", "huge integer", "key id is text",
                "primary key id is a list", "not UTF-8", "kek salt missing"]


@pytest.mark.parametrize("case", KEYSET_CASES)
@pytest.mark.parametrize("command", [
    ("field", "encrypt", "-c", "cif.customers.id_no", "-k", "{ks}", "110105194912310021"),
    ("keys", "show", "{ks}"),
    ("keys", "show", "--no-verify", "{ks}"),
    ("keys", "rotate", "{ks}"),
], ids=["field-encrypt", "keys-show", "keys-show-no-verify", "keys-rotate"])
def test_malformed_keyset_file_is_a_one_line_error(
        tmp_path: Path, keyset_files: tuple[Path, dict[str, object]], case: str,
        command: tuple[str, ...]) -> None:
    kek, doc = keyset_files
    ks = tmp_path / "bad.json"
    ks.write_bytes(_keyset_text(doc, case))
    before = ks.read_bytes()
    args = [a.replace("{ks}", str(ks)) for a in command]
    if "--no-verify" not in args:
        args += ["--kek-file", str(kek)]
    res = run(*args)
    if "--no-verify" in args and case == "kek salt missing":
        assert res.exit_code == 0  # it reads only what it shows, and says "unverified"
        return
    assert_usage_error(res, str(ks))
    assert ks.read_bytes() == before


# --------------------------------------------------------------------------- stdin / argv
@pytest.fixture()
def siv_keyset(tmp_path: Path) -> tuple[Path, Path]:
    kek = tmp_path / "kek"
    Kek.generate_key_file(kek)
    ks = tmp_path / "siv.json"
    Keyset.create("AES256_SIV").save(ks, Kek.from_key_file(kek))
    return ks, kek


@pytest.mark.parametrize("action", ["encrypt", "decrypt"])
def test_stdin_that_is_not_utf8_is_refused_with_its_line(
        siv_keyset: tuple[Path, Path], action: str) -> None:
    ks, kek = siv_keyset
    res = run("field", action, "-k", ks, "--kek-file", kek, "-c", "a.b",
              stdin=b"110105194912310021\n\xd5\xc5\xc8\xfd\n")  # GBK, not UTF-8
    assert_usage_error(res, "<stdin>:2", "not UTF-8")
    assert res.stdout == ""


def test_utf8_stdin_still_works(siv_keyset: tuple[Path, Path]) -> None:
    ks, kek = siv_keyset
    enc = run("field", "encrypt", "-k", ks, "--kek-file", kek, "-c", "a.b",
              stdin="张三\n110105194912310021\n".encode())
    assert enc.exit_code == 0, enc.output
    dec = run("field", "decrypt", "-k", ks, "--kek-file", kek, "-c", "a.b",
              stdin=enc.stdout.encode())
    assert dec.exit_code == 0 and dec.stdout.splitlines() == ["张三", "110105194912310021"]


def test_stdin_that_is_not_utf8_in_a_real_process(siv_keyset: tuple[Path, Path]) -> None:
    """The same through a real process, whatever the locale's stdin error handler (under
    the C locale Python reads stdin with surrogateescape)."""
    ks, kek = siv_keyset
    for lang in ("C.UTF-8", "C"):
        proc = subprocess.run(
            [sys.executable, "-m", "covault", "field", "encrypt", "-k", str(ks),
             "--kek-file", str(kek), "-c", "a.b"], input=b"ok\n\xff\n", capture_output=True,
            env={"LC_ALL": lang, "PATH": "/usr/bin:/bin"}, timeout=120)
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        assert proc.returncode == 2 and len(err) == 1, (lang, proc.stderr)
        assert err[0].startswith("error: <stdin>:2: not UTF-8"), err


@pytest.mark.parametrize("args", [
    ("-c", "a.b", b"x\xff".decode("utf-8", "surrogateescape")),
    ("-c", b"a.b\xff".decode("utf-8", "surrogateescape"), "x"),
], ids=["value", "context"])
def test_argument_that_is_not_utf8_is_refused(siv_keyset: tuple[Path, Path],
                                              args: tuple[str, ...]) -> None:
    ks, kek = siv_keyset
    assert_usage_error(run("field", "encrypt", "-k", ks, "--kek-file", kek, *args),
                       "not UTF-8")


# --------------------------------------------------------------------------- audit JSONL
GOOD = '{"ts":"2026-03-02T01:30:05Z","actor":"teller01","statement":"select 1"}'


def _rec(extra: str) -> str:
    return '{"ts":"2026-03-02T01:30:06Z","actor":"teller01","statement":"select $1",' + extra + "}"


JSONL_CASES = {
    "huge integer rows": _rec('"rows":' + HUGE_INT),
    "huge integer unknown field": _rec('"x":' + HUGE_INT),
    "huge integer parameter": _rec('"parameters":[' + HUGE_INT + "]"),
    "huge integer duration": _rec('"duration_ms":' + "9" * 400),
    "rows beyond 64 bits": _rec('"rows":' + str(2**70)),
    "rows at 2^63": _rec('"rows":' + str(2**63)),
    "actor_kind a list": _rec('"actor_kind":["human"]'),
    "status an object": _rec('"status":{"ok":1}'),
    "deep nesting in a field": _rec('"x":' + DEEP),
    "deep nesting of objects": '{"a":' * 100_000 + "1" + "}" * 100_000,
    "deep nesting at the top": DEEP,
}


@pytest.fixture(params=["orjson", "json"])
def json_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both parsers audit ingest may use: orjson (the ``audit`` extra) and the standard
    library's (without it)."""
    if request.param == "json":
        monkeypatch.setattr(audit_events, "_orjson", None)
    elif audit_events._orjson is None:  # pragma: no cover
        pytest.skip("orjson is not installed")
    return str(request.param)


@pytest.mark.parametrize("case", list(JSONL_CASES))
def test_jsonl_with_huge_integers_or_deep_nesting_is_quarantined(
        tmp_path: Path, json_backend: str, case: str) -> None:
    log, db = tmp_path / "q.jsonl", tmp_path / "audit.db"
    log.write_text(GOOD + "\n" + JSONL_CASES[case] + "\n", encoding="utf-8")
    res = run("audit", "ingest", log, "--db", db, "--json", "--max-quarantine-share", "1")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["added"] == 1 and summary["quarantined"] == 1, summary
    assert summary["quarantined_lines"][0]["line"] == 2
    assert len(summary["quarantined_lines"][0]["reason"]) < 300
    assert run("audit", "verify", "--db", db).exit_code == 0


def test_csv_rows_beyond_64_bits_are_quarantined(tmp_path: Path) -> None:
    log, db = tmp_path / "q.csv", tmp_path / "audit.db"
    log.write_text("ts,actor,statement,rows\n"
                   "2026-03-02T01:30:05Z,teller01,select 1,1\n"
                   f"2026-03-02T01:30:06Z,teller01,select 2,{10**30}\n", encoding="utf-8")
    res = run("audit", "ingest", log, "--format", "csv", "--db", db, "--json",
              "--max-quarantine-share", "1")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["added"] == 1 and summary["quarantined_lines"][0]["line"] == 3
    assert "rows" in summary["quarantined_lines"][0]["reason"]


_PG = ("2026-03-02 01:30:05.200 UTC [4200] teller01@corebank 10.1.2.3(52344) teller-ui "
       "LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<not logged>,1")
_PG_AUDIT = "[4200] teller01@corebank LOG:  AUDIT: SESSION,2,1,READ,SELECT,,,select 2,<not logged>"


@pytest.mark.parametrize(("line", "prefix"), [
    (_PG_AUDIT.replace("<not logged>", "<not logged>," + HUGE_INT), None),
    (_PG_AUDIT.replace("<not logged>", "<not logged>,\u00b2"), None),  # isdigit, not int
    ("9" * 400 + " " + _PG_AUDIT, "%n [%p] %u@%d "),  # epoch past time_t
    ("99999999999999.5 " + _PG_AUDIT, "%n [%p] %u@%d "),  # epoch past year 9999
], ids=["huge-rows", "superscript-rows", "epoch-past-time_t", "epoch-past-9999"])
def test_pgaudit_stderr_with_huge_numbers_is_quarantined(tmp_path: Path, line: str,
                                                         prefix: str | None) -> None:
    if prefix is None:
        line = "2026-03-02 01:30:06.200 UTC " + line.replace(
            "teller01@corebank ", "teller01@corebank 10.1.2.3(52344) teller-ui ")
        good = _PG
    else:
        good = "1772415005.2 " + _PG_AUDIT.replace(",2,1,", ",1,1,")
    log, db = tmp_path / "pg.log", tmp_path / "audit.db"
    log.write_text(good + "\n" + line + "\n", encoding="utf-8")
    args = ["audit", "ingest", log, "--format", "pgaudit-stderr", "--db", db, "--json",
            "--max-quarantine-share", "1"] + (["--prefix", prefix] if prefix else [])
    res = run(*args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["added"] == 1 and summary["quarantined"] == 1, summary
    assert summary["quarantined_lines"][0]["line"] == 2


def test_event_json_parse_errors_are_json_decode_errors(json_backend: str) -> None:
    for text in (HUGE_INT, DEEP, '{"a":' + HUGE_INT + "}"):
        with pytest.raises(json.JSONDecodeError):
            audit_events.json_loads(text)
        with pytest.raises(ValueError, match="not valid JSON"):
            QueryEvent.from_json(text)


# --------------------------------------------------------------------------- audit files
@pytest.fixture()
def audit_db(tmp_path: Path) -> Path:
    log, db = tmp_path / "g.jsonl", tmp_path / "audit.db"
    log.write_text(GOOD + "\n", encoding="utf-8")
    assert run("audit", "ingest", log, "--db", db).exit_code == 0
    return db


@pytest.mark.parametrize("content", [
    b'{"incidents": ["\xff"]}', DEEP.encode(), b'{"incidents": [], "actor_days": ' +
    HUGE_INT.encode() + b"}", b"[1]", b'{"incidents": [{"id": "INC-1"}]}',
    b'{"incidents": [{"id": "I", "scenario": "S", "actor": "a", "start": "x", "end": "y"}]}',
    b'{"incidents": [], "actor_days": "many"}', b"{not json",
], ids=["not-utf8", "deep", "huge-int", "not-object", "missing-fields", "bad-time",
        "bad-actor-days", "not-json"])
def test_malformed_answer_key_is_a_one_line_error(tmp_path: Path, audit_db: Path,
                                                  content: bytes) -> None:
    answers = tmp_path / "answers.json"
    answers.write_bytes(content)
    assert_usage_error(run("audit", "evaluate", "--db", audit_db, "--answers", answers),
                       str(answers))


@pytest.mark.parametrize("option", ["--rules", "--lists", "--holidays", "--catalog"])
def test_config_file_that_is_not_utf8_is_a_one_line_error(tmp_path: Path, audit_db: Path,
                                                          option: str) -> None:
    conf = tmp_path / "conf.yaml"
    conf.write_bytes(b"# fine\nname: '\xd5\xc5'\n")
    assert_usage_error(run("audit", "detect", "--db", audit_db, option, conf),
                       str(conf), "not UTF-8")


# --------------------------------------------------------------------------- ledgers
def _text_size(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("UPDATE tree_head SET size = 'three' WHERE id = 1")
    con.commit()
    con.close()


def assert_one_line_outcome(res: Result) -> None:
    """A finding (exit 1, ``finding:``) or bad input (exit 2, ``error:``): one line."""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert (res.exit_code, lines[0].split(":")[0]) in ((1, "finding"), (2, "error")), \
        (res.exit_code, lines[0])


# A tree head whose size is text (or root not 32 bytes) is a finding, not a TypeError.


@pytest.mark.parametrize("command", [("verify",), ("show",), ("prove", "1")])
def test_ledger_tree_head_with_a_text_size(tmp_path: Path, command: tuple[str, ...]) -> None:
    db = tmp_path / "ledger.db"
    with Ledger(db) as lg:
        lg.append_many([("masking.run", {"run": i}) for i in range(3)])
    _text_size(db)
    assert_one_line_outcome(run("ledger", command[0], db, *command[1:]))


def test_audit_ledger_tree_head_with_a_text_size(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with AuditStore(db) as s:
        s.add_events([QueryEvent.from_json(GOOD.replace("{", '{"event_id":"e1",', 1))])
    _text_size(ledger_path_for(db))
    assert_one_line_outcome(run("audit", "verify", "--db", db))


# --------------------------------------------------------------------------- masking
POLICY = """version: 1
default: drop
views:
  v:
    columns:
      - {name: id_no, operator: tokenize, context: c.id}
"""


@pytest.fixture()
def masked(tmp_path: Path, siv_keyset: tuple[Path, Path]) -> tuple[Path, list[str]]:
    """A CSV output of `mask apply` (with its sidecar) and the `mask reveal` arguments."""
    ks, kek = siv_keyset
    src, out, policy = tmp_path / "c.csv", tmp_path / "o.csv", tmp_path / "p.yaml"
    src.write_text("id_no,name\n110105194912310021,x\n", encoding="utf-8")
    policy.write_text(POLICY, encoding="utf-8")
    res = run("mask", "apply", src, "-o", out, "--policy", policy, "--view", "v",
              "--keyset", ks, "--kek-file", kek)
    assert res.exit_code == 0, res.output
    return out, ["mask", "reveal", str(out), "-o", str(tmp_path / "r.csv"), "--policy",
                 str(policy), "--view", "v", "--keyset", str(ks), "--kek-file", str(kek),
                 "--columns", "id_no", "--reason", "test"]


@pytest.mark.parametrize("content", [b'{"covault.view": "\xff"}', DEEP.encode(), b"[1]",
                                     b'{"covault.view": 1}'],
                         ids=["not-utf8", "deep", "not-object", "not-string"])
def test_malformed_metadata_sidecar_is_a_one_line_error(
        masked: tuple[Path, list[str]], content: bytes) -> None:
    out, reveal = masked
    sidecar = out.with_name(out.name + ".meta.json")
    assert sidecar.is_file()
    sidecar.write_bytes(content)
    assert_usage_error(run(*reveal), str(sidecar))


def test_column_plan_nested_too_deeply_is_a_one_line_error(
        masked: tuple[Path, list[str]]) -> None:
    out, reveal = masked
    sidecar = out.with_name(out.name + ".meta.json")
    meta = json.loads(sidecar.read_text(encoding="utf-8"))
    meta["covault.plan"] = DEEP
    sidecar.write_text(json.dumps(meta), encoding="utf-8")
    assert_usage_error(run(*reveal))


@pytest.mark.parametrize("value", [HUGE_INT, DEEP], ids=["huge-int", "deep"])
def test_table_jsonl_with_huge_integers_or_deep_nesting(tmp_path: Path, value: str) -> None:
    table = tmp_path / "t.jsonl"
    table.write_text('{"name": "x", "n": 1}\n{"name": "y", "n": ' + value + "}\n",
                     encoding="utf-8")
    assert_usage_error(run("scan", table), f"{table}:2")
