"""``federated.run(config) -> FLResult``: one federated job on real Flower processes.

The runner checks the config and every party's table first (a bad one fails before any
process starts, naming the party), writes a *plan* (the resolved config, the parties,
where the result goes) and a minimal Flower app folder pointing at
``federated.horizontal.server:app`` / ``federated.horizontal.client:app``, starts a
:class:`~federated.deploy.LocalFederation` (a simulation SuperLink, or a SuperLink with
TLS and node authentication and one SuperNode process per party), submits the run,
follows its rounds and reads the result the ServerApp wrote.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from federated.config import FLConfig, key_location, load_config
from federated.data import (
    _label_text,
    encode_label,
    label_levels,
    numeric_values,
    party_of_rows,
    read_table,
)
from federated.preprocess import describe_party, merge_schemas
from privacy.errors import FederationError, InputError

__all__ = ["FLResult", "run", "score", "information_value", "preflight", "party_ledger"]

_ROUND = re.compile(r"\[ROUND (\d+)/(\d+)\]")


@dataclass
class FLResult:
    """The outcome of a federated run (``to_dict()`` is what ``--format json`` prints).

    ``global_`` holds ``auc``, ``ks`` and ``logloss`` on the test file; ``parties`` maps
    each party to its ``rows``, ``auc`` (federated model on its test rows) and
    ``local_auc`` (its local-only model on the same rows); ``history`` has one entry per
    round; ``epsilon`` is the DP budget spent (None without DP); ``details`` keeps the
    rest (curves, weights, features, preprocessing, traffic).
    """

    kind: str
    rounds: int
    aggregation: str
    global_: dict[str, Any]
    parties: dict[str, dict[str, Any]]
    history: list[dict[str, Any]]
    epsilon: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FLResult:
        """Rebuild from the ServerApp's result file."""
        if d.get("kind") == "vertical":
            known = {"kind", "epochs", "rounds", "global", "parties", "history"}
            aggregation = "paillier" if d.get("model") == "gbdt" else "ckks"
            return cls("vertical", int(d.get("epochs", d.get("rounds", 0))), aggregation,
                       dict(d.get("global", {})),
                       dict(d.get("parties", {})), list(d.get("history", [])), None,
                       {k: v for k, v in d.items() if k not in known})
        known = {"kind", "rounds", "aggregation", "global", "parties", "history", "epsilon"}
        return cls(str(d["kind"]), int(d["rounds"]), str(d["aggregation"]), dict(d["global"]),
                   dict(d["parties"]), list(d["history"]), d.get("epsilon"),
                   {k: v for k, v in d.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``covault fl run --format json`` (extras after the spec keys)."""
        if self.kind == "vertical":
            d = dict(self.details)
            head = {"kind": "vertical", "intersection": d.pop("intersection", None),
                    "test_intersection": d.pop("test_intersection", None),
                    "global": self.global_, "guest_only": d.pop("guest_only", None),
                    "history": self.history, "iv": d.pop("iv", {})}
            steps = "rounds" if d.get("model") == "gbdt" else "epochs"  # trees or epochs
            return {**head, steps: self.rounds, "parties": self.parties, **d}
        return {"kind": self.kind, "rounds": self.rounds, "aggregation": self.aggregation,
                "global": self.global_, "parties": self.parties, "history": self.history,
                "epsilon": self.epsilon, **self.details}


def preflight(cfg: FLConfig) -> dict[str, int]:
    """Read every party's table and check the schemas agree; rows per party.

    Raises
    ------
    InputError
        A file is missing or unreadable, a party has no rows, lacks a column or holds
        another schema; the message names the party.
    """
    if cfg.kind == "vertical":
        return _preflight_vertical(cfg)
    if cfg.deployment.superlink is not None:  # the data is on the banks' SuperNodes
        if cfg.test is not None:  # the banks' schemas are not known yet: the label only
            test = read_table(cfg.test, party="test")
            if cfg.label not in test.columns:
                raise test.error(f"column {cfg.label!r} is missing from the test file")
            label_levels(test, cfg.label)  # a missing label names its row
            if cfg.test_party_column:
                party_of_rows(test, cfg.test_party_column, cfg.party_names)
        return {}
    tables = {}
    for p in cfg.party:
        assert p.data is not None  # checked by the config
        pt = read_table(p.data, party=p.name)
        if cfg.id is not None and cfg.id not in pt.columns:
            raise pt.error(f"id column {cfg.id!r} is missing (key 'id' of the config)")
        tables[p.name] = pt
    columns = {c for pt in tables.values() for c in pt.columns}
    ghosts = [c for c in cfg.exclude if c not in columns]
    if ghosts:  # a typo would leave the column meant (an identifier?) among the features
        raise InputError(f"exclude names column {ghosts[0]!r}, which no party's data holds "
                         f"(columns: {', '.join(sorted(columns)[:20])})",
                         **key_location(cfg, "exclude"))
    schemas = {name: describe_party(pt, label=cfg.label, exclude=cfg.exclude,
                                    numeric=cfg.numeric, categorical=cfg.categorical)
               for name, pt in tables.items()}
    try:
        spec = merge_schemas(schemas, label=cfg.label, positive=cfg.positive)
    except InputError as exc:
        if exc.file is None and cfg.positive is not None and "positive =" in exc.detail:
            raise InputError(exc.detail, **key_location(cfg, "positive")) from None
        raise
    if cfg.test is not None:
        known = {x for s in schemas.values() for x in s.label_levels}
        _check_test(cfg, read_table(cfg.test, party="test"), spec, known)
    return {name: s.rows for name, s in schemas.items()}


def _check_test(cfg: FLConfig, test: Any, spec: Any, known: set[str]) -> None:
    """The held-out test file holds every feature and the label, its numbers parse, each
    row has a label value of the training data (and a party, with test_party_column):
    checked before anything is exchanged."""
    need = [*spec.numeric, *spec.categorical, cfg.label]
    need += [cfg.test_party_column] if cfg.test_party_column else []
    for c in dict.fromkeys(need):
        if c not in test.columns:
            raise test.error(f"column {c!r} is missing from the test file")
    encode_label(test, cfg.label, spec.positive)  # a missing label names its row
    odd = [v for v in label_levels(test, cfg.label) if v not in known]
    if odd:
        values = test.table.column(cfg.label).to_pylist()
        row = next(i for i, v in enumerate(values) if _label_text(v) == odd[0])
        raise test.error(f"label value {odd[0]!r} is not one of the training data's "
                         f"({', '.join(sorted(known))})", column=cfg.label, row=row + 1)
    for c in spec.numeric:
        numeric_values(test, c)  # a stray word names its row
    if cfg.test_party_column:
        party_of_rows(test, cfg.test_party_column, cfg.party_names)


def _preflight_vertical(cfg: FLConfig, *, splits: tuple[str, ...] = ("data", "test")
                        ) -> dict[str, int]:
    """Each party's files exist and hold the id column; the guest holds the label and no
    host does."""
    rows = {}
    for p in cfg.party:
        for key in splits:
            path = getattr(p, key)
            if path is None:
                if key == "score":
                    raise InputError(f"party {p.name!r}: has no 'score' file (the customers "
                                     "to score)")
                continue
            assert cfg.id is not None  # checked by the config
            pt_ = read_table(path, party=p.name, text_columns=(cfg.id,))
            if cfg.id not in pt_.columns:
                raise pt_.error(f"id column {cfg.id!r} is missing (key 'id' of the config)")
            if p.role == "host" and cfg.label in pt_.columns:
                raise pt_.error(f"a host must not hold the label column {cfg.label!r}: drop "
                                "it from this party's files", column=cfg.label)
            if p.role == "guest" and key != "score" and cfg.label not in pt_.columns:
                raise pt_.error(f"the guest's file has no label column {cfg.label!r}")
            if key == "data":
                rows[p.name] = pt_.rows
    return rows


def _vertical_setups(cfg: FLConfig, work: Path, ledger: Path | None, *,
                     scores: Path | None = None) -> dict[str, dict[str, Any]]:
    run = hashlib.sha256(f"{time.time_ns()}{work}".encode()).hexdigest()[:16]
    out = {}
    for p in cfg.party:
        led = p.ledger or (party_ledger(ledger, p.name) if ledger is not None else None)
        model = cfg.model_part(p)
        out[p.name] = {
            "party": p.name, "role": p.role, "run": run, "id": cfg.id, "id_type": cfg.id_type,
            "label": cfg.label, "model_kind": cfg.model,
            "positive": cfg.positive, "exclude": [*cfg.exclude, *p.exclude],
            "numeric": p.numeric if p.numeric is not None else cfg.numeric,
            "categorical": p.categorical if p.categorical is not None else cfg.categorical,
            "data": str(p.data) if p.data else None, "test": str(p.test) if p.test else None,
            "score": str(p.score) if p.score else None, "model": str(model),
            "ledger": str(led) if led is not None else None,
            "state": str(work / "state" / p.name),
            "scores": str(scores) if scores is not None and p.role == "guest" else None}
    return out


def party_ledger(ledger: Path, party: str) -> Path:
    """Where a party's records go when it names no ledger of its own: beside the
    coordinator's (``audit.db`` -> ``audit.bank_1.db``); a ledger has one origin."""
    return ledger.with_name(f"{ledger.stem}.{party}{ledger.suffix or '.db'}")


def _plan(cfg: FLConfig, work: Path, ledger: Path | None, *, job: str = "train",
          scores: Path | None = None) -> dict[str, Any]:
    parties = []
    for p in cfg.party:
        led = p.ledger or (party_ledger(ledger, p.name) if ledger is not None else None)
        parties.append({"name": p.name, "data": str(p.data) if p.data else None,
                        "ledger": str(led) if led is not None else None})
    plan = {"config": cfg.model_dump(mode="json"), "parties": parties,
            "test": str(cfg.test) if cfg.test else None, "mode": cfg.mode,
            "result": str(work / "result.json"),
            "ledger": str(ledger) if ledger is not None else None, "job": job}
    if cfg.kind == "vertical":
        (work / "state").mkdir(mode=0o700)
        plan["vertical"] = _vertical_setups(cfg, work, ledger, scores=scores)
    return plan


def _federation(cfg: FLConfig, plan: dict[str, Any], work: Path) -> Any:
    from federated.deploy import LocalFederation, make_certs

    n = len(cfg.party)
    if cfg.deployment.superlink is not None:
        from federated.deploy import RemoteSuperLink

        assert cfg.deployment.root_certificates is not None  # checked by the config
        return RemoteSuperLink(cfg.deployment.superlink,
                               root_certificates=cfg.deployment.root_certificates,
                               workdir=work / "flower")
    if cfg.mode == "simulation":
        return LocalFederation("simulation", num_nodes=n, workdir=work / "flower",
                               client_num_cpus=1)
    certs = make_certs(work / "certs", num_nodes=n)  # fresh test certificates per run
    configs = [{"party": p["name"], "data": p["data"], **({"ledger": p["ledger"]}
                                                         if p["ledger"] else {})}
               for p in plan["parties"]]
    return LocalFederation("deployment", node_configs=configs, workdir=work / "flower",
                           certs=certs)


def run(config: FLConfig | str | Path, *, ledger: str | Path | None = None,
        progress: Callable[[int, int], None] | None = None,
        workdir: str | Path | None = None,
        on_start: Callable[[Any], None] | None = None) -> FLResult:
    """Run a federated job described by a config (a path or a loaded :class:`FLConfig`).

    ``progress(round, rounds)`` is called as rounds complete. ``on_start(federation)``
    is called with the started :class:`~federated.deploy.LocalFederation` before the run
    is submitted (to watch its processes, or stop a SuperNode in a failure drill).
    ``workdir`` is where the run's temporary folder goes (plan, certificates, logs).

    Raises
    ------
    ConfigError, InputError
        Bad config or party data (before anything starts).
    FederationError
        The run failed: the message names the party and the step when one failed.
    """
    return FLResult.from_dict(_run_job(config, ledger=ledger, progress=progress,
                                       workdir=workdir, on_start=on_start))


def score(config: FLConfig | str | Path, output: str | Path, *,
          ledger: str | Path | None = None, workdir: str | Path | None = None
          ) -> dict[str, Any]:
    """Score new customers with a trained vertical model (``covault fl score``).

    Each party's ``score`` file is aligned by PSI on ``id``; the guest writes ``output``
    (``id``, ``probability``) for the customers every party has. Returns counts.

    Raises
    ------
    ConfigError, InputError
        Not a vertical config, a party without a ``score`` file or a model part.
    FederationError
        The run failed.
    """
    cfg = config if isinstance(config, FLConfig) else load_config(config)
    if cfg.kind != "vertical":
        raise InputError("a CONFIG.toml is scored for kind = \"vertical\" runs; a horizontal "
                         "model is scored at one bank from its result: covault fl score "
                         "--result RESULT.json --data FILE -o OUT "
                         "(federated.local_scoring.score_file)")
    _preflight_vertical(cfg, splits=("score",))
    return _run_job(cfg, ledger=ledger, workdir=workdir, job="score",
                    scores=Path(output).resolve())


def information_value(config: FLConfig | str | Path, *, ledger: str | Path | None = None,
                      workdir: str | Path | None = None) -> dict[str, Any]:
    """Federated binning and WOE/IV of every column of a vertical config (``covault fl
    iv``): ``{"intersection", "iv": {column: value}, "party": {column: party}}``.

    Raises
    ------
    ConfigError, InputError
        Not a vertical config, or bad party data.
    FederationError
        The run failed.
    """
    cfg = config if isinstance(config, FLConfig) else load_config(config)
    if cfg.kind != "vertical":
        raise InputError("fl iv is for kind = \"vertical\" configs (one guest with the label, "
                         "hosts with other features of the same customers)")
    _preflight_vertical(cfg, splits=("data",))
    return _run_job(cfg, ledger=ledger, workdir=workdir, job="iv")


def _run_job(config: FLConfig | str | Path, *, ledger: str | Path | None = None,
             progress: Callable[[int, int], None] | None = None,
             workdir: str | Path | None = None,
             on_start: Callable[[Any], None] | None = None, job: str = "train",
             scores: Path | None = None) -> dict[str, Any]:
    """Run a training or scoring job; the ServerApp's result dict."""
    cfg = config if isinstance(config, FLConfig) else load_config(config)
    if job == "train":
        preflight(cfg)  # the other jobs check their own files first
    led = Path(ledger).resolve() if ledger is not None else None
    with tempfile.TemporaryDirectory(prefix="covault-fl-", dir=workdir) as tmp:
        work = Path(tmp)
        plan = _plan(cfg, work, led, job=job, scores=scores)
        plan_path = work / "plan.json"
        plan_path.write_text(json.dumps(plan, indent=1), encoding="utf-8")
        from federated.deploy import write_app_dir

        pkg = ("federated.trees" if cfg.model == "gbdt" and cfg.kind == "horizontal"
               else f"federated.{cfg.kind}")
        app_dir = write_app_dir(work / "app", f"{pkg}.server:app", f"{pkg}.client:app",
                                {"plan": ""})
        try:
            with _federation(cfg, plan, work) as fed:
                if on_start is not None:
                    on_start(fed)
                run_id = fed.submit(app_dir, {"plan": str(plan_path)})
                _follow(fed, run_id, work / "result.json", cfg, progress, total=cfg.steps)
                status = fed.wait(run_id, timeout=cfg.deployment.timeout, check=False)
            result_file = work / "result.json"
            if not result_file.exists():
                raise FederationError(f"the run stopped without a result ({status.status}: "
                                      f"{status.details}); ServerApp log:\n{status.log_tail}")
        except FederationError as exc:
            keep_logs(exc, work, workdir)
            raise
        data = json.loads(result_file.read_text(encoding="utf-8"))
    if "error" in data:
        if data.get("type") in ("InputError", "ConfigError") or _party_input_error(
                str(data["error"])):
            raise InputError(str(data["error"]))
        raise FederationError(str(data["error"]))
    return dict(data)


def keep_logs(exc: FederationError, work: Path, workdir: str | Path | None) -> None:
    """A failed run's process logs outlive its temporary folder ``work``: copied into a
    new ``covault-fl-logs-*`` folder (beside it), which ``exc``'s message then names
    (in place of the paths about to be deleted). Nothing else is kept (the folder also
    holds the local federation's private keys)."""
    import shutil

    logs = sorted(work.rglob("*.log"))
    if not logs:
        return
    kept = Path(tempfile.mkdtemp(prefix="covault-fl-logs-", dir=workdir))
    for log in logs:
        target = kept / log.relative_to(work)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, target)
    message = str(exc.args[0]) if exc.args else str(exc)
    exc.args = (message.replace(str(work), str(kept))
                + f"\n(the run's logs are kept in {kept})", *exc.args[1:])


def _party_input_error(message: str) -> bool:
    """A party failed on its own bad input (its error reply names an InputError)."""
    return bool(re.search(r"failed in \S+: (InputError|ConfigError): ", message))


def _follow(fed: Any, run_id: int, result: Path, cfg: FLConfig,
            progress: Callable[[int, int], None] | None, *, total: int) -> None:
    """Report rounds from the run's log until the result file appears or the run ends."""
    log = fed.logs().get(f"run-{run_id}")
    deadline = time.monotonic() + cfg.deployment.timeout
    seen = 0
    while time.monotonic() < deadline:
        if result.exists():
            break
        if log is not None and log.exists() and progress is not None:
            rounds = [int(m.group(1)) for m in _ROUND.finditer(
                log.read_text(encoding="utf-8", errors="replace"))]
            done = max(rounds, default=1) - 1
            if done > seen:
                seen = done
                progress(seen, total)
        if not fed.running(run_id):
            break
        time.sleep(0.3)
    if progress is not None and result.exists():
        progress(total, total)
