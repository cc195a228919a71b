"""Histogram gradient boosting with logistic loss, split for federation.

The arithmetic follows XGBoost's ``tree_method="hist"`` (the acceptance oracle, see
:mod:`federated.trees.pooled`) step for step, so that a model grown from the *global*
histograms equals a pooled XGBoost model on the same bins:

* gradients in float32 (``p = 1 / (1 + exp(-margin))``, ``g = p - y``,
  ``h = max(p (1 - p), 1e-16)``), histograms summed in float64;
* per node and feature, a forward scan over the bins (missing values go right) and,
  when the node holds missing values, a backward scan (missing values go left); a
  candidate needs ``min_child_weight`` of hessian on both sides; its loss change is
  ``G_L^2/(H_L+lambda) + G_R^2/(H_R+lambda) - G^2/(H+lambda)`` rounded to float32, and
  it replaces the best so far only when strictly larger (ties: the first bin of the
  forward scan, the lower feature index);
* a split is made when its loss change exceeds 1e-6 and ``gamma``; a node's value is
  ``-G / (H + lambda) * learning_rate`` (float32); margins add up in float32.

A categorical column with ``L`` levels is ``L`` binary features (one per level, in level
order, after the numeric features: the LR preprocessing's one-hot layout): a split sends
one level right and every other level, missing and unseen values left. The party
histograms carry the column compactly (one bin per level plus one for missing); the
coordinator expands them.

Who computes what: a party calls :func:`gradients`, :func:`positions` and
:func:`histogram` on its own rows; the coordinator (or :func:`train_local` for one table)
runs :class:`Grower` on the summed histograms.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from privacy.errors import InputError

__all__ = [
    "Params", "Layout", "Tree", "Model", "Grower", "GrowStep", "gradients", "positions",
    "histogram", "logloss_sum", "train_local", "sigmoid",
]

FloatArray = npt.NDArray[np.float64]
F32 = np.float32
RT_EPS = 1e-6       # XGBoost's kRtEps: the smallest loss change that makes a split
HESS_EPS = 1e-16    # the smallest hessian of one row
LOSS_EPS = 1e-16    # log loss clips probabilities to [eps, 1 - eps]
MAX_DEPTH = 10


@dataclass(frozen=True)
class Params:
    """Boosting parameters (XGBoost names; see the module docstring for their use)."""

    trees: int = 30
    max_depth: int = 6
    learning_rate: float = 0.3
    min_child_weight: float = 1.0
    reg_lambda: float = 1.0
    gamma: float = 0.0
    max_bins: int = 256
    early_stopping: bool = False
    validation: float = 0.1
    patience: int = 5

    def __post_init__(self) -> None:
        checks = [(1 <= self.trees <= 10_000, "trees must be 1..10000"),
                  (1 <= self.max_depth <= MAX_DEPTH, f"max_depth must be 1..{MAX_DEPTH}"),
                  (self.learning_rate > 0, "learning_rate must be > 0"),
                  (self.min_child_weight >= 0, "min_child_weight must be >= 0"),
                  (self.reg_lambda >= 0, "reg_lambda must be >= 0"),
                  (self.gamma >= 0, "gamma must be >= 0"),
                  (2 <= self.max_bins <= 256, "max_bins must be 2..256"),
                  (0 < self.validation < 0.5, "validation must be in (0, 0.5)"),
                  (self.patience >= 1, "patience must be >= 1")]
        for ok, msg in checks:
            if not ok:
                raise InputError(f"gbdt parameters: {msg}")

    def to_json(self) -> str:
        """Canonical JSON."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def of_config(cls, cfg: dict[str, Any]) -> Params:
        """The parameters of a run config (as a dict): ``rounds`` trees and the
        ``[gbdt]`` table (less ``paillier_bits``, which is the vertical run's key size)."""
        g = {k: v for k, v in (cfg.get("gbdt") or {}).items() if k != "paillier_bits"}
        return cls(trees=int(cfg["rounds"]), **g)

    @classmethod
    def from_json(cls, text: str) -> Params:
        """Inverse of :meth:`to_json`."""
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError) as exc:
            raise InputError(f"malformed gbdt parameters ({exc})") from None


@dataclass(frozen=True)
class Layout:
    """The binned columns: ``bins[c]`` values for column ``c`` (codes ``1..bins[c]``,
    code 0 = missing or unseen), ``categorical[c]`` whether it is a text column."""

    names: list[str]
    bins: list[int]
    categorical: list[bool]
    levels: dict[str, list[str]] = field(default_factory=dict)

    @property
    def offsets(self) -> npt.NDArray[np.int64]:
        """Start of each column's block (its missing bin) in a node's histogram."""
        return np.concatenate([[0], np.cumsum(np.asarray(self.bins) + 1)[:-1]]).astype(np.int64)

    @property
    def width(self) -> int:
        """Histogram bins per node (every column's bins plus its missing bin)."""
        return int(sum(b + 1 for b in self.bins))

    @property
    def features(self) -> list[tuple[int, int]]:
        """The model's features: ``(column, 0)`` for a numeric column, ``(column, level
        code)`` for each level of a categorical one; numeric columns first."""
        num = [(c, 0) for c, cat in enumerate(self.categorical) if not cat]
        cat = [(c, k) for c, is_cat in enumerate(self.categorical) if is_cat
               for k in range(1, self.bins[c] + 1)]
        return num + cat

    @property
    def feature_names(self) -> list[str]:
        """Names of the features (``column=level`` for a categorical level)."""
        out = []
        for c, k in self.features:
            name = self.names[c]
            out.append(f"{name}={self.levels[name][k - 1]}" if k else name)
        return out


def sigmoid(margin: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """float32 logistic function, as XGBoost's."""
    m = np.asarray(margin, dtype=F32)
    with np.errstate(over="ignore"):
        return (F32(1.0) / (F32(1.0) + np.exp(-m))).astype(F32)


def gradients(margin: npt.NDArray[np.float32], y: FloatArray
              ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Logistic-loss gradient and hessian per row (float32, as XGBoost)."""
    p = sigmoid(margin)
    g = (p - np.asarray(y, dtype=F32)).astype(F32)
    h = np.maximum(p * (F32(1.0) - p), F32(HESS_EPS)).astype(F32)
    return g, h


def logloss_sum(margin: npt.NDArray[np.float32], y: FloatArray) -> float:
    """Sum of the log loss over rows (probabilities clipped as XGBoost's metric)."""
    p = np.clip(sigmoid(margin).astype(np.float64), LOSS_EPS, 1 - LOSS_EPS)
    yy = np.asarray(y, dtype=np.float64)
    return float(-(yy * np.log(p) + (1 - yy) * np.log(1 - p)).sum())


@dataclass
class Tree:
    """One tree in heap order (node ``i`` has children ``2i+1`` and ``2i+2``)."""

    depth: int
    exists: npt.NDArray[np.bool_]
    split: npt.NDArray[np.bool_]
    feature: npt.NDArray[np.int32]     # index into Layout.features; -1 for a leaf
    column: npt.NDArray[np.int32]
    threshold: npt.NDArray[np.int32]   # numeric: left iff code <= threshold; cat: level
    categorical: npt.NDArray[np.bool_]
    default_left: npt.NDArray[np.bool_]
    value: npt.NDArray[np.float32]
    gain: npt.NDArray[np.float32]
    cover: FloatArray

    @classmethod
    def empty(cls, depth: int) -> Tree:
        """A tree of only a root (no value yet)."""
        n = 2 ** (depth + 1) - 1
        t = cls(depth, np.zeros(n, bool), np.zeros(n, bool), np.full(n, -1, np.int32),
                np.zeros(n, np.int32), np.zeros(n, np.int32), np.zeros(n, bool),
                np.zeros(n, bool), np.zeros(n, F32), np.zeros(n, F32), np.zeros(n))
        t.exists[0] = True
        return t

    @property
    def leaves(self) -> int:
        """Number of leaves."""
        return int((self.exists & ~self.split).sum())

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: the existing nodes, in heap order."""
        ids = np.flatnonzero(self.exists)
        return {"depth": self.depth, "id": ids.tolist(),
                "feature": self.feature[ids].tolist(), "column": self.column[ids].tolist(),
                "threshold": self.threshold[ids].tolist(),
                "categorical": self.categorical[ids].tolist(),
                "default_left": self.default_left[ids].tolist(),
                "value": [float(v) for v in self.value[ids]],
                "gain": [float(v) for v in self.gain[ids]],
                "cover": [float(v) for v in self.cover[ids]]}

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, columns: int | None = None) -> Tree:
        """Inverse of :meth:`to_dict`; bounds are checked (a peer may send it)."""
        try:
            depth = int(d["depth"])
            if not 1 <= depth <= MAX_DEPTH:
                raise ValueError(f"depth {depth}")
            t = cls.empty(depth)
            t.exists[0] = False
            ids = np.asarray(d["id"], dtype=np.int64)
            n = len(t.exists)
            if (ids.size == 0 or ids.min() < 0 or ids.max() >= n
                    or len(set(ids.tolist())) != ids.size):
                raise ValueError("node ids")
            t.exists[ids] = True
            t.feature[ids] = np.asarray(d["feature"], dtype=np.int32)
            t.column[ids] = np.asarray(d["column"], dtype=np.int32)
            t.threshold[ids] = np.asarray(d["threshold"], dtype=np.int32)
            t.categorical[ids] = np.asarray(d["categorical"], dtype=bool)
            t.default_left[ids] = np.asarray(d["default_left"], dtype=bool)
            t.value[ids] = np.asarray(d["value"], dtype=F32)
            t.gain[ids] = np.asarray(d.get("gain", [0.0] * ids.size), dtype=F32)
            t.cover[ids] = np.asarray(d.get("cover", [0.0] * ids.size), dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed tree ({exc})") from None
        t.split = t.exists & (t.feature >= 0)
        kids = np.flatnonzero(t.split)
        if kids.size and (2 * kids.max() + 2 >= n or not t.exists[2 * kids + 1].all()
                          or not t.exists[2 * kids + 2].all()):
            raise InputError("malformed tree (a split node without both children)")
        if columns is not None and t.split.any() and (
                t.column[t.split].min() < 0 or t.column[t.split].max() >= columns):
            raise InputError("malformed tree (a split on an unknown column)")
        return t


def positions(tree: Tree, codes: npt.NDArray[np.uint16], *, upto: int | None = None
              ) -> npt.NDArray[np.int64]:
    """The node each row reaches, following splits down to depth ``upto`` (default:
    to the leaves)."""
    n = codes.shape[0]
    pos = np.zeros(n, dtype=np.int64)
    rows = np.arange(n)
    for _ in range(tree.depth if upto is None else upto):
        active = tree.split[pos]
        if not active.any():
            break
        code = codes[rows, tree.column[pos]].astype(np.int32)
        thr = tree.threshold[pos]
        right = np.where(tree.categorical[pos], code == thr,
                         np.where(code == 0, ~tree.default_left[pos], code > thr))
        pos = np.where(active, 2 * pos + 1 + right, pos)
    return pos


def histogram(codes: npt.NDArray[np.uint16], layout: Layout, pos: npt.NDArray[np.int64],
              build: Sequence[int], g: npt.NDArray[np.float32],
              h: npt.NDArray[np.float32]) -> tuple[FloatArray, FloatArray]:
    """Gradient and hessian histograms ``(len(build), layout.width)`` of the rows that
    reach the nodes in ``build``."""
    width = layout.width
    slot = np.full(int(max(max(build, default=0), int(pos.max(initial=0)))) + 1, -1, np.int64)
    slot[np.asarray(build, dtype=np.int64)] = np.arange(len(build))
    s = slot[pos]
    sel = s >= 0
    size = len(build) * width
    if not sel.any():
        return np.zeros((len(build), width)), np.zeros((len(build), width))
    idx = (s[sel, None] * width + layout.offsets[None, :] + codes[sel]).ravel()
    cols = codes.shape[1]
    gh = np.bincount(idx, weights=np.repeat(g[sel].astype(np.float64), cols), minlength=size)
    hh = np.bincount(idx, weights=np.repeat(h[sel].astype(np.float64), cols), minlength=size)
    return gh.reshape(len(build), width), hh.reshape(len(build), width)


# --------------------------------------------------------------------------- splits


def _gain(G: FloatArray, H: FloatArray, lam: float) -> npt.NDArray[np.float32]:
    """``G^2 / (H + lambda)`` where ``H > 0`` (else 0), rounded to float32."""
    den = H + lam
    out = np.zeros_like(G)
    np.divide(G * G, den, out=out, where=(H > 0) & (den > 0))
    return out.astype(F32)


def _weight(G: float, H: float, p: Params) -> float:
    if H < p.min_child_weight or H <= 0:
        return 0.0
    return -G / (H + p.reg_lambda)


@dataclass
class _Best:
    loss: float = 0.0
    feature: int = -1
    threshold: int = 0
    default_left: bool = False
    left: tuple[float, float] = (0.0, 0.0)
    right: tuple[float, float] = (0.0, 0.0)


class Grower:
    """Grows one tree level by level from histograms (one call per level).

    ``histograms(tree, build)`` returns the ``(G, H)`` histograms of the nodes in
    ``build`` under the tree grown so far; the grower derives each sibling's histogram
    from its parent's (the smaller child is built, as XGBoost does).

    Every split candidate of a level is scored at once: candidates are laid out in
    XGBoost's evaluation order (per feature: the forward scan, then the backward scan;
    features in order), so the first maximum is the split XGBoost keeps.
    """

    def __init__(self, layout: Layout, params: Params) -> None:
        self.layout = layout
        self.p = params
        self.features = layout.features
        self.offsets = layout.offsets
        feat, thr, dleft, miss = [], [], [], []
        f = 0
        for c, cat in enumerate(layout.categorical):
            b = layout.bins[c]
            if cat:
                feat += list(range(f, f + b))
                thr += list(range(1, b + 1))
                dleft += [True] * b
                miss += [-1] * b
                f += b
                continue
            feat += [f] * (2 * b)
            thr += list(range(1, b + 1)) + list(range(b - 1, -1, -1))
            dleft += [False] * b + [True] * b
            miss += [-1] * b + [c] * b
            f += 1
        # numeric features come first in Layout.features: renumber to that order
        order = {fc: i for i, fc in enumerate(self.features)}
        col_of = [c for c, cat in enumerate(layout.categorical) for _ in
                  (range(layout.bins[c]) if cat else range(1))]
        lvl_of = [k for c, cat in enumerate(layout.categorical) for k in
                  (range(1, layout.bins[c] + 1) if cat else [0])]
        self._cand_feature = np.asarray([order[(col_of[i], lvl_of[i])] for i in feat], np.int64)
        self._cand_thr = np.asarray(thr, np.int64)
        self._cand_dleft = np.asarray(dleft, bool)
        self._cand_miss = np.asarray(miss, np.int64)
        # candidates sorted by feature (stable: keeps forward before backward, bin order)
        self._perm = np.argsort(self._cand_feature, kind="stable")

    def _candidates(self, G: FloatArray, H: FloatArray, Gp: FloatArray, Hp: FloatArray
                    ) -> tuple[FloatArray, FloatArray]:
        """Left-child sums of every candidate (nodes x candidates), column order."""
        gl, hl = [], []
        for c, cat in enumerate(self.layout.categorical):
            o, b = int(self.offsets[c]), self.layout.bins[c]
            if cat:
                gl.append(Gp[:, None] - G[:, o + 1: o + 1 + b])
                hl.append(Hp[:, None] - H[:, o + 1: o + 1 + b])
                continue
            gl.append(np.cumsum(G[:, o + 1: o + 1 + b], axis=1))
            hl.append(np.cumsum(H[:, o + 1: o + 1 + b], axis=1))
            gl.append(Gp[:, None] - np.cumsum(G[:, o + b: o: -1], axis=1))
            hl.append(Hp[:, None] - np.cumsum(H[:, o + b: o: -1], axis=1))
        return np.concatenate(gl, axis=1), np.concatenate(hl, axis=1)

    def _level_best(self, G: FloatArray, H: FloatArray, stats: FloatArray) -> list[_Best]:
        p = self.p
        lam, mcw = p.reg_lambda, p.min_child_weight
        Gp, Hp = stats[:, 0], stats[:, 1]
        root_gain = np.where((Hp > 0), _gain(Gp, Hp, lam), F32(0.0)).astype(F32)
        GL, HL = self._candidates(G, H, Gp, Hp)
        GL, HL = GL[:, self._perm], HL[:, self._perm]
        GR, HR = Gp[:, None] - GL, Hp[:, None] - HL
        ok = (HL >= mcw) & (HR >= mcw)
        miss_col = self._cand_miss[self._perm]
        bwd = miss_col >= 0
        if bwd.any():  # a backward scan only where the node holds missing values
            o = self.offsets[miss_col[bwd]]
            has = (H[:, o] > 0) | (G[:, o] != 0)
            ok[:, bwd] &= has
        loss = ((_gain(GL, HL, lam) + _gain(GR, HR, lam)).astype(F32)
                - root_gain[:, None]).astype(F32)
        loss[~ok] = -np.inf
        idx = np.argmax(loss, axis=1)
        out = []
        for n, i in enumerate(idx):
            best_loss = float(loss[n, i])
            if not best_loss > 0.0:
                out.append(_Best())
                continue
            j = self._perm[i]
            out.append(_Best(best_loss, int(self._cand_feature[j]), int(self._cand_thr[j]),
                             bool(self._cand_dleft[j]), (float(GL[n, i]), float(HL[n, i])),
                             (float(GR[n, i]), float(HR[n, i]))))
        return out

    def grow(self, histograms: Callable[[Tree, list[int]], tuple[FloatArray, FloatArray]]
             ) -> Tree:
        """Grow one tree; node values are already multiplied by the learning rate."""
        step = self.start()
        while step.build:
            step.receive(*histograms(step.tree, step.build))
        return step.tree

    def start(self) -> GrowStep:
        """Begin a tree to grow step by step: a party that answers histograms in
        messages (the vertical guest) calls :meth:`GrowStep.receive` once per level
        with the histograms of :attr:`GrowStep.build` until that is empty."""
        return GrowStep(self)


class GrowStep:
    """One tree being grown by a :class:`Grower`, a level at a time.

    ``build`` lists the nodes whose histograms are needed next (``[0]`` first, then the
    smaller child of each split, as XGBoost does); ``tree`` is the tree so far, its leaf
    values set once ``build`` is empty.
    """

    def __init__(self, grower: Grower) -> None:
        self._g = grower
        self.tree = Tree.empty(grower.p.max_depth)
        self.build: list[int] = [0]
        self._depth = 0
        self._stats: dict[int, tuple[float, float]] = {}
        self._hists: dict[int, tuple[FloatArray, FloatArray]] = {}
        self._splits: list[int] = []

    def state(self) -> tuple[dict[str, Any], dict[str, FloatArray]]:
        """The step as a JSON document and its known histograms (``G``, ``H``: one row
        per node of ``doc["nodes"]``), for a party that keeps it between messages."""
        nodes = sorted(self._hists)
        width = self._g.layout.width
        doc = {"tree": self.tree.to_dict(), "build": list(self.build), "depth": self._depth,
               "stats": [[n, s[0], s[1]] for n, s in sorted(self._stats.items())],
               "splits": list(self._splits), "nodes": nodes}
        G = np.stack([self._hists[n][0] for n in nodes]) if nodes else np.zeros((0, width))
        H = np.stack([self._hists[n][1] for n in nodes]) if nodes else np.zeros((0, width))
        return doc, {"G": G, "H": H}

    @classmethod
    def restore(cls, grower: Grower, doc: dict[str, Any], arrays: dict[str, FloatArray]
                ) -> GrowStep:
        """Inverse of :meth:`state`."""
        step = cls(grower)
        try:
            step.tree = Tree.from_dict(doc["tree"], columns=len(grower.layout.names))
            step.build = [int(n) for n in doc["build"]]
            step._depth = int(doc["depth"])
            step._stats = {int(n): (float(g), float(h)) for n, g, h in doc["stats"]}
            step._splits = [int(n) for n in doc["splits"]]
            step._hists = {int(n): (np.asarray(arrays["G"][i], dtype=np.float64),
                                    np.asarray(arrays["H"][i], dtype=np.float64))
                           for i, n in enumerate(doc["nodes"])}
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InputError(f"malformed tree state ({exc})") from None
        return step

    def receive(self, G: FloatArray, H: FloatArray) -> list[int]:
        """The ``(len(build), width)`` histograms of :attr:`build`; returns the next
        ``build`` (empty: the tree is done)."""
        if not self.build:
            raise InputError("the tree is already grown")
        if G.shape != H.shape or G.shape[0] != len(self.build):
            raise InputError(f"histograms of shape {G.shape} for {len(self.build)} nodes")
        if self.build == [0] and not self._hists:
            o, b = int(self._g.offsets[0]), self._g.layout.bins[0]
            self._stats[0] = (float(G[0, o: o + b + 1].sum()), float(H[0, o: o + b + 1].sum()))
            self._hists = {0: (G[0], H[0])}
        else:
            nxt: dict[int, tuple[FloatArray, FloatArray]] = {}
            for i, (parent, child) in enumerate(zip(self._splits, self.build, strict=True)):
                sib = child + 1 if child % 2 == 1 else child - 1
                nxt[child] = (G[i], H[i])
                nxt[sib] = (self._hists[parent][0] - G[i], self._hists[parent][1] - H[i])
            self._hists = nxt
        self.build = self._split_level()
        if not self.build:
            self._finish()
        return self.build

    def _split_level(self) -> list[int]:
        """Split the nodes whose histograms are known; the next nodes to build."""
        g, p, tree, stats = self._g, self._g.p, self.tree, self._stats
        level = sorted(self._hists)
        Gl = np.stack([self._hists[n][0] for n in level])
        Hl = np.stack([self._hists[n][1] for n in level])
        bests = g._level_best(Gl, Hl, np.asarray([stats[n] for n in level]))
        splits: list[int] = []
        for node, best in zip(level, bests, strict=True):
            if (best.feature < 0 or best.loss <= RT_EPS or best.loss < p.gamma
                    or best.left[1] == 0 or best.right[1] == 0):
                continue
            c, k = g.features[best.feature]
            tree.split[node] = True
            tree.feature[node] = best.feature
            tree.column[node] = c
            tree.categorical[node] = bool(k)
            tree.threshold[node] = k if k else best.threshold
            tree.default_left[node] = True if k else best.default_left
            tree.gain[node] = best.loss
            left, right = 2 * node + 1, 2 * node + 2
            tree.exists[[left, right]] = True
            stats[left], stats[right] = best.left, best.right
            splits.append(node)
        self._depth += 1
        self._splits = splits
        if not splits or self._depth >= p.max_depth:
            return []
        return [2 * n + 1 if stats[2 * n + 1][1] <= stats[2 * n + 2][1] else 2 * n + 2
                for n in splits]

    def _finish(self) -> None:
        p = self._g.p
        for node, (Gs, Hs) in self._stats.items():
            self.tree.cover[node] = Hs
            self.tree.value[node] = F32(F32(_weight(Gs, Hs, p)) * F32(p.learning_rate))


@dataclass
class Model:
    """A trained model: base score, trees, the layout they split on."""

    layout: Layout
    base_score: float
    trees: list[Tree]

    @property
    def base_margin(self) -> np.float32:
        """The margin every row starts from (logit of the base score, float32)."""
        p = F32(self.base_score)
        return F32(-np.log(F32(1.0) / p - F32(1.0)))

    def margin(self, codes: npt.NDArray[np.uint16], *, trees: int | None = None
               ) -> npt.NDArray[np.float32]:
        """Margins (float32) with the first ``trees`` trees (default: all)."""
        m = np.full(codes.shape[0], self.base_margin, dtype=F32)
        for t in self.trees[: trees if trees is not None else len(self.trees)]:
            m += t.value[positions(t, codes)]
        return m

    def predict_proba(self, codes: npt.NDArray[np.uint16]) -> FloatArray:
        """Probabilities of the event."""
        return sigmoid(self.margin(codes)).astype(np.float64)

    def importance(self) -> dict[str, dict[str, float]]:
        """Total gain and number of splits per feature (XGBoost's ``total_gain`` and
        ``weight``), over the model's trees."""
        names = self.layout.feature_names
        gain = np.zeros(len(names))
        count = np.zeros(len(names))
        for t in self.trees:
            for node in np.flatnonzero(t.split):
                gain[t.feature[node]] += float(t.gain[node])
                count[t.feature[node]] += 1
        order = np.argsort(-gain, kind="stable")
        return {"gain": {names[i]: float(gain[i]) for i in order if count[i]},
                "splits": {names[i]: int(count[i]) for i in order if count[i]}}


# ------------------------------------------------------------------------- one table


def base_score(y: FloatArray) -> float:
    """The starting probability: the event rate, kept away from 0 and 1."""
    rate = float(np.mean(y)) if len(y) else 0.5
    return min(max(rate, 1e-6), 1 - 1e-6)


def train_local(codes: npt.NDArray[np.uint16], y: FloatArray, layout: Layout, params: Params,
                *, valid: tuple[npt.NDArray[np.uint16], FloatArray] | None = None
                ) -> tuple[Model, list[float]]:
    """Train on one table (a party's local-only model, or the pooled reference).

    Returns the model (cut to the best iteration with early stopping) and the loss after
    each tree (validation loss when ``valid`` is given, else training loss).
    """
    model = Model(layout, base_score(y), [])
    grower = Grower(layout, params)
    margin = model.margin(codes)
    vmargin = model.margin(valid[0]) if valid is not None else None
    losses: list[float] = []
    best, best_at = math.inf, 0
    for _ in range(params.trees):
        g, h = gradients(margin, y)

        def hist(tree: Tree, build: list[int], g: Any = g, h: Any = h
                 ) -> tuple[FloatArray, FloatArray]:
            return histogram(codes, layout, positions(tree, codes), build, g, h)

        tree = grower.grow(hist)
        model.trees.append(tree)
        margin = margin + tree.value[positions(tree, codes)]
        if valid is not None and vmargin is not None:
            vmargin = vmargin + tree.value[positions(tree, valid[0])]
            loss = logloss_sum(vmargin, valid[1]) / max(len(valid[1]), 1)
        else:
            loss = logloss_sum(margin, y) / max(len(y), 1)
        losses.append(loss)
        if params.early_stopping and valid is not None:
            if loss < best:
                best, best_at = loss, len(losses)
            elif len(losses) - best_at >= params.patience:
                break
    if params.early_stopping and valid is not None:
        model.trees = model.trees[:best_at]
    return model, losses
