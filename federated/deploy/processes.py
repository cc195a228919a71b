"""Child processes for a local federation: start, watch, and kill whole process trees.

Every Flower process is started in a session of its own, with its output in a log
file. Flower's processes start processes of their own (``flower-superexec``, which
starts ``flwr-serverapp``/``flwr-clientapp``/``flwr-simulation``, which starts Ray),
some of them in new sessions, so a process group alone does not reach them:
:func:`kill_tree` walks ``/proc`` for every descendant and every member of the
process group before it signals. On Linux each direct child also gets
``PR_SET_PDEATHSIG`` so that it is terminated if this Python process dies without
cleaning up; Flower's own children watch their parent and exit with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from privacy.errors import FederationError

__all__ = ["Proc", "free_port", "free_ports", "kill_tree", "log_tail", "spawn", "wait_until"]

_PR_SET_PDEATHSIG = 1


@dataclass
class Proc:
    """A started process, its role and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    argv: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of its log."""
        return log_tail(self.log, lines)

    def died(self) -> FederationError:
        """The error to raise when the process exited unexpectedly."""
        return FederationError(
            f"{self.name} (pid {self.pid}) exited with code {self.popen.returncode}; "
            f"log {self.log}:\n{self.tail()}"
        )


#: Terminal escape sequences (Flower colours its log lines): left out of log tails shown
#: in error messages.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file ('' if it does not exist), without
    terminal colour codes."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except FileNotFoundError:
        return ""
    text = _ANSI.sub("", data.decode("utf-8", errors="replace"))
    return "\n".join(text.splitlines()[-lines:])


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (the OS picks it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports, free on ``host`` a moment ago."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(family, socket.SOCK_STREAM))
                 for _ in range(count)]
        for sock in socks:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to send SIGTERM to this child when its parent thread exits."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(name: str, argv: Sequence[str], log: Path, env: Mapping[str, str]) -> Proc:
    """Start ``argv`` in a new session, stdout and stderr appended to ``log``.

    Raises
    ------
    FederationError
        If the program cannot be executed.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env),
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        except OSError as exc:
            raise FederationError(f"cannot start {name} ({argv[0]}): {exc}") from exc
    return Proc(name=name, popen=popen, log=log, argv=list(argv))


def _process_table() -> dict[int, tuple[int, int, str]]:
    """``pid -> (ppid, pgid, state)`` for every process, read from ``/proc``."""
    table: dict[int, tuple[int, int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        table[int(entry)] = (int(fields[1]), int(fields[2]), fields[0])
    return table


def _tree(root: int, pgid: int, *, include_root: bool) -> list[int]:
    """``root`` (if ``include_root``), the members of process group ``pgid``, and all
    their descendants."""
    if not os.path.isdir("/proc"):
        return [root] if include_root else []
    table = _process_table()
    found = {root} if include_root else set()
    found.update(pid for pid, (_, group, _) in table.items() if group == pgid)
    changed = True
    while changed:
        changed = False
        for pid, (ppid, _, _) in table.items():
            if ppid in found and pid not in found:
                found.add(pid)
                changed = True
    found.discard(os.getpid())
    return sorted(found)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rfind(")") + 2] != "Z"


def _signal_all(pids: Sequence[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def kill_tree(proc: Proc, *, grace: float = 5.0) -> None:
    """Terminate ``proc`` with all its descendants and its process group.

    SIGTERM first; whatever still runs after ``grace`` seconds gets SIGKILL (``grace``
    0 sends SIGKILL at once, like a machine that crashed). The process is reaped.
    """
    # Once reaped, the pid may belong to someone else; its group id cannot, while the
    # group has members (Linux does not reuse a pid that names a live group).
    pids = _tree(proc.pid, proc.pid, include_root=proc.popen.poll() is None)
    if grace > 0:
        _signal_all(pids, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            proc.popen.poll()
            if not any(_running(pid) for pid in pids):
                break
            time.sleep(0.05)
    _signal_all([pid for pid in pids if _running(pid)], signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.popen.wait(timeout=5.0)


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    watch: Sequence[Proc] = (),
    interval: float = 0.05,
) -> None:
    """Poll ``ready()`` until it is true, failing early if a watched process exits.

    Raises
    ------
    FederationError
        If a process in ``watch`` exits (with its log tail), or after ``timeout``
        seconds (with the log tails of ``watch``).
    """
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        for proc in watch:
            if not proc.alive():
                raise proc.died()
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name} ({p.log}):\n{p.tail(20)}" for p in watch)
            raise FederationError(f"{what} not ready within {timeout:.0f} s\n{tails}")
        time.sleep(interval)
