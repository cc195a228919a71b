"""Shared CLI plumbing: output for people and programs, exit codes, atomic writes,
refusing to overwrite files without ``--force``.

Exit codes: 0 success, 1 a finding (verification failed, risk gate not met),
2 bad usage or input, 130 interrupted (SIGINT, Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from privacy.atomic import atomic_output
from privacy.errors import CovaultError, Finding, InputError

__all__ = [
    "atomic_output",
    "handle_errors",
    "emit_json",
    "print_table",
    "format_option",
    "optional_ledger",
    "refuse_overwrite",
    "Terminated",
]

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_USAGE = 2
EXIT_SIGINT = 128 + signal.SIGINT  # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143

F = TypeVar("F", bound=Callable[..., Any])

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output for people (text) or for scripts (json).",
)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the command gets SIGTERM.

    A ``KeyboardInterrupt``, so a SIGTERM takes the path a Ctrl-C takes: every
    ``finally`` and ``except BaseException`` on the way up runs (temporary outputs are
    removed, ledgers closed), and ``except Exception`` does not swallow it.
    """

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """While a command runs: SIGTERM raises :class:`Terminated`, SIGINT raises
    ``KeyboardInterrupt``, once; a repeated signal is ignored while the first unwinds,
    so that cleanup is not cut short (SIGKILL still ends the process). Signals that were
    ignored when the command started stay ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if fired:
            return
        fired.append(signum)
        if signum == signal.SIGTERM:
            raise Terminated(signum)
        raise KeyboardInterrupt

    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(sig)
        if current is signal.SIG_IGN:
            continue
        previous[sig] = current
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, current in previous.items():
            signal.signal(sig, current if current is not None else signal.SIG_DFL)


def handle_errors(fn: F) -> F:
    """Turn covault errors into a one-line message on stderr and the documented exit code.

    SIGTERM and SIGINT unwind the command like an exception (temporary outputs are
    removed) and exit 143 and 130, the shell's codes for a process ended by them.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with _signals_raise():
                return fn(*args, **kwargs)
        except Finding as exc:
            err.print(f"finding: {exc}", markup=False)
            sys.exit(EXIT_FINDING)
        except CovaultError as exc:
            err.print(f"error: {exc}", markup=False)
            sys.exit(EXIT_USAGE)
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            err.print(f"error: {exc.filename}: {exc.strerror}", markup=False)
            sys.exit(EXIT_USAGE)
        except Terminated:
            err.print("terminated by SIGTERM", markup=False)
            sys.exit(EXIT_SIGTERM)
        except KeyboardInterrupt:
            err.print("interrupted by SIGINT", markup=False)
            sys.exit(EXIT_SIGINT)

    return wrapper  # type: ignore[return-value]


def refuse_overwrite(*paths: str | os.PathLike[str] | None, force: bool) -> None:
    """Refuse to replace an existing output file unless the command got ``--force``.

    Call it before doing any work, so a refusal writes nothing and changes nothing; with
    ``force`` the caller replaces the files through :func:`atomic_output`. ``None``
    paths (options not given) are skipped; a dangling link counts as existing.

    Raises
    ------
    InputError
        ``"<path> exists; pass --force to overwrite it"`` for the first existing path
        (exit 2 under :func:`handle_errors`).
    """
    if force:
        return
    for path in paths:
        if path is not None and os.path.lexists(path):
            raise InputError(f"{os.fspath(path)} exists; pass --force to overwrite it")


@contextlib.contextmanager
def optional_ledger(path: str | None) -> Iterator[Any]:
    """The disclosure ledger named by a command's ``--ledger`` option, closed afterwards;
    ``None`` when the option was not given."""
    if path is None:
        yield None
        return
    from privacy.ledger import Ledger

    ledger = Ledger(path)
    try:
        yield ledger
    finally:
        ledger.close()


def emit_json(obj: Any) -> None:
    """Print one JSON document to stdout."""
    click.echo(json.dumps(obj, ensure_ascii=False, indent=None, default=str))


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a readable table to stdout."""
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r))
    out.print(table)
