"""What changes between two policies: a structural diff of what each one does.

Each policy is reduced to plain data that holds everything that decides an output
(:func:`policy_facts`, :func:`view_facts`), and the two are compared key by key down to
the leaves, so ``gate.k_anonymity.k: 5 -> 2`` is reported as such. The facts come from
the validated models (``model_dump``), so an option or setting added to the policy
language later is compared without a change here:

* policy-wide: every setting of the document (``context``, ``default``, ``dp``,
  ``extends``, ...) and every top-level ``columns`` rule (declarations such as ``pii``,
  ``tags``, ``type``; operators that apply to every view), keyed by selector;
* per view: its settings as resolved along ``inherit`` (``default``, ``row_filter``,
  ``gate``, ...), the chain it inherits, and the rule that wins for each selector across
  the view and the views it inherits, with the view it comes from.

Operator options are compared as the built operator holds them (``options()``), so
writing a default out, or ``"3"`` for ``3``, is no change; the order of ``glob`` and
``tag`` rules (which decides between two that match one column) is compared too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from masking.policy import Policy, Rule, ViewModel

__all__ = ["Change", "diff_policies", "policy_facts", "view_facts", "render"]

_MISSING: Any = object()
#: The ``view`` of a change that concerns the whole policy.
POLICY = None
TOP = "(columns)"


@dataclass(frozen=True)
class Change:
    """One difference: in ``view`` (``None``: policy-wide), at ``target`` (a selector
    such as ``name: card_no``, a setting such as ``gate``, or ``column: x``), below it at
    ``path`` (dotted; ``""`` for the whole target)."""

    view: str | None
    target: str
    path: str
    before: Any
    after: Any

    @property
    def kind(self) -> str:
        """``added``, ``removed`` or ``changed``."""
        if self.before is _MISSING:
            return "added"
        if self.after is _MISSING:
            return "removed"
        return "changed"

    @property
    def where(self) -> str:
        return f"{self.target} > {self.path}" if self.path else self.target

    def as_dict(self) -> dict[str, Any]:
        return {"view": self.view, "target": self.target, "path": self.path,
                "change": self.kind,
                "before": None if self.before is _MISSING else self.before,
                "after": None if self.after is _MISSING else self.after}


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def _rule_record(rule: Rule) -> dict[str, Any]:
    kind = rule.selector[0]
    out: dict[str, Any] = rule.model.model_dump(mode="json", by_alias=True, exclude={kind},
                                                exclude_defaults=True)
    out.pop("options", None)
    if rule.operator is not None:
        options = _plain(rule.operator.options())
        if options:
            out["options"] = options
    return out


def _keyed(rules: list[Rule], *, number: bool) -> dict[str, Rule]:
    """Label -> rule, in order; a repeated label is numbered (``number``) or skipped (the
    first one wins for every column it selects)."""
    out: dict[str, Rule] = {}
    for r in rules:
        label = r.model.label()
        if label in out:
            if not number:
                continue
            i = 2
            while f"{label} ({i})" in out:
                i += 1
            label = f"{label} ({i})"
        out[label] = r
    return out


def _order(labels: list[str]) -> list[str]:
    return [x for x in labels if x.split(":", 1)[0] in ("glob", "tag")]


def policy_facts(policy: Policy) -> dict[str, Any]:
    """Policy-wide settings and top-level rules as plain data."""
    settings: dict[str, Any] = policy.model.model_dump(
        mode="json", by_alias=True, exclude={"columns", "views", "extends"})
    settings["context"] = policy.context
    settings["dp"] = policy.dp.model_dump(mode="json", by_alias=True)
    settings["extends"] = policy.model.extends
    rules = _keyed(policy.columns_rules(), number=True)
    return {"settings": settings,
            "columns": {label: _rule_record(r) for label, r in rules.items()},
            "order": _order(list(rules))}


def _chain(policy: Policy, view: str) -> list[str]:
    chain = [view]
    parent = policy._inherit(view)
    while parent is not None and parent not in chain:
        chain.append(parent)
        parent = policy._inherit(parent)
    return chain


def view_facts(policy: Policy, view: str) -> dict[str, Any] | None:
    """The view as resolved: settings, inherited chain, winning rule per selector
    (top-level rules are in :func:`policy_facts`); ``None`` when there is no such view."""
    if view not in policy.view_names:
        return None
    chain = _chain(policy, view)
    settings: dict[str, Any] = {}
    fields = [f for f in ViewModel.model_fields if f not in ("columns", "inherit")]
    for name in chain:
        for model in policy._view_parts(name)[1]:
            dumped = model.model_dump(mode="json", by_alias=True, exclude_none=True)
            for f in fields:
                key = ViewModel.model_fields[f].alias or f
                if key in dumped and key not in settings:
                    settings[key] = dumped[key]
    rules: dict[str, dict[str, Any]] = {}
    order: dict[str, list[str]] = {}
    for name in chain:
        keyed = _keyed(policy._view_parts(name)[0], number=False)
        order[name] = _order(list(keyed))
        for label, r in keyed.items():
            if label not in rules:
                rules[label] = {**_rule_record(r), "from": name}
    return {"settings": settings, "inherits": chain[1:], "rules": rules, "order": order}


def _walk(view: str | None, target: str, path: str, a: Any, b: Any) -> list[Change]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[Change] = []
        for key in dict.fromkeys([*a, *b]):
            sub = f"{path}.{key}" if path else str(key)
            out += _walk(view, target, sub, a.get(key, _MISSING), b.get(key, _MISSING))
        return out
    if a == b:
        return []
    return [Change(view, target, path, a, b)]


def _section(view: str | None, a: dict[str, Any], b: dict[str, Any]) -> list[Change]:
    """Each key of ``a``/``b`` is a target; its value is compared down to the leaves
    (a target added or removed as a whole is one change)."""
    out: list[Change] = []
    for key in dict.fromkeys([*a, *b]):
        x, y = a.get(key, _MISSING), b.get(key, _MISSING)
        if x is _MISSING or y is _MISSING:
            out.append(Change(view, key, "", x, y))
        else:
            out += _walk(view, key, "", x, y)
    return out


def _order_change(view: str | None, level: str, a: list[str], b: list[str]) -> list[Change]:
    common = set(a) & set(b)
    x, y = [v for v in a if v in common], [v for v in b if v in common]
    return [] if x == y else [Change(view, "rule order", level, x, y)]


def _settings(view: str | None, a: dict[str, Any], b: dict[str, Any]) -> list[Change]:
    out: list[Change] = []
    for key in dict.fromkeys([*a, *b]):
        out += _walk(view, key, "", a.get(key, _MISSING), b.get(key, _MISSING))
    return out


def diff_policies(before: Policy, after: Policy, views: list[str] | None = None, *,
                  columns: dict[str | None, tuple[dict[str, Any], dict[str, Any]]]
                  | None = None) -> list[Change]:
    """Every difference between ``before`` and ``after`` (policy-wide first, then per
    view, in the order of ``views``; default every view of either policy).

    ``columns`` (view -> per-column plans of both policies, from
    :func:`masking.engine.MaskingEngine.plan` on a sample) replaces the per-selector rules
    of those views by what each input column gets.
    """
    pa_, pb = policy_facts(before), policy_facts(after)
    out = _settings(POLICY, pa_["settings"], pb["settings"])
    out += _section(POLICY, {f"{TOP} {k}": v for k, v in pa_["columns"].items()},
                    {f"{TOP} {k}": v for k, v in pb["columns"].items()})
    out += _order_change(POLICY, TOP, pa_["order"], pb["order"])
    names = views if views else list(dict.fromkeys(before.view_names + after.view_names))
    for name in names:
        a, b = view_facts(before, name), view_facts(after, name)
        if a is None or b is None:
            if a != b:
                out.append(Change(name, "view", "", _whole(a), _whole(b)))
            continue
        out += _settings(name, a["settings"], b["settings"])
        out += _walk(name, "inherits", "", a["inherits"], b["inherits"])
        if columns is not None and name in columns:
            ca, cb = columns[name]
            out += _section(name, {f"column: {k}": v for k, v in ca.items()},
                            {f"column: {k}": v for k, v in cb.items()})
            continue
        out += _section(name, a["rules"], b["rules"])
        for level in dict.fromkeys([*a["order"], *b["order"]]):
            out += _order_change(name, level, a["order"].get(level, []),
                                 b["order"].get(level, []))
    if columns is not None and None in columns:  # a policy without views
        ca, cb = columns[None]
        out += _section("(default)", {f"column: {k}": v for k, v in ca.items()},
                        {f"column: {k}": v for k, v in cb.items()})
    return out


def _whole(facts: dict[str, Any] | None) -> Any:
    """A view added or removed, as one value."""
    if facts is None:
        return _MISSING
    return {**facts["settings"], "inherits": facts["inherits"], "rules": facts["rules"]}


def render(value: Any) -> str:
    """A value for people: rules as ``operator(options) key=value``, the rest compact."""
    if value is _MISSING or value is None:
        return "-"
    if isinstance(value, dict):
        if "operator" in value:
            opts = ", ".join(f"{k}={render(v)}" for k, v in (value.get("options") or {}).items())
            rest = [f"{k}={render(v)}" for k, v in value.items()
                    if k not in ("operator", "options")]
            return " ".join([f"{value['operator']}({opts})" if opts else str(value["operator"]),
                             *rest])
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
