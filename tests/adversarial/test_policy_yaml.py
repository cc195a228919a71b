"""Hostile YAML: alias bombs and deep nesting are refused before any object is built.

Security review, issue 11 (finding 11): a 334-byte policy with nested aliases made
``covault mask check`` use 1.5 GB in 9 s, and 20,000-deep nesting ended in a traceback.
Every covault YAML file (masking policies, audit rules, lists and catalogues) is read
through :mod:`privacy.safe_yaml`, which refuses anchors, aliases and nesting deeper than
``MAX_DEPTH`` while composing. Each attack must end quickly with exit code 2 and a
one-line message naming the file and line, never a traceback.

A SIGALRM deadline turns a hang on unpatched code into a failure instead of a stuck run.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from covault.cli import main
from masking.policy import Policy
from privacy.audit.catalog import Catalog
from privacy.audit.lists import ListSet
from privacy.audit.rules import Rules
from privacy.errors import ConfigError, InputError, PolicyError
from privacy.safe_yaml import MAX_DEPTH, compose_yaml

DEADLINE_S = 5.0
POLICY_TAIL = "version: 1\ncolumns:\n  - {name: id_no, operator: drop}\n"


def laughs(levels: int = 9) -> str:
    """The billion laughs: each level a list of nine aliases of the one before."""
    out = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        out.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(out) + "\n"


def deep(depth: int = 20_000) -> str:
    return POLICY_TAIL + "extra: " + "[" * depth + "]" * depth + "\n"


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in this (main) thread after ``seconds``."""
    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def mask_check(path: Path) -> tuple[Result, float]:
    start = time.perf_counter()
    with deadline(DEADLINE_S):
        result = CliRunner().invoke(main, ["mask", "check", str(path)])
    return result, time.perf_counter() - start


def assert_refused(result: Result, path: Path, what: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit)  # handled, not a traceback
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {path}:"), lines[0]
    assert what in lines[0]


def test_billion_laughs_policy_is_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(laughs() + POLICY_TAIL, encoding="utf-8")
    assert len(path.read_bytes()) < 600
    result, seconds = mask_check(path)
    assert_refused(result, path, "anchors and aliases")
    assert f"{path}:1:" in result.output  # the first anchor
    assert seconds < 2.0


def test_alias_inside_the_rules_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "alias.yaml"
    path.write_text("version: 1\ncolumns:\n  - &r {name: a, operator: drop}\n  - *r\n",
                    encoding="utf-8")
    result, _ = mask_check(path)
    assert_refused(result, path, "anchors and aliases")
    assert f"{path}:3:" in result.output


def test_deep_nesting_policy_is_exit_2_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(deep(), encoding="utf-8")
    result, seconds = mask_check(path)
    assert_refused(result, path, f"deeper than {MAX_DEPTH}")
    assert seconds < 2.0


def test_deep_block_nesting_is_refused(tmp_path: Path) -> None:
    text = POLICY_TAIL + "".join(f"{'  ' * i}k{i}:\n" for i in range(200)) + "  " * 200 + "x\n"
    with pytest.raises(PolicyError, match=f"deeper than {MAX_DEPTH}") as info:
        Policy.from_yaml(text, source="p.yaml")
    assert info.value.file == "p.yaml" and info.value.line is not None


def test_nesting_at_the_limit_still_composes() -> None:
    ok = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert compose_yaml("a: " + ok, file="ok.yaml") is not None
    with pytest.raises(ConfigError, match="deeper"):
        compose_yaml("a: [" + ok + "]", file="deep.yaml")


def test_normal_policies_still_load(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("version: 1\nextends: jrt0171\ncolumns:\n"
                    "  - {name: id_no, pii: cn_resident_id}\n"
                    "views:\n  display:\n    columns:\n"
                    "      - {name: note, operator: drop}\n", encoding="utf-8")
    result, _ = mask_check(path)
    assert result.exit_code == 0, result.output
    assert "ok (policy hash" in result.output
    assert Policy.preset("jrt0171").view_names


@pytest.mark.parametrize("loader", [
    lambda p: Rules.load(p),
    lambda p: ListSet.load(p),
    lambda p: Catalog.load(p),
], ids=["rules", "lists", "catalog"])
@pytest.mark.parametrize("attack", ["laughs", "deep"])
def test_audit_yaml_files_refuse_the_same_attacks(
        tmp_path: Path, loader: Callable[[Path], object], attack: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(laughs() if attack == "laughs" else "version: 1\n" + deep()[len(POLICY_TAIL):],
                    encoding="utf-8")
    with deadline(DEADLINE_S), pytest.raises(ConfigError) as info:
        loader(path)
    assert info.value.file == str(path) and info.value.line is not None
    assert ("anchors and aliases" if attack == "laughs" else "deeper") in str(info.value)


def test_not_utf8_yaml_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("version: 1\nname: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        Catalog.load(path)
