"""Issue 11 (8): killed `mask apply` / `mask reveal` runs must not leave plaintext behind.

Before the fix a SIGTERM (or SIGKILL) during a run left its hidden ``.OUT.xxxx.tmp``
file (a killed reveal: the plaintext resident ids written so far), exited by the
signal's default action (SIGINT: click's exit 1), and a killed reveal left no ledger
record at all. Now:

- SIGTERM unwinds the command as SIGINT does: the temporary file is removed, exit 143
  (SIGINT: 130), and a reveal records ``masking.reveal.aborted``;
- a reveal records ``masking.reveal.started`` before it decrypts anything, so even a
  SIGKILL leaves a trace in the ledger;
- temporary files are named after the output and the pid (``.OUT.covault-tmp-PID``), and
  the next run of the same output removes those whose process is gone.

Each test runs the real command line in a child process. A test hook in the child (not in
covault) makes the writer pause after its first batch, so the signal arrives mid-run
while the temporary file already holds plaintext.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from covault.cli import main
from covault.demo.context import sample_customers_path
from privacy.atomic import TEMP_MARK, atomic_write_text, remove_stale_temp_files
from privacy.ledger import Ledger

from . import _keyfiles as keyfiles

SAMPLE = str(sample_customers_path())
ROOT = Path(__file__).resolve().parents[2]

POLICY = """
version: 1
context: joint
views:
  partner_export:
    columns:
      - {name: id_no, operator: tokenize}
      - {name: city, operator: keep}
"""

# The child: the covault command line, with BatchWriter.write pausing after the first
# batch (flushed to the temporary file) until a signal arrives.
CHILD = textwrap.dedent("""
    import os, signal, sys, time
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    import masking.writer as writer
    marker = os.environ["COVAULT_TEST_MARKER"]
    write = writer.BatchWriter.write
    def paused(self, batch):
        write(self, batch)
        self._fh.flush()
        with open(marker, "w") as fh:
            fh.write(str(os.getpid()))
        time.sleep(300)
    writer.BatchWriter.write = paused
    from covault.cli import main
    main(prog_name="covault", args=sys.argv[1:])
""")


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, Path]:
    kek_file = keyfiles.kek_file(tmp_path)
    siv = keyfiles.sealed_keyset(tmp_path / "siv.json", "AES256_SIV", kek_file)
    policy = tmp_path / "policy.yaml"
    policy.write_text(textwrap.dedent(POLICY), encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    return {"dir": tmp_path, "out": out, "kek": kek_file, "siv": siv, "policy": policy,
            "ledger": tmp_path / "ledger.db"}


def apply_args(env: dict[str, Path], output: Path) -> list[str]:
    return ["mask", "apply", SAMPLE, "-o", str(output), "-p", str(env["policy"]), "-v",
            "partner_export", "-k", str(env["siv"]), "--kek-file", str(env["kek"])]


def reveal_args(env: dict[str, Path], masked: Path, output: Path) -> list[str]:
    return ["mask", "reveal", str(masked), "-o", str(output), "-p", str(env["policy"]),
            "-k", str(env["siv"]), "--kek-file", str(env["kek"]), "--columns", "id_no",
            "--reason", "test", "--ledger", str(env["ledger"])]


def masked_file(env: dict[str, Path]) -> Path:
    masked = env["dir"] / "masked.csv"
    res = CliRunner().invoke(main, apply_args(env, masked))
    assert res.exit_code == 0, res.output
    return masked


def start(env: dict[str, Path], args: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
    """Run the command line in a child; return once its first batch is in the temp file."""
    marker = env["dir"] / "paused"
    marker.unlink(missing_ok=True)
    child_env = dict(os.environ, COVAULT_TEST_MARKER=str(marker),
                     PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, *args], env=child_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=env["dir"])
    deadline = time.monotonic() + 120
    while not (marker.exists() and marker.read_text()):
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"child ended early ({proc.returncode}): {err.decode()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("child never reached its first batch")
        time.sleep(0.05)
    return proc, marker


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "tmp" in p.name)


def plaintext_ids() -> list[str]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    opts = pacsv.ConvertOptions(column_types={"id_no": pa.string()})
    return pacsv.read_csv(SAMPLE, convert_options=opts).column("id_no").to_pylist()


def kinds(ledger: Path) -> list[str]:
    with Ledger(ledger) as log:
        return [r.kind for r in log.records()]


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signalled_reveal_removes_plaintext_and_records_it(env: dict[str, Path],
                                                            sig: int, code: int) -> None:
    masked = masked_file(env)
    output = env["out"] / "ids.csv"
    proc, _ = start(env, reveal_args(env, masked, output))
    temps = leftovers(env["out"])
    assert len(temps) == 1
    content = (env["out"] / temps[0]).read_text()
    assert any(i in content for i in plaintext_ids()[:5])  # what a kill used to leave
    recorded = kinds(env["ledger"])  # before the signal, with plaintext already written
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err.decode()
    assert leftovers(env["out"]) == [] and not output.exists()
    assert recorded == ["masking.reveal.started"]
    assert kinds(env["ledger"]) == ["masking.reveal.started", "masking.reveal.aborted"]
    with Ledger(env["ledger"]) as log:
        started, aborted = log.records()
    assert started.payload["run"] == aborted.payload["run"]
    assert aborted.payload["status"] == "aborted"
    assert temps == [f".ids.csv{TEMP_MARK}{proc.pid}"]


def test_sigterm_during_apply_exits_143_without_output(env: dict[str, Path]) -> None:
    output = env["out"] / "masked.parquet"
    proc, _ = start(env, apply_args(env, output))
    temps = leftovers(env["out"])
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err.decode()
    assert b"SIGTERM" in err and b"Traceback" not in err
    assert leftovers(env["out"]) == [] and os.listdir(env["out"]) == []
    assert temps == [f".masked.parquet{TEMP_MARK}{proc.pid}"]


def test_sigkilled_reveal_is_in_the_ledger_and_cleaned_by_the_next_run(
        env: dict[str, Path]) -> None:
    masked = masked_file(env)
    output = env["out"] / "ids.csv"
    proc, _ = start(env, reveal_args(env, masked, output))
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert kinds(env["ledger"]) == ["masking.reveal.started"]  # on record, even so
    temps = leftovers(env["out"])
    assert len(temps) == 1  # nothing can clean up after SIGKILL but the next run
    stale = env["out"] / temps[0]

    # a live writer's temp file of the same output, and a dead one of another output,
    # are not touched
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = env["out"] / f".ids.csv{TEMP_MARK}{sleeper.pid}"
        live.write_text("in use")
        other = env["out"] / f".other.csv{TEMP_MARK}{proc.pid}"
        other.write_text("not ours")
        res = CliRunner().invoke(main, reveal_args(env, masked, output))
        assert res.exit_code == 0, res.output
        assert not stale.exists() and live.exists() and other.exists()
        assert output.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert kinds(env["ledger"]) == ["masking.reveal.started", "masking.reveal.started",
                                    "masking.reveal"]


def test_stale_temp_files_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    target = tmp_path / "report.json"
    stale = [tmp_path / f".report.json{TEMP_MARK}{dead.pid}",
             tmp_path / f".report.json{TEMP_MARK}{dead.pid}.1"]
    for p in stale:
        p.write_text("secret")
    keep = [tmp_path / f".report.json{TEMP_MARK}{os.getppid()}",  # alive
            tmp_path / f".report.jsonx{TEMP_MARK}{dead.pid}",  # another output
            tmp_path / ".report.json.covault-tmp-abc"]  # not a pid
    for p in keep:
        p.write_text("keep")
    atomic_write_text(target, json.dumps({"ok": True}))
    assert json.loads(target.read_text()) == {"ok": True}
    assert not any(p.exists() for p in stale) and all(p.exists() for p in keep)
    assert remove_stale_temp_files(target) == []
