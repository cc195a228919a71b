"""``covault fl run`` and ``covault fl certs``."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from covault.console import atomic_output, emit_json, format_option, handle_errors, out, print_table
from privacy.errors import InputError


@contextlib.contextmanager
def _progress(total: int, quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("federated rounds", total=total)
        yield lambda done, _total: bar.update(task, completed=done)


def _fmt(v: Any) -> str:
    return "—" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


@click.command("run")
@click.argument("config_path", metavar="CONFIG.toml", type=click.Path(dir_okay=False))
@click.option("--ledger", "ledger_path", type=click.Path(dir_okay=False), default=None,
              help="The coordinator's ledger database; each party's records go beside it "
                   "(L.db -> L.<party>.db) unless its [[party]] names a ledger.")
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the result JSON to this file (for `covault fl report`).")
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@format_option
@handle_errors
def run(config_path: str, ledger_path: str | None, out_path: str | None, force: bool,
        fmt: str) -> None:
    """Run the federated job described by CONFIG.toml (paths relative to that file).

    Starts Flower itself: a simulation SuperLink (mode = "simulation"), or a SuperLink
    with TLS and node authentication plus one SuperNode process per party (mode =
    "deployment"). Prints the global and per-party scores; --format json prints one
    JSON object with kind, rounds, aggregation, global, parties, history and epsilon.
    """
    from federated.config import load_config
    from federated.runner import run as run_job

    cfg = load_config(config_path)
    if out_path is not None and Path(out_path).exists() and not force:
        raise InputError(f"{out_path} exists; pass --force to overwrite it")
    with _progress(cfg.steps, fmt == "json") as progress:
        result = run_job(cfg, ledger=ledger_path, progress=progress)
    data = result.to_dict()
    if out_path is not None:
        with atomic_output(out_path, "w") as fh:
            json.dump(data, fh, indent=1)
    if fmt == "json":
        emit_json(data)
        return
    if result.kind == "vertical":
        _print_vertical(data)
        return
    g = result.global_
    out.print(f"{result.kind} {result.aggregation}, {result.rounds} rounds: test AUC "
              f"{_fmt(g.get('auc'))}, KS {_fmt(g.get('ks'))}, log loss {_fmt(g.get('logloss'))}"
              + (f", epsilon {result.epsilon:.2f}" if result.epsilon is not None else ""))
    print_table("parties", ["party", "rows", "federated AUC", "local-only AUC"],
                [[p, v.get("rows"), _fmt(v.get("auc")), _fmt(v.get("local_auc"))]
                 for p, v in result.parties.items()])


def _print_vertical(data: dict[str, Any]) -> None:
    g, alone = data["global"], data.get("guest_only") or {}
    steps = (f"{data['rounds']} trees (kept {data.get('trees')})" if data.get("model") == "gbdt"
             else f"{data['epochs']} epochs")
    out.print(f"vertical, {steps} on {data['intersection']} shared customers "
              f"(test: {_fmt(data.get('test_intersection'))}): joint AUC {_fmt(g.get('auc'))}, "
              f"KS {_fmt(g.get('ks'))}; guest alone AUC {_fmt(alone.get('auc'))}, "
              f"KS {_fmt(alone.get('ks'))}")
    print_table("parties", ["party", "role", "rows", "features"],
                [[p, v.get("role"), (v.get("rows") or {}).get("train"), v.get("features")]
                 for p, v in data["parties"].items()])
    if data.get("iv"):
        print_iv(data["iv"])


def print_iv(iv: dict[str, float], owner: dict[str, str] | None = None) -> None:
    """The IV table, strongest first."""
    from federated.vertical.binning import iv_strength

    rows = sorted(iv.items(), key=lambda kv: -kv[1])
    head = ["column", *(["party"] if owner else []), "IV", "strength"]
    print_table("information value", head,
                [[c, *([owner.get(c, "")] if owner else []), f"{v:.4f}", iv_strength(v)]
                 for c, v in rows])


@click.command("certs")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--nodes", type=int, default=3, show_default=True,
              help="How many SuperNode authentication key pairs to make.")
@click.option("--host", "hosts", multiple=True, default=("127.0.0.1", "localhost"),
              show_default=True, help="Names and addresses the SuperLink certificate covers.")
@click.option("--days", type=int, default=30, show_default=True, help="Validity.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@format_option
@handle_errors
def certs(directory: str, nodes: int, hosts: tuple[str, ...], days: int, force: bool,
          fmt: str) -> None:
    """Make TEST certificates for a local deployment: a CA, the SuperLink's TLS
    certificate and key, and one authentication key pair per SuperNode."""
    from federated.deploy import make_certs

    if nodes < 1:
        raise InputError(f"--nodes must be >= 1, got {nodes}")
    paths = make_certs(directory, hosts=hosts, days=days, num_nodes=nodes, force=force)
    files = {k: str(v) for k, v in vars(paths).items() if isinstance(v, Path)}
    if fmt == "json":
        emit_json({"directory": str(Path(directory)), "files": files,
                   "nodes": len(paths.node_keys)})
        return
    out.print(f"wrote test certificates and {len(paths.node_keys)} node key pairs to {directory}")
