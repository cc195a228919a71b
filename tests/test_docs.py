"""The README and the docs run: every shell and Python block, in a temporary folder.

Each document is one session (see :mod:`docblocks`): its blocks run in order in one
folder, as a reader would type them, and each block is one test. Selecting a single
block (``-k``) runs the blocks before it first. A failing block shows its output; blocks
that ran before it and failed are named, since a later failure may only follow from them.

Whole run: 6 to 13 minutes on two cores, by load (federated runs, audit simulation);
``-m "not slow"`` (blocks before a document's first slow block) takes under a minute.
Sessions use their own folders, ``$HOME`` and ``$FLWR_HOME`` and no fixed ports, so they
run beside other tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from docblocks import REPO, Block, DocError, Session, documents, parse, write_samples

# Every block a document marks <!-- skip: REASON -->, with that reason. A new skip must be
# added here, so skips stay rare and each is reviewed.
EXPECTED_SKIPS: dict[str, list[str]] = {
    "README.md": [
        "a PSI server waiting for its peer on another host (bank-b), and each bank's step "
        "on its own machine; tests/test_psi.py and tests/test_he_cli.py run these commands",
    ],
}


def _blocks() -> dict[str, list[Block]]:
    out: dict[str, list[Block]] = {}
    for doc in documents():
        try:
            blocks = parse(doc)
        except DocError:
            blocks = []  # test_documents_parse reports it
        out[doc.relative_to(REPO).as_posix()] = blocks
    return out


BLOCKS = _blocks()


def _params() -> list[object]:
    params = []
    for doc, blocks in BLOCKS.items():
        slow = False  # a block after a slow one may need its outputs: it is slow too
        for index, block in enumerate(blocks):
            if block.runs:
                slow = slow or "slow" in block.markers
                marks = [pytest.mark.slow] if slow else []
                params.append(pytest.param(doc, index, id=block.id, marks=marks))
    return params


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    samples = write_samples(tmp_path_factory.mktemp("samples"))
    made: dict[str, Session] = {}

    def get(doc: str) -> Session:
        if doc not in made:
            slug = re.sub(r"[^A-Za-z0-9]+", "-", doc)
            made[doc] = Session(BLOCKS[doc], tmp_path_factory.mktemp(slug), samples)
        return made[doc]

    return get


def test_documents_parse() -> None:
    """Every fence names its language; markers are well formed and precede a block."""
    assert documents(), "no documents found"
    for doc in documents():
        parse(doc)  # raises DocError naming file:line


def test_readme_has_runnable_blocks() -> None:
    runs = [b for b in BLOCKS["README.md"] if b.runs]
    assert sum(b.lang == "bash" for b in runs) >= 5
    assert sum(b.lang == "python" for b in runs) >= 5


def test_skips_are_listed() -> None:
    found: dict[str, list[str]] = {}
    for doc, blocks in BLOCKS.items():
        for block in blocks:
            if "skip" in block.markers:
                found.setdefault(doc, []).append(" ".join(block.markers["skip"].split()))
    assert found == EXPECTED_SKIPS


@pytest.mark.parametrize(("doc", "index"), _params())
def test_block_runs(doc: str, index: int, sessions) -> None:  # type: ignore[no-untyped-def]
    session: Session = sessions(doc)
    result = session.run_until(index)
    assert result is not None
    if not result.ok:
        earlier = [f"{r.block.id} (exit {r.returncode})" for r in session.failed_before(index)]
        note = f"\nearlier blocks that failed: {', '.join(earlier)}" if earlier else ""
        setup = session.blocks[index].markers.get("setup", "").split("\n", 1)[0]
        pytest.fail(
            f"{result.block.id} exited {result.returncode} after {result.seconds:.1f} s "
            f"(folder {session.work}{'; setup: ' + setup if setup else ''}){note}\n"
            f"--- block ---\n{result.block.text}--- output (tail) ---\n{result.output[-6000:]}",
            pytrace=False,
        )


# -- the harness itself -------------------------------------------------------------------

_SAMPLE = """\
# Title

<!-- file: conf/settings.yaml -->
```yaml
name: demo
```

<!-- setup: a file a reader already has
echo 41 > input.txt
-->
```bash
export ANSWER=$(( $(cat input.txt) + 1 ))
test -f conf/settings.yaml
```

```python
import os
print(os.environ["ANSWER"], open("conf/settings.yaml").read().strip())
```

<!-- skip: needs another machine -->
```bash
exit 3
```

```console
covault audit serve --db audit.db
```

```bash
false
echo never
```
"""


def test_harness_runs_a_session(tmp_path: Path) -> None:
    doc = tmp_path / "sample.md"
    doc.write_text(_SAMPLE, encoding="utf-8")
    blocks = parse(doc)
    assert [b.lang for b in blocks] == ["yaml", "bash", "python", "bash", "console", "bash"]
    assert [b.runs for b in blocks] == [False, True, True, False, False, True]
    assert blocks[3].markers["skip"] == "needs another machine"
    session = Session(blocks, tmp_path / "s", write_samples(tmp_path / "samples"))
    assert (session.work / "conf" / "settings.yaml").read_text() == "name: demo\n"
    assert session.run_until(1).ok  # type: ignore[union-attr]
    second = session.run_until(2)
    assert second is not None and second.ok and second.output.strip() == "42 name: demo"
    assert session.run_until(4) is None
    last = session.run_until(5)
    assert last is not None and last.returncode == 1 and "never" not in last.output


@pytest.mark.parametrize(("text", "message"), [
    ("```\nls\n```\n", "without a language"),
    ("```rust\nfn main() {}\n```\n", "unknown code block language"),
    ("<!-- skip: -->\n```bash\nls\n```\n", "'skip:' needs a value"),
    ("<!-- setup: echo hi -->\n```bash\nls\n```\n", "first line"),
    ("<!-- file: ../x.txt -->\n```text\nx\n```\n", "relative path"),
    ("<!-- slow -->\nSome prose.\n\n```bash\nls\n```\n", "not followed by a code block"),
    ("```bash\nls\n", "unclosed code block"),
])
def test_harness_rejects_bad_markup(tmp_path: Path, text: str, message: str) -> None:
    doc = tmp_path / "bad.md"
    doc.write_text(text, encoding="utf-8")
    with pytest.raises(DocError, match=message):
        parse(doc)


def test_make_bench_installs_the_bench_extra() -> None:
    """`make bench` installs what the benchmarks import (openmined-psi, presidio: the
    ``bench`` extra) and runs every benchmarks/bench_*.py."""
    out = subprocess.run(["make", "-n", "-B", "bench"], cwd=REPO, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})
    assert out.returncode == 0, out.stderr
    assert ".[all,dev,bench]" in out.stdout
    assert "benchmarks/bench_*.py" in out.stdout
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^bench = \[.*"openmined-psi', pyproject, re.M)
