"""Allow, deny and watch lists with owner, reason and expiry.

File format (YAML)::

    version: 1
    lists:
      - name: vip-customers
        type: watch               # allow | deny | watch
        kind: customer            # customer | actor | source_ip | client | fingerprint
        owner: private-banking-compliance
        reason: VIP and public-figure customers
        expires: 2026-12-31
        hashed: true              # values are Tokenizer tokens of the ids
        identifier: mobile        # customer lists: how ids are normalised (default auto)
        values: ["tok:...", ...]
      - name: vip-relationship-managers
        type: allow
        kind: actor
        scenarios: [WATCHLIST]    # what the entry exempts (allow lists only)
        owner: head-of-private-banking
        reason: they serve these customers
        expires: 2026-06-30
        values: [rm_001, rm_002]

Watch lists of customers should be stored as keyed hashes: ``hashed: true`` values are
tokens from :class:`privacy.fields.Tokenizer` under context :data:`WATCH_CONTEXT`, made
with :func:`hash_values`; matching needs the same keyset.

Customer ids are normalised before they are compared or tokenised
(:mod:`privacy.normalize`), on the list and in the query alike, so a list holding
``187-8161-8495`` matches a query for ``+86 187 8161 8495`` or ``18781618495``, and
``...002x`` matches ``...002X``. A customer list's ``identifier`` picks the kind
(``mobile``, ``resident_id``, ``card``, ``email``, ``uscc``, ``generic``), ``auto``
(the default: per value, only values that unmistakably look like one kind; customer
numbers such as ``10000042`` stay as written) or ``none`` (compared as written). A
hashed list must have been made by :func:`hash_values` with the same ``identifier``.
Other kinds (actors, clients, fingerprints) are compared as written. A ``source_ip``
list holds IP addresses and networks (``10.1.0.0/16``, host bits ignored as in the rules'
``workstation_networks``); an address on a list matches the same address however it is
written (``2001:DB8::1`` and ``2001:db8::1``), a network matches every address in it, and
anything that is not an address or a network is refused at load, naming its line.

Expired lists are never used silently: :meth:`ListSet.warnings` names them, and a match
against an expired list is returned as such (the detector turns it into a reason or a
low-score signal instead of applying the entry).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from privacy.audit.ruledoc import _compose, _Doc, _read_text, _version
from privacy.audit.rules import SCENARIOS, _in_networks
from privacy.errors import ConfigError
from privacy.normalize import IDENTIFIER_CHOICES, canonical

if TYPE_CHECKING:
    from privacy.fields import Tokenizer

__all__ = ["ListSet", "ListEntry", "Match", "WATCH_CONTEXT", "hash_values", "LIST_TYPES",
           "LIST_KINDS"]

WATCH_CONTEXT = "covault.audit.watch.customer"
LIST_TYPES = ("allow", "deny", "watch")
LIST_KINDS = ("customer", "actor", "source_ip", "client", "fingerprint")
_KEYS = {"name", "type", "kind", "owner", "reason", "expires", "hashed", "values", "scenarios",
         "identifier"}


@dataclass(frozen=True)
class ListEntry:
    """One named list (``values`` of a plain list are stored normalised by
    ``identifier``)."""

    name: str
    type: str
    kind: str
    owner: str
    reason: str
    expires: date
    values: frozenset[str]
    hashed: bool = False
    scenarios: frozenset[str] = frozenset()
    identifier: str = "none"
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    def expired_at(self, when: datetime) -> bool:
        """Whether the list has expired at ``when`` (valid through its expiry date, UTC)."""
        return when.astimezone(timezone.utc).date() > self.expires


@dataclass(frozen=True)
class Match:
    """A value found on a list; ``expired`` says the list was not in force."""

    entry: ListEntry
    value: str
    expired: bool


def hash_values(tokenizer: Tokenizer, values: Iterable[str], *,
                identifier: str = "auto") -> list[str]:
    """Tokens of ``values`` for a ``hashed: true`` customer list, each normalised as
    ``identifier`` first (give the list the same ``identifier``; default ``auto``)."""
    return [tokenizer.encrypt(canonical(str(v), identifier), WATCH_CONTEXT) for v in values]


class ListSet:
    """The loaded lists, indexed for O(1) lookups.

    Parameters
    ----------
    entries:
        The lists.
    tokenizer:
        Needed when any list is ``hashed``; customer ids are tokenised (cached) to
        compare them with the stored tokens.

    Warnings
    --------
    A hashed list is only as private as its keyset: keep the keyset away from whoever
    can read the list file.
    """

    def __init__(self, entries: Iterable[ListEntry] = (), *,
                 tokenizer: Tokenizer | None = None) -> None:
        self.entries = tuple(entries)
        self._index: dict[tuple[str, str, str], list[ListEntry]] = {}
        # kind -> the (identifier, hashed) forms its lists store values in
        self._forms: dict[str, list[tuple[str, bool]]] = {}
        # source_ip lists holding networks
        self._networks: list[ListEntry] = []
        for e in self.entries:
            if e.hashed and tokenizer is None:
                raise ConfigError(f"list {e.name!r} is hashed: a keyset (Tokenizer) is "
                                  "needed to match it")
            for v in e.values:
                self._index.setdefault((e.kind, e.identifier, v), []).append(e)
            if e.networks:
                self._networks.append(e)
            forms = self._forms.setdefault(e.kind, [])
            if (e.identifier, e.hashed) not in forms:
                forms.append((e.identifier, e.hashed))
        self._hashed_kinds = {e.kind for e in self.entries if e.hashed}
        self._plain_kinds = {e.kind for e in self.entries if not e.hashed}
        self._typed_kinds = {(e.type, e.kind) for e in self.entries}
        self._tok = tokenizer
        self._token = lru_cache(maxsize=65536)(self._make_token)
        self._canonical = lru_cache(maxsize=65536)(canonical)
        self._network_hits = lru_cache(maxsize=65536)(self._match_networks)
        self._hits = lru_cache(maxsize=65536)(self._find)
        self.version = ",".join(f"{e.name}@{e.expires}" for e in self.entries) or "none"

    def _match_networks(self, ip: str) -> list[ListEntry]:
        return [e for e in self._networks if _in_networks(ip, e.networks)]

    def _make_token(self, value: str) -> str:
        assert self._tok is not None
        return self._tok.encrypt(value, WATCH_CONTEXT)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *,
             tokenizer: Tokenizer | None = None) -> ListSet:
        """Load a lists file; errors name ``file:line``."""
        name = os.fspath(path)
        data, doc = _compose(_read_text(name, "lists"), name)
        return cls(_entries(data, doc), tokenizer=tokenizer)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def has_kind(self, kind: str, list_type: str | None = None) -> bool:
        """Whether any list (of ``list_type``, when given) holds values of ``kind``."""
        if list_type is not None:
            return (list_type, kind) in self._typed_kinds
        return kind in self._hashed_kinds or kind in self._plain_kinds

    def lookup(self, kind: str, value: str | None, when: datetime,
               list_type: str | None = None) -> list[Match]:
        """Lists holding ``value`` (normalised as each list's ``identifier``, then
        tokenised for hashed lists)."""
        if value is None:
            return []
        hits = self._hits(kind, value)
        if not hits:
            return []
        return [Match(e, value, e.expired_at(when)) for e in hits
                if list_type is None or e.type == list_type]

    def _find(self, kind: str, value: str) -> tuple[ListEntry, ...]:
        """Every entry holding ``value`` of ``kind``, whatever its type and expiry (the
        entries never change: :meth:`lookup` memoises this)."""
        hits: list[ListEntry] = []
        if kind == "source_ip":
            value = _ip_text(value)
            hits += self._network_hits(value)
        for identifier, hashed in self._forms.get(kind, ()):
            key = value if identifier == "none" else self._canonical(value, identifier)
            if hashed:
                key = self._token(key)
            found = self._index.get((kind, identifier, key))
            if found is not None:
                hits += [e for e in found if e.hashed == hashed]
        return tuple(hits)

    def allows(self, kind: str, value: str | None, code: str,
               when: datetime) -> tuple[ListEntry | None, ListEntry | None]:
        """(an allow list in force exempting ``value`` from ``code``, an expired one)."""
        valid = expired = None
        for m in self.lookup(kind, value, when, "allow"):
            if m.entry.scenarios and code not in m.entry.scenarios:
                continue
            if m.expired:
                expired = m.entry
            else:
                valid = m.entry
        return valid, expired

    def warnings(self, now: datetime | None = None) -> list[str]:
        """One line per list that has expired at ``now`` (default: the current time)."""
        now = now or datetime.now(timezone.utc)
        return [f"list {e.name!r} ({e.type} {e.kind}, owner {e.owner}) expired on "
                f"{e.expires}: it is not applied to later events" for e in self.entries
                if e.expired_at(now)]


def _entries(data: Any, doc: _Doc) -> list[ListEntry]:
    if not isinstance(data, dict):
        raise doc.err((), "expected a mapping with 'version' and 'lists'")
    for key in data:
        if key not in ("version", "lists"):
            raise doc.err((key,), "unknown key (expected version, lists)")
    _version(data, doc)
    items = data.get("lists", [])
    if not isinstance(items, list):
        raise doc.err(("lists",), "expected a list")
    out: list[ListEntry] = []
    names: set[str] = set()
    for i, item in enumerate(items):
        p = ("lists", i)
        if not isinstance(item, dict):
            raise doc.err(p, "expected a mapping")
        for key in item:
            if key not in _KEYS:
                raise doc.err((*p, key),
                              f"unknown key (expected one of {', '.join(sorted(_KEYS))})")
        for key in ("name", "type", "kind", "owner", "reason", "expires", "values"):
            if item.get(key) in (None, ""):
                raise doc.err(p, f"list needs {key!r} (every list has an owner, a reason "
                                 "and an expiry)")
        for key in ("name", "type", "kind", "owner", "reason"):
            if isinstance(item[key], bool) or not isinstance(item[key], (str, int)):
                raise doc.err((*p, key), f"expected a string, got {item[key]!r}")
        name = str(item["name"])
        if name in names:
            raise doc.err((*p, "name"), f"duplicate list name {name!r}")
        names.add(name)
        if item["type"] not in LIST_TYPES:
            raise doc.err((*p, "type"), f"expected one of {', '.join(LIST_TYPES)}")
        if item["kind"] not in LIST_KINDS:
            raise doc.err((*p, "kind"), f"expected one of {', '.join(LIST_KINDS)}")
        exp = item["expires"]
        if isinstance(exp, datetime):
            exp = exp.date()
        if not isinstance(exp, date):
            try:
                exp = date.fromisoformat(str(exp))
            except ValueError:
                raise doc.err((*p, "expires"), f"bad date {exp!r} (expected YYYY-MM-DD)"
                              ) from None
        values = item["values"]
        if not isinstance(values, list):
            raise doc.err((*p, "values"), "expected a list of strings")
        for j, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, (str, int)):
                raise doc.err((*p, "values", j), f"expected a string, got {v!r}")
        hashed = item.get("hashed", False)
        if not isinstance(hashed, bool):
            raise doc.err((*p, "hashed"), "expected true or false")
        if hashed and not all(str(v).startswith("tok:") for v in values):
            raise doc.err((*p, "values"), "hashed lists hold Tokenizer tokens ('tok:...')")
        scen = item.get("scenarios", [])
        if not isinstance(scen, list):
            raise doc.err((*p, "scenarios"), "expected a list of scenario codes")
        for j, code in enumerate(scen):
            if not isinstance(code, str) or code not in SCENARIOS:
                raise doc.err((*p, "scenarios", j), f"expected a scenario code, got {code!r}")
        if scen and item["type"] != "allow":
            raise doc.err((*p, "scenarios"), "only allow lists name scenarios")
        identifier = item.get("identifier", "auto" if item["kind"] == "customer" else "none")
        if identifier not in IDENTIFIER_CHOICES:
            raise doc.err((*p, "identifier"), f"expected one of {', '.join(IDENTIFIER_CHOICES)}")
        if identifier != "none" and item["kind"] != "customer":
            raise doc.err((*p, "identifier"), "only customer lists normalise identifiers")
        kept = [str(v) for v in values]
        nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        if not hashed:
            kept = [canonical(v, identifier) for v in kept]
        if not hashed and item["kind"] == "source_ip":
            kept, nets = _addresses(kept, doc, (*p, "values"))
        out.append(ListEntry(name, item["type"], item["kind"], str(item["owner"]),
                             str(item["reason"]), exp, frozenset(kept), hashed,
                             frozenset(scen), identifier, tuple(nets)))
    return out


def _addresses(values: list[str], doc: _Doc, path: tuple[Any, ...]) -> tuple[
        list[str], list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    """A source_ip list's addresses (in canonical form) and networks; anything else is
    an error at its line."""
    addrs: list[str] = []
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for j, v in enumerate(values):
        try:
            if "/" in v:
                nets.append(ipaddress.ip_network(v, strict=False))
            else:
                addrs.append(str(ipaddress.ip_address(v)))
        except ValueError:
            what = "network" if "/" in v else "address"
            raise doc.err((*path, j), f"bad IP {what} {v!r} (a source_ip list holds "
                          "addresses such as 10.1.2.3 or networks such as 10.1.0.0/16)"
                          ) from None
    return addrs, nets


@lru_cache(maxsize=65536)
def _ip_text(value: str) -> str:
    """``value`` in canonical form when it is an IP address, else as written."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value
