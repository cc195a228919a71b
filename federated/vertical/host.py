"""A host: holds features of the guest's customers, no labels, no key.

A host keeps its share ``w^h`` of its weights (the guest holds the other share ``w^g``,
so neither knows the weights ``w = w^h + w^g`` until the run ends) and computes, on the
guest's ciphertexts (:class:`~privacy.he.linear.LinearEvaluator`):

* forward: ``Enc(X w^g + X w^h - rho)`` -- its partial scores under the hosts' mask
  ``rho`` (drawn from a seed the hosts share and the guest does not know); the mask
  holder (the first host) also returns ``Enc(X_G^T R / B)`` from the guest's encrypted
  rows, ``R = sum_k rho_k``;
* backward: ``Enc(X^T (d_G + R/4) / B - sigma)`` -- the gradient of its weights on the
  encrypted residual ``d = d_G + R/4``, under a fresh mask ``sigma``; the host keeps
  ``sigma`` as its share of the gradient, the guest decrypts the rest.

A host never decrypts anything: it sees no labels, residuals, gradients or scores.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np
import numpy.typing as npt

from federated.data import PartyTable
from federated.vertical import channel
from federated.vertical.binning import ColumnBins, bin_columns, indicator_matrix
from federated.vertical.party import Party, pad, pow2
from privacy.errors import FederationError, InputError
from privacy.he.linear import SLOTS, LinearEvaluator, baby_steps, pack_blobs, unpack_blobs
from privacy.secagg.crypto import expand

__all__ = ["Host", "RHO_BOUND", "SIGMA_BOUND", "IV_CHUNK"]

FloatArray = npt.NDArray[np.float64]
#: Masks are uniform on [-bound, bound]: partial scores under rho, gradients under sigma.
RHO_BOUND = float(2 ** 16)
SIGMA_BOUND = float(2 ** 20)
#: Bin columns per ciphertext when summing labels per bin.
IV_CHUNK = 512


def _uniform(key: bytes, n: int, bound: float) -> FloatArray:
    words = expand(key, n)
    return ((words >> np.uint64(11)).astype(np.float64) * 2.0 ** -53 * 2.0 - 1.0) * bound


class Host(Party):
    """A feature holder (see the module docstring)."""

    role = "host"

    def _check_table(self, pt_: PartyTable, split: str) -> None:
        label = self.setup.get("label")
        if label and label in pt_.columns:
            raise pt_.error(f"a host must not hold the label column {label!r}: drop it "
                            "from this party's files", column=str(label))

    # -- alignment ------------------------------------------------------------------

    def psi_respond(self, payload: dict[str, Any]) -> dict[str, Any]:
        """PSI step 2 for the guest: accept, the guest's points blinded again, and this
        party's own blinded ids."""
        from privacy.psi import PsiParty

        split, guest = str(payload["split"]), str(payload["guest"])
        party = PsiParty(self._ids(self.table(split)),
                         context=self._psi_context(split, guest, self.name), normalize=self.same)
        accept = party.accept(payload["hello"])
        reply = party.reply(bytes(payload["points"]))
        return {"accept": accept, "records": party.records(), "reply": reply}

    def align(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Find the rows the guest's tags name, in the guest's order."""
        split, guest = str(payload["split"]), str(payload["guest"])
        tags = bytes(payload["tags"])
        ids = self._ids(self.table(split))
        mine = [(i, k) for i, k in enumerate(ids) if k is not None]
        mine_tags = channel.tags(self.pair(guest), [k for _, k in mine])
        where = {mine_tags[16 * j:16 * j + 16]: i for j, (i, _) in enumerate(mine)}
        if len(tags) % 16:
            raise FederationError(f"party {guest!r}: malformed alignment message")
        try:
            rows = [where[tags[j:j + 16]] for j in range(0, len(tags), 16)]
        except KeyError:
            raise FederationError(f"party {guest!r}: named a customer this party does not "
                                  "have (the alignment does not match)") from None
        self.store.put_array(f"rows_{split}", np.asarray(rows, dtype=np.int64))
        return {"size": len(rows)}

    # -- features and keys ------------------------------------------------------------

    def prepare(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Fit features on the training rows; zero weight share."""
        train = np.asarray(payload["train_rows"], dtype=np.int64)
        self.store.put_json("lam", float(payload["lam"]))
        transform, _ = self.fit_features(train)
        X = self.features("train")
        if X.shape[1] > SLOTS:
            raise InputError(f"party {self.name!r}: {X.shape[1]} feature components (at most "
                             f"{SLOTS}); exclude some columns")
        self.store.put_array("X_train", X)
        if self.store.has("rows_test"):
            self.store.put_array("X_test", self.features("test"))
        self.store.put_weights("w", w=np.zeros(X.shape[1]))
        return {"width": int(X.shape[1]), "features": transform.feature_names,
                "columns": list(self.kinds())}

    def setup_keys(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Store the guest's public keys; agree on the hosts' mask seed (the first host
        makes it and seals it to each other host)."""
        bundle = {k: bytes(v) for k, v in payload["bundle"].items()}
        for name, blob in bundle.items():
            self.store.put_blob(f"ckks_{name}", blob)
        hosts = [str(h) for h in payload["hosts"]]
        boxes: dict[str, bytes] = {}
        if payload.get("box") is not None:
            seed = channel.unbox(self.pair(hosts[0]), bytes(payload["box"]), label="mask-seed",
                                 sender=hosts[0])
        else:
            seed = os.urandom(32)
            boxes = {h: channel.box(self.pair(h), seed, label="mask-seed")
                     for h in hosts if h != self.name}
        self.store.put_blob("mask_seed", seed)
        self.store.put_json("hosts", hosts)
        self.store.put_json("guest_width", int(payload["guest_width"]))
        return {"boxes": boxes}

    def _evaluator(self) -> LinearEvaluator:
        return self.store.cached("evaluator", lambda: LinearEvaluator(
            {n: self.store.blob(f"ckks_{n}") for n in ("parms", "public", "galois")
             if self.store.has(f"ckks_{n}")}))

    def _rho(self, host: str, epoch: int, batch: int, n: int) -> FloatArray:
        seed = self.store.blob("mask_seed")
        key = hashlib.sha256(seed + f"rho/{host}/{epoch}/{batch}".encode()).digest()
        return _uniform(key, n, RHO_BOUND)

    def _masks(self, payload: dict[str, Any], n: int) -> tuple[FloatArray, FloatArray]:
        e, b = int(payload["epoch"]), int(payload["batch"])
        hosts = self.store.json("hosts")
        mine = self._rho(self.name, e, b, n)
        total = sum((self._rho(h, e, b, n) for h in hosts), np.zeros(n))
        return mine, total

    # -- training ---------------------------------------------------------------------

    def forward(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Masked partial scores (and, at the mask holder, the guest's cross term)."""
        rows = self._batch(payload)
        X = self.store.array("X_train")[rows]
        w = self.store.weights("w")["w"]
        rho, R = self._masks(payload, rows.size)
        ev = self._evaluator()
        out: dict[str, Any] = {"zeta": ev.matvec(
            X, unpack_blobs(payload["w"], what="weights"), columns=pow2(X.shape[1]),
            add=pad(X @ w - rho), what="the guest's weight share")}
        if self.store.json("hosts")[0] == self.name:
            name = f"xg_{int(payload['batch'])}"
            if payload.get("xg") is not None:
                self.store.put_blob(name, bytes(np.asarray(payload["xg"], dtype=np.uint8)))
            blobs = unpack_blobs(np.frombuffer(self.store.blob(name), dtype=np.uint8),
                                 what="the guest's rows")
            out["cross"] = ev.blocksum(blobs, pad(R / rows.size), columns=len(blobs),
                                       what="the guest's rows")
        return out

    def backward(self, payload: dict[str, Any]) -> dict[str, Any]:
        """This host's gradient on the encrypted residual, masked; update its share."""
        rows = self._batch(payload)
        X = self.store.array("X_train")[rows]
        w = self.store.weights("w")["w"]
        _, R = self._masks(payload, rows.size)
        sigma = _uniform(os.urandom(32), w.size, SIGMA_BOUND)
        P = pow2(X.shape[1])
        d = unpack_blobs(payload["d"], what="residual")[:baby_steps(P)]
        grad = self._evaluator().rmatvec(X / rows.size, d, columns=P, shift=pad(0.25 * R),
                                         add=-sigma, what="the guest's residual")
        lam, lr = float(self.store.json("lam")), float(payload["lr"])
        self.store.put_weights("w", w=w - lr * (sigma + lam * w))
        return {"grad": grad}

    def scores(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Partial scores of a split's rows, encrypted (no mask: the guest scores them)."""
        split = str(payload["split"])
        X = self.store.array(f"X_{split}")
        rows = payload.get("rows")
        idx = np.arange(X.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
        w = self.store.weights("w")["w"]
        blobs = unpack_blobs(payload["w"], what="weights")
        ev = self._evaluator()
        out = [ev.matvec(X[c], blobs, columns=pow2(X.shape[1]), add=pad(X[c] @ w),
                         what="the guest's weight share")
               for c in (idx[i:i + SLOTS] for i in range(0, idx.size, SLOTS))]
        return {"z": pack_blobs(out)}

    # -- information value ------------------------------------------------------------

    def iv_layout(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Bin this party's columns on the training rows; bin counts per column."""
        bins = bin_columns(self.aligned("train"), self.kinds(), bins=int(payload.get("bins", 10)))
        train = np.asarray(payload["train_rows"], dtype=np.int64)
        M = indicator_matrix(bins, train)
        self.store.put_json("iv_bins", [[cb.column, cb.labels] for cb in bins])
        self.store.put_array("iv_index", np.column_stack([cb.index for cb in bins]))
        return {"columns": [[cb.column, len(cb.labels)] for cb in bins],
                "totals": M.sum(axis=0).tolist(), "n1": baby_steps(IV_CHUNK)}

    def iv_sum(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Add one block's encrypted per-bin label sums to the running totals."""
        rows = self._batch(payload)
        index = self.store.array("iv_index")
        bins = [ColumnBins(str(c), list(labels), index[:, j])
                for j, (c, labels) in enumerate(self.store.json("iv_bins"))]
        M = indicator_matrix(bins, rows)
        y = unpack_blobs(payload["y"], what="labels")
        ev = self._evaluator()
        sums = [ev.rmatvec(M[:, c:c + IV_CHUNK], y[:baby_steps(IV_CHUNK)], columns=IV_CHUNK,
                           what="the guest's labels")
                for c in range(0, M.shape[1], IV_CHUNK)]
        if self.store.has("iv_acc"):
            old = unpack_blobs(np.frombuffer(self.store.blob("iv_acc"), dtype=np.uint8),
                               what="sums")
            sums = [ev.add(a, b) for a, b in zip(old, sums, strict=True)]
        self.store.put_blob("iv_acc", pack_blobs(sums).tobytes())
        return {}

    def iv_result(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The encrypted per-bin label sums, for the guest."""
        return {"sums": np.frombuffer(self.store.blob("iv_acc"), dtype=np.uint8)}

    def model_part(self) -> dict[str, Any]:
        """This host's part of the model: its features and its weight share."""
        return {"role": "host", "party": self.name,
                "transform": self.store.blob("transform").decode(),
                "whitening": self.store.blob("whitening").decode(),
                "weights": self.store.weights("w")["w"].tolist()}
