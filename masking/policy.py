"""Masking policies: versioned YAML, validated with pydantic, errors at ``file:line``.

.. code-block:: yaml

    version: 1
    extends: jrt0171            # start from a preset (its rules come after ours)
    context: cif.customers      # prefix of keyed operators' contexts (default: table)
    default: drop               # columns no rule selects: drop (fail closed) or keep
    dp:                         # privacy budget of the ``noise`` operator
      dataset: cif.customers    # releases of this dataset share one budget
      budget: 3.0               # total epsilon; ``mask apply --ledger`` enforces it
    columns:                    # rules for every view, and declarations
      - name: id_no             # select by exact name ...
        pii: cn_resident_id     # ... and declare its PII type (overrides detection)
      - glob: "*_cvn*"          # or by glob, by detected ``pii`` type or by ``tag``
        tags: [c3]
      - name: amount            # declare a column's type (CSV is inferred otherwise)
        type: float64           # string int64 float64 bool date timestamp decimal(P,S)
      - tag: c3
        operator: drop
    views:
      display:
        columns:
          - pii: cn_mobile
            operator: mask
            options: {keep_first: 3, keep_last: 4}
      analytics:
        columns:
          - name: income        # DP noise: bounds and epsilon are required
            operator: noise
            options: {epsilon: 0.5, lower: 0, upper: 200000}
      partner_export:
        inherit: display        # start from another view
        row_filter: {column: consent, eq: "Y"}
        gate:
          k_anonymity: {quasi: [age, city, gender], k: 5, max_suppression: 0.02}
        columns:
          - name: card_no
            operator: tokenize
            on_invalid: fail    # fail (default; names the row) | redact | null
            context: shared.card_no

Which rule wins for a column in a view: rules of the view itself, then of the views it
inherits (nearest first), then the top-level ``columns`` rules that carry an operator;
within one level the most specific selector wins (``name`` > ``glob`` > ``pii`` >
``tag``), then the earliest rule. A column no rule selects follows ``default``.

:attr:`Policy.hash` is the SHA-256 of the canonical JSON of the merged policy (preset
included): it is stamped into every output and every ledger record.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from masking.coltypes import TYPE_NAMES, parse_type
from masking.conditions import Condition
from masking.operators import OPERATORS, Operator, OptionError, build_operator
from masking.presets import preset_text
from privacy.errors import PolicyError
from privacy.safe_yaml import compose_yaml, construct_yaml

__all__ = ["Policy", "PolicyModel", "DpModel", "Rule", "ResolvedView", "SPECIFICITY",
           "policy_schema"]

PII_NAMES = (
    "cn_resident_id", "cn_mobile", "bank_card", "cn_uscc", "cn_passport", "hk_macau_permit",
    "email", "ipv4", "ipv6", "cn_name", "cn_address", "date", "none",
)
SPECIFICITY = {"name": 0, "glob": 1, "pii": 2, "tag": 3}
OnInvalid = Literal["fail", "redact", "null"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class RuleModel(_Strict):
    """A column rule: one selector, an optional operator, and declarations."""

    name: str | None = None
    glob: str | None = None
    pii: str | None = Field(None, json_schema_extra={"enum": list(PII_NAMES)})
    tag: str | None = None
    tags: list[str] = Field(default_factory=list)
    operator: str | None = Field(None, json_schema_extra={"enum": list(OPERATORS)})
    options: dict[str, Any] = Field(default_factory=dict)
    on_invalid: OnInvalid = "fail"
    context: str | None = None
    required: bool = True
    type: str | None = Field(None, json_schema_extra={"examples": list(TYPE_NAMES)})

    @field_validator("type")
    @classmethod
    def _known_type(cls, v: str | None) -> str | None:
        if v is not None:
            parse_type(v)  # ValueError names the known types
        return v

    @field_validator("pii")
    @classmethod
    def _known_pii(cls, v: str | None) -> str | None:
        if v is not None and v not in PII_NAMES:
            raise ValueError(f"unknown PII type {v!r}; expected one of {', '.join(PII_NAMES)}")
        return v

    @field_validator("operator", "on_invalid", mode="before")
    @classmethod
    def _yaml_null(cls, v: Any) -> Any:
        # YAML reads a bare `null` as None: `operator: null` / `on_invalid: null` mean "null".
        return "null" if v is None else v

    @field_validator("operator")
    @classmethod
    def _known_operator(cls, v: str | None) -> str | None:
        if v is not None and v not in OPERATORS:
            raise ValueError(f"unknown operator {v!r}; expected one of {', '.join(OPERATORS)}")
        return v

    @model_validator(mode="after")
    def _one_selector(self) -> RuleModel:
        chosen = [k for k in ("name", "glob", "tag") if getattr(self, k) is not None]
        if len(chosen) > 1 or (not chosen and self.pii is None):
            raise ValueError("a rule selects columns with exactly one of name, glob, pii or tag")
        if self.tag is not None and self.pii is not None:
            raise ValueError("a rule selects columns with exactly one of name, glob, pii or tag")
        if self.options and self.operator is None:
            raise ValueError("'options' given without an 'operator'")
        if self.type is not None and self.name is None and self.glob is None:
            raise ValueError("'type' declares the type of columns selected by name or glob")
        return self

    @property
    def selector(self) -> tuple[str, str]:
        """``(kind, value)``: the selector used to match columns."""
        for kind in ("name", "glob", "tag"):
            value = getattr(self, kind)
            if value is not None:
                return kind, value
        assert self.pii is not None
        return "pii", self.pii

    def label(self) -> str:
        kind, value = self.selector
        return f"{kind}: {value}"


class KAnonymity(_Strict):
    """Every combination of ``quasi`` values is shared by at least ``k`` rows."""

    quasi: list[str] = Field(min_length=1)
    k: int = Field(5, ge=2)
    max_suppression: float = Field(0.0, ge=0.0, le=1.0)


class LDiversity(_Strict):
    """Every ``quasi`` class holds at least ``l`` distinct ``sensitive`` values."""

    quasi: list[str] = Field(min_length=1)
    sensitive: str
    l: int = Field(2, ge=2)  # noqa: E741
    max_suppression: float = Field(0.0, ge=0.0, le=1.0)


class TCloseness(_Strict):
    """Every class's ``sensitive`` distribution is within EMD ``t`` of the whole table's."""

    quasi: list[str] = Field(min_length=1)
    sensitive: str
    t: float = Field(0.2, gt=0.0, le=1.0)
    ordered: bool | None = None
    max_suppression: float = Field(0.0, ge=0.0, le=1.0)


class GateModel(_Strict):
    """Re-identification risk gates checked on a view's output."""

    k_anonymity: KAnonymity | None = None
    l_diversity: LDiversity | None = None
    t_closeness: TCloseness | None = None


class ViewModel(_Strict):
    """A named purpose: its own rules, default, row filter and risk gate."""

    description: str | None = None
    inherit: str | None = None
    default: Literal["drop", "keep"] | None = None
    columns: list[RuleModel] = Field(default_factory=list)
    row_filter: Condition | None = None
    gate: GateModel | None = None


class DpModel(_Strict):
    """Differential-privacy accounting for the ``noise`` operator.

    ``dataset`` names the data whose releases share one budget (default: the SHA-256 of
    the input file, which a changed file escapes: name it); ``budget`` is the total
    epsilon all releases of that dataset may spend, checked against the ledger.
    """

    dataset: str | None = Field(default=None, min_length=1, max_length=200)
    budget: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)


class PolicyModel(_Strict):
    """The document: ``version: 1`` plus columns, views and defaults."""

    version: Literal[1]
    name: str | None = None
    description: str | None = None
    extends: str | None = None
    context: str | None = None
    default: Literal["drop", "keep"] = "drop"
    columns: list[RuleModel] = Field(default_factory=list)
    views: dict[str, ViewModel] = Field(default_factory=dict)
    dp: DpModel | None = None


def policy_schema() -> dict[str, Any]:
    """The JSON Schema of the policy language."""
    schema = PolicyModel.model_json_schema(by_alias=True)
    schema["title"] = "covault masking policy"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


# ---- resolved rules ---------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A validated rule with its operator built and its source location."""

    model: RuleModel
    operator: Operator | None
    where: str
    file: str | None
    line: int | None

    @property
    def selector(self) -> tuple[str, str]:
        return self.model.selector

    def matches(self, column: str, pii: str, tags: frozenset[str]) -> bool:
        """Whether the rule selects ``column`` (of detected/declared ``pii``, ``tags``)."""
        kind, value = self.selector
        if kind == "name":
            return column == value
        if kind == "glob":
            return fnmatch.fnmatchcase(column.lower(), value.lower())
        if kind == "pii":
            return pii == value
        return value.lower() in tags

    def error(self, message: str, *, row: int | None = None) -> PolicyError:
        return PolicyError(f"rule '{self.model.label()}': {message}", file=self.file,
                           line=self.line, row=row)


@dataclass
class ResolvedView:
    """A view with its inheritance chain flattened: rules by level, default, filter, gate."""

    name: str
    levels: list[list[Rule]]
    default: str
    row_filter: Condition | None
    gate: GateModel | None

    def rule_for(self, column: str, pii: str, tags: frozenset[str]) -> Rule | None:
        """The winning rule for ``column`` (see the module docstring), or ``None``."""
        for rules in self.levels:
            hits = [r for r in rules if r.operator is not None and r.matches(column, pii, tags)]
            if hits:
                return min(enumerate(hits), key=lambda p: (SPECIFICITY[p[1].selector[0]], p[0]))[1]
        return None


@dataclass
class _Doc:
    model: PolicyModel
    file: str | None
    lines: dict[tuple[Any, ...], int]
    columns: list[Rule] = field(default_factory=list)
    views: dict[str, list[Rule]] = field(default_factory=dict)


class Policy:
    """A loaded, validated and merged masking policy.

    Build with :meth:`load` (a file), :meth:`from_yaml` (text) or :meth:`preset`.
    """

    def __init__(self, doc: _Doc, base: Policy | None = None) -> None:
        self._doc = doc
        self.base = base
        self.model = doc.model
        self.source = doc.file
        self._check_views()

    # -- construction
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Policy:
        """Read and validate a policy file."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PolicyError("no such policy file", file=str(p)) from None
        except UnicodeDecodeError:
            raise PolicyError("policy file is not UTF-8 text", file=str(p)) from None
        return cls.from_yaml(text, source=str(p))

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<policy>") -> Policy:
        """Parse and validate policy text; ``source`` names it in errors."""
        data, lines = _compose(text, source)
        return cls.from_data(data, source=source, lines=lines)

    @classmethod
    def from_data(
        cls, data: Any, *, source: str | None = None,
        lines: dict[tuple[Any, ...], int] | None = None,
    ) -> Policy:
        """Validate an already-parsed document (a mapping)."""
        lines = lines or {}
        if not isinstance(data, Mapping):
            raise PolicyError("a policy is a YAML mapping with 'version: 1'", file=source,
                              line=lines.get((), 1) if source else None)
        try:
            model = PolicyModel.model_validate(data)
        except ValidationError as exc:
            raise _validation_error(exc, source, lines) from None
        doc = _Doc(model, source, lines)
        doc.columns = [_rule(r, ("columns", i), doc) for i, r in enumerate(model.columns)]
        doc.views = {
            name: [_rule(r, ("views", name, "columns", i), doc, in_view=True)
                   for i, r in enumerate(v.columns)]
            for name, v in model.views.items()
        }
        base = None
        if model.extends is not None:
            try:
                base = cls.preset(model.extends)
            except PolicyError as exc:
                raise PolicyError(str(exc.detail), file=source,
                                  line=lines.get(("extends",))) from None
        return cls(doc, base)

    @classmethod
    def preset(cls, name: str) -> Policy:
        """A named preset (``jrt0171``) as a policy."""
        return cls.from_yaml(preset_text(name), source=f"preset:{name}")

    # -- merged facts
    @property
    def default(self) -> str:
        return self.model.default

    @property
    def context(self) -> str | None:
        if self.model.context is not None or self.base is None:
            return self.model.context
        return self.base.context

    @property
    def dp(self) -> DpModel:
        """Differential-privacy accounting (dataset id, budget); ours, else the preset's."""
        if self.model.dp is not None or self.base is None:
            return self.model.dp or DpModel()
        return self.base.dp

    @property
    def view_names(self) -> list[str]:
        names = list(self.model.views)
        if self.base is not None:
            names += [n for n in self.base.view_names if n not in names]
        return names

    def columns_rules(self) -> list[Rule]:
        """Top-level rules, ours first, then the preset's."""
        return self._doc.columns + (self.base.columns_rules() if self.base else [])

    def _view_parts(self, name: str) -> tuple[list[Rule], list[ViewModel]]:
        rules = list(self._doc.views.get(name, []))
        models = [self.model.views[name]] if name in self.model.views else []
        if self.base is not None and name in self.base.view_names:
            more_rules, more_models = self.base._view_parts(name)
            rules += more_rules
            models += more_models
        return rules, models

    def _inherit(self, name: str) -> str | None:
        for m in self._view_parts(name)[1]:
            if m.inherit is not None:
                return m.inherit
        return None

    def _check_views(self) -> None:
        for name in self.view_names:
            seen = [name]
            parent = self._inherit(name)
            while parent is not None:
                where = self._doc.lines.get(("views", name, "inherit"))
                if parent not in self.view_names:
                    raise PolicyError(
                        f"view {name!r} inherits {parent!r}, which is not a view of this policy "
                        f"(views: {', '.join(self.view_names)})", file=self.source, line=where)
                if parent in seen:
                    raise PolicyError(f"views inherit in a cycle: {' -> '.join(seen + [parent])}",
                                      file=self.source, line=where)
                seen.append(parent)
                parent = self._inherit(parent)

    def view(self, name: str | None) -> ResolvedView:
        """The view ``name`` flattened; ``None`` means the top-level rules only (allowed
        when the policy defines no views)."""
        top = [r for r in self.columns_rules() if r.operator is not None]
        if name is None:
            if self.view_names:
                raise PolicyError(f"choose a view: {', '.join(self.view_names)}",
                                  file=self.source)
            return ResolvedView("(default)", [top], self.default, None, None)
        if name not in self.view_names:
            raise PolicyError(
                f"no view {name!r} in this policy (views: {', '.join(self.view_names) or 'none'})",
                file=self.source)
        levels: list[list[Rule]] = []
        default, row_filter, gate = None, None, None
        current: str | None = name
        while current is not None:
            rules, models = self._view_parts(current)
            levels.append(rules)
            for m in models:
                default = default or m.default
                row_filter = row_filter or m.row_filter
                gate = gate or m.gate
            current = self._inherit(current)
        levels.append(top)
        return ResolvedView(name, levels, default or self.default, row_filter, gate)

    def declarations(self) -> list[Rule]:
        """Top-level rules that declare a PII type or tags for named/globbed columns."""
        return [r for r in self.columns_rules()
                if r.selector[0] in ("name", "glob")
                and (r.model.pii or r.model.tags or r.model.type)]

    def column_types(self, names: Iterable[str]) -> dict[str, tuple[Any, Rule]]:
        """Column -> (declared Arrow type, declaring rule) for the ``names`` a top-level
        rule gives a ``type``: a ``name`` rule first, else the earliest ``glob`` rule."""
        typed = [r for r in self.declarations() if r.model.type is not None]
        typed.sort(key=lambda r: 0 if r.selector[0] == "name" else 1)
        out: dict[str, tuple[Any, Rule]] = {}
        for name in names:
            rule = next((r for r in typed if r.matches(name, "", frozenset())), None)
            if rule is not None:
                assert rule.model.type is not None
                out[name] = (parse_type(rule.model.type), rule)
        return out

    def uses_detection(self, view: str | None) -> bool:
        """Whether resolving ``view`` needs PII detection (a ``pii`` or ``tag`` selector)."""
        rv = self.view(view)
        return any(r.selector[0] in ("pii", "tag") for rules in rv.levels for r in rules)

    # -- identity and text
    def canonical(self) -> dict[str, Any]:
        """The merged policy as plain data (what :attr:`hash` covers)."""
        own = self.model.model_dump(by_alias=True, exclude_none=True, mode="json")
        own.pop("extends", None)
        if self.base is not None:
            own["extends"] = self.base.canonical()
        return own

    @property
    def hash(self) -> str:
        """SHA-256 (hex) of the canonical JSON of the merged policy."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def to_yaml(self) -> str:
        """The policy document (without the preset expanded) as YAML."""
        data = self.model.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True,
                                     mode="json")
        data = {"version": 1, **data}
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


# ---- YAML with line numbers -------------------------------------------------------------


def _compose(text: str, source: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    node = compose_yaml(text, file=source, error=PolicyError)
    if node is None:
        raise PolicyError("the policy is empty (expected 'version: 1' and rules)", file=source)
    lines: dict[tuple[Any, ...], int] = {}
    _walk(node, (), lines, source)
    return construct_yaml(node, file=source, error=PolicyError), lines


def _walk(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int],
          source: str) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                raise PolicyError(f"duplicate key {key!r}", file=source,
                                  line=key_node.start_mark.line + 1)
            seen.add(key)
            lines[path + (key,)] = key_node.start_mark.line + 1
            _walk(value_node, path + (key,), lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            _walk(item, path + (i,), lines, source)


def _line_of(loc: tuple[Any, ...], lines: Mapping[tuple[Any, ...], int]) -> int | None:
    keep = tuple(p for p in loc if isinstance(p, (int, str)))
    for end in range(len(keep), -1, -1):
        if keep[:end] in lines:
            return lines[keep[:end]]
    return None


def _path_text(loc: tuple[Any, ...]) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _validation_error(exc: ValidationError, source: str | None,
                      lines: Mapping[tuple[Any, ...], int]) -> PolicyError:
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = f"unknown key {loc[-1]!r}"
        loc_text = _path_text(loc[:-1])
    else:
        loc_text = _path_text(loc)
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    where = f"{loc_text}: " if loc_text else ""
    return PolicyError(f"{where}{msg}{more}", file=source, line=_line_of(loc, lines))


def _rule(model: RuleModel, path: tuple[Any, ...], doc: _Doc, in_view: bool = False) -> Rule:
    line = doc.lines.get(path)
    where = f"{doc.file}:{line}" if doc.file and line else (doc.file or "<policy>")
    if in_view and model.operator is None:
        raise PolicyError(f"rule '{model.label()}': a view rule needs an operator (for the "
                          "null operator write operator: \"null\" in quotes)",
                          file=doc.file, line=line)
    if in_view and (model.tags or model.type is not None
                    or (model.pii is not None and model.selector[0] != "pii")):
        raise PolicyError(f"rule '{model.label()}': declarations (pii next to name/glob, tags, "
                          "type) belong in the top-level columns", file=doc.file, line=line)
    op = None
    if model.operator is not None:
        try:
            op = build_operator(model.operator, model.options)
        except OptionError as exc:
            sub = ("options", exc.option) if exc.option in model.options else ("operator",)
            raise PolicyError(f"rule '{model.label()}': {exc.detail}", file=doc.file,
                              line=doc.lines.get(path + sub, line)) from None
    return Rule(model, op, where, doc.file, line)
