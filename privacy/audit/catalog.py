"""Schema catalogue: which columns hold personal financial information.

A catalogue maps ``table.column`` to its JR/T 0171-2020 class (``C1``, ``C2``, ``C3`` —
the same tags masking policies use), free-form tags (``cn_resident_id``...) and whether
the column is a **customer key** (a value that identifies one customer: resident id,
customer number, card number). SQL analysis uses it to say which sensitive columns a
statement touches and which literal customer identifiers its predicates name.

File format (YAML or JSON)::

    version: 1
    columns:
      customers.id_no:   {class: C3, tags: [cn_resident_id], customer_key: true}
      customers.cust_id: {class: C2, customer_key: true}
      customers.name:    {class: C3, tags: [cn_name]}
      customers.created: {}              # known, not sensitive
      crm.accounts.balance: {class: C2}  # schema-qualified table

Names are case-insensitive (stored lower-case). A lookup with an unqualified table
(``customers``) matches a schema-qualified entry when only one schema has that table,
and the reverse (``public.customers`` finds ``customers``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from privacy.errors import ConfigError

__all__ = ["Catalog", "ColumnInfo", "PFI_CLASSES"]

PFI_CLASSES: tuple[str, ...] = ("C1", "C2", "C3")
_COLUMN_KEYS = frozenset({"class", "tags", "customer_key", "description"})
_TOP_KEYS = frozenset({"version", "columns"})


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    """One catalogued column.

    Parameters
    ----------
    table, column:
        Lower-case names; ``table`` may be schema-qualified (``crm.accounts``).
    pfi_class:
        ``"C1"``/``"C2"``/``"C3"``, or ``None`` for a known non-sensitive column.
    tags:
        Data-type tags, e.g. ``("cn_resident_id",)``.
    customer_key:
        Whether a value of this column identifies a single customer.
    """

    table: str
    column: str
    pfi_class: str | None = None
    tags: tuple[str, ...] = ()
    customer_key: bool = False

    @property
    def qualified(self) -> str:
        """``table.column``."""
        return f"{self.table}.{self.column}"

    @property
    def sensitive(self) -> bool:
        """True when the column carries a JR/T class."""
        return self.pfi_class is not None


class Catalog:
    """An immutable set of :class:`ColumnInfo` with name lookups.

    Parameters
    ----------
    columns:
        The catalogued columns; a duplicate ``table.column`` raises ConfigError.
    """

    def __init__(self, columns: Iterable[ColumnInfo]) -> None:
        self._cols: dict[tuple[str, str], ColumnInfo] = {}
        for col in columns:
            if col.pfi_class is not None and col.pfi_class not in PFI_CLASSES:
                raise ConfigError(f"column {col.qualified!r}: unknown class {col.pfi_class!r}")
            key = (col.table.lower(), col.column.lower())
            if key in self._cols:
                raise ConfigError(f"column {col.qualified!r} is catalogued twice")
            self._cols[key] = col
        self._by_table: dict[str, dict[str, ColumnInfo]] = {}
        for (table, column), col in self._cols.items():
            self._by_table.setdefault(table, {})[column] = col
        short: dict[str, list[str]] = {}
        for table in self._by_table:
            short.setdefault(table.rsplit(".", 1)[-1], []).append(table)
        self._short = {k: v[0] for k, v in short.items() if len(v) == 1}
        canon = json.dumps(
            sorted([c.table, c.column, c.pfi_class, list(c.tags), c.customer_key]
                   for c in self._cols.values()), separators=(",", ":"))
        self.digest: str = hashlib.sha256(canon.encode()).hexdigest()[:16]
        """Content digest; analyses cached under one catalogue are not reused under another."""

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Catalog:
        """Load a YAML or JSON catalogue file; errors carry ``file:line``."""
        from privacy.safe_yaml import compose_yaml

        name = os.fspath(path)
        try:
            with open(name, encoding="utf-8") as fh:
                root = compose_yaml(fh, file=name)
        except OSError as exc:
            raise ConfigError(f"cannot read catalogue: {exc.strerror}", file=name) from None
        if root is None:
            raise ConfigError("empty catalogue", file=name)
        return cls(_columns_from_node(root, name))

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Catalog:
        """Build from an already-parsed mapping of the file format (no line numbers)."""
        from privacy.safe_yaml import compose_yaml

        return cls(_columns_from_node(compose_yaml(json.dumps(data), file="<mapping>"),
                                      "<mapping>"))

    # ------------------------------------------------------------------ lookups
    def _table(self, table: str) -> str | None:
        t = table.lower()
        if t in self._by_table:
            return t
        short = t.rsplit(".", 1)[-1]
        if short in self._by_table:
            return short
        return self._short.get(short)

    def column(self, table: str, column: str) -> ColumnInfo | None:
        """The catalogue entry for ``table.column``, or None."""
        t = self._table(table)
        return None if t is None else self._by_table[t].get(column.lower())

    def column_class(self, table: str, column: str) -> str | None:
        """The JR/T class of ``table.column`` (``None`` if not sensitive or unknown)."""
        col = self.column(table, column)
        return None if col is None else col.pfi_class

    def has_table(self, table: str) -> bool:
        """Whether any column of ``table`` is catalogued."""
        return self._table(table) is not None

    def has_column(self, table: str, column: str) -> bool:
        """Whether ``table.column`` is catalogued (use it to validate rules)."""
        return self.column(table, column) is not None

    def columns_of(self, table: str) -> tuple[ColumnInfo, ...]:
        """All catalogued columns of ``table`` (what ``SELECT *`` reads)."""
        t = self._table(table)
        return () if t is None else tuple(self._by_table[t].values())

    def is_customer_key(self, table: str, column: str) -> bool:
        """Whether ``table.column`` identifies a customer."""
        col = self.column(table, column)
        return col is not None and col.customer_key

    def sensitive_columns(self) -> tuple[ColumnInfo, ...]:
        """Every column with a JR/T class."""
        return tuple(c for c in self._cols.values() if c.sensitive)

    def customer_key_columns(self) -> tuple[ColumnInfo, ...]:
        """Every customer-key column."""
        return tuple(c for c in self._cols.values() if c.customer_key)

    def __len__(self) -> int:
        return len(self._cols)

    def __iter__(self) -> Any:
        return iter(self._cols.values())

    def __repr__(self) -> str:
        return f"Catalog({len(self)} columns, digest={self.digest})"


def _columns_from_node(root: Any, file: str) -> list[ColumnInfo]:
    from yaml import MappingNode, ScalarNode, SequenceNode

    def err(node: Any, msg: str) -> ConfigError:
        return ConfigError(msg, file=file, line=node.start_mark.line + 1)

    def mapping(node: Any, what: str) -> list[tuple[str, Any, Any]]:
        if not isinstance(node, MappingNode):
            raise err(node, f"{what}: expected a mapping")
        out: list[tuple[str, Any, Any]] = []
        seen: set[str] = set()
        for knode, vnode in node.value:
            if not isinstance(knode, ScalarNode):
                raise err(knode, f"{what}: keys must be strings")
            if knode.value in seen:
                raise err(knode, f"{what}: duplicate key {knode.value!r}")
            seen.add(knode.value)
            out.append((knode.value, knode, vnode))
        return out

    columns_node = None
    for key, knode, vnode in mapping(root, "catalogue"):
        if key not in _TOP_KEYS:
            raise err(knode, f"unknown key {key!r} (expected one of: columns, version)")
        if key == "version" and vnode.value not in ("1",):
            raise err(vnode, f"unsupported catalogue version {vnode.value!r} (expected 1)")
        if key == "columns":
            columns_node = vnode
    if columns_node is None:
        raise err(root, "catalogue has no 'columns' mapping")
    result: list[ColumnInfo] = []
    for name, knode, vnode in mapping(columns_node, "columns"):
        table, dot, column = name.strip().lower().rpartition(".")
        if not dot or not table or not column:
            raise err(knode, f"column {name!r}: expected 'table.column'")
        attrs: dict[str, Any] = {}
        if not (isinstance(vnode, ScalarNode) and vnode.value in ("", "null", "~")):
            for key, akey, aval in mapping(vnode, f"column {name!r}"):
                if key not in _COLUMN_KEYS:
                    raise err(akey, f"column {name!r}: unknown key {key!r} "
                                    f"(expected one of: {', '.join(sorted(_COLUMN_KEYS))})")
                attrs[key] = aval
        pfi = attrs.get("class")
        pfi_class = None
        if pfi is not None:
            pfi_class = str(pfi.value).upper() if isinstance(pfi, ScalarNode) else None
            if pfi_class not in PFI_CLASSES:
                raise err(pfi, f"column {name!r}: unknown class {getattr(pfi, 'value', pfi)!r} "
                               "(expected C1, C2 or C3)")
        tags: tuple[str, ...] = ()
        if "tags" in attrs:
            tnode = attrs["tags"]
            if not isinstance(tnode, SequenceNode) or not all(
                    isinstance(t, ScalarNode) and t.value for t in tnode.value):
                raise err(tnode, f"column {name!r}: 'tags' must be a list of strings")
            tags = tuple(t.value for t in tnode.value)
        key_flag = False
        if "customer_key" in attrs:
            knode2 = attrs["customer_key"]
            val = str(getattr(knode2, "value", "")).lower()
            if val not in ("true", "false"):
                raise err(knode2, f"column {name!r}: 'customer_key' must be true or false")
            key_flag = val == "true"
        result.append(ColumnInfo(table, column, pfi_class, tags, key_flag))
    return result
