"""The federated run config (TOML), validated; paths are relative to the config file.

.. code-block:: toml

    kind = "horizontal"            # "horizontal" (banks share features) | "vertical"
    mode = "simulation"            # or "deployment" (SuperLink + SuperNodes, TLS)
    model = "logistic"
    label = "y"
    positive = "bad"               # optional: the label value that is the event
    rounds = 30
    seed = 1
    numeric = ["income", "age"]    # optional: inferred from the data when absent
    categorical = ["state"]        # optional: inferred (text columns) when absent
    exclude = ["row_id"]           # optional: columns that are not features (each must exist)
    id = "cust_id"                 # optional: the customer key column, never a feature
    test = "test.csv"              # optional held-out file with the same columns
    test_party_column = "bank"     # optional: per-party metrics on that party's test rows

    [training]                     # optional
    local_epochs = 5               # full-batch gradient steps per round on each party
    learning_rate = "auto"         # or a number; "auto" = 1/L from each party's data
    C = 1.0                        # inverse L2 strength, as scikit-learn's LogisticRegression

    [aggregation]
    method = "fedavg"              # fedavg | fedprox | ckks | secagg | a Flower robust one
    proximal_mu = 0.1              # fedprox
    key_holder = "bank_1"          # ckks: the party that holds the secret key
    on_node_failure = "continue"   # or "stop"
    min_parties = 2

    [dp]                           # optional
    noise_multiplier = 1.0
    clipping = "adaptive"          # or "fixed" with clipping_norm = ...
    delta = 1e-5

    [[party]]
    name = "bank_1"
    data = "bank_1.csv"            # CSV or Parquet; empty cells are missing values

Gradient-boosted trees (``model = "gbdt"``): ``rounds`` is the number of trees and a
``[gbdt]`` table holds the boosting parameters. Horizontally the histograms are summed
securely (``method`` "secagg", the default, or "ckks"); vertically (SecureBoost) the
hosts sum the guest's Paillier-encrypted gradients (``paillier_bits``, default 3072):

.. code-block:: toml

    model = "gbdt"
    rounds = 100                   # trees (fewer with early stopping)

    [gbdt]                         # optional; XGBoost's names and defaults
    max_depth = 6
    learning_rate = 0.3
    min_child_weight = 1.0
    reg_lambda = 1.0               # L2 on leaf weights
    gamma = 0.0                    # the smallest loss change that makes a split
    max_bins = 256                 # global quantile bins per numeric column
    early_stopping = false         # on a validation split (validation = 0.1, patience = 5)
    paillier_bits = 3072           # vertical only: the guest's Paillier key size

The vertical-only top-level keys (``epochs``, ``id_type``, ``iv``, ``iv_bins``) are
refused in a horizontal config.

A vertical run (``kind = "vertical"``: one guest holding the label, hosts holding other
features of the same customers, aligned by PSI on ``id``):

.. code-block:: toml

    kind = "vertical"
    mode = "simulation"            # or "deployment" (SuperLink + SuperNodes, TLS)
    label = "y"
    id = "cust_id"                 # the customer key column in every party's files
    id_type = "mobile"             # optional: normalise ids of that kind before PSI
    epochs = 20
    iv = true                      # information value of every column (iv_bins = 10)

    [training]                     # optional
    batch_size = 4096              # rows per mini-batch (at most 4096)
    learning_rate = "auto"         # 1/L of the whitened blocks, divided by (1 + epoch)
    C = 1.0                        # inverse L2 strength
    early_stopping = false         # on a validation split (validation = 0.1, patience = 3):
                                   # stop after `patience` epochs improving the validation
                                   # log-loss by less than tol = 1e-4 (relative)

    [[party]]
    name = "bank"
    role = "guest"                 # holds the label
    data = "guest.csv"
    test = "guest_test.csv"        # optional (every party or none); aligned by PSI too
    categorical = ["home"]         # optional per party: inferred when absent
    model = "bank.model.json"      # where this party writes its part of the model
    score = "bank_new.csv"         # customers to score with `covault fl score`

    [[party]]
    name = "telco"
    role = "host"
    data = "host.csv"

A bad config raises :class:`~privacy.errors.ConfigError` naming the file, the key and,
where it can be found, the line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from privacy.errors import ConfigError

__all__ = [
    "PLAIN_METHODS", "SECURE_METHODS", "METHODS", "TrainingConfig", "AggregationConfig",
    "DPConfig", "DeploymentConfig", "PartyConfig", "GBDTConfig", "FLConfig", "load_config",
    "parse_config",
]

#: Aggregations the server computes on the clients' plaintext updates (Flower strategies).
PLAIN_METHODS = ("fedavg", "fedprox", "fedavgm", "fedadam", "fedyogi", "fedadagrad",
                 "fedmedian", "fedtrimmedavg", "krum", "multikrum", "bulyan")
#: Aggregations where the server never sees one party's update.
SECURE_METHODS = ("ckks", "secagg")
METHODS = PLAIN_METHODS + SECURE_METHODS
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


#: Top-level keys that only a vertical run uses (refused in a horizontal config).
VERTICAL_ONLY = ("epochs", "id_type", "iv", "iv_bins")


class KeyProblem(ValueError):
    """A config error about one key (``loc``: its path), so the message gets its line."""

    def __init__(self, message: str, loc: tuple[Any, ...]) -> None:
        super().__init__(message)
        self.loc = loc


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainingConfig(_Strict):
    """Local training of the logistic model on each party."""

    local_epochs: int = Field(5, ge=1, le=1000)
    learning_rate: float | Literal["auto"] = "auto"
    C: float = Field(1.0, gt=0)
    batch_size: int = Field(4096, ge=1, le=4096)
    early_stopping: bool = False
    validation: float = Field(0.1, gt=0, lt=0.5)
    patience: int = Field(3, ge=1, le=1000)
    tol: float = Field(1e-4, ge=0, lt=1)

    @field_validator("learning_rate")
    @classmethod
    def _positive_rate(cls, v: float | str) -> float | str:
        if isinstance(v, float) and not v > 0:
            raise ValueError("must be > 0 or \"auto\"")
        return v


class AggregationConfig(_Strict):
    """How the parties' updates are combined."""

    method: str = "fedavg"
    proximal_mu: float = Field(0.1, ge=0)
    key_holder: str | None = None
    ckks_params: str = "ckks-128-8192"
    on_node_failure: Literal["continue", "stop"] = "continue"
    min_parties: int = Field(2, ge=1)
    trimmed_beta: float = Field(0.2, gt=0, lt=0.5)
    num_malicious: int = Field(0, ge=0)

    @field_validator("method")
    @classmethod
    def _known_method(cls, v: str) -> str:
        if v not in METHODS:
            raise ValueError(f"unknown method {v!r}; expected one of {', '.join(METHODS)}")
        return v


class GBDTConfig(_Strict):
    """Gradient-boosted trees (``model = "gbdt"``): XGBoost's parameter names."""

    max_depth: int = Field(6, ge=1, le=10)
    learning_rate: float = Field(0.3, gt=0, le=10)
    min_child_weight: float = Field(1.0, ge=0)
    reg_lambda: float = Field(1.0, ge=0)
    gamma: float = Field(0.0, ge=0)
    max_bins: int = Field(256, ge=2, le=256)
    early_stopping: bool = False
    validation: float = Field(0.1, gt=0, lt=0.5)
    patience: int = Field(5, ge=1, le=1000)
    paillier_bits: int | None = Field(None, ge=2048, le=4096)


class DPConfig(_Strict):
    """Central differential privacy with client-side clipping (party-level)."""

    noise_multiplier: float = Field(gt=0)
    clipping: Literal["fixed", "adaptive"] = "adaptive"
    clipping_norm: float | None = Field(None, gt=0)
    delta: float = Field(1e-5, gt=0, lt=1)
    target_quantile: float = Field(0.5, gt=0, lt=1)

    @model_validator(mode="after")
    def _norm_for_fixed(self) -> DPConfig:
        if self.clipping == "fixed" and self.clipping_norm is None:
            raise KeyProblem("clipping_norm is required when clipping = \"fixed\"",
                             ("dp", "clipping"))
        return self


class DeploymentConfig(_Strict):
    """How long a run may take (seconds, default one hour), whatever the mode; and, for
    a federation across banks, the SuperLink to submit to (``superlink``, with the CA
    certificate that signed its TLS certificate): then no process is started here and
    each bank's data stays on its SuperNode (``[[party]] data`` may be left out)."""

    timeout: float = Field(3600, gt=0)
    superlink: str | None = Field(None, pattern=r"^[^\s:]+:[0-9]{1,5}$")
    root_certificates: Path | None = None

    @model_validator(mode="after")
    def _certificates_for_superlink(self) -> DeploymentConfig:
        if self.superlink is not None and self.root_certificates is None:
            raise ValueError("superlink needs root_certificates (the CA certificate of its "
                             "TLS certificate)")
        if self.superlink is None and self.root_certificates is not None:
            raise ValueError("root_certificates is only used with superlink")
        return self


class PartyConfig(_Strict):
    """One party: its name and its data file."""

    name: str
    data: Path | None = None
    role: Literal["guest", "host"] | None = None
    test: Path | None = None
    categorical: list[str] | None = None
    numeric: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    ledger: Path | None = None
    model: Path | None = None
    score: Path | None = None

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"party name {v!r} must be 1-64 letters, digits, '_', '.' or '-'")
        return v


class FLConfig(_Strict):
    """A validated federated run (see the module docstring for every key)."""

    kind: Literal["horizontal", "vertical"]
    mode: Literal["simulation", "deployment"] = "simulation"
    model: Literal["logistic", "gbdt"] = "logistic"
    label: str
    positive: str | int | bool | None = None
    rounds: int = Field(30, ge=1, le=10000, strict=True)
    epochs: int = Field(20, ge=1, le=10000, strict=True)
    id: str | None = None
    id_type: Literal["mobile", "resident_id", "card", "email", "uscc", "generic"] | None = None
    iv: bool = Field(True, strict=True)
    iv_bins: int = Field(10, ge=2, le=100, strict=True)
    seed: int = Field(0, strict=True)
    numeric: list[str] | None = None
    categorical: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    test: Path | None = None
    test_party_column: str | None = None
    round_timeout: float = Field(600, gt=0)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    gbdt: GBDTConfig = Field(default_factory=GBDTConfig)
    aggregation: AggregationConfig = Field(default_factory=AggregationConfig)
    dp: DPConfig | None = None
    deployment: DeploymentConfig = Field(default_factory=DeploymentConfig)
    party: list[PartyConfig] = Field(min_length=1)
    source: Path | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FLConfig:
        names = [p.name for p in self.party]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            again = next(i for i, n in enumerate(names) if n in dup and names.index(n) < i)
            raise KeyProblem(f"party names must be unique; repeated: {', '.join(dup)}",
                             ("party", again, "name"))
        remote = self.deployment.superlink is not None
        if remote and self.mode != "deployment":
            raise ValueError("deployment.superlink needs mode = \"deployment\"")
        missing = [(i, p.name) for i, p in enumerate(self.party) if p.data is None]
        if missing and not remote:
            i, name = missing[0]
            raise ValueError(f"party[{i}]: party {name!r} has no 'data' file (only a "
                             f"federation with deployment.superlink keeps the data on the "
                             f"banks' nodes)")
        if "gbdt" in self.model_fields_set and self.model != "gbdt":
            raise ValueError("a [gbdt] table needs model = \"gbdt\"")
        if self.model == "gbdt":
            return self._gbdt()
        if self.kind == "vertical":
            return self._vertical()
        return self._horizontal()

    def _horizontal(self) -> FLConfig:
        names = [p.name for p in self.party]
        horizontal_only = [(i, p.name, k) for i, p in enumerate(self.party)
                           for k in ("role", "test", "model", "score")
                           if getattr(p, k) is not None]
        if horizontal_only:
            i, name, k = horizontal_only[0]
            raise ValueError(f"party[{i}]: key {k!r} of party {name!r} is for kind = "
                             "\"vertical\" runs")
        if len(self.party) < 2:
            raise ValueError("a horizontal run needs at least 2 parties")
        agg = self.aggregation
        if agg.key_holder is not None and agg.key_holder not in names:
            raise ValueError(f"aggregation.key_holder {agg.key_holder!r} is not a party "
                             f"(parties: {', '.join(names)})")
        if agg.min_parties > len(self.party):
            raise ValueError(f"aggregation.min_parties = {agg.min_parties} but only "
                             f"{len(self.party)} parties are configured")
        if self.test_party_column is not None and self.test is None:
            raise ValueError("test_party_column needs a test file (key 'test')")
        both = set(self.numeric or []) & set(self.categorical or [])
        if both:
            raise ValueError(f"columns listed as both numeric and categorical: {sorted(both)}")
        for key in ("numeric", "categorical", "exclude"):
            if self.label in (getattr(self, key) or []):
                raise ValueError(f"{key} lists the label column {self.label!r}")
        if self.dp is not None and agg.method not in ("fedavg", "fedprox", "ckks", "secagg"):
            raise ValueError(f"dp works with fedavg, fedprox, ckks or secagg (a plain mean of "
                             f"clipped updates), not {agg.method!r}")
        for key in VERTICAL_ONLY:
            if key in self.model_fields_set:
                raise KeyProblem(f"key {key!r} is for kind = \"vertical\" runs (a "
                                 "horizontal run has no effect from it): remove it", (key,))
        if self.id is not None:  # the customer key: never a feature
            if self.id == self.label:
                raise KeyProblem(f"id {self.id!r} is the label column", ("id",))
            for key in ("numeric", "categorical"):
                if self.id in (getattr(self, key) or []):
                    raise KeyProblem(f"{key} lists the id column {self.id!r}", (key,))
            if self.id not in self.exclude:
                return self.model_copy(update={"exclude": [*self.exclude, self.id]})
        return self

    def _gbdt(self) -> FLConfig:
        if self.kind == "vertical":
            if "aggregation" in self.model_fields_set:
                raise ValueError("aggregation: a vertical gbdt run sums under the guest's "
                                 "Paillier key (gbdt.paillier_bits); it takes no "
                                 "[aggregation] table")
            return self._vertical()
        if self.gbdt.paillier_bits is not None:
            raise ValueError("gbdt.paillier_bits is for kind = \"vertical\" runs")
        if self.dp is not None:
            raise ValueError("dp is not available for model = \"gbdt\"")
        agg = self.aggregation
        if agg.method not in SECURE_METHODS:
            if "method" in agg.model_fields_set:
                raise ValueError(f"aggregation.method: model = \"gbdt\" sums histograms "
                                 f"securely: use \"secagg\" or \"ckks\", not {agg.method!r}")
            cfg = self.model_copy(update={"aggregation": agg.model_copy(
                update={"method": "secagg"})})
            return cfg._horizontal()
        return self._horizontal()

    def _vertical(self) -> FLConfig:
        if self.id is None:
            raise ValueError("a vertical run needs 'id': the customer key column every "
                             "party's files hold")
        roles = [p.role for p in self.party]
        for i, p in enumerate(self.party):
            if p.role is None:
                raise ValueError(f"party[{i}]: party {p.name!r} needs a role (\"guest\" "
                                 "holds the label, \"host\" holds features)")
        if roles.count("guest") != 1:
            raise ValueError(f"a vertical run needs exactly one guest (role = \"guest\"), "
                             f"found {roles.count('guest')}")
        if len(self.party) < 2:
            raise ValueError("a vertical run needs a guest and at least one host")
        if self.deployment.superlink is not None:
            raise ValueError("deployment.superlink (a remote federation) is not available "
                             "for vertical runs yet; use mode = \"deployment\" locally")
        if self.dp is not None:
            raise ValueError("dp is not available for vertical runs")
        if self.test is not None:
            raise ValueError("a vertical run names each party's test file ([[party]] test), "
                             "not a top-level 'test'")
        tests = [p.test is not None for p in self.party]
        if any(tests) and not all(tests):
            i = tests.index(False)
            raise ValueError(f"party[{i}]: party {self.party[i].name!r} has no 'test' file "
                             "but other parties do (every party needs one, or none)")
        for key in ("numeric", "categorical", "exclude"):
            if self.id in (getattr(self, key) or []):
                raise ValueError(f"{key} lists the id column {self.id!r}")
        return self

    @property
    def party_names(self) -> list[str]:
        """Party names in config order."""
        return [p.name for p in self.party]

    @property
    def steps(self) -> int:
        """The run's training steps: epochs of a vertical logistic regression, else
        ``rounds`` (rounds of a horizontal run, trees of a gbdt one)."""
        return self.epochs if self.kind == "vertical" and self.model != "gbdt" else self.rounds

    def model_part(self, party: PartyConfig) -> Path:
        """Where a vertical party writes its part of the model (key ``model``; default
        ``<name>.model.json`` beside the config)."""
        return party.model or self.base_dir / f"{party.name}.model.json"

    @property
    def base_dir(self) -> Path:
        """The directory relative paths were resolved against."""
        return self.source.parent if self.source is not None else Path.cwd()


def _key_line(text: str, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line number of a key path in TOML text (tables and arrays of tables)."""
    lines = text.splitlines()
    start, stop = 0, len(lines)
    keys = [k for k in loc if isinstance(k, str)]
    if loc and isinstance(loc[0], str) and len(loc) > 1:
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(loc[0])}\s*\]\]?\s*(#.*)?$")
        hits = [i for i, ln in enumerate(lines) if header.match(ln)]
        idx = loc[1] if isinstance(loc[1], int) else 0
        if hits and idx < len(hits):
            start = hits[idx]
            later = [i for i, ln in enumerate(lines) if i > start and ln.lstrip().startswith("[")]
            stop = later[0] if later else len(lines)
            keys = [k for k in loc[1:] if isinstance(k, str)]
            if not keys:
                return start + 1
    elif keys:
        later = [i for i, ln in enumerate(lines) if ln.lstrip().startswith("[")]
        stop = later[0] if later else len(lines)
    if not keys:
        return None
    pat = re.compile(rf"^\s*{re.escape(keys[0])}\s*=")
    for i in range(start, stop):
        if pat.match(lines[i]):
            return i + 1
    return start + 1 if start else None


def key_location(cfg: FLConfig, *loc: Any) -> dict[str, Any]:
    """``file`` and (where found) ``line`` of a key of ``cfg``'s config file, for an
    :class:`~privacy.errors.InputError` about that key found after loading."""
    if cfg.source is None:
        return {}
    try:
        text = Path(cfg.source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {"file": str(cfg.source)}
    return {"file": str(cfg.source), "line": _key_line(text, loc)}


def _loc_text(loc: tuple[Any, ...]) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _resolve(cfg: FLConfig, base: Path) -> FLConfig:
    def fix(p: Path | None) -> Path | None:
        return None if p is None else (p if p.is_absolute() else (base / p).resolve())

    parties = [p.model_copy(update={"data": fix(p.data), "test": fix(p.test),
                                    "ledger": fix(p.ledger), "model": fix(p.model),
                                    "score": fix(p.score)}) for p in cfg.party]
    deployment = cfg.deployment.model_copy(
        update={"root_certificates": fix(cfg.deployment.root_certificates)})
    return cfg.model_copy(update={"party": parties, "test": fix(cfg.test),
                                  "deployment": deployment})


def parse_config(data: dict[str, Any], *, source: str | Path | None = None,
                 text: str | None = None) -> FLConfig:
    """Validate a config mapping; relative paths resolve against ``source``'s folder."""
    src = str(source) if source is not None else None
    if "source" in data:  # set from the file's path, never from the file
        raise ConfigError("unknown key 'source'", file=src,
                          line=_key_line(text, ("source",)) if text is not None else None)
    try:
        cfg = FLConfig.model_validate({**data, "source": source})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}"
            where = _loc_text(loc[:-1])
        elif err["type"] == "missing":
            msg = f"missing required key {loc[-1]!r}"
            where = _loc_text(loc[:-1])
        else:
            problem = (err.get("ctx") or {}).get("error")
            if isinstance(problem, KeyProblem):
                loc, msg = problem.loc, str(problem)
            where = _loc_text(loc)
        line = _key_line(text, loc) if text is not None and loc else None
        raise ConfigError(f"{where}: {msg}" if where else msg, file=src, line=line) from None
    base = Path(source).resolve().parent if source is not None else Path.cwd()
    try:
        return _resolve(cfg, base)
    except ValueError as exc:  # pathlib: a path holding a NUL character
        raise ConfigError(f"a file path in the config cannot be used ({exc})",
                          file=src) from None


def load_config(path: str | Path) -> FLConfig:
    """Read and validate a TOML run config.

    Raises
    ------
    ConfigError
        The file is missing, is not TOML, or a key is unknown, missing or invalid; the
        message names the file, the key and (where found) the line.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", file=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config: {exc}", file=str(p)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(f"not valid TOML: {exc}", file=str(p),
                          line=int(m.group(1)) if m else None) from None
    except (ValueError, RecursionError):  # tomllib: an integer of > 4,300 digits, deep nesting
        raise ConfigError("not a usable TOML config: an integer of too many digits or "
                          "arrays/tables nested too deeply", file=str(p)) from None
    return parse_config(data, source=p, text=text)
