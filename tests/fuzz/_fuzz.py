"""The fuzz campaign's shared harness: settings, mutations, the outcome contract, tallies.

Every fuzz test feeds inputs to a real reader (the Python function the CLI calls) and
holds it to one contract (issue 11, acceptance):

* the reader returns (and, for an authenticated format, returns the *original* content:
  "nothing accepted wrongly"), or raises a :class:`privacy.errors.CovaultError`;
  any other exception is a traceback in the CLI and fails the test;
* each input finishes within a hard time bound (a ``SIGALRM`` timer, besides
  hypothesis' ``deadline``) and grows the process' peak memory by less than
  :data:`MEMORY_LIMIT`;
* nothing prints a traceback behind the caller's back (an exception Python can only
  report as "Exception ignored in ...", e.g. one raised inside a library callback).

``COVAULT_FUZZ_EXAMPLES=N`` raises every test's ``max_examples`` to ``N`` (the long
campaign); by default each test runs a few dozen examples so the whole suite stays
cheap. ``COVAULT_FUZZ_REPORT=FILE`` writes, at the end of the session, the number of
inputs tried per format and their outcomes (``conftest.py``).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import resource
import signal
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from privacy.errors import CovaultError, Finding

T = TypeVar("T")

CAMPAIGN = int(os.environ.get("COVAULT_FUZZ_EXAMPLES", "0") or 0)
#: Peak resident memory one input may add (the scrypt cap of keysets is 1 GiB, but
#: fuzzed keysets use key-file KEKs, so nothing legitimate comes near this).
MEMORY_LIMIT = 512 * 2**20
#: format family -> outcome -> count
TALLY: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)

HUGE_INT = "9" * 5000  # past Python's 4,300-digit int() limit
DEEP_LIST = "[" * 50_000 + "]" * 50_000
DEEP_OBJECT = '{"a":' * 5_000 + "1" + "}" * 5_000


def fuzz_settings(examples: int, *, deadline_s: float = 5.0) -> settings:
    """Hypothesis settings: ``examples`` (or the campaign's count), a per-example
    ``deadline``, no example database (runs are reproducible from the seed printed on
    failure), no health checks that slow readers or fixtures would trip."""
    return settings(
        max_examples=CAMPAIGN or examples,
        deadline=timedelta(seconds=deadline_s),
        database=None,
        derandomize=not CAMPAIGN,  # the normal run is the same every time
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


class World(dict[str, Any]):
    """A module's fixture data; its ``repr`` stays short in hypothesis' failure reports."""

    def __repr__(self) -> str:
        return f"World({', '.join(self)})"


class Hang(Exception):
    """An input ran past its hard time bound."""


@contextlib.contextmanager
def bounded(seconds: float, what: str) -> Iterator[None]:
    """Raise :class:`Hang` if the block runs longer than ``seconds``; fail if it grew the
    process' peak memory by :data:`MEMORY_LIMIT` or more."""
    def alarm(_sig: int, _frame: Any) -> None:
        raise Hang(f"{what}: still running after {seconds} s")

    unraisable: list[str] = []

    def hook(info: Any) -> None:  # "Exception ignored in ...": a traceback on stderr
        unraisable.append(f"{type(info.exc_value).__name__}: {info.exc_value} "
                          f"(in {info.object!r})")

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    old = signal.signal(signal.SIGALRM, alarm)
    old_hook, sys.unraisablehook = sys.unraisablehook, hook
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        sys.unraisablehook = old_hook
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    assert grown < MEMORY_LIMIT, f"{what}: one input grew peak memory by {grown >> 20} MiB"
    assert not unraisable, f"{what}: printed a traceback for {unraisable}"


def outcome(family: str, read: Callable[[], T], *, limit_s: float = 10.0
            ) -> T | CovaultError:
    """Run ``read()`` under :func:`bounded`; return its value or the covault error it
    raised (anything else propagates and fails the test), counting the outcome."""
    try:
        with bounded(limit_s, family):
            value = read()
    except CovaultError as exc:
        assert str(exc).strip(), f"{family}: {type(exc).__name__} with an empty message"
        TALLY[family][f"refused ({type(exc).__name__})"] += 1
        return exc
    TALLY[family]["accepted"] += 1
    return value


def note(family: str, what: str) -> None:
    """Count a finer outcome of inputs already counted (e.g. ``content unchanged``)."""
    TALLY[family][f"  of which {what}"] += 1


# --------------------------------------------------------------------------- the CLI
def cli(family: str, main: Any, args: list[str], *, stdin: bytes | None = None,
        env: dict[str, str] | None = None, limit_s: float = 20.0) -> Result:
    """Invoke the CLI in process; the contract of the command line: exit 0, exit 1 with
    ``finding: ...`` or exit 2 with ``error: ...`` as the last line on stderr, never a
    traceback (an exception escaping the command fails the test)."""
    with bounded(limit_s, f"{family} (CLI)"):
        res = CliRunner().invoke(main, args, input=stdin, env=env, catch_exceptions=False)
    assert "Traceback" not in res.output and "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    if res.exit_code == 0:
        TALLY[f"{family} (CLI)"]["exit 0"] += 1
        return res
    assert res.exit_code in (1, 2), (res.exit_code, res.output)
    want = "finding: " if res.exit_code == 1 else "error: "
    assert lines and any(line.startswith(want) for line in lines), res.stderr
    TALLY[f"{family} (CLI)"][f"exit {res.exit_code}"] += 1
    return res


def exit_code_of(exc: CovaultError) -> int:
    """What the CLI exits with for ``exc``."""
    return 1 if isinstance(exc, Finding) else 2


# --------------------------------------------------------------------------- bytes
_INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff" * 8, b"\x00" * 8,
                b"\x7f\xff\xff\xff", b"\xff\xff\xff\xff\xff\xff\xff\xff", b"\xc3\x28",
                b"\xed\xa0\x80", b"\r\n", b"\n", b'"', b"\x1b[2J"]


def mutate_bytes(data: st.DataObject, blob: bytes, *, rounds: int = 3) -> bytes:
    """1 to ``rounds`` of: bit flips, truncation, insertion, deletion, duplication,
    overwrite with boundary bytes (0x00, 0xff, 0x7f..., bad UTF-8)."""
    out = bytearray(blob)
    for _ in range(data.draw(st.integers(1, rounds), label="rounds")):
        op = data.draw(st.sampled_from(
            ["flip", "flip", "truncate", "insert", "delete", "duplicate", "overwrite"]),
            label="op")
        n = len(out)
        pos = data.draw(st.integers(0, max(n - 1, 0)), label="pos")
        if op == "flip" and n:
            out[pos] ^= 1 << data.draw(st.integers(0, 7), label="bit")
        elif op == "truncate":
            del out[pos:]
        elif op == "insert":
            out[pos:pos] = data.draw(st.binary(min_size=1, max_size=16), label="insert")
        elif op == "delete" and n:
            del out[pos:pos + data.draw(st.integers(1, 16), label="len")]
        elif op == "duplicate" and n:
            out[pos:pos] = out[pos:pos + data.draw(st.integers(1, 64), label="len")]
        elif op == "overwrite":
            new = data.draw(st.sampled_from(_INTERESTING), label="bytes")
            out[pos:pos + len(new)] = new
    return bytes(out)


def random_bytes() -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, small to medium."""
    return st.binary(max_size=2048)


# --------------------------------------------------------------------------- JSON
_RAW = "\x00fuzz-raw\x00"  # stands for a raw JSON token json.dumps cannot write

#: Values no well-formed file holds at the place they are put: huge and negative
#: numbers, floats where integers go, deep nesting, unicode and control characters,
#: lone surrogates, NaN (as Python's json writes it).
JSON_RAW_TOKENS = [HUGE_INT, "-" + HUGE_INT, DEEP_LIST, DEEP_OBJECT, "NaN", "Infinity",
                   "-Infinity", "1e400", "-0", "0.5", '"\\ud800"', '"\\u0000"',
                   '"\\u202e\\u001b[2J"', "18446744073709551616", "-9223372036854775809"]


def json_values() -> st.SearchStrategy[Any]:
    """A replacement value: wrong types, boundary numbers, unicode, nesting, raw tokens."""
    return st.one_of(
        st.none(), st.booleans(),
        st.integers(), st.sampled_from([0, -1, 1, 2**31, 2**32, 2**63, 2**64, -(2**63)]),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=40),
        st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=8),
        st.text(alphabet=st.characters(min_codepoint=0x80, exclude_categories=("Cs",)),
                max_size=8),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=6), st.integers(), max_size=3),
        st.sampled_from(JSON_RAW_TOKENS).map(lambda t: (_RAW, t)),
    )


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:20]):
            yield from _paths(v, (*prefix, i))


def mutate_json(data: st.DataObject, doc: Any, *, rounds: int = 2) -> str:
    """JSON text of ``doc`` with 1 to ``rounds`` structural mutations: a value replaced
    (see :func:`json_values`), a key deleted, an unknown key added, a list emptied."""
    doc = json.loads(json.dumps(doc))
    raws: list[str] = []

    def value() -> Any:
        v = data.draw(json_values(), label="value")
        if isinstance(v, tuple):
            raws.append(v[1])
            return f"{_RAW}{len(raws) - 1}"
        return v

    for _ in range(data.draw(st.integers(1, rounds), label="rounds")):
        path = data.draw(st.sampled_from(list(_paths(doc))), label="path")
        op = data.draw(st.sampled_from(["replace", "replace", "delete", "add", "empty"]),
                       label="op")
        if not path:
            if op == "replace":
                doc = value()
            continue
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        if op == "replace":
            parent[last] = value()
        elif op == "delete":
            del parent[last]
        elif op == "add" and isinstance(parent[last], dict):
            parent[last][data.draw(st.text(max_size=8), label="key")] = value()
        elif op == "empty" and isinstance(parent[last], (list, dict, str)):
            parent[last] = type(parent[last])()
    text = json.dumps(doc, indent=data.draw(st.sampled_from([None, 2]), label="indent"))
    for i, raw in enumerate(raws):
        text = text.replace(f'"{_RAW}{i}"', raw).replace(f'"\\u0000fuzz-raw\\u0000{i}"', raw)
    return text


# --------------------------------------------------------------------------- text
#: Replacements for one field of a line-oriented text file (CSV cells, log fields, TOML
#: values, YAML scalars).
TEXT_FIELDS = ["", HUGE_INT, "-" + HUGE_INT, "1e400", "NaN", "-1", "0", "18446744073709551616",
               "\x00", "\x1b[2J", "\u202e", "\ufeff", "😀", "张三", '"', '""', "'", "\\",
               "\n", "\r", "\t", ",", ";", "{", "[", "&a", "*a", "!!python/object:os.system",
               "[" * 200, "{" * 200, "x" * 70_000, "2026-02-30T25:61:00+08:00",
               "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-12:00", "true", "null"]


def mutate_text(data: st.DataObject, text: bytes, *, sep: bytes = b",", rounds: int = 3
                ) -> bytes:
    """Line-aware mutations of a text file (1 to ``rounds``): a field replaced by a
    boundary value, a line deleted, duplicated, swapped or cut, bytes that are not
    UTF-8 put in, or one of :func:`mutate_bytes`'s byte-level changes."""
    lines = text.split(b"\n")
    for _ in range(data.draw(st.integers(1, rounds), label="rounds")):
        op = data.draw(st.sampled_from(["field", "field", "field", "delete", "duplicate",
                                        "swap", "cut", "badutf8", "bytes", "line"]),
                       label="op")
        i = data.draw(st.integers(0, max(len(lines) - 1, 0)), label="line")
        if not lines:
            lines = [b""]
        if op == "field":
            parts = lines[i].split(sep)
            j = data.draw(st.integers(0, len(parts) - 1), label="field")
            new = data.draw(st.one_of(st.sampled_from(TEXT_FIELDS), st.text(max_size=20)),
                            label="new")
            parts[j] = new.encode("utf-8", "surrogatepass")
            lines[i] = sep.join(parts)
        elif op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            k = data.draw(st.integers(0, len(lines) - 1), label="other")
            lines[i], lines[k] = lines[k], lines[i]
        elif op == "cut":
            lines[i] = lines[i][:data.draw(st.integers(0, len(lines[i])), label="at")]
        elif op == "badutf8":
            at = data.draw(st.integers(0, len(lines[i])), label="at")
            lines[i] = lines[i][:at] + data.draw(
                st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"])) + lines[i][at:]
        elif op == "bytes":
            lines[i] = mutate_bytes(data, lines[i], rounds=1)
        else:
            lines.insert(i, data.draw(st.text(max_size=60), label="line text").encode(
                "utf-8", "surrogatepass"))
    return b"\n".join(lines)


def write_report(path: str) -> None:
    """Write :data:`TALLY` as JSON (inputs tried and outcomes per format family)."""
    out = {family: {"inputs": sum(n for k, n in c.items() if not k.startswith("  ")),
                    **dict(sorted(c.items()))}
           for family, c in sorted(TALLY.items())}
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"examples_per_test": CAMPAIGN or "default", "python": sys.version.split()[0],
                   "families": out}, fh, indent=2)
        fh.write("\n")
