"""The coordinator of a vertical run: the order of the steps, over any transport.

``Send(party, action, payload) -> reply`` is the transport (Flower's Grid in a run, a
direct call in tests). The coordinator relays ciphertexts, HMAC tags and PSI points; it
holds no key and sees no plaintext beyond sizes, widths and the evaluation metrics.

Steps (``v.*`` actions, see :mod:`federated.vertical.client`):

1. ``hello``/``peers``: each party checks its files and publishes an X25519 key.
2. ``psi_start``/``psi_respond``/``psi_finish``/``align`` per split (train, test):
   ECDH-PSI guest x host, then the guest sends each host its aligned order as HMAC tags.
3. ``prepare``: each party fits its features on the training rows; ``keygen`` at the
   guest, ``setup`` at each host (CKKS public keys, the hosts' mask seed).
4. ``iv_*``: information value of every column (optional).
5. Per epoch, per mini-batch: ``fwd`` (guest) -> ``fwd`` (hosts) -> ``bwd`` (guest) ->
   ``bwd`` (hosts); the hosts' gradient shares reach the guest with its next step.
   Learning rate ``lr0 / (1 + epoch)`` with ``lr0 = 1 / L``, ``L = (1 + hosts) / 4 + lam``
   (each party's block is whitened, so its Hessian block is at most ``I/4``).
6. Per epoch: ``score_request``/``scores`` on the evaluation rows (the test file, or a
   validation split), early stopping on their log-loss when asked.
7. ``finish``: each party writes its own part of the model (never sent) and forgets the run.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from federated.vertical.party import batches
from privacy.errors import FederationError, InputError

__all__ = ["Send", "Job", "Aligned", "align_training", "evaluate_trees", "run_vertical",
           "score_vertical", "iv_vertical", "LEARNS", "LEARNS_TREES"]

#: What each role learns in a run (docs/vertical-fl.md; written to each party's ledger).
LEARNS = {
    "guest": ("the intersection; the hosts' partial scores and gradients masked by the "
              "hosts (z_k - rho_k, g_k - sigma_k); its own gradient; the hosts' partial "
              "scores of the evaluation rows each epoch and of scored rows; per-bin event "
              "counts of host columns (IV). Never host features or host weights (it holds "
              "a random share)."),
    "host": ("the intersection (its customers the guest also has) and the row order; "
             "ciphertexts under the guest's key. Never labels, residuals, gradients, "
             "scores or the guest's data; it decrypts nothing."),
}
#: The same for gradient-boosted trees (``model = "gbdt"``; docs/vertical-fl.md).
LEARNS_TREES = {
    "guest": ("the intersection; per node it builds, each host bin's gradient and hessian "
              "sums; the host, column number and bin code of each host split and which "
              "rows go right there (training rows; evaluated and scored rows at that "
              "host's splits). Never host features, bin edges or column names."),
    "host": ("the intersection and the row order; the node every training row reaches, "
             "level by level; which evaluated or scored rows reach its own splits; "
             "ciphertexts of the gradients under the guest's Paillier key. Never labels, "
             "gradients, margins or the guest's data; it decrypts nothing."),
}

Send = Callable[[str, str, dict[str, Any]], dict[str, Any]]
Progress = Callable[[int, int], None]


class Job:
    """One job's parties and transport: the steps every job starts with."""

    def __init__(self, send: Send, cfg: dict[str, Any], guest: str, hosts: list[str]) -> None:
        self.send, self.cfg, self.guest, self.hosts = send, cfg, guest, hosts
        self.parties = [guest, *hosts]

    def hello(self, splits: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        replies = {p: self.send(p, "v.hello", {"splits": list(splits)}) for p in self.parties}
        for p, r in replies.items():
            if r.get("role") != ("guest" if p == self.guest else "host"):
                raise FederationError(f"party {p!r}: answered as {r.get('role')!r}")
        keys = {p: r["public"] for p, r in replies.items()}
        for p in self.parties:
            self.send(p, "v.peers", {"public": keys})
        for split in splits:
            have = [p for p in self.parties if split in replies[p]["rows"]]
            if have and len(have) < len(self.parties):
                lacking = [p for p in self.parties if p not in have]
                raise InputError(f"party {lacking[0]!r}: has no {split} file but "
                                 f"{', '.join(have)} do (every party needs one, or none)")
        return replies

    def align(self, split: str) -> int:
        for h in self.hosts:
            start = self.send(self.guest, "v.psi_start", {"split": split, "host": h})
            resp = self.send(h, "v.psi_respond", {"split": split, "guest": self.guest,
                                                  "hello": start["hello"],
                                                  "points": start["points"]})
            self.send(self.guest, "v.psi_finish", {"split": split, "host": h, **resp})
        tags = self.send(self.guest, "v.align", {"split": split, "hosts": self.hosts,
                                                 "seed": int(self.cfg.get("seed", 0))})
        for h in self.hosts:
            got = self.send(h, "v.align", {"split": split, "guest": self.guest,
                                           "tags": tags["tags"][h]})
            if int(got["size"]) != int(tags["size"]):
                raise FederationError(f"party {h!r}: aligned {got['size']} rows, expected "
                                      f"{tags['size']}")
        return int(tags["size"])


@dataclass
class Aligned:
    """A training job's customers after alignment (:func:`align_training`)."""

    hello: dict[str, dict[str, Any]]
    sizes: dict[str, int]
    psi_seconds: float
    train: npt.NDArray[np.int64]
    valid: npt.NDArray[np.int64]
    use_validation: bool

    @property
    def has_test(self) -> bool:
        """Whether the parties have test files (aligned too)."""
        return "test" in self.sizes


def align_training(job: Job, *, early_stopping: bool, fraction: float, seed: int) -> Aligned:
    """Hello, PSI alignment of the train (and test) files, and the validation rows: held
    out of the aligned training rows when stopping early or without test files.

    Raises
    ------
    InputError
        Too few shared customers to train and validate.
    """
    hello = job.hello(("train", "test"))
    t0 = time.perf_counter()
    sizes = {"train": job.align("train")}
    if "test" in hello[job.guest]["rows"]:
        sizes["test"] = job.align("test")
    psi_seconds = time.perf_counter() - t0
    n = sizes["train"]
    use_validation = early_stopping or "test" not in sizes
    train, valid = _validation(n, fraction if use_validation else 0.0, seed)
    if train.size < 2 or (use_validation and valid.size < 2):
        raise InputError(f"only {n} shared training customers: too few to train and validate")
    return Aligned(hello, sizes, psi_seconds, train, valid, use_validation)


def _validation(n: int, fraction: float, seed: int) -> tuple[npt.NDArray[np.int64],
                                                             npt.NDArray[np.int64]]:
    perm = np.random.default_rng(seed + 7919).permutation(n).astype(np.int64)
    k = int(round(n * fraction))
    return np.sort(perm[k:]), np.sort(perm[:k])


def _iv(job: Job, train: npt.NDArray[np.int64], bins: int, batch_size: int
        ) -> tuple[dict[str, float], dict[str, str]]:
    """Information value of every party's columns and the party holding each; a column
    name several parties hold is reported as ``party:column`` for each of them."""
    per_party = {job.guest: dict(job.send(job.guest, "v.iv_own",
                                          {"train_rows": train, "bins": bins})["iv"])}
    for h in job.hosts:
        layout = job.send(h, "v.iv_layout", {"train_rows": train, "bins": bins})
        for rows in (train[b] for b in batches(train.size, batch_size, 0)):
            y = job.send(job.guest, "v.iv_request", {"rows": rows, "n1": layout["n1"]})
            job.send(h, "v.iv_sum", {"rows": rows, "y": y["y"]})
        sums = job.send(h, "v.iv_result", {})
        got = job.send(job.guest, "v.iv_decrypt", {"host": h, "sums": sums["sums"],
                                                   "totals": layout["totals"],
                                                   "columns": layout["columns"]})
        per_party[h] = dict(got["iv"])
    held = Counter(c for values in per_party.values() for c in values)
    iv: dict[str, float] = {}
    owner: dict[str, str] = {}
    for party, values in per_party.items():
        for column, value in values.items():
            name = column if held[column] == 1 else f"{party}:{column}"
            iv[name] = value
            owner[name] = party
    return iv, owner


def _evaluate(job: Job, split: str, rows: npt.NDArray[np.int64] | None,
              grads: dict[str, Any], lr_prev: float) -> dict[str, Any]:
    req = job.send(job.guest, "v.score_request", {"grads": grads, "lr_prev": lr_prev})
    z = {h: job.send(h, "v.scores", {"split": split, "rows": rows, "w": req[f"w:{h}"]})["z"]
         for h in job.hosts}
    return job.send(job.guest, "v.scores", {"split": split, "rows": rows, "z": z})


def _keys(job: Job, widths: dict[str, int], guest_width: int) -> None:
    bundle = job.send(job.guest, "v.keygen", {"widths": widths})["bundle"]
    first = job.send(job.hosts[0], "v.setup", {"bundle": bundle, "hosts": job.hosts,
                                               "guest_width": guest_width})
    for h in job.hosts[1:]:
        job.send(h, "v.setup", {"bundle": bundle, "hosts": job.hosts,
                                "box": first["boxes"][h], "guest_width": guest_width})


def iv_vertical(send: Send, cfg: dict[str, Any], guest: str, hosts: list[str]
                ) -> dict[str, Any]:
    """Information value of every party's columns on the aligned training rows; only
    per-bin counts reach the guest (``covault fl iv``)."""
    job = Job(send, cfg, guest, hosts)
    job.hello(("train",))
    n = job.align("train")
    train = np.arange(n, dtype=np.int64)
    prep = {p: job.send(p, "v.prepare", {"train_rows": train, "lam": 1.0 / n})
            for p in job.parties}
    _keys(job, {h: int(prep[h]["width"]) for h in hosts}, int(prep[guest]["width"]))
    iv, owner = _iv(job, train, int(cfg.get("iv_bins", 10)),
                    int(cfg.get("training", {}).get("batch_size", 4096)))
    for p in job.parties:
        send(p, "v.finish", {})
    return {"kind": "vertical", "intersection": n, "iv": iv, "party": owner}


def run_vertical(send: Send, cfg: dict[str, Any], guest: str, hosts: list[str], *,
                 progress: Progress | None = None) -> dict[str, Any]:
    """Align, train and evaluate; the result dict of ``covault fl run --format json``."""
    t_start = time.perf_counter()
    job = Job(send, cfg, guest, hosts)
    training = cfg["training"]
    seed = int(cfg.get("seed", 0))
    early = bool(training.get("early_stopping", False))
    aligned = align_training(job, early_stopping=early,
                             fraction=float(training.get("validation", 0.1)), seed=seed)
    hello, sizes, has_test = aligned.hello, aligned.sizes, aligned.has_test
    train, valid, use_validation = aligned.train, aligned.valid, aligned.use_validation
    lam = 1.0 / (float(training.get("C", 1.0)) * train.size)
    prep = {p: job.send(p, "v.prepare", {"train_rows": train, "lam": lam})
            for p in job.parties}
    _keys(job, {h: int(prep[h]["width"]) for h in hosts}, int(prep[guest]["width"]))
    batch_size = int(training.get("batch_size", 4096))
    iv = _iv(job, train, int(cfg.get("iv_bins", 10)), batch_size)[0] \
        if cfg.get("iv", True) else {}
    lr0 = 1.0 / ((1 + len(hosts)) / 4.0 + lam) if training.get("learning_rate", "auto") \
        == "auto" else float(training["learning_rate"])
    parts = batches(train.size, batch_size, seed)
    epochs = int(cfg["epochs"])
    eval_split, eval_rows = ("valid", valid) if use_validation else ("test", None)
    split_name = "train" if eval_split == "valid" else "test"
    history: list[dict[str, Any]] = []
    grads: dict[str, Any] = {}
    lr_prev = 0.0
    best, best_loss, stale = 0, float("inf"), 0
    patience = int(training.get("patience", 3))
    for epoch in range(epochs):
        t_epoch = time.perf_counter()
        lr = lr0 / (1.0 + epoch)
        for b in np.random.default_rng(seed + 1 + epoch).permutation(len(parts)).tolist():
            rows = train[parts[b]]
            f = send(guest, "v.fwd", {"rows": rows, "epoch": epoch, "batch": b, "grads": grads,
                                      "lr_prev": lr_prev, "send_rows": epoch == 0})
            zeta, cross = {}, None
            for h in hosts:
                r = send(h, "v.fwd", {"rows": rows, "epoch": epoch, "batch": b,
                                      "w": f[f"w:{h}"],
                                      "xg": f.get("xg") if h == hosts[0] else None})
                zeta[h] = r["zeta"]
                cross = r.get("cross", cross)
            g = send(guest, "v.bwd", {"rows": rows, "epoch": epoch, "batch": b,
                                      "zeta": zeta, "cross": cross, "lr": lr})
            grads = {h: send(h, "v.bwd", {"rows": rows, "epoch": epoch, "batch": b,
                                          "d": g["d"], "lr": lr})["grad"] for h in hosts}
            lr_prev = lr
        m = _evaluate(job, split_name, eval_rows, grads, lr_prev)
        grads = {}
        history.append({"epoch": epoch + 1, "loss": m["loss"], "auc": m["auc"],
                        "ks": m["ks"], "seconds": round(time.perf_counter() - t_epoch, 3)})
        if progress is not None:
            progress(epoch + 1, epochs)
        if early:
            if m["loss"] < best_loss * (1.0 - float(training.get("tol", 1e-4))):
                best, best_loss, stale = epoch + 1, m["loss"], 0
                for p in job.parties:
                    send(p, "v.snapshot", {})
            else:
                stale += 1
                if stale >= patience:
                    break
    if early and best and best != len(history):
        for p in job.parties:
            send(p, "v.snapshot", {"restore": True})
    final_split, final_rows = ("test", None) if has_test else (split_name, eval_rows)
    final = _evaluate(job, final_split, final_rows, {}, 0.0)
    alone = send(guest, "v.guest_only", {"train_rows": train, "split": final_split,
                                         "rows": final_rows})
    features = {p: prep[p]["features"] for p in job.parties}
    for p in job.parties:
        send(p, "v.finish", {"write_model": True})
    return {
        "kind": "vertical", "intersection": sizes["train"],
        "test_intersection": sizes.get("test"),
        "global": {"auc": final["auc"], "ks": final["ks"], "logloss": final["loss"]},
        "guest_only": {"auc": alone["auc"], "ks": alone["ks"]},
        "history": history, "iv": iv,
        "epochs": len(history), "best_epoch": best or len(history),
        "evaluated_on": "test" if has_test else "validation",
        "parties": {p: {"role": "guest" if p == guest else "host",
                        "rows": hello[p]["rows"], "features": len(features[p])}
                    for p in job.parties},
        "features": features,
        "seconds": {"psi": round(aligned.psi_seconds, 3),
                    "total": round(time.perf_counter() - t_start, 3)},
    }


def score_vertical(send: Send, cfg: dict[str, Any], guest: str, hosts: list[str]
                   ) -> dict[str, Any]:
    """Joint scores of new customers from each party's saved model part."""
    job = Job(send, cfg, guest, hosts)
    job.hello(("score",))
    size = job.align("score")
    widths = {}
    loaded = {p: send(p, "v.load_model", {"guest": guest}) for p in job.parties}
    kind, run = loaded[guest].get("model"), loaded[guest].get("run")
    for h in hosts:
        if loaded[h].get("model") != kind or loaded[h].get("run") != run:
            raise FederationError(f"party {h!r}: its model part is not from the run that "
                                  f"made {guest!r}'s (run {loaded[h].get('run')!r}, "
                                  f"{loaded[h].get('model')}; the guest's: run {run!r}, "
                                  f"{kind}): score with the parts of one run")
    if kind == "gbdt":
        trees = list(range(int(loaded[guest]["trees"])))
        return _written(job, size, evaluate_trees(job, "score", None, trees, reset=True))
    for reply in loaded.values():
        widths.update(reply.get("widths", {}))
    bundle = send(guest, "v.keygen", {"widths": widths})["bundle"]
    for h in hosts:
        send(h, "v.setup", {"bundle": bundle, "hosts": [h], "guest_width": 1})
    return _written(job, size, _evaluate(job, "score", None, {}, 0.0))


def evaluate_trees(job: Job, split: str, rows: npt.NDArray[np.int64] | None,
                   trees: list[int], *, reset: bool = False) -> dict[str, Any]:
    """Gradient-boosted trees (``model = "gbdt"``): add ``trees`` to the guest's margins
    of a split's rows, level by level (each host is asked, sealed, about the rows at its
    own splits); the metrics, or the row count for ``score``."""
    step = job.send(job.guest, "v.gb_eval", {"split": split, "rows": rows, "trees": trees,
                                             "reset": reset})
    while step.get("asks"):
        answers = {h: job.send(h, "v.gb_eval_route", {"split": split, "rows": rows,
                                                      "asks": a})["answers"]
                   for h, a in step["asks"].items()}
        step = job.send(job.guest, "v.gb_eval_step", {"answers": answers})
    return step


def _written(job: Job, size: int, scored: dict[str, Any]) -> dict[str, Any]:
    """The guest writes the scores; every party forgets the job."""
    written = job.send(job.guest, "v.write_scores", {})
    for p in job.parties:
        job.send(p, "v.finish", {})
    return {"kind": "vertical", "scored": size, "rows": scored.get("rows"), **written}
