"""Extract and run the code blocks of covault's Markdown documents (README, examples, docs).

A document is a *session*: its blocks run in order in one temporary folder, as a reader
would type them, so a file written by one block (a keyset, a policy, a ledger) is there for
the next, and a shell block's ``export`` reaches the later shell blocks.

What runs, by the fence's language:

- ``bash``/``sh``/``shell``: with ``bash -e -o pipefail``; every command must exit 0.
- ``python``: a fresh interpreter (the test's own), in the session folder.
- ``console``, ``toml``, ``yaml``, ``json``, ``text``, ``html``, ``sql``: never run
  (``console`` is for long-running servers and for commands that need other machines).
  A fence without a language is an error: say which kind a block is.

Markers are HTML comments right before a block (blank lines between are fine); several
may stack:

- ``<!-- file: NAME -->``: write the block's text to NAME in the session folder (before
  the session's first block runs, so a command may use a policy shown further down).
- ``<!-- setup: WHY`` then code lines, then ``-->``: code in the block's language run just
  before it, unseen by the reader (inputs a real user already has: a table, a ledger with
  records). Shell setups may use ``$REPO`` (the repository), ``$VENV`` (the interpreter's
  environment) and ``$SAMPLES`` (the built-in sample data, :func:`write_samples`).
- ``<!-- skip: REASON -->``: do not run the block; every skip is listed in the test.
- ``<!-- slow -->`` (or ``<!-- slow: NOTE -->``): the block's test is marked ``slow``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SHELL = {"bash", "sh", "shell"}
PYTHON = {"python"}
NOT_RUN = {"console", "toml", "yaml", "json", "text", "html", "sql", "csv"}
MARKERS = {"file", "setup", "skip", "slow"}

_FENCE = re.compile(r"^(```+)\s*([\w+-]*)\s*$")
_MARKER = re.compile(r"^\s*(file|setup|skip|slow)\b\s*:?(.*)$", re.S)


@dataclass
class Block:
    """One fenced block of a document, with the markers written before it."""

    doc: str  # path relative to the repository
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    markers: dict[str, str] = field(default_factory=dict)

    @property
    def runs(self) -> bool:
        return self.lang in SHELL | PYTHON and "skip" not in self.markers

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}-{self.lang}"


class DocError(ValueError):
    """A document's blocks or markers are malformed."""


def parse(path: Path) -> list[Block]:
    """Every fenced block of ``path`` with its markers; raises DocError on bad ones."""
    try:
        rel = path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        rel = str(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    pending: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("<!--"):
            start = i
            text = line.lstrip()[4:]
            while "-->" not in text:
                i += 1
                if i == len(lines):
                    raise DocError(f"{rel}:{start + 1}: unterminated HTML comment")
                text += "\n" + lines[i]
            body = text.split("-->", 1)[0]
            m = _MARKER.match(body)
            if m:
                kind, value = m.group(1), m.group(2).strip()
                if kind in pending:
                    raise DocError(f"{rel}:{start + 1}: a second '{kind}' marker for one block")
                if kind in {"file", "skip"} and not value:
                    raise DocError(f"{rel}:{start + 1}: '{kind}:' needs a value")
                if kind == "setup" and "\n" not in value:
                    raise DocError(f"{rel}:{start + 1}: 'setup:' says why on its first line "
                                   f"and has its code on the lines after")
                if kind == "file" and (Path(value).is_absolute() or ".." in Path(value).parts):
                    raise DocError(f"{rel}:{start + 1}: 'file:' must be a relative path")
                pending[kind] = value
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            ticks, lang = fence.group(1), fence.group(2).lower()
            body_lines = []
            j = i + 1
            while j < len(lines) and lines[j].strip() != ticks:
                body_lines.append(lines[j])
                j += 1
            if j == len(lines):
                raise DocError(f"{rel}:{i + 1}: unclosed code block")
            if not lang:
                raise DocError(f"{rel}:{i + 1}: a code block without a language "
                               f"(bash or python run; console, yaml, toml, text do not)")
            if lang not in SHELL | PYTHON | NOT_RUN:
                raise DocError(f"{rel}:{i + 1}: unknown code block language {lang!r}")
            blocks.append(Block(rel, i + 1, lang, "\n".join(body_lines) + "\n", pending))
            pending = {}
            i = j + 1
            continue
        if line.strip():
            if pending:
                raise DocError(f"{rel}:{i + 1}: markers {sorted(pending)} are not followed "
                               f"by a code block")
        i += 1
    if pending:
        raise DocError(f"{rel}: markers {sorted(pending)} at the end of the document")
    return blocks


def documents() -> list[Path]:
    """The documents whose blocks must run."""
    docs = [REPO / "README.md", REPO / "examples" / "README.md"]
    docs += sorted((REPO / "docs").glob("*.md"))
    return [d for d in docs if d.exists()]


@dataclass
class Result:
    block: Block
    returncode: int
    seconds: float
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Session:
    """The blocks of one document, run in order in one folder."""

    def __init__(self, blocks: list[Block], root: Path, samples: Path,
                 timeout: float = 900.0) -> None:
        self.blocks = blocks
        self.root = root
        self.work = root / "work"
        self.scripts = root / "scripts"
        self.work.mkdir(parents=True)
        self.scripts.mkdir()
        self.envfile = self.scripts / "env.sh"
        self.envfile.write_text("")
        self.samples = samples
        self.timeout = timeout
        self.results: dict[int, Result] = {}
        self.done = 0
        for block in blocks:
            if "file" in block.markers:
                target = self.work / block.markers["file"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(block.text, encoding="utf-8")

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name in [k for k in env if k.startswith("COVAULT_")]:
            del env[name]  # the documents set what they need
        venv_bin = str(Path(sys.executable).parent)
        env.update({
            "PATH": venv_bin + os.pathsep + env.get("PATH", ""),
            "HOME": str(self.root / "home"),
            "FLWR_HOME": str(self.root / "flwr"),
            "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
            "REPO": str(REPO),
            "SAMPLES": str(self.samples),
            "VENV": sys.prefix,
            "PYTHONUNBUFFERED": "1",
        })
        (self.root / "home").mkdir(exist_ok=True)
        return env

    def run_until(self, index: int) -> Result | None:
        """Run every block up to ``index`` not run yet; the result of block ``index``."""
        while self.done <= index:
            block = self.blocks[self.done]
            if block.runs:
                self.results[self.done] = self._run(block, self.done)
            self.done += 1
        return self.results.get(index)

    def failed_before(self, index: int) -> list[Result]:
        return [r for i, r in sorted(self.results.items()) if i < index and not r.ok]

    def _run(self, block: Block, index: int) -> Result:
        setup = block.markers.get("setup", "\n").split("\n", 1)[1]
        if block.lang in SHELL:
            script = self.scripts / f"block{index}.sh"
            script.write_text(
                "set -e -o pipefail\n"
                f"source {_q(self.envfile)}\n"
                f"{setup}\n{block.text}\n"
                f"export -p > {_q(self.envfile)}\n",
                encoding="utf-8",
            )
            argv = ["bash", str(script)]
        else:
            script = self.scripts / f"block{index}.py"
            script.write_text(f"{setup}\n{block.text}", encoding="utf-8")
            # in the shell the reader ran the earlier blocks in: their exports apply
            argv = ["bash", "-c", f"source {_q(self.envfile)} && exec {_q(Path(sys.executable))} "
                                  f"{_q(script)}"]
        log = self.scripts / f"block{index}.log"
        started = time.perf_counter()
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, cwd=self.work, env=self.env(), stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
            try:
                code = proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                code = -9
            finally:
                _kill_group(proc.pid)  # servers a block left behind
        seconds = time.perf_counter() - started
        return Result(block, code, seconds, log.read_text(encoding="utf-8", errors="replace"))


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _q(path: Path) -> str:
    return "'" + str(path).replace("'", "'\\''") + "'"


def write_samples(folder: Path) -> Path:
    """The built-in sample data (covault demo's), for setups: ``$SAMPLES/customers.csv``."""
    from covault.demo.context import sample_customers_path

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(sample_customers_path(), folder / "customers.csv")
    remarks = [
        "case_id,channel,remark",
        "K0001,phone,客户吴丽来电，手机+86 187 8161 8495，身份证420102199003071232",
        "K0002,branch,订单号6222021234567890123 已处理，无需回访",
        "K0003,email,请回复 wu.li@example.com，卡号6217 0000 1000 0000 016",
        "K0004,phone,客户询问理财产品，未留联系方式",
    ]
    (folder / "remarks.csv").write_text("\n".join(remarks) + "\n", encoding="utf-8")
    # a database server's pgAudit logs (csvlog and stderr, with a few damaged lines)
    vectors = REPO / "tests" / "vectors"
    shutil.copy(vectors / "pgaudit_csvlog.log", folder / "postgresql.csv")
    shutil.copy(vectors / "pgaudit_stderr.log", folder / "postgresql.log")
    # a proxy's log with its own field names and naive timestamps; today's JSON Lines
    proxy, today = [], []
    for i in range(20):
        stmt = f"SELECT name, mobile FROM customers WHERE cust_id = {10001000 + i}"
        proxy.append({"event_id": f"px-{i:04d}", "ts": f"2026-04-20T09:{i:02d}:00",
                      "user": "teller07", "client_ip": "10.1.9.7", "session_id": f"s{i // 5}",
                      "statement": stmt, "rows": 1, "status": "ok"})
        today.append({"event_id": f"today-{i:04d}", "ts": f"2026-04-20T10:{i:02d}:00+08:00",
                      "actor": "teller08", "source_ip": "10.1.9.8", "database": "corebank",
                      "statement": stmt, "rows": 1, "status": "ok"})
    for name, rows in (("proxy.jsonl", proxy), ("today.jsonl", today)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows),
                                   encoding="utf-8")
    return folder
