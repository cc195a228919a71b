"""Shared CLI plumbing: output for people and programs, exit codes, atomic writes,
refusing to overwrite files without ``--force``.

Text printed through :data:`out` and :data:`err` (and :func:`print_table`,
:func:`handle_errors`) has control characters from data made visible by
:func:`terminal_safe` (``\\x1b`` instead of an escape sequence that would clear the screen
or retitle the window); :func:`json_text` keeps the exact data while escaping them.

Exit codes: 0 success, 1 a finding (verification failed, risk gate not met),
2 bad usage or input, 130 interrupted (SIGINT, Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import sys
import threading
import unicodedata
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from privacy.atomic import atomic_output
from privacy.errors import CovaultError, Finding, InputError

__all__ = [
    "atomic_output",
    "terminal_safe",
    "json_text",
    "SafeConsole",
    "handle_errors",
    "emit_json",
    "print_table",
    "format_option",
    "optional_ledger",
    "refuse_overwrite",
    "check_outputs",
    "force_option",
    "require_utf8",
    "one_line_warnings",
    "Terminated",
]

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_USAGE = 2
EXIT_SIGINT = 128 + signal.SIGINT  # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143

F = TypeVar("F", bound=Callable[..., Any])

_PLAIN = re.compile(r"[\x20-\x7e\n\t]*")
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Characters json.dumps(ensure_ascii=False) leaves raw that a terminal may act on: C1
# controls, DEL, format characters (bidi overrides), line separators, lone surrogates.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u180e"
                          "\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb"
                          "\ud800-\udfff]")


def terminal_safe(text: str) -> str:
    """``text`` with every control character except newline and tab made visible.

    C0 and C1 controls (ESC, BEL, CR, CSI...), DEL, format characters (bidi overrides
    such as U+202E), line and paragraph separators and lone surrogates become their
    Python escapes (``\\x1b``, ``\\u202e``), so data printed on a terminal cannot move
    the cursor, clear the screen, set the window title, recolour or reorder what
    follows. Use it on text for people, never on JSON (see :func:`json_text`).
    """
    if _PLAIN.fullmatch(text):
        return text
    return "".join(
        ch.encode("unicode_escape", "backslashreplace").decode("ascii")
        if ch not in "\n\t" and unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch
        for ch in text)


def json_text(obj: Any) -> str:
    """One line of JSON holding exactly ``obj``, safe on a terminal.

    ``json.dumps`` escapes C0 controls; the C1 controls, bidi and other format
    characters, line separators and lone surrogates it leaves raw (with
    ``ensure_ascii=False``) are written as ``\\uXXXX`` escapes too: the same data for
    any JSON reader, nothing a terminal would act on.
    """
    text = json.dumps(obj, ensure_ascii=False, indent=None, default=str)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class SafeConsole(Console):
    """A rich console that prints ``str`` arguments through :func:`terminal_safe`
    (renderables such as tables and progress bars are printed as they are)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """Print like :meth:`rich.console.Console.print`, control characters escaped."""
        super().print(*(terminal_safe(o) if isinstance(o, str) else o for o in objects),
                      **kwargs)


out = SafeConsole(highlight=False, soft_wrap=True)
err = SafeConsole(stderr=True, highlight=False, soft_wrap=True)

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
            err.print(f"finding: {terminal_safe(str(exc))}", markup=False)
            sys.exit(EXIT_FINDING)
        except CovaultError as exc:
            err.print(f"error: {terminal_safe(str(exc))}", markup=False)
            sys.exit(EXIT_USAGE)
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            err.print(terminal_safe(f"error: {exc.filename}: {exc.strerror}"), markup=False)
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


def _same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


#: ``--force`` for a command whose outputs :func:`check_outputs` checks.
force_option = click.option("--force", is_flag=True,
                            help="Replace existing output files (never one of the inputs).")


def check_outputs(outputs: Sequence[tuple[str, str | os.PathLike[str] | None]],
                  inputs: Sequence[tuple[str, str | os.PathLike[str] | None]] = (),
                  *, force: bool) -> None:
    """Refuse outputs that would destroy an input or each other, then existing ones.

    ``outputs`` and ``inputs`` are ``(option, path)`` pairs (``None`` paths skipped).
    An output that is one of the command's inputs, or two outputs naming one file, are
    refused even with ``force``; an existing output is refused without it
    (:func:`refuse_overwrite`). Call it before doing any work.

    Raises
    ------
    InputError
        Naming the options and the path.
    """
    given = [(o, p) for o, p in outputs if p is not None]
    for k, (opt, path) in enumerate(given):
        for in_opt, in_path in inputs:
            if in_path is not None and _same_file(path, in_path):
                raise InputError(f"{opt} {os.fspath(path)} is also the input {in_opt}: "
                                 "writing it would destroy the input; choose another path")
        for other_opt, other in given[k + 1:]:
            if _same_file(path, other):
                raise InputError(f"{opt} and {other_opt} name the same file "
                                 f"{os.fspath(path)}; give each output its own path")
    for opt, path in given:
        if not force and os.path.lexists(path):
            raise InputError(f"{opt} {os.fspath(path)} exists; pass --force to overwrite it")


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


#: Packages whose warning categories the command line prints as ``warning: ...`` lines.
_OUR_PACKAGES = frozenset({"privacy", "masking", "federated", "covault"})


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """While the block runs, print warnings of covault's own categories (such as
    :class:`privacy.audit.store.UnreadableEventWarning`) as one line ``warning: ...`` on
    stderr, like the command line's other warnings, instead of Python's format with the
    path and line of the source that raised them. Other warnings are shown as before."""
    previous = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        if category.__module__.partition(".")[0] in _OUR_PACKAGES:
            err.print(f"warning: {terminal_safe(str(message))}", markup=False)
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        if warnings.showwarning is show:
            warnings.showwarning = previous


def require_utf8(text: str | None, what: str) -> None:
    """Refuse a command-line argument that is not UTF-8 text.

    Bytes that are not UTF-8 in an argument (``--comment $'\\xff'`` from a shell) reach
    Python as lone surrogates (surrogateescape); they cannot be stored or ledgered as
    text, so the command stops before it changes anything.

    Raises
    ------
    InputError
        Naming ``what`` (e.g. ``--comment``), the first bad byte and its position.
    """
    if text is None:
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        bad = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X}"
        raise InputError(f"{what} is not valid UTF-8 text ({bad} at character "
                         f"{exc.start + 1}): give it as UTF-8") from None


def emit_json(obj: Any) -> None:
    """Print one JSON document to stdout (on one line, see :func:`json_text`)."""
    click.echo(json_text(obj))


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a readable table to stdout (cells through :func:`terminal_safe`)."""
    table = Table(title=terminal_safe(title), title_justify="left")
    for c in columns:
        table.add_column(terminal_safe(c))
    for r in rows:
        table.add_row(*("" if v is None else terminal_safe(str(v)) for v in r))
    out.print(table)
