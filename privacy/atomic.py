"""Atomic file output: write to a temporary file beside the target, rename on success.

Every covault output goes through :func:`atomic_output`, so a failed run never leaves a
partial file and an existing file is replaced only by a complete one.

Temporary files are named after the output and the writing process,
``.NAME.covault-tmp-PID`` (``.NAME.covault-tmp-PID.N`` for a second one of the same
output in the same process), mode 0600. A run that is killed outright (SIGKILL, power
loss) cannot remove its temporary file, which may hold plaintext (a killed ``mask
reveal``); the next write of the same output removes every such file whose process is
gone (:func:`remove_stale_temp_files`).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_output",
    "atomic_write_bytes",
    "atomic_write_text",
    "remove_stale_temp_files",
    "temp_files",
    "TEMP_MARK",
]

#: What every covault temporary file name holds between the output's name and the pid.
TEMP_MARK = ".covault-tmp-"

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_active: set[str] = set()  # temporary files this process is writing now


def _pattern(target: Path) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(target.name)}{re.escape(TEMP_MARK)}([0-9]{{1,10}})"
                      r"(?:\.[0-9]{1,6})?$")


def temp_files(path: str | os.PathLike[str]) -> list[tuple[Path, int]]:
    """Covault temporary files of the output ``path`` in its folder, with their pids."""
    target = Path(path)
    pattern = _pattern(target)
    found: list[tuple[Path, int]] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return found
    for entry in entries:
        match = pattern.match(entry.name)
        if match is not None and not entry.is_dir(follow_symlinks=False):
            found.append((Path(entry.path), int(match.group(1))))
    return found


def _gone(pid: int, path: Path) -> bool:
    """Whether the process that named a temporary file ``pid`` no longer writes it."""
    if pid == os.getpid():
        return str(path) not in _active  # an earlier process that had our pid
    if pid <= 0 or os.name != "posix":
        return False  # never guess: os.kill(pid, 0) is no probe outside POSIX
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError, ValueError):
        return False  # alive under another user, or not a pid we can ask about
    return False


def remove_stale_temp_files(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files of output ``path`` left by processes that are gone.

    Only files named ``.NAME.covault-tmp-PID`` for this output are considered, and only
    those whose process no longer runs (on this machine). Returns what was removed.
    """
    removed: list[Path] = []
    with _lock:
        for tmp, pid in temp_files(path):
            if not _gone(pid, tmp):
                continue
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                continue  # another run cleaned it first
            except OSError as exc:
                _log.warning("cannot remove stale temporary file %s: %s", tmp, exc.strerror)
                continue
            _log.warning("removed %s, left by an interrupted covault run (pid %d)", tmp, pid)
            removed.append(tmp)
    return removed


def _create_temp(target: Path) -> tuple[int, Path]:
    pid = os.getpid()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) \
        | getattr(os, "O_BINARY", 0)
    with _lock:
        for n in itertools.count():
            name = f".{target.name}{TEMP_MARK}{pid}" + (f".{n}" if n else "")
            tmp = target.parent / name
            if str(tmp) in _active:
                continue
            try:
                fd = os.open(tmp, flags, 0o600)
            except FileExistsError:
                continue
            _active.add(str(tmp))
            return fd, tmp
    raise AssertionError("unreachable")  # pragma: no cover


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file for writing; rename it to ``path`` when the block succeeds.

    Parameters
    ----------
    path:
        The final file. Its folder is created when missing.
    mode:
        ``"wb"`` (default) or ``"w"`` (text, UTF-8).

    Warnings
    --------
    On an exception (``KeyboardInterrupt`` and the CLI's SIGTERM included) the temporary
    file is removed and ``path`` is left as it was. Temporary files of ``path`` left by
    killed processes are removed first.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(target)
    fd, tmp = _create_temp(target)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        with _lock:
            _active.discard(str(tmp))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_output(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    with atomic_output(path, "w") as fh:
        fh.write(text)
