"""The guest: holds the labels and its own features, and the CKKS secret key.

Per mini-batch (see :mod:`federated.vertical.protocol` for the whole exchange) the guest

1. sends each host its share ``w^g`` of that host's weights, encrypted (baby steps);
2. receives ``Enc(z_k - rho_k)`` from each host (``z_k = X_k w_k``, ``rho_k`` the hosts'
   mask) and ``Enc(X_G^T R / B)`` (``R = sum_k rho_k``), decrypts them, forms its share of
   the residual ``d_G = u + z'/4`` with ``u = (X_G w_G)/4 + 1/2 - y`` (first-order Taylor
   expansion of the logistic loss, as FATE's hetero-LR) and updates its own weights;
3. sends ``Enc(d_G)``; receives ``Enc(g_k - sigma_k)``, its share of host ``k``'s gradient,
   which it applies to ``w^g`` at its next step.

The guest never holds a host's features, weights or partial scores: every value it
decrypts is masked by the hosts, except ``X_G^T R / B`` (part of its own gradient) and,
when it scores rows (evaluation, ``covault fl score``), the hosts' partial scores of
those rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from federated.data import PartyTable, choose_positive, encode_label, label_levels
from federated.metrics import summary
from federated.model import fit_full, predict_proba, sigmoid
from federated.vertical import channel
from federated.vertical.binning import bin_columns, indicator_matrix, woe_iv
from federated.vertical.host import IV_CHUNK
from federated.vertical.party import MIN_INTERSECTION, Party, pad, pow2
from privacy.errors import FederationError, InputError
from privacy.he.linear import (
    SLOTS,
    LinearKeys,
    baby_steps,
    galois_steps,
    pack_blobs,
    unpack_blobs,
)

__all__ = ["Guest"]


class Guest(Party):
    """The label holder (see the module docstring)."""

    role = "guest"

    def _check_table(self, pt_: PartyTable, split: str) -> None:
        label = str(self.setup["label"])
        if split != "score" and label not in pt_.columns:
            raise pt_.error(f"the guest's {split} file has no label column {label!r}")

    # -- alignment ------------------------------------------------------------------

    def _psi(self, split: str, host: str) -> Any:
        from privacy.psi import PsiParty

        ids = self._ids(self.table(split))
        return ids, PsiParty(ids, context=self._psi_context(split, self.name, host),
                             normalize=self.same)

    def psi_start(self, payload: dict[str, Any]) -> dict[str, Any]:
        """PSI with one host, step 1: hello and blinded ids."""
        split, host = str(payload["split"]), str(payload["host"])
        _, party = self._psi(split, host)
        self.store.put_json(f"psi_{split}_{host}", party.export_state())
        return {"hello": party.hello(), "points": party.points()}

    def psi_finish(self, payload: dict[str, Any]) -> dict[str, Any]:
        """PSI with one host, step 3: which of the guest's ids the host has."""
        from privacy.psi import PsiParty

        split, host = str(payload["split"]), str(payload["host"])
        ids = self._ids(self.table(split))
        party = PsiParty.from_state(ids, self.store.json(f"psi_{split}_{host}"),
                                    normalize=self.same)
        result = party.finish(payload["accept"], bytes(payload["records"]),
                              bytes(payload["reply"]))
        self.store.put_json(f"shared_{split}_{host}", list(result.ids or []))
        return {"shared": result.size}

    def align(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Intersect over the hosts; the aligned order and each host's tags."""
        split, hosts = str(payload["split"]), list(payload["hosts"])
        ids = self._ids(self.table(split))
        common: set[str] | None = None
        for h in hosts:
            shared = set(self.store.json(f"shared_{split}_{h}"))
            common = shared if common is None else common & shared
        position = {k: i for i, k in enumerate(ids) if k is not None}
        keys = sorted(common or set())
        seed = payload.get("seed")
        order = self.shuffle(len(keys), None if seed is None else int(seed))
        keys = [keys[i] for i in order.tolist()]
        if split != "score" and len(keys) < MIN_INTERSECTION:
            raise InputError(
                f"party {self.name!r}: only {len(keys)} customers shared with "
                f"{', '.join(hosts)} in the {split} files (at least {MIN_INTERSECTION} "
                "needed); check that every party's id column holds the same identifiers, "
                "written the same way")
        self.store.put_array(f"rows_{split}", np.asarray([position[k] for k in keys],
                                                         dtype=np.int64))
        return {"size": len(keys),
                "tags": {h: channel.tags(self.pair(h), keys) for h in hosts}}

    # -- features and keys ------------------------------------------------------------

    def prepare(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Fit features on the training rows (less validation rows); labels; keys later."""
        train = np.asarray(payload["train_rows"], dtype=np.int64)
        self.store.put_json("lam", float(payload["lam"]))
        self.store_labels()
        transform, _ = self.fit_features(train)
        ones = lambda X: np.column_stack([X, np.ones(len(X))])  # noqa: E731
        X = ones(self.features("train"))
        self.store.put_array("X_train", X)
        if self.store.has("rows_test"):
            self.store.put_array("X_test", ones(self.features("test")))
        width = X.shape[1]
        if width > SLOTS:
            raise InputError(f"party {self.name!r}: {width} feature components (at most "
                             f"{SLOTS}); exclude some columns")
        # the residual's expansion point: the training rows' event rate (see backward)
        rate = float(np.clip(self.store.array("y_train")[train].mean(), 1e-6, 1 - 1e-6))
        prior = float(np.log(rate / (1.0 - rate)))
        self.store.put_json("residual", {"prior": prior, "rate": rate})
        w0 = np.zeros(width)
        w0[-1] = prior  # the intercept starts at the prior log-odds
        self.store.put_weights("w", w=w0)
        return {"width": width, "features": transform.feature_names,
                "columns": list(self.kinds())}

    def store_labels(self) -> str:
        """Check the label of the aligned training rows (two values); store the 0/1
        labels of every aligned split (``y_train``, ``y_test``); the event value."""
        pt_ = self.aligned("train")
        label = str(self.setup["label"])
        levels = label_levels(pt_, label)
        if len(levels) != 2:
            raise pt_.error(f"label {label!r} needs exactly 2 values on the aligned rows, "
                            f"found {len(levels)}: {levels[:10]}", column=label)
        positive = choose_positive(levels, self.setup.get("positive"), label=label)
        self.store.put_json("label", {"positive": positive})
        self.store.put_array("y_train", encode_label(pt_, label, positive))
        if self.store.has("rows_test"):
            self.store.put_array("y_test", encode_label(self.aligned("test"), label, positive))
        return positive

    def keygen(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A fresh CKKS key pair for the hosts' matrix widths; returns the public bundle."""
        widths = {str(h): int(w) for h, w in payload["widths"].items()}
        own = pow2(self.store.weights("w")["w"].size)
        steps = sorted({s for w in widths.values() for s in galois_steps(pow2(w))}
                       | set(galois_steps(own)) | set(galois_steps(IV_CHUNK)))
        keys = LinearKeys(steps)
        for name, blob in keys.export().items():
            self.store.put_blob(f"ckks_{name}", blob)
        w = self.store.weights("w")
        self.store.put_json("hosts", {h: pow2(v) for h, v in widths.items()})
        self.store.put_weights("w", w=w["w"], **{f"g_{h}": w.get(f"g_{h}", np.zeros(widths[h]))
                                                  for h in widths})
        self.store.put_weights("pending", lr=np.zeros(1))
        return {"bundle": keys.public_bundle()}

    def _keys(self) -> LinearKeys:
        return self.store.cached("ckks", lambda: LinearKeys.restore(
            {n: self.store.blob(f"ckks_{n}") for n in ("parms", "public", "galois", "secret")
             if self.store.has(f"ckks_{n}")}))

    # -- training ---------------------------------------------------------------------

    def _apply(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Apply the hosts' gradient shares of the previous batch to ``w^g``."""
        w = self.store.weights("w")
        grads = payload.get("grads") or {}
        if grads:
            lr = float(payload["lr_prev"])
            lam = float(self.store.json("lam"))
            for h, blob in grads.items():
                g = w[f"g_{h}"]
                share = self._keys().decrypt(bytes(blob), g.size, what=f"party {h!r}: gradient")
                w[f"g_{h}"] = g - lr * (share + lam * g)
            self.store.put_weights("w", **w)
        return w

    def forward(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Step 1: the hosts' weight shares, encrypted; the guest's rows for the mask
        holder in the first epoch."""
        w = self._apply(payload)
        hosts = self.store.json("hosts")
        out: dict[str, Any] = {f"w:{h}": pack_blobs(self._keys().encrypt_tiled(w[f"g_{h}"], P))
                               for h, P in hosts.items()}
        if payload.get("send_rows"):
            rows = self._batch(payload)
            X = self.store.array("X_train")[rows]
            out["xg"] = pack_blobs(self._keys().encrypt_rows(X, pow2(X.shape[1])))
        return out

    def backward(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Step 2: decrypt the masked partial scores, update the guest's weights, and send
        the guest's share of the residual."""
        rows = self._batch(payload)
        keys = self._keys()
        X = self.store.array("X_train")[rows]
        y = self.store.array("y_train")[rows]
        w = self.store.weights("w")
        B = rows.size
        zsum = np.zeros(B)
        for h, blob in payload["zeta"].items():
            zsum += keys.decrypt(bytes(blob), B, what=f"party {h!r}: partial scores")
        cross = keys.decrypt(bytes(payload["cross"]), X.shape[1], what="masked rows")
        # the residual sigma(z) - y with sigma linearised at the training rows' prior
        # log-odds z0, slope 1/4 (the bound on sigma' that the hosts' mask shift and the
        # step size assume): rate + (z - z0) / 4 - y. The fitted intercept then matches
        # the event rate; FATE's expansion at z0 = 0 (0.5 + z/4 - y) put the mean score of
        # a 3 % label near 0.25, a log loss worse than predicting the rate. (The tangent's
        # slope rate (1 - rate) would scale the weights up by 1 / (4 rate (1 - rate)):
        # overconfident on a weak rare label, so the slopes stay a least-squares fit's.)
        r = self.store.json("residual")
        u = 0.25 * (X @ w["w"] - r["prior"]) + r["rate"] - y
        d_g = u + 0.25 * zsum
        grad = X.T @ d_g / B + 0.25 * cross
        lam = float(self.store.json("lam"))
        grad[:-1] += lam * w["w"][:-1]
        w["w"] = w["w"] - float(payload["lr"]) * grad
        self.store.put_weights("w", **w)
        n1 = max(baby_steps(P) for P in self.store.json("hosts").values())
        return {"d": pack_blobs(keys.encrypt_vector(pad(d_g), rotations=n1))}

    # -- scoring ----------------------------------------------------------------------

    def score_request(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The hosts' weight shares, encrypted, to score rows (evaluation, scoring)."""
        return self.forward({**payload, "send_rows": False})

    def scores(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Joint scores of a split from the hosts' encrypted partial scores; metrics."""
        split = str(payload["split"])
        w = self.store.weights("w")
        X = self.store.array(f"X_{split}")
        rows = payload.get("rows")
        idx = np.arange(X.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
        z = X[idx] @ w["w"]
        keys = self._keys()
        for h, packed in payload["z"].items():
            blobs = unpack_blobs(packed, what=f"party {h!r}: scores")
            chunks = [idx[i:i + SLOTS] for i in range(0, idx.size, SLOTS)]
            if len(blobs) != len(chunks):
                raise FederationError(f"party {h!r}: {len(blobs)} score blocks, expected "
                                      f"{len(chunks)}")
            z += np.concatenate([keys.decrypt(b, c.size, what=f"party {h!r}: scores")
                                 for b, c in zip(blobs, chunks, strict=True)])
        return self.margin_metrics(split, idx, z)

    def margin_metrics(self, split: str, idx: Any, z: Any) -> dict[str, Any]:
        """Keep the joint margins of a split's rows ``idx`` (``z_score`` is what
        :func:`~federated.vertical.scoring.write_scores` writes); their log-loss, AUC and
        KS (the row count when scoring; AUC and KS are None when the rows hold one class,
        as a small validation split may)."""
        z = np.asarray(z, dtype=np.float64)
        self.store.put_array(f"z_{split}", z)
        if split == "score":
            return {"rows": int(z.size)}
        s = summary(self.store.array(f"y_{split}")[idx], sigmoid(z))
        return {"loss": s["logloss"], "auc": s["auc"], "ks": s["ks"]}

    def guest_only(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The guest's features alone (its standardised and one-hot columns, not
        whitened: scikit-learn's view): a logistic regression on its training rows,
        scored on the same evaluation rows as the joint model."""
        from federated.preprocess import Transform

        train = np.asarray(payload["train_rows"], dtype=np.int64)
        split = str(payload["split"])
        transform = Transform.from_json(self.store.blob("transform").decode())
        X = transform.features(self.aligned("train"))[train]
        y = self.store.array("y_train")[train]
        model = fit_full(X, y, lam=float(self.store.json("lam")))
        Xe = transform.features(self.aligned("train" if split == "train" else split))
        idx = np.arange(Xe.shape[0]) if payload.get("rows") is None else \
            np.asarray(payload["rows"], dtype=np.int64)
        p = predict_proba(model, Xe[idx])
        ye = self.store.array(f"y_{split}")[idx]
        s = summary(ye, p)
        return {"auc": s["auc"], "ks": s["ks"]}

    # -- information value ------------------------------------------------------------

    def iv_request(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Encrypted labels of one block of training rows, for the hosts' bin sums."""
        rows = self._batch(payload)
        y = self.store.array("y_train")[rows]
        return {"y": pack_blobs(self._keys().encrypt_vector(pad(y),
                                                            rotations=int(payload["n1"])))}

    def iv_own(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The guest's own columns' IV (computed locally)."""
        train = np.asarray(payload["train_rows"], dtype=np.int64)
        pt_ = self.aligned("train")
        y = self.store.array("y_train")[train]
        out = {}
        for cb in bin_columns(pt_, self.kinds(), bins=int(payload.get("bins", 10))):
            M = indicator_matrix([cb], train)
            out[cb.column] = woe_iv(M.T @ y, M.sum(axis=0))[1]
        return {"iv": out}

    def iv_decrypt(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Per-bin event counts of one host's columns -> IV per column."""
        keys = self._keys()
        host = str(payload["host"])
        totals = np.asarray(payload["totals"], dtype=np.float64)
        blobs = unpack_blobs(payload["sums"], what=f"party {host!r}: bin sums")
        pos = np.concatenate([keys.decrypt(b, SLOTS, what=f"party {host!r}: bin sums")
                              for b in blobs])[:totals.size]
        pos = np.clip(np.round(pos), 0, totals)
        out: dict[str, float] = {}
        offset = 0
        for column, width in payload["columns"]:
            sl = slice(offset, offset + int(width))
            out[str(column)] = woe_iv(pos[sl], totals[sl])[1]
            offset += int(width)
        return {"iv": out}

    # -- the end ----------------------------------------------------------------------

    def model_part(self) -> dict[str, Any]:
        """The guest's part of the model (its weights and its shares of the hosts')."""
        w = self.store.weights("w")
        return {"role": "guest", "party": self.name, "label": self.setup["label"],
                "positive": self.store.json("label")["positive"],
                "transform": self.store.blob("transform").decode(),
                "whitening": self.store.blob("whitening").decode(),
                "weights": w["w"].tolist(),
                "shares": {k[2:]: v.tolist() for k, v in w.items() if k.startswith("g_")}}
