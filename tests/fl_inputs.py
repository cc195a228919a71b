"""Helpers for tests of bad federated input: a horizontal config over party files, and
the error that ``federated.runner.preflight`` and ``covault fl run`` give for it (the
``no_flower`` fixture, in ``conftest.py``, fails a test that gets as far as Flower)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from covault.cli import main
from federated.config import load_config
from federated.runner import preflight
from privacy.errors import CovaultError, InputError


def setup_run(tmp_path: Path, files: dict[str, str], *, extra: str = "",
              parties: list[str] | None = None) -> Path:
    """Write ``files`` and a horizontal config (label ``y``, 2 rounds, ``extra`` lines)
    naming a party per file whose name starts with ``bank`` (or ``parties``)."""
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    names = parties or sorted(n for n in files if n.startswith("bank"))
    blocks = "".join(f'\n[[party]]\nname = "{Path(n).stem}"\ndata = "{n}"\n' for n in names)
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'kind = "horizontal"\nlabel = "y"\nrounds = 2\n{extra}\n{blocks}',
                   encoding="utf-8")
    return cfg


def preflight_error(cfg: Path) -> InputError:
    """The :class:`InputError` the preflight raises for the config ``cfg``."""
    with pytest.raises(InputError) as info:
        preflight(load_config(cfg))
    assert isinstance(info.value, CovaultError)
    return info.value


def cli_error(cfg: Path, no_flower: list[str]) -> str:
    """``covault fl run cfg``'s stderr, checked to be exit 2 with ``error: ...``, before any
    Flower process, writing nothing and changing no file beside the config."""
    out = cfg.parent / "result.json"
    before = {p.name: p.read_bytes() for p in cfg.parent.iterdir() if p.is_file()}
    r = CliRunner().invoke(main, ["fl", "run", str(cfg), "-o", str(out)])
    assert r.exit_code == 2, (r.exit_code, r.output)
    assert r.stderr.startswith("error: ")
    assert not no_flower and not out.exists()
    after = {p.name: p.read_bytes() for p in cfg.parent.iterdir() if p.is_file()}
    assert after == before  # inputs untouched, nothing written
    return r.stderr
