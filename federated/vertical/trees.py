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
  (:func:`level`), the hosts route the rows at their splits (:func:`route_rows`) and keep
  those splits in their lookup table, the guest moves the rows on (:func:`routed`);
* to evaluate or score, rows go down the trees level by level (:func:`evaluate`,
  :func:`evaluate_step`): the guest applies its own splits and asks a host only about
  the rows that reach one of that host's splits (:func:`evaluate_route`).

Routing questions and answers between the guest and a host are sealed under their
pairwise key (:mod:`federated.vertical.channel`): the coordinator relays them unread and
cannot forge them. A host checks every question against its own view of the tree: the
current tree and level, nodes that hold rows and are not split yet, a column, kind and
bin it has; it routes only the rows at that node, and later answers only for splits in
its lookup table.

At the end each party writes its own part of the model (:func:`model_part`): the guest
its bins, the trees (a host split as host, column number and bin code only) and who owns
each column; a host its bins and its lookup table (column and bin of each of its splits).
"""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from federated.metrics import summary
from federated.trees.binning import Binner, local_binner
from federated.trees.booster import Layout, Model, Params, Tree, sigmoid, train_local
from federated.trees.secureboost import (
    GHPacking,
    Guest,
    Host,
    HostAsk,
    HostSplit,
    RouteAsk,
    Router,
    VerticalModel,
    joint_layout,
)
from federated.vertical import channel
from federated.vertical.features import take_rows
from federated.vertical.party import Party, checked_rows
from privacy.errors import FederationError, InputError

__all__ = ["prepare", "keygen", "setup", "begin_tree", "histograms", "level", "route_rows",
           "routed", "evaluate", "evaluate_route", "evaluate_step", "guest_only",
           "importance", "model_part", "load_part"]

Codes = npt.NDArray[np.uint16]
SPLITS = ("train", "test", "score")


# -- sealed messages between the guest and a host ---------------------------------------


def _seal(party: Party, peer: str, label: str, **arrays: npt.NDArray[Any]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return channel.box(party.pair(peer), buf.getvalue(), label=f"gb/{label}")


def _open(party: Party, peer: str, label: str, blob: Any) -> dict[str, npt.NDArray[Any]]:
    data = channel.unbox(party.pair(peer), bytes(blob), label=f"gb/{label}", sender=peer)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: np.asarray(z[k]) for k in z.files}
    except (OSError, ValueError) as exc:
        raise FederationError(f"party {peer!r}: malformed sealed message ({exc})") from None


def _guest_name(party: Party) -> str:
    return str(party.store.json("gb_guest"))


# -- set-up ---------------------------------------------------------------------------


def _binner(party: Party) -> Binner:
    return Binner.from_json(party.store.blob("gb_binner").decode())


def _codes(party: Party, split: str) -> Codes:
    if split not in SPLITS:
        raise FederationError(f"malformed message: split {split!r}")
    return party.store.array(f"gb_codes_{split}").astype(np.uint16)


def _fit_rows(party: Party) -> npt.NDArray[np.int64]:
    return party.store.array("gb_fit").astype(np.int64)


def _params(party: Party) -> Params:
    return Params.from_json(str(party.store.json("gb_params")))


def prepare(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """Bin this party's columns on the training rows; code every aligned split; the
    guest also labels its rows. Returns the bins (counts and kinds, not cut points)."""
    train = checked_rows(payload.get("train_rows"), party.aligned("train").rows,
                         what="training rows")
    if train.size < 2:
        raise FederationError("malformed message: fewer than 2 training rows")
    params = Params.from_json(str(payload.get("params")))
    binner = local_binner(take_rows(party.aligned("train"), train), party.kinds(),
                          max_bins=params.max_bins)
    party.store.put_blob("gb_binner", binner.to_json().encode())
    party.store.put_json("gb_params", params.to_json())
    party.store.put_json("gb_guest", str(payload.get("guest", "")))
    party.store.put_array("gb_fit", train)
    for split in ("train", "test"):
        if party.store.has(f"rows_{split}"):
            party.store.put_array(f"gb_codes_{split}", binner.codes(party.aligned(split)))
    if party.role == "guest":
        party.store_labels()  # type: ignore[attr-defined]
    lay = binner.layout
    return {"bins": lay.bins, "categorical": lay.categorical, "columns": lay.names,
            "levels": lay.levels}


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
    layouts = []
    for h, d in hosts.items():
        try:
            bins = [int(b) for b in d["bins"]]
            cat = [bool(c) for c in d["categorical"]]
            if len(bins) != len(cat) or not bins or not all(1 <= b <= 60_000 for b in bins):
                raise ValueError("counts")
        except (KeyError, TypeError, ValueError):
            raise FederationError(f"party {h!r}: malformed bins") from None
        layouts.append([str(h), {"bins": bins, "categorical": cat}])
    party.store.put_json("gb_hosts", layouts)
    bits = int(payload.get("key_bits") or 3072)
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
    party.store.put_json("gb_host", {"tree": -1, "level": -1})
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
    return Guest.restore(codes, y, layout, _host_layouts(party), _params(party),
                         _keys(party), party.store.json("gb_state"),
                         party.store.weights("gb_arrays"))


def _save_guest(party: Party, guest: Guest) -> None:
    doc, arrays = guest.state()
    party.store.put_weights("gb_arrays", **arrays)
    party.store.put_json("gb_state", doc)


def begin_tree(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """The guest: the rows' gradients, encrypted, and the first node to build."""
    guest = _load_guest(party)
    if len(guest.model.trees) >= guest.params.trees:
        raise FederationError(f"all {guest.params.trees} trees are grown")
    enc = guest.begin_tree()
    _save_guest(party, guest)
    return {"gh": guest.public.ciphertexts_to_bytes(enc), "tree": len(guest.model.trees),
            "build": guest.build, "pos": guest.pos}


def level(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """The guest: the hosts' packed sums -> this level's splits; the routing questions
    for each host whose columns won a split (sealed to that host)."""
    guest = _load_guest(party)
    sums = payload.get("sums")
    if not isinstance(sums, dict):
        raise FederationError("malformed message: no host sums")
    decoded = {str(h): guest.public.ciphertexts_from_bytes(bytes(b), what=f"party {h!r}: sums")
               for h, b in sums.items()}
    asks = guest.level(decoded)
    _save_guest(party, guest)
    tree = len(guest.model.trees)
    return {"asks": {h: _seal(party, h, "ask", tree=np.asarray([tree]), asks=np.asarray(
        [[a.node, a.column, a.threshold, a.categorical, a.default_left] for a in host_asks],
        dtype=np.int64)) for h, host_asks in asks.items()}}


def routed(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """The guest: the hosts' sealed answers; the next level (or the tree is done)."""
    guest = _load_guest(party)
    right: dict[str, list[npt.NDArray[np.bool_]]] = {}
    for h, blob in (payload.get("right") or {}).items():
        bits = _open(party, str(h), "answer", blob)["bits"]
        sizes = [a.rows.size for a in guest.asked.get(str(h), [])]
        right[str(h)] = _split_bits(bits, sizes, str(h))
    done = guest.routed(right)
    _save_guest(party, guest)
    return {"done": done, "trees": len(guest.model.trees),
            "loss": guest.losses[-1] if done else None, "build": guest.build,
            "pos": guest.pos}


def _split_bits(packed: npt.NDArray[Any], sizes: list[int], host: str
                ) -> list[npt.NDArray[np.bool_]]:
    """Packed answers back to one boolean array per question."""
    total = sum(sizes)
    if packed.dtype != np.uint8 or packed.ndim != 1 or packed.size != -(-total // 8):
        raise FederationError(f"party {host!r}: routed {packed.size * 8} rows, asked {total}")
    bits = np.unpackbits(packed, count=total).astype(bool)
    return list(np.split(bits, np.cumsum(sizes)[:-1])) if sizes else []


# -- the hosts ------------------------------------------------------------------------


def _host(party: Party, codes: Codes | None = None) -> Host:
    """This host over its training rows (or given codes), with its lookup table."""
    if codes is None:
        codes = _codes(party, "train")[_fit_rows(party)]
    host = Host(party.name, codes, _binner(party).layout, check=False)
    host.splits = {(int(t), int(n)): HostSplit(int(c), int(k), bool(cat), bool(d))
                   for t, n, c, k, cat, d in party.store.json("gb_splits")}
    return host


def _public(party: Party) -> Any:
    from privacy.he.serial import load

    return party.store.cached("gb_public", lambda: load(
        party.store.blob("gb_public"), source="the guest's public key", kind="public_key"))


def _check_positions(party: Party, host: Host, state: dict[str, int], pos: Any,
                     build: list[int]) -> npt.NDArray[np.int64]:
    """The guest's node of every row at this level, checked against the tree so far:
    each row stays or moves to a child of its node, the rows at this host's splits as
    it routed them; the nodes to build hold rows and are at most one per split."""
    n = host.codes.shape[0]
    new = checked_rows(pos, 2 ** 11, what="node positions")
    if new.shape != (n,) or len(set(build)) != len(build) or not build \
            or not set(build) <= set(np.unique(new).tolist()):
        raise FederationError(f"party {_guest_name(party)!r}: malformed node positions")
    if state["level"] == 0:
        if new.any() or build != [0]:
            raise FederationError(f"party {_guest_name(party)!r}: a tree must start at "
                                  "the root")
        return new
    old = party.store.array("gb_pos").astype(np.int64)
    if not np.all((new == old) | (new == 2 * old + 1) | (new == 2 * old + 2)) \
            or len(build) > 2 ** (state["level"] - 1):
        raise FederationError(f"party {_guest_name(party)!r}: node positions do not follow "
                              "the tree")
    for (t, node), _ in host.splits.items():
        if t == state["tree"]:
            rows = np.flatnonzero(old == node)
            if rows.size:
                want = 2 * node + 1 + host.route_known(t, node, rows).astype(np.int64)
                if not np.array_equal(new[rows], want):
                    raise FederationError(f"party {_guest_name(party)!r}: rows did not go "
                                          f"where this host routed them at node {node}")
    return new


def histograms(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """A host: the encrypted per-bin sums of the nodes to build. A tree's encrypted
    gradients come with its first level (and only then) and are kept until the next."""
    public = _public(party)
    host = _host(party)
    state = dict(party.store.json("gb_host"))
    params = _params(party)
    if payload.get("gh") is not None:
        if state["tree"] + 1 >= params.trees:
            raise FederationError(f"party {_guest_name(party)!r}: more than "
                                  f"{params.trees} trees")
        state = {"tree": state["tree"] + 1, "level": 0}
        party.store.put_blob("gb_gh", bytes(payload["gh"]))
    else:
        if state["tree"] < 0 or state["level"] + 1 >= params.max_depth:
            raise FederationError(f"party {_guest_name(party)!r}: no tree level to build")
        state["level"] += 1
    build = [int(b) for b in payload.get("build") or []]
    pos = _check_positions(party, host, state, payload.get("pos"), build)
    enc = public.ciphertexts_from_bytes(party.store.blob("gb_gh"),
                                        what=f"party {_guest_name(party)!r}: gradients")
    host.receive_key(public)
    sums = host.encrypted_histograms(enc, pos, build, GHPacking())
    party.store.put_array("gb_pos", pos)
    party.store.put_json("gb_host", state)
    return {"sums": public.ciphertexts_to_bytes(sums)}


def _save_splits(party: Party, host: Host) -> None:
    party.store.put_json("gb_splits", [[t, n, s.column, s.threshold, s.categorical,
                                        s.default_left]
                                       for (t, n), s in sorted(host.splits.items())])


def route_rows(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """A host: which rows go right at each of the guest's splits on its columns (the
    rows at that node on this level); the splits join its lookup table."""
    guest = _guest_name(party)
    msg = _open(party, guest, "ask", payload.get("asks"))
    state = party.store.json("gb_host")
    host = _host(party)
    pos = party.store.array("gb_pos").astype(np.int64)
    asks = np.asarray(msg.get("asks"), dtype=np.int64).reshape(-1, 5)
    if int(np.asarray(msg.get("tree")).ravel()[0]) != state["tree"]:
        raise FederationError(f"party {guest!r}: routing questions for another tree")
    right = []
    for node, column, threshold, cat, dleft in asks.tolist():
        rows = np.flatnonzero(pos == node)
        if not rows.size:
            raise FederationError(f"party {guest!r}: node {node} holds no rows")
        right.append(host.go_right(state["tree"], RouteAsk(node, column, threshold,
                                                           bool(cat), bool(dleft), rows)))
    _save_splits(party, host)
    bits = np.concatenate(right) if right else np.zeros(0, bool)
    return {"right": _seal(party, guest, "answer", bits=np.packbits(bits))}


# -- evaluation, scoring ----------------------------------------------------------------


def _model_trees(party: Party) -> tuple[list[Tree], list[tuple[str, int]], float]:
    doc = party.store.json("gb_state")
    joint, owner = joint_layout(_binner(party).layout, _host_layouts(party))
    trees = [Tree.from_dict(t, columns=len(joint.names)) for t in doc["trees"]]
    return trees, owner, float(doc.get("base_score", 0.5))


def _eval_rows(party: Party, split: str, rows: Any) -> npt.NDArray[np.int64]:
    n = _codes(party, split).shape[0]
    return np.arange(n) if rows is None else checked_rows(rows, n)


def _router(party: Party, numbers: list[int], pos: Any = None) -> Router:
    spec = party.store.json("gb_eval")
    trees, owner, _ = _model_trees(party)
    if any(not 0 <= t < len(trees) for t in numbers):
        raise FederationError(f"malformed message: trees {numbers} (grown: {len(trees)})")
    idx = _eval_rows(party, spec["split"], spec["rows"])
    return Router([trees[t] for t in numbers], numbers, owner,
                  _codes(party, spec["split"])[idx], pos)


def _ask_hosts(party: Party, router: Router) -> dict[str, Any]:
    """Seal each host's routing questions; or, every row at a leaf, the result."""
    asks = router.asks()
    party.store.put_array("gb_eval_pos", router.pos)
    if asks:
        out = {}
        for h, host_asks in asks.items():
            head = np.asarray([[t, node, rows.size] for t, node, rows in host_asks], np.int64)
            out[h] = _seal(party, h, "eval-ask", head=head,
                           rows=np.concatenate([rows for _, _, rows in host_asks]))
        party.store.put_json("gb_eval_asks", {h: [[t, n] for t, n, _ in a]
                                              for h, a in asks.items()})
        return {"asks": out}
    return _finish_eval(party, router)


def evaluate(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """The guest: start adding the given trees to the margins of a split's rows (or of
    ``rows`` of it; ``reset`` starts again from the base score)."""
    split = str(payload.get("split"))
    idx = _eval_rows(party, split, payload.get("rows"))
    numbers = [int(t) for t in payload.get("trees") or []]
    party.store.put_json("gb_eval", {"split": split, "rows": None if payload.get("rows")
                                     is None else idx.tolist(), "trees": numbers,
                                     "reset": bool(payload.get("reset"))})
    return _ask_hosts(party, _router(party, numbers))


def evaluate_step(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """The guest: the hosts' sealed answers; the next questions, or the result."""
    spec = party.store.json("gb_eval")
    router = _router(party, spec["trees"], party.store.array("gb_eval_pos"))
    pending = party.store.json("gb_eval_asks")
    asks: dict[str, list[HostAsk]] = {}
    rights: dict[str, list[npt.NDArray[np.bool_]]] = {}
    index = {t: i for i, t in enumerate(router.numbers)}
    for h, refs in pending.items():
        asks[h] = [(t, n, np.flatnonzero(router.pos[index[t]] == n)) for t, n in refs]
        blob = (payload.get("answers") or {}).get(h)
        if blob is None:
            raise FederationError(f"party {h!r} sent no routing answers")
        rights[h] = _split_bits(_open(party, h, "eval-answer", blob)["bits"],
                                [a[2].size for a in asks[h]], h)
    router.answer(asks, rights)
    return _ask_hosts(party, router)


def _finish_eval(party: Party, router: Router) -> dict[str, Any]:
    spec = party.store.json("gb_eval")
    split = spec["split"]
    key = f"gb_margin_{split}"
    _, _, base = _model_trees(party)
    start = np.float32(Model(_binner(party).layout, base, []).base_margin)
    if not spec["reset"] and party.store.has(key):
        before = party.store.weights(key)["m"].astype(np.float32)
        margin = router.margin(np.float32(0.0))
        if before.shape != margin.shape:
            raise FederationError(f"the {split} margins have {before.size} rows, not "
                                  f"{margin.size}")
        margin = before + margin
    else:
        margin = router.margin(start)
    party.store.put_weights(key, m=margin)
    idx = _eval_rows(party, split, spec["rows"])
    return party.margin_metrics(split, idx, margin)  # type: ignore[attr-defined, no-any-return]


def evaluate_route(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """A host: which of the rows waiting at its splits go right (only splits in its
    lookup table; rows of the split being evaluated)."""
    guest = _guest_name(party)
    split = str(payload.get("split"))
    codes = _codes(party, split)
    idx = np.arange(codes.shape[0]) if payload.get("rows") is None else \
        checked_rows(payload["rows"], codes.shape[0])
    host = _host(party, codes[idx])
    msg = _open(party, guest, "eval-ask", payload.get("asks"))
    head = np.asarray(msg.get("head"), dtype=np.int64).reshape(-1, 3)
    rows = np.asarray(msg.get("rows"), dtype=np.int64)
    if int(head[:, 2].sum()) != rows.size:
        raise FederationError(f"party {guest!r}: malformed routing questions")
    parts = np.split(rows, np.cumsum(head[:, 2])[:-1]) if head.size else []
    right = [host.route_known(int(t), int(node), r)
             for (t, node, _), r in zip(head.tolist(), parts, strict=True)]
    bits = np.concatenate(right) if right else np.zeros(0, bool)
    return {"answers": _seal(party, guest, "eval-answer", bits=np.packbits(bits))}


def guest_only(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """The guest's columns alone: as many trees with the same parameters on its training
    rows, scored on the same evaluation rows as the joint model."""
    codes, y, layout = _guest_data(party)
    params = _params(party)
    trees = min(max(int(payload.get("trees") or params.trees), 1), params.trees)
    model, _ = train_local(codes, y, layout, replace(params, trees=trees))
    split = str(payload.get("split"))
    idx = _eval_rows(party, split, payload.get("rows"))
    m = model.margin(_codes(party, split)[idx])
    ye = party.store.array(f"y_{split}")[idx]
    s = summary(ye, sigmoid(m).astype(np.float64))
    return {"auc": s["auc"], "ks": s["ks"]}


def importance(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """The guest: gain and split counts of the first ``trees`` trees, per party (host
    columns by number)."""
    trees, owner, base = _model_trees(party)
    joint, _ = joint_layout(_binner(party).layout, _host_layouts(party))
    kept = trees[: int(payload.get("trees", len(trees)))]
    return {"importance": VerticalModel(Model(joint, base, kept), owner).importance()}


# -- the model parts --------------------------------------------------------------------


def model_part(party: Party, trees: int) -> dict[str, Any]:
    """This party's part of a trained model (the first ``trees`` trees).

    Raises
    ------
    FederationError
        ``trees`` is not a number of whole trees this party has (nothing is written
        mid-tree).
    """
    part: dict[str, Any] = {"model": "gbdt", "role": party.role, "party": party.name,
                            "bins": _binner(party).to_json(), "trees": trees}
    if party.role == "guest":
        doc = party.store.json("gb_state")
        if doc.get("step") is not None or not 0 < trees <= len(doc["trees"]):
            raise FederationError(f"party {party.name!r}: no model of {trees} whole trees "
                                  "to write")
        part.update(label=party.setup["label"],
                    positive=party.store.json("label")["positive"],
                    base_score=float(doc.get("base_score", 0.5)),
                    hosts=party.store.json("gb_hosts"), tree_list=doc["trees"][:trees])
    else:
        if not 0 < trees <= party.store.json("gb_host")["tree"] + 1:
            raise FederationError(f"party {party.name!r}: no model of {trees} trees to write")
        part["splits"] = [s for s in party.store.json("gb_splits") if int(s[0]) < trees]
    return part


def load_part(party: Party, part: dict[str, Any], path: str, guest: str) -> dict[str, Any]:
    """Restore a saved part to score the aligned ``score`` rows (``guest``: the party
    that asks a host its routing questions)."""
    try:
        binner = Binner.from_json(str(part["bins"]))
        trees = int(part["trees"])
        if party.role == "guest":
            hosts = [[str(h), {"bins": [int(b) for b in d["bins"]],
                               "categorical": [bool(c) for c in d["categorical"]]}]
                     for h, d in part["hosts"]]
            doc = {"trees": list(part["tree_list"]), "base_score": float(part["base_score"])}
            if len(doc["trees"]) != trees or trees < 1:
                raise ValueError("tree count")
        else:
            splits = [[int(v) for v in s[:4]] + [bool(s[4]), bool(s[5])]
                      for s in part["splits"]]
            lay = binner.layout
            if any(not 0 <= s[0] < trees or not 0 <= s[2] < len(lay.names)
                   or not 0 <= s[3] <= lay.bins[s[2]] for s in splits):
                raise ValueError("a split outside the host's trees or bins")
    except (KeyError, TypeError, ValueError, IndexError) as exc:
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
        party.store.put_json("gb_guest", guest)
    return {"model": "gbdt", "trees": trees, "run": part.get("run")}
