"""SecureBoost-style vertical trees: the guest's labels, the hosts' columns, Paillier sums.

The arithmetic of each party's side (``kind = "vertical"``, ``model = "gbdt"``: the
vertical runner's steps are :mod:`federated.vertical.trees`; :func:`train_vertical` runs
every party in one process). Parties hold the same aligned customers (after PSI) in the
same row order.

Per tree:

1. The guest computes each row's gradient and hessian (:func:`booster.gradients`),
   packs the pair into one integer (:class:`GHPacking`: fixed point, ``2**-80``
   resolution, so a float32 value is exact and a sum of them is exact) and encrypts it
   under its Paillier key (``privacy.he``, DJN randomness).
2. Per level, the guest tells each host which node every row has reached; a host
   multiplies, per node to build, column and bin, the ciphertexts of the rows in that
   bin (a homomorphic sum), packs ten such sums into one ciphertext (2048-bit key; the
   "cipher compression" of FATE's SecureBoost+), re-randomises and returns them.
3. The guest decrypts the hosts' sums, puts them beside its own plaintext histograms and
   picks every split with the same :class:`~federated.trees.booster.Grower` a pooled
   trainer uses; for a split on a host column it asks that host which rows go right.

Because the sums are exact, the model equals :func:`~federated.trees.booster.train_local`
on the joined binned columns (and so the pooled XGBoost of :mod:`federated.trees.pooled`).

What each party learns (semi-honest parties, as in SecureBoost, Cheng et al. 2021):

* **guest**: per node it builds, each host bin's gradient and hessian sums (not which
  rows are in a bin: sums come re-randomised), the host, column number and bin code of
  every host split (not the host's cut points or column names), and which rows go right
  at a host split (it needs this to route rows).
* **host**: which node each aligned row reaches, level by level (SecureBoost's known
  leakage), and the ciphertexts of the rows' gradients (not their values: it has no key).
  Its bin edges and raw values never leave it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from federated.trees.booster import (
    F32,
    FloatArray,
    Grower,
    GrowStep,
    Layout,
    Model,
    Params,
    Tree,
    base_score,
    gradients,
    histogram,
    logloss_sum,
)
from privacy.errors import FederationError, InputError

__all__ = ["GHPacking", "Host", "HostAsk", "HostSplit", "Guest", "RouteAsk", "Router",
           "VerticalModel", "joint_layout", "train_vertical"]

Codes = npt.NDArray[np.uint16]


@dataclass(frozen=True)
class GHPacking:
    """A row's gradient and hessian as one integer: ``round(g * 2**scale) +
    round(h * 2**scale) * 2**slot``.

    The low slot holds a signed sum: decoding centres it (``|sum g| < 2**(slot - 1)``).
    ``scale = 80`` keeps every float32 hessian above XGBoost's floor ``1e-16`` exact, and
    ``slot = 100`` leaves room for sums over ``2**19`` rows (gradients are in [-1, 1],
    hessians in [0, 1/4]).
    """

    scale: int = 80
    slot: int = 100

    @property
    def max_rows(self) -> int:
        """The most rows a sum may add before the gradient slot could overflow."""
        return int(2 ** (self.slot - 1 - self.scale)) - 1

    def encode(self, g: npt.NDArray[np.float32], h: npt.NDArray[np.float32]) -> list[int]:
        """Pack each row's pair (exact for float32 inputs of magnitude >= 2**-56)."""
        if g.shape != h.shape:
            raise InputError("gradients and hessians differ in length")
        if len(g) > self.max_rows:
            raise InputError(f"{len(g)} rows exceed the packing's {self.max_rows}")
        s, shift = 2.0 ** self.scale, 1 << self.slot
        return [int(round(float(a) * s)) + int(round(float(b) * s)) * shift
                for a, b in zip(g.tolist(), h.tolist(), strict=True)]

    def per_ciphertext(self, key_bits: int) -> int:
        """How many packed pairs one Paillier plaintext of a ``key_bits`` key carries on
        the way back (each pair takes ``2 * slot`` bits; the sum stays below ``n / 2``)."""
        return max(1, (key_bits - 2) // (2 * self.slot))

    def unpack(self, values: Sequence[int], count: int, key_bits: int) -> list[int]:
        """The first ``count`` pairs of decrypted ciphertexts that each carry
        :meth:`per_ciphertext` pairs, lowest first (each a signed ``2 * slot``-bit
        value, as :meth:`decode` takes)."""
        k = self.per_ciphertext(key_bits)
        out: list[int] = []
        for v in values:
            digits, rest = _balanced_digits(int(v), 2 * self.slot, k)
            if rest:
                raise FederationError("a packed sum overflowed its slots")
            out.extend(digits)
        if len(out) < count:
            raise FederationError(f"{len(out)} packed sums received, expected {count}")
        return out[:count]

    def decode(self, values: Sequence[int]) -> tuple[FloatArray, FloatArray]:
        """Sums back to float64 ``(G, H)`` (each rounded once, from the exact integer)."""
        G = np.empty(len(values))
        H = np.empty(len(values))
        for i, v in enumerate(values):
            (g,), h = _balanced_digits(int(v), self.slot, 1)
            G[i] = math.ldexp(g, -self.scale) if g else 0.0
            H[i] = math.ldexp(h, -self.scale)
        return G, H


def _balanced_digits(value: int, width: int, count: int) -> tuple[list[int], int]:
    """The lowest ``count`` signed ``width``-bit digits of ``value`` (each centred in
    ``[-2**(width-1), 2**(width-1))``, so that ``value = sum d_j 2**(j*width) + rest *
    2**(count*width)``) and the ``rest``."""
    half, mask = 1 << (width - 1), (1 << width) - 1
    digits = []
    for _ in range(count):
        d = ((value + half) & mask) - half
        digits.append(d)
        value = (value - d) >> width
    return digits, value


def joint_layout(guest: Layout, hosts: Sequence[tuple[str, Layout]]) -> tuple[Layout, list[
        tuple[str, int]]]:
    """The guest's columns, then each host's, as one layout; and each joint column's
    owner ``(party, its column there)`` (``""`` is the guest).

    Host columns are named ``host/column number`` and categorical levels by number: the
    guest never learns a host's column names or level values."""
    names, bins, cat = list(guest.names), list(guest.bins), list(guest.categorical)
    levels = dict(guest.levels)
    owner = [("", c) for c in range(len(guest.names))]
    for host, lay in hosts:
        for c in range(len(lay.names)):
            name = f"{host}/{c}"
            if name in names:
                raise InputError(f"host {host!r}: column name {name!r} is taken")
            names.append(name)
            bins.append(lay.bins[c])
            cat.append(lay.categorical[c])
            if lay.categorical[c]:
                levels[name] = [str(k) for k in range(1, lay.bins[c] + 1)]
            owner.append((host, c))
    return Layout(names, bins, cat, levels), owner


class Host:
    """A host's side: its binned columns (rows aligned with the guest's) and what it
    computes for the guest.

    Parameters
    ----------
    name:
        The party's name.
    codes:
        Binned columns, ``(rows, columns)`` ``uint16`` (code 0 = missing).
    layout:
        The columns' bins; a column must have at least two non-missing codes in use
        (checked unless ``check`` is false: rows to score).
    """

    def __init__(self, name: str, codes: Codes, layout: Layout, *, check: bool = True
                 ) -> None:
        if codes.ndim != 2 or codes.shape[1] != len(layout.names):
            raise InputError(f"host {name!r}: codes have {codes.shape[-1]} columns, its "
                             f"layout {len(layout.names)}")
        for c, col in enumerate(layout.names if check else []):
            used = np.unique(codes[:, c])
            if int(used.max(initial=0)) > layout.bins[c]:
                raise InputError(f"host {name!r}: column {col!r} has codes above its "
                                 f"{layout.bins[c]} bins (mismatched bins)")
            if len(used[used > 0]) < 2:
                what = "all missing" if not len(used[used > 0]) else "constant"
                raise InputError(f"host {name!r}: column {col!r} is {what}; drop it")
        self.name = name
        self.codes = codes
        self.layout = layout
        self._public: Any = None
        self.splits: dict[tuple[int, int], HostSplit] = {}

    def receive_key(self, public_key: Any) -> None:
        """The guest's Paillier public key (checked on construction by ``privacy.he``)."""
        self._public = public_key

    def encrypted_histograms(self, enc_gh: Sequence[Any], pos: npt.NDArray[np.int64],
                             build: Sequence[int], packing: GHPacking) -> list[Any]:
        """The encrypted sum of each bin of each column for every node in ``build`` (the
        layout's histogram order, node after node), packed :meth:`GHPacking.per_ciphertext`
        sums to a ciphertext and re-randomised."""
        import gmpy2

        if self._public is None:
            raise FederationError(f"host {self.name!r} has no public key")
        if len(enc_gh) != self.codes.shape[0] or len(pos) != self.codes.shape[0]:
            raise FederationError(f"host {self.name!r}: the guest sent {len(enc_gh)} "
                                  f"ciphertexts for {self.codes.shape[0]} aligned rows")
        width = self.layout.width
        slot = {node: i for i, node in enumerate(build)}
        rows = np.flatnonzero(np.isin(pos, np.asarray(list(build), dtype=np.int64)))
        base = np.asarray([slot[int(n)] for n in pos[rows]], dtype=np.int64) * width
        cells = base[:, None] + self.layout.offsets[None, :] + self.codes[rows]
        acc = self._public.scatter_sum([gmpy2.mpz(enc_gh[r]) for r in rows.tolist()],
                                       cells, len(build) * width)
        # k sums to a ciphertext, so the guest decrypts k times fewer; then fresh
        # randomness hides which rows were multiplied into each sum
        packed = self._public.pack(acc, 2 * packing.slot,
                                   packing.per_ciphertext(self._public.bits))
        return list(self._public.rerandomise(packed))

    def go_right(self, tree: int, ask: RouteAsk) -> npt.NDArray[np.bool_]:
        """Which of ``ask.rows`` go right at the guest's split on this host's column; the
        split joins the host's lookup table (SecureBoost's: the host alone maps a split
        to its column and bin, at training and at prediction).

        Raises
        ------
        FederationError
            The ask does not fit this host's columns (column, kind, bin) or names a node
            already split in that tree.
        """
        c = ask.column
        if not 0 <= c < self.codes.shape[1] or ask.categorical != self.layout.categorical[c] \
                or not (1 if ask.categorical else 0) <= ask.threshold <= self.layout.bins[c]:
            raise FederationError(f"host {self.name!r}: a split on column {c} at bin "
                                  f"{ask.threshold} does not fit this host's columns")
        if (tree, ask.node) in self.splits:
            raise FederationError(f"host {self.name!r}: node {ask.node} of tree {tree} "
                                  "is already split")
        self.splits[(int(tree), int(ask.node))] = HostSplit(
            c, ask.threshold, ask.categorical, ask.default_left)
        return self.route_known(tree, ask.node, ask.rows)

    def route_known(self, tree: int, node: int, rows: npt.NDArray[np.int64]
                    ) -> npt.NDArray[np.bool_]:
        """Which of ``rows`` go right at a split in this host's lookup table (the only
        splits it answers for, to evaluate or score).

        Raises
        ------
        FederationError
            No such split in the table, or rows out of range.
        """
        s = self.splits.get((int(tree), int(node)))
        if s is None:
            raise FederationError(f"host {self.name!r}: it has no split at node {node} of "
                                  f"tree {tree}")
        if rows.size and (rows.min() < 0 or rows.max() >= self.codes.shape[0]):
            raise FederationError(f"host {self.name!r}: rows outside its "
                                  f"{self.codes.shape[0]} rows")
        return _goes_right(self.codes[rows, s.column], s.threshold, s.categorical,
                           s.default_left)

    def with_rows(self, codes: Codes) -> Host:
        """The same host (layout, lookup table) over other rows: new customers to score."""
        other = Host(self.name, codes, self.layout, check=False)
        other.splits = dict(self.splits)
        return other


@dataclass(frozen=True)
class HostSplit:
    """One entry of a host's lookup table: a split on its ``column`` at a bin code."""

    column: int
    threshold: int
    categorical: bool
    default_left: bool


def _goes_right(codes: Codes, threshold: int, categorical: bool, default_left: bool
                ) -> npt.NDArray[np.bool_]:
    """The split rule of :func:`federated.trees.booster.positions` for one node's rows:
    a level goes right alone; a numeric code above the threshold goes right, a missing
    one (code 0) the default way."""
    code = codes.astype(np.int32)
    if categorical:
        return np.asarray(code == threshold)
    return np.where(code == 0, not default_left, code > threshold)


#: One routing question to a host: (tree number, node, rows waiting at that node).
HostAsk = tuple[int, int, npt.NDArray[np.int64]]


class Router:
    """Rows going down trees, level by level: the guest applies its own splits; at a
    host's split it asks that host which of the rows waiting there go right (each host
    learns only which rows reach its own splits, as in SecureBoost's prediction).

    ``pos`` (``(len(trees), rows)``) is the state to keep between messages.
    """

    def __init__(self, trees: Sequence[Tree], numbers: Sequence[int],
                 owner: Sequence[tuple[str, int]], guest_codes: Codes,
                 pos: npt.NDArray[np.int64] | None = None) -> None:
        self.trees, self.numbers, self.owner, self.codes = list(trees), list(numbers), \
            owner, guest_codes
        shape = (len(self.trees), guest_codes.shape[0])
        self.pos = np.zeros(shape, np.int64) if pos is None else np.array(pos, np.int64)
        if self.pos.shape != shape:
            raise FederationError(f"routing state of shape {self.pos.shape}, expected {shape}")

    def asks(self) -> dict[str, list[HostAsk]]:
        """Move rows through the guest's splits as far as they go; the rows waiting at
        a host's split, per host (empty: every row is at a leaf)."""
        out: dict[str, list[HostAsk]] = {}
        for i, tree in enumerate(self.trees):
            pos = self.pos[i]
            moved = True
            while moved:
                moved = False
                for node in np.unique(pos).tolist():
                    party, col = self.owner[int(tree.column[node])]
                    if not tree.split[node] or party:
                        continue
                    rows = np.flatnonzero(pos == node)
                    right = _goes_right(self.codes[rows, col],
                                        int(tree.threshold[node]), bool(tree.categorical[node]),
                                        bool(tree.default_left[node]))
                    pos[rows] = 2 * node + 1 + right.astype(np.int64)
                    moved = True
            for node in np.unique(pos).tolist():
                if tree.split[node]:
                    host = self.owner[int(tree.column[node])][0]
                    out.setdefault(host, []).append((self.numbers[i], node,
                                                     np.flatnonzero(pos == node)))
        return out

    def answer(self, asks: dict[str, list[HostAsk]],
               rights: dict[str, list[npt.NDArray[np.bool_]]]) -> None:
        """The hosts' answers to :meth:`asks` (in order)."""
        index = {t: i for i, t in enumerate(self.numbers)}
        for host, host_asks in asks.items():
            answers = rights.get(host, [])
            if len(answers) != len(host_asks):
                raise FederationError(f"host {host!r} answered {len(answers)} of "
                                      f"{len(host_asks)} routing requests")
            for (t, node, rows), right in zip(host_asks, answers, strict=True):
                if np.shape(right) != rows.shape:
                    raise FederationError(f"host {host!r} routed {np.shape(right)} rows at "
                                          f"node {node}, asked {rows.shape}")
                self.pos[index[t], rows] = 2 * node + 1 + np.asarray(right, dtype=np.int64)

    def margin(self, base: np.float32) -> npt.NDArray[np.float32]:
        """``base`` plus every tree's leaf value (call once :meth:`asks` is empty)."""
        m = np.full(self.codes.shape[0], base, dtype=F32)
        for i, tree in enumerate(self.trees):
            m += tree.value[self.pos[i]]
        return m


@dataclass
class VerticalModel:
    """The guest's model: the trees over the joint layout and who owns each column.

    A split on a host column holds only the host's bin code; predicting needs that host
    (:meth:`margin` asks it which rows go right)."""

    model: Model
    owner: list[tuple[str, int]]

    def margin(self, guest_codes: Codes, hosts: dict[str, Host], *,
               trees: int | None = None) -> npt.NDArray[np.float32]:
        """Margins of aligned rows (guest codes here; each host routes the rows that
        reach its own splits, :meth:`Host.route_known`)."""
        kept = self.model.trees[: trees if trees is not None else len(self.model.trees)]
        router = Router(kept, range(len(kept)), self.owner, guest_codes)
        while asks := router.asks():
            router.answer(asks, {h: [hosts[h].route_known(t, node, rows)
                                     for t, node, rows in a] for h, a in asks.items()})
        return router.margin(self.model.base_margin)

    def predict_proba(self, guest_codes: Codes, hosts: dict[str, Host]) -> FloatArray:
        """Probabilities of the event for aligned rows."""
        from federated.trees.booster import sigmoid

        return sigmoid(self.margin(guest_codes, hosts)).astype(np.float64)

    def importance(self) -> dict[str, dict[str, dict[str, float]]]:
        """Gain and split counts per party (``"guest"`` or the host's name)."""
        imp = self.model.importance()
        party_of = {name: (self.owner[c][0] or "guest")
                    for c, name in enumerate(self.model.layout.names)}
        out: dict[str, dict[str, dict[str, float]]] = {}
        for kind, values in imp.items():
            for feat, v in values.items():
                party = party_of[feat.split("=", 1)[0]]
                out.setdefault(party, {}).setdefault(kind, {})[feat] = float(v)
        return out


@dataclass(frozen=True)
class RouteAsk:
    """The guest asks a host which of ``rows`` go right at ``node``'s split on its
    ``column`` (``threshold`` a bin code; the host applies it to its own codes)."""

    node: int
    column: int
    threshold: int
    categorical: bool
    default_left: bool
    rows: npt.NDArray[np.int64]


class Guest:
    """The guest's side of training, one protocol step per method (what its handlers of
    a transport call; :func:`train_vertical` drives it in one process).

    Per tree: :meth:`begin_tree` (encrypted gradients and the first node to build, for
    the hosts) -> per level, the hosts' :meth:`Host.encrypted_histograms` ->
    :meth:`level` (splits; :class:`RouteAsk` per host split) -> the hosts'
    :meth:`Host.go_right` -> :meth:`routed` (the next nodes to build, or the tree is done).
    """

    def __init__(self, codes: Codes, y: FloatArray, layout: Layout,
                 hosts: Sequence[tuple[str, Layout]], params: Params, *,
                 key_bits: int = 3072, packing: GHPacking | None = None,
                 keys: tuple[Any, Any] | None = None) -> None:
        from privacy.he.paillier_keys import generate_keypair

        if len({name for name, _ in hosts}) != len(hosts):
            raise InputError("two hosts have the same name")
        self.codes, self.y, self.layout, self.params = codes, y, layout, params
        self.pack = packing or GHPacking()
        self.joint, self.owner = joint_layout(layout, hosts)
        self.hosts = [name for name, _ in hosts]
        self._widths = {name: lay.width for name, lay in hosts}
        self.public, self._private = keys or generate_keypair(key_bits, fast_randomness=True)
        self.model = Model(self.joint, base_score(y), [])
        self._grower = Grower(self.joint, params)
        self.margin = np.full(codes.shape[0], self.model.base_margin, dtype=F32)
        self.losses: list[float] = []
        self.pos = np.zeros(codes.shape[0], dtype=np.int64)
        self._step: Any = None
        self._gh: tuple[Any, Any] | None = None
        self._asked: dict[str, list[RouteAsk]] = {}

    def begin_tree(self) -> list[Any]:
        """Gradients of the current margins, packed and encrypted (for every host)."""
        g, h = gradients(self.margin, self.y)
        self._gh = (g, h)
        self._step = self._grower.start()
        self.pos[:] = 0
        return list(self.public.encrypt_raw(self.pack.encode(g, h)))

    @property
    def build(self) -> list[int]:
        """The nodes whose histograms the hosts compute next (empty: no tree growing)."""
        return list(self._step.build) if self._step is not None else []

    def level(self, sums: dict[str, list[Any]]) -> dict[str, list[RouteAsk]]:
        """The hosts' packed sums for :attr:`build` -> this level's splits; the rows to
        route at each split on a host column, per host.

        Raises
        ------
        FederationError
            A host's sums are missing or do not decode to its histogram size.
        """
        if self._gh is None or self._step is None or not self._step.build:
            raise FederationError("no tree level is waiting for host sums")
        build = self._step.build
        g, h = self._gh
        Gs, Hs = histogram(self.codes, self.layout, self.pos, build, g, h)
        parts_g, parts_h = [Gs], [Hs]
        for host in self.hosts:
            if host not in sums:
                raise FederationError(f"host {host!r} sent no histogram sums")
            per = self.pack.per_ciphertext(self.public.bits)
            want = -(-len(build) * self._widths[host] // per)
            if len(sums[host]) != want:  # checked before paying for decryption
                raise FederationError(f"host {host!r} sent {len(sums[host])} sum "
                                      f"ciphertexts, expected {want}")
            flat = self.pack.unpack(self._private.decrypt_raw(sums[host]),
                                    len(build) * self._widths[host], self.public.bits)
            Gh, Hh = self.pack.decode(flat)
            parts_g.append(Gh.reshape(len(build), -1))
            parts_h.append(Hh.reshape(len(build), -1))
        tree = self._step.tree
        before = tree.split.copy()
        self._step.receive(np.concatenate(parts_g, axis=1), np.concatenate(parts_h, axis=1))
        asks: dict[str, list[RouteAsk]] = {}
        for node in (int(n) for n in np.flatnonzero(tree.split & ~before)):
            party, col = self.owner[int(tree.column[node])]
            rows = np.flatnonzero(self.pos == node)
            if party:
                asks.setdefault(party, []).append(RouteAsk(
                    node, col, int(tree.threshold[node]), bool(tree.categorical[node]),
                    bool(tree.default_left[node]), rows))
            else:
                right = _goes_right(self.codes[rows, col], int(tree.threshold[node]),
                                    bool(tree.categorical[node]),
                                    bool(tree.default_left[node]))
                self.pos[rows] = 2 * node + 1 + right.astype(np.int64)
        self._asked = asks
        return asks

    def routed(self, rights: dict[str, list[npt.NDArray[np.bool_]]]) -> bool:
        """The hosts' answers to :meth:`level`'s asks (in order); True when the tree is
        done (its values added to the margins)."""
        for host, asks in self._asked.items():
            answers = rights.get(host, [])
            if len(answers) != len(asks):
                raise FederationError(f"host {host!r} answered {len(answers)} of "
                                      f"{len(asks)} routing requests")
            for ask, right in zip(asks, answers, strict=True):
                if np.shape(right) != ask.rows.shape:
                    raise FederationError(f"host {host!r} routed {np.shape(right)} rows at "
                                          f"node {ask.node}, asked {ask.rows.shape}")
                self.pos[ask.rows] = 2 * ask.node + 1 + np.asarray(right, dtype=np.int64)
        self._asked = {}
        if self._step.build:
            return False
        tree = self._step.tree
        self.model.trees.append(tree)
        self.margin = self.margin + tree.value[self.pos]
        self.losses.append(logloss_sum(self.margin, self.y) / max(len(self.y), 1))
        self._step, self._gh = None, None
        return True

    def result(self) -> VerticalModel:
        """The model grown so far."""
        return VerticalModel(self.model, list(self.owner))

    @property
    def asked(self) -> dict[str, list[RouteAsk]]:
        """The routing questions of the last :meth:`level`, per host, awaiting answers."""
        return self._asked

    @property
    def private_key(self) -> Any:
        """The guest's Paillier private key (to keep it between messages)."""
        return self._private

    def state(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        """Everything but the data, the parameters and the keys, as a JSON document and
        arrays (:meth:`restore` rebuilds the guest from them)."""
        doc: dict[str, Any] = {
            "trees": [t.to_dict() for t in self.model.trees], "losses": self.losses,
            "base_score": self.model.base_score,
            "asked": {h: [[a.node, a.column, a.threshold, a.categorical, a.default_left]
                          for a in asks] for h, asks in self._asked.items()},
            "step": None}
        arrays: dict[str, npt.NDArray[Any]] = {"margin": self.margin, "pos": self.pos}
        if self._step is not None and self._gh is not None:
            doc["step"], hists = self._step.state()
            arrays.update(hists)
            arrays["g"], arrays["h"] = self._gh
        return doc, arrays

    @classmethod
    def restore(cls, codes: Codes, y: FloatArray, layout: Layout,
                hosts: Sequence[tuple[str, Layout]], params: Params, keys: tuple[Any, Any],
                doc: dict[str, Any], arrays: dict[str, npt.NDArray[Any]], *,
                packing: GHPacking | None = None) -> Guest:
        """A guest from :meth:`state` (the same data, parameters and keys).

        Raises
        ------
        InputError
            The state does not fit the data (a malformed or foreign state).
        """
        g = cls(codes, y, layout, hosts, params, packing=packing, keys=keys)
        try:
            g.model.trees = [Tree.from_dict(t, columns=len(g.joint.names)) for t in doc["trees"]]
            g.losses = [float(v) for v in doc["losses"]]
            g.margin = np.asarray(arrays["margin"], dtype=F32)
            g.pos = np.asarray(arrays["pos"], dtype=np.int64).copy()
            if g.margin.shape != (codes.shape[0],) or g.pos.shape != (codes.shape[0],):
                raise ValueError("row count")
            if doc.get("step") is not None:
                g._step = GrowStep.restore(g._grower, doc["step"], arrays)
                g._gh = (np.asarray(arrays["g"], dtype=F32), np.asarray(arrays["h"], dtype=F32))
            g._asked = {str(h): [RouteAsk(int(n), int(c), int(t), bool(k), bool(d),
                                          np.flatnonzero(g.pos == int(n)))
                                 for n, c, t, k, d in asks]
                        for h, asks in doc["asked"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed guest state ({exc})") from None
        return g


def train_vertical(guest_codes: Codes, y: FloatArray, guest_layout: Layout,
                   hosts: Sequence[Host], params: Params, *, key_bits: int = 3072,
                   packing: GHPacking | None = None) -> tuple[VerticalModel, list[float]]:
    """Train SecureBoost trees with every party in this process (see the module
    docstring and :class:`Guest`); returns the model and the training loss after each
    tree.

    Raises
    ------
    InputError
        Rows differ between the parties, or a host column is unusable (constant,
        all missing, codes beyond its bins).
    """
    n = guest_codes.shape[0]
    for h in hosts:
        if h.codes.shape[0] != n:
            raise InputError(f"host {h.name!r} has {h.codes.shape[0]} aligned rows, the "
                             f"guest {n}")
    guest = Guest(guest_codes, y, guest_layout, [(h.name, h.layout) for h in hosts], params,
                  key_bits=key_bits, packing=packing)
    by_name = {h.name: h for h in hosts}
    for h in hosts:
        h.receive_key(guest.public)
    for t in range(params.trees):
        enc = guest.begin_tree()
        done = False
        while not done:
            sums = {h.name: h.encrypted_histograms(enc, guest.pos, guest.build, guest.pack)
                    for h in hosts}
            asks = guest.level(sums)
            done = guest.routed({
                host: [by_name[host].go_right(t, a) for a in host_asks]
                for host, host_asks in asks.items()})
    return guest.result(), guest.losses
