"""Each party's steps of vertical gradient-boosted trees (``model = "gbdt"``).

The arithmetic is :mod:`federated.trees.secureboost`; this module keeps each party's
side of it in the party's state folder between messages (Flower may run every message
in a fresh process) and answers the ``v.gb_*`` steps of
:mod:`federated.vertical.boosting`:

* every party bins its own columns on the training rows (:func:`prepare`); the guest
  labels its rows;
* the guest makes a Paillier key pair (:func:`keygen`), each host keeps the public key
  (:func:`setup`);
* per tree, the guest encrypts the rows' gradients (:func:`begin_tree`); per level each
  host returns its encrypted per-bin sums (:func:`histograms`), the guest splits
  (:func:`level`), the hosts route rows at their splits (:func:`route`) and keep those
  splits in their lookup table, the guest moves the rows on (:func:`routed`);
* to evaluate or score, each host says which rows go right at its own splits
  (:func:`split_bits`) and the guest adds up the trees (:func:`evaluate`).

At the end each party writes its own part of the model (:func:`model_part`): the guest
its bins, the trees (a host split as host, column number and bin code only) and who owns
each column; a host its bins and its lookup table (column and bin of each of its splits).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from federated.metrics import auc, ks, logloss
from federated.trees.binning import Binner, local_binner
from federated.trees.booster import F32, Layout, Model, Params, Tree, sigmoid, train_local
from federated.trees.secureboost import (
    GHPacking,
    Guest,
    Host,
    HostSplit,
    RouteAsk,
    VerticalModel,
    joint_layout,
    route,
)
from federated.vertical.features import take_rows
from federated.vertical.party import Party
from privacy.errors import FederationError, InputError

__all__ = ["prepare", "keygen", "setup", "begin_tree", "histograms", "level", "route_rows",
           "routed", "split_bits", "evaluate", "guest_only", "importance", "model_part",
           "load_part"]

Codes = npt.NDArray[np.uint16]


def _rows(payload: dict[str, Any], n: int, key: str = "rows") -> npt.NDArray[np.int64] | None:
    """Row numbers of a message (None: every row), checked against ``n``."""
    value = payload.get(key)
    if value is None:
        return None
    rows = np.asarray(value, dtype=np.int64)
    if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= n)):
        raise FederationError(f"malformed message: {key} outside 0..{n - 1}")
    return rows


def _binner(party: Party) -> Binner:
    return Binner.from_json(party.store.blob("gb_binner").decode())


def _codes(party: Party, split: str) -> Codes:
    return party.store.array(f"gb_codes_{split}").astype(np.uint16)


def _fit_rows(party: Party) -> npt.NDArray[np.int64]:
    return party.store.array("gb_fit").astype(np.int64)


# -- set-up ---------------------------------------------------------------------------


def prepare(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """Bin this party's columns on the training rows; code every aligned split; the
    guest also labels its rows. Returns the bins (counts and kinds, not cut points)."""
    n = party.aligned("train").rows
    train = _rows(payload, n, "train_rows")
    if train is None or train.size < 2:
        raise FederationError("malformed message: no training rows")
    params = Params.from_json(str(payload["params"]))
    binner = local_binner(take_rows(party.aligned("train"), train), party.kinds(),
                          max_bins=params.max_bins)
    party.store.put_blob("gb_binner", binner.to_json().encode())
    party.store.put_json("gb_params", params.to_json())
    party.store.put_array("gb_fit", train)
    for split in ("train", "test"):
        if party.store.has(f"rows_{split}"):
            party.store.put_array(f"gb_codes_{split}", binner.codes(party.aligned(split)))
    if party.role == "guest":
        party.store_labels()  # type: ignore[attr-defined]
    lay = binner.layout
    return {"bins": lay.bins, "categorical": lay.categorical, "columns": lay.names,
            "levels": lay.levels}


def _params(party: Party) -> Params:
    return Params.from_json(str(party.store.json("gb_params")))


def _host_layouts(party: Party) -> list[tuple[str, Layout]]:
    return [(str(h), Layout([f"c{i}" for i in range(len(d["bins"]))],
                            [int(b) for b in d["bins"]], [bool(c) for c in d["categorical"]]))
            for h, d in party.store.json("gb_hosts")]


def keygen(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """The guest: a fresh Paillier key pair, the hosts' bin counts; the public key."""
    from privacy.he.paillier_keys import generate_keypair
    from privacy.he.serial import dump_private_key, dump_public_key

    hosts = payload.get("hosts")
    if not isinstance(hosts, dict) or not hosts:
        raise FederationError("malformed message: no hosts")
    for h, d in hosts.items():
        if not isinstance(d, dict) or len(d.get("bins", [])) != len(d.get("categorical", [])) \
                or not all(1 <= int(b) <= 60_000 for b in d["bins"]):
            raise FederationError(f"party {h!r}: malformed bins")
    party.store.put_json("gb_hosts", [[h, {"bins": d["bins"], "categorical": d["categorical"]}]
                                      for h, d in hosts.items()])
    bits = int(payload.get("key_bits", 3072))
    public, private = generate_keypair(bits, fast_randomness=True)
    party.store.put_blob("gb_private", dump_private_key(private))
    guest = _new_guest(party, (public, private))
    _save_guest(party, guest)
    return {"public": dump_public_key(public)}


def setup(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """A host: keep the guest's public key (checked)."""
    from privacy.he.serial import load

    blob = bytes(payload["public"])
    load(blob, source="the guest's public key", kind="public_key")
    party.store.put_blob("gb_public", blob)
    party.store.put_json("gb_splits", [])
    return {}


# -- the guest's state ------------------------------------------------------------------


def _keys(party: Party) -> tuple[Any, Any]:
    from privacy.he.serial import load

    def build() -> tuple[Any, Any]:
        private = load(party.store.blob("gb_private"), source="the run's key",
                       kind="private_key")
        return private.public_key, private

    return party.store.cached("gb_keys", build)  # type: ignore[no-any-return]


def _guest_data(party: Party) -> tuple[Codes, npt.NDArray[np.float64], Layout]:
    fit = _fit_rows(party)
    return (_codes(party, "train")[fit], party.store.array("y_train")[fit],
            _binner(party).layout)


def _new_guest(party: Party, keys: tuple[Any, Any]) -> Guest:
    codes, y, layout = _guest_data(party)
    return Guest(codes, y, layout, _host_layouts(party), _params(party), keys=keys)


def _load_guest(party: Party) -> Guest:
    codes, y, layout = _guest_data(party)
    doc = party.store.json("gb_state")
    arrays = party.store.weights("gb_arrays")
    return Guest.restore(codes, y, layout, _host_layouts(party), _params(party),
                         _keys(party), doc, arrays)


def _save_guest(party: Party, guest: Guest) -> None:
    doc, arrays = guest.state()
    party.store.put_weights("gb_arrays", **arrays)
    party.store.put_json("gb_state", doc)


def _next(guest: Guest) -> dict[str, Any]:
    return {"build": guest.build, "pos": guest.pos}


def begin_tree(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """The guest: the rows' gradients, encrypted, and the first node to build."""
    guest = _load_guest(party)
    enc = guest.begin_tree()
    _save_guest(party, guest)
    return {"gh": guest.public.ciphertexts_to_bytes(enc), **_next(guest)}


def level(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """The guest: the hosts' packed sums -> this level's splits; what to ask each host."""
    guest = _load_guest(party)
    sums = payload.get("sums")
    if not isinstance(sums, dict):
        raise FederationError("malformed message: no host sums")
    decoded = {str(h): guest.public.ciphertexts_from_bytes(bytes(b), what=f"party {h!r}: sums")
               for h, b in sums.items()}
    asks = guest.level(decoded)
    _save_guest(party, guest)
    return {"asks": {h: [{"node": a.node, "column": a.column, "threshold": a.threshold,
                          "categorical": a.categorical, "default_left": a.default_left,
                          "rows": a.rows} for a in host_asks]
                     for h, host_asks in asks.items()}}


def routed(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """The guest: the hosts' routing answers; the next level (or the tree is done)."""
    guest = _load_guest(party)
    right = payload.get("right") or {}
    done = guest.routed({str(h): [np.asarray(r, dtype=bool) for r in answers]
                         for h, answers in right.items()})
    _save_guest(party, guest)
    return {"done": done, "trees": len(guest.model.trees),
            "loss": guest.losses[-1] if done else None, **_next(guest)}


# -- the hosts ------------------------------------------------------------------------


def _host(party: Party, split: str = "train", rows: npt.NDArray[np.int64] | None = None
          ) -> Host:
    """This host over the training rows (or a split's rows), with its lookup table."""
    codes = _codes(party, split)
    if split == "train" and rows is None:
        codes = codes[_fit_rows(party)]
    elif rows is not None:
        codes = codes[rows]
    host = Host(party.name, codes, _binner(party).layout, check=False)
    host.splits = {(int(t), int(n)): HostSplit(int(c), int(k), bool(cat), bool(d))
                   for t, n, c, k, cat, d in party.store.json("gb_splits")}
    return host


def _public(party: Party) -> Any:
    from privacy.he.serial import load

    return party.store.cached("gb_public", lambda: load(
        party.store.blob("gb_public"), source="the guest's public key", kind="public_key"))


def histograms(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """A host: the encrypted per-bin sums of the nodes to build (the tree's encrypted
    gradients come with its first level and are kept until the tree is done)."""
    public = _public(party)
    if payload.get("gh") is not None:
        party.store.put_blob("gb_gh", bytes(payload["gh"]))
    host = _host(party)
    n = host.codes.shape[0]
    enc = public.ciphertexts_from_bytes(party.store.blob("gb_gh"),
                                        what="the guest's gradients")
    pos = np.asarray(payload["pos"], dtype=np.int64)
    build = [int(b) for b in payload["build"]]
    if pos.shape != (n,) or not build or min(build) < 0 or max(build) >= 2 ** 11:
        raise FederationError("malformed message: node positions")
    host.receive_key(public)
    sums = host.encrypted_histograms(enc, pos, build, GHPacking())
    return {"sums": public.ciphertexts_to_bytes(sums)}


def route_rows(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """A host: which rows go right at each of the guest's splits on its columns; the
    splits join its lookup table."""
    host = _host(party)
    n = host.codes.shape[0]
    tree = int(payload["tree"])
    right = []
    for a in payload.get("asks") or []:
        rows = _rows(a, n)
        ask = RouteAsk(int(a["node"]), int(a["column"]), int(a["threshold"]),
                       bool(a["categorical"]), bool(a["default_left"]),
                       rows if rows is not None else np.arange(n))
        right.append(host.go_right(tree, ask))
    party.store.put_json("gb_splits", [[t, n_, s.column, s.threshold, s.categorical,
                                        s.default_left]
                                       for (t, n_), s in sorted(host.splits.items())])
    return {"right": right}


def split_bits(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """A host: for each of its splits in the given trees, which rows of a split (train,
    test or score; ``rows`` of it) go right (bit-packed)."""
    split = str(payload["split"])
    if split not in ("train", "test", "score"):
        raise FederationError(f"malformed message: split {split!r}")
    n = _codes(party, split).shape[0]
    host = _host(party, split, _rows(payload, n) if payload.get("rows") is not None
                 else np.arange(n))
    nodes: list[list[int]] = []
    bits: list[npt.NDArray[np.bool_]] = []
    for t in (int(t) for t in payload["trees"]):
        for node, b in host.split_bits(t).items():
            nodes.append([t, node])
            bits.append(b)
    packed = np.packbits(np.stack(bits), axis=1) if bits else np.zeros((0, 0), np.uint8)
    return {"nodes": nodes, "bits": packed, "rows": int(host.codes.shape[0])}


# -- evaluation, scoring ----------------------------------------------------------------


def _model_trees(party: Party) -> tuple[list[Tree], list[tuple[str, int]], float]:
    doc = party.store.json("gb_state")
    layout = _binner(party).layout
    hosts = _host_layouts(party)
    joint, owner = joint_layout(layout, hosts)
    trees = [Tree.from_dict(t, columns=len(joint.names)) for t in doc["trees"]]
    return trees, owner, float(doc.get("base_score", 0.5))


def evaluate(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """The guest: add the given trees to the margins of a split's rows (the hosts' bits
    route their splits); log-loss, AUC and KS of the result (none for ``score``)."""
    split = str(payload["split"])
    codes = _codes(party, split)
    rows = _rows(payload, codes.shape[0])
    idx = np.arange(codes.shape[0]) if rows is None else rows
    trees, owner, base = _model_trees(party)
    key = f"gb_margin_{split}"
    if payload.get("reset") or not party.store.has(key):
        margin = np.full(idx.size, Model(_binner(party).layout, base, []).base_margin, F32)
    else:
        margin = party.store.weights(key)["m"].astype(F32)
    bits: dict[int, dict[int, npt.NDArray[np.bool_]]] = {}
    for h, reply in (payload.get("bits") or {}).items():
        packed = np.asarray(reply["bits"], dtype=np.uint8)
        if int(reply["rows"]) != idx.size:
            raise FederationError(f"party {h!r}: routed {reply['rows']} rows, expected "
                                  f"{idx.size}")
        for j, (t, node) in enumerate(reply["nodes"]):
            bits.setdefault(int(t), {})[int(node)] = np.unpackbits(
                packed[j], count=idx.size).astype(bool)
    for t in (int(t) for t in payload["trees"]):
        if not 0 <= t < len(trees):
            raise FederationError(f"malformed message: no tree {t}")
        margin += trees[t].value[route(trees[t], codes[idx], owner, bits.get(t, {}))]
    party.store.put_weights(key, m=margin)
    if split == "score":
        party.store.put_array("z_score", margin.astype(np.float64))
        return {"rows": int(idx.size)}
    y = party.store.array(f"y_{split}")[idx]
    p = sigmoid(margin).astype(np.float64)
    return {"loss": logloss(y, p), "auc": auc(y, margin), "ks": ks(y, margin)}


def guest_only(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """The guest's columns alone: the same trees' parameters on its training rows,
    scored on the same evaluation rows as the joint model."""
    codes, y, layout = _guest_data(party)
    model, _ = train_local(codes, y, layout, _params(party))
    split = str(payload["split"])
    ec = _codes(party, split)
    rows = _rows(payload, ec.shape[0])
    idx = np.arange(ec.shape[0]) if rows is None else rows
    m = model.margin(ec[idx])
    ye = party.store.array(f"y_{split}")[idx]
    return {"auc": auc(ye, m), "ks": ks(ye, m)}


def importance(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """The guest: gain and split counts of the first ``trees`` trees, per party (host
    columns by number)."""
    trees, owner, base = _model_trees(party)
    joint, _ = joint_layout(_binner(party).layout, _host_layouts(party))
    kept = trees[: int(payload.get("trees", len(trees)))]
    return {"importance": VerticalModel(Model(joint, base, kept), owner).importance()}


# -- the model parts --------------------------------------------------------------------


def model_part(party: Party, trees: int) -> dict[str, Any]:
    """This party's part of a trained model (the first ``trees`` trees)."""
    part: dict[str, Any] = {"model": "gbdt", "role": party.role, "party": party.name,
                            "bins": _binner(party).to_json(), "trees": trees}
    if party.role == "guest":
        doc = party.store.json("gb_state")
        part.update(label=party.setup["label"],
                    positive=party.store.json("label")["positive"],
                    base_score=float(doc.get("base_score", 0.5)),
                    hosts=party.store.json("gb_hosts"), tree_list=doc["trees"][:trees])
    else:
        part["splits"] = [s for s in party.store.json("gb_splits") if int(s[0]) < trees]
    return part


def load_part(party: Party, part: dict[str, Any], path: str) -> dict[str, Any]:
    """Restore a saved part to score the aligned ``score`` rows."""
    try:
        binner = Binner.from_json(str(part["bins"]))
        trees = int(part["trees"])
        if party.role == "guest":
            hosts = [[str(h), {"bins": [int(b) for b in d["bins"]],
                               "categorical": [bool(c) for c in d["categorical"]]}]
                     for h, d in part["hosts"]]
            doc = {"trees": list(part["tree_list"]), "base_score": float(part["base_score"])}
            if len(doc["trees"]) != trees:
                raise ValueError("tree count")
        else:
            splits = [[int(v) for v in s[:4]] + [bool(s[4]), bool(s[5])]
                      for s in part["splits"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"party {party.name!r}: unreadable model part ({exc})",
                         file=path) from None
    party.store.put_json("scoring", True)
    party.store.put_blob("gb_binner", binner.to_json().encode())
    party.store.put_array("gb_codes_score", binner.codes(party.aligned("score")))
    if party.role == "guest":
        party.store.put_json("gb_hosts", hosts)
        party.store.put_json("gb_state", doc)
        _model_trees(party)  # checks every tree against the layout
    else:
        party.store.put_json("gb_splits", splits)
    return {"model": "gbdt", "trees": trees}

