"""A failed federated run's error message: its log tails without terminal colour codes,
and its process logs kept past the run's temporary folder, at the paths it names."""

from __future__ import annotations

import re
from pathlib import Path

from federated.deploy.processes import log_tail
from federated.deploy.status import RunFailedError, RunStatus
from federated.runner import keep_logs
from privacy.errors import FederationError


def test_log_tail_drops_colour_codes(tmp_path: Path) -> None:
    log = tmp_path / "serverapp.log"
    log.write_text("\x1b[92mINFO \x1b[0m:      Starting\n\x1b[91mERROR \x1b[0m: boom\n",
                   encoding="utf-8")
    assert log_tail(log, 5) == "INFO :      Starting\nERROR : boom"


def test_failed_run_keeps_its_logs_where_the_message_says(tmp_path: Path) -> None:
    work = tmp_path / "covault-fl-abc"
    (work / "flower" / "logs").mkdir(parents=True)
    (work / "flower" / "logs" / "run-7.log").write_text("the server log\n", encoding="utf-8")
    (work / "certs").mkdir()
    (work / "certs" / "server.key").write_text("PRIVATE", encoding="utf-8")
    log = work / "flower" / "logs" / "run-7.log"
    status = RunStatus(7, "finished:failed", "", 1.0, log, "tail")
    exc = RunFailedError(f"run 7 did not finish; log {log}:\ntail", status)
    keep_logs(exc, work, tmp_path)
    message = str(exc)
    kept = Path(re.search(r"logs are kept in (\S+)\)", message).group(1))  # type: ignore[union-attr]
    assert kept.parent == tmp_path and kept.name.startswith("covault-fl-logs-")
    assert str(work) not in message and f"log {kept / 'flower' / 'logs' / 'run-7.log'}:" in message
    copy = kept / "flower" / "logs" / "run-7.log"
    assert copy.read_text(encoding="utf-8") == "the server log\n"
    assert not list(kept.rglob("*.key"))  # only the logs
    assert exc.status is status and isinstance(exc, FederationError)


def test_nothing_kept_without_logs(tmp_path: Path) -> None:
    work = tmp_path / "covault-fl-x"
    work.mkdir()
    exc = FederationError(f"failed in {work}")
    keep_logs(exc, work, tmp_path)
    assert str(exc) == f"failed in {work}" and [p.name for p in tmp_path.iterdir()] == [work.name]
