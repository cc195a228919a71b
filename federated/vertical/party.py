"""What every party of a vertical run does: read its table, align by PSI, fit features.

:class:`Party` is the common part of :class:`~federated.vertical.guest.Guest` and
:class:`~federated.vertical.host.Host`. A party is built from its *setup* (its own
config: name, role, files, id column, column kinds, the run id and its state folder) and
answers one step per call; its state is in a :class:`~federated.vertical.store.Store`.

Alignment: the guest runs ECDH-PSI (:mod:`privacy.psi`) as the initiator with each host,
so it learns which of its customers each host has and the host learns only the guest's
set size; the guest intersects those sets and tells each host the intersection as
HMAC tags under their pairwise key (:mod:`~federated.vertical.channel`), in an order
drawn from the run's seed (the sorted intersection, permuted) that becomes the row order
of every party's aligned matrix: each host can rebuild it from the customers it shares,
so it tells a host nothing it does not know, and a config run again aligns, validates and
batches the same rows. Customers outside the intersection are never revealed to anyone.
"""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np
import numpy.typing as npt

from federated.data import PartyTable, read_table, text_values
from federated.preprocess import Transform
from federated.vertical import channel
from federated.vertical.features import Whitening, feature_kinds, fit_transform, take_rows
from federated.vertical.store import Store
from privacy.errors import FederationError, InputError
from privacy.he.linear import SLOTS

# keeps the aligned order's random stream apart from the other draws of the run's seed
_ORDER_STREAM = 0x616C69676E

__all__ = ["Party", "batches", "checked_rows", "pad", "pow2"]

FloatArray = npt.NDArray[np.float64]
SPLITS = ("train", "test", "score")
#: Fewer shared customers than this and a run refuses (a model would reveal too much).
MIN_INTERSECTION = 10


def pow2(n: int) -> int:
    """The smallest power of two >= n (and >= 1)."""
    return 1 << max(n - 1, 0).bit_length()


def pad(x: FloatArray, size: int = SLOTS) -> FloatArray:
    """``x`` followed by zeros up to ``size``."""
    out = np.zeros(size)
    v = np.asarray(x, dtype=np.float64).ravel()
    out[:v.size] = v
    return out


def checked_rows(value: Any, n: int, *, what: str = "rows") -> npt.NDArray[np.int64]:
    """Row numbers a message names, each in ``0..n-1``.

    Raises
    ------
    FederationError
        Not a flat list of integers in range.
    """
    try:
        rows = np.asarray(value, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise FederationError(f"malformed message: {what}") from None
    if rows.ndim != 1 or (rows.size and (int(rows.min()) < 0 or int(rows.max()) >= n)):
        raise FederationError(f"malformed message: {what} outside 0..{n - 1}")
    return rows


def batches(n: int, batch_size: int, seed: int) -> list[npt.NDArray[np.int64]]:
    """The fixed mini-batches of ``n`` aligned rows (the same at every party)."""
    count = max(1, -(-n // batch_size))
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(b).astype(np.int64) for b in np.array_split(perm, count)]


class Party:
    """Common steps of a vertical party (see the module docstring)."""

    role = ""

    def __init__(self, setup: dict[str, Any]) -> None:
        self.setup = setup
        self.name = str(setup["party"])
        self.store = Store(setup["state"])

    # -- tables ---------------------------------------------------------------------

    def _file(self, split: str) -> str | None:
        key = {"train": "data", "test": "test", "score": "score"}[split]
        value = self.setup.get(key)
        return str(value) if value else None

    def table(self, split: str) -> PartyTable:
        """The party's table for a split (read once per process)."""
        path = self._file(split)
        if path is None:
            key = {"train": "data", "test": "test", "score": "score"}[split]
            raise InputError(f"party {self.name!r}: has no {split} file (key {key!r})")
        return self.store.cached(f"table:{split}", lambda: read_table(
            path, party=self.name, text_columns=(str(self.setup["id"]),)))

    def _ids(self, pt_: PartyTable) -> list[str | None]:
        """Normalised ids per row (``id_type`` of the config: mobile, resident_id, card,
        email, uscc; default: NFKC, whitespace removed, case folded); None when empty."""
        from privacy.psi import normalize_id

        kind = self.setup.get("id_type")
        if kind:
            from privacy.normalize import normalizer

            normalize = normalizer(str(kind))
        else:
            normalize = normalize_id
        col = str(self.setup["id"])
        if col not in pt_.columns:
            raise pt_.error(f"id column {col!r} is missing (key 'id' of the config)")
        raw = text_values(pt_, col)
        ids: list[str | None] = []
        seen: dict[str, int] = {}
        for row, v in enumerate(raw):
            key = normalize(str(v)) if v is not None else ""
            if not key:
                ids.append(None)
                continue
            if key in seen:
                raise pt_.error(f"id {str(v)!r} appears twice (rows {seen[key] + 1} and "
                                f"{row + 1}); each customer needs one row", column=col,
                                row=row + 1)
            seen[key] = row
            ids.append(key)
        return ids

    def hello(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Create the state folder, check the tables, make the run's X25519 key."""
        self.store.create()
        wanted = payload.get("splits") or SPLITS
        splits = [s for s in SPLITS if s in wanted and self._file(s)]
        rows = {}
        for split in splits:
            pt_ = self.table(split)
            self._check_table(pt_, split)
            ids = self._ids(pt_)
            rows[split] = sum(1 for i in ids if i is not None)
            if rows[split] == 0:
                raise pt_.error(f"the id column {self.setup['id']!r} is empty")
        key = channel.private_bytes(channel.new_key())
        self.store.put_blob("x25519", key)
        return {"rows": rows, "public": channel.public_of(key), "role": self.role}

    def _check_table(self, pt_: PartyTable, split: str) -> None:
        raise NotImplementedError

    def peers(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Store the other parties' public keys (name -> 32 bytes)."""
        keys = payload.get("public")
        if not isinstance(keys, dict):
            raise FederationError("malformed peers message")
        mine = self.store.blob("x25519")
        pairs = {p: channel.pair_key(mine, bytes(pk), run=str(self.setup["run"]), me=self.name,
                                     peer=p).hex()
                 for p, pk in keys.items() if p != self.name}
        self.store.put_json("pairs", pairs)
        return {}

    def pair(self, peer: str) -> bytes:
        """The secret shared with ``peer``."""
        pairs = self.store.json("pairs")
        if peer not in pairs:
            raise FederationError(f"party {peer!r}: no shared key with it")
        return bytes.fromhex(pairs[peer])

    @staticmethod
    def same(value: str) -> str:
        """PSI's normalisation of ids that :meth:`_ids` already normalised."""
        return value

    def _psi_context(self, split: str, guest: str, host: str) -> str:
        return f"covault-vfl/{self.setup['run']}/{split}/{guest}/{host}"

    # -- aligned features -----------------------------------------------------------

    def rows(self, split: str) -> npt.NDArray[np.int64]:
        """Row numbers of the party's table in aligned order."""
        return self.store.array(f"rows_{split}").astype(np.int64)

    def aligned(self, split: str) -> PartyTable:
        """The party's table restricted to the aligned rows, in aligned order."""
        return self.store.cached(f"aligned:{split}",
                                 lambda: take_rows(self.table(split), self.rows(split)))

    def kinds(self) -> dict[str, str]:
        """Feature column kinds of this party."""
        pt_ = self.table("train")
        exclude = [str(self.setup["id"]), *self.setup.get("exclude", [])]
        if self.setup.get("label"):
            exclude.append(str(self.setup["label"]))
        return feature_kinds(pt_, exclude=exclude, numeric=self.setup.get("numeric"),
                             categorical=self.setup.get("categorical"))

    def fit_features(self, train_rows: npt.NDArray[np.int64]) -> tuple[Transform, Whitening]:
        """Fit the transform and whitening on the given aligned training rows."""
        pt_ = take_rows(self.aligned("train"), train_rows)
        transform = fit_transform(pt_, self.kinds())
        whitening = Whitening.fit(transform.features(pt_))
        self.store.put_blob("transform", transform.to_json().encode())
        self.store.put_blob("whitening", whitening.to_json().encode())
        return transform, whitening

    def features(self, split: str) -> FloatArray:
        """Whitened features of the aligned rows of a split."""
        transform = Transform.from_json(self.store.blob("transform").decode())
        whitening = Whitening.from_json(self.store.blob("whitening").decode())
        return whitening.apply(transform.features(self.aligned(split)))

    def _batch(self, payload: dict[str, Any]) -> npt.NDArray[np.int64]:
        """The mini-batch's aligned training rows, checked."""
        rows = checked_rows(payload.get("rows"), self.store.array("X_train").shape[0],
                            what="batch")
        if rows.size == 0 or rows.size > SLOTS:
            raise FederationError("malformed message: batch")
        return rows

    def snapshot(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Keep the current weights (or share) as the best (early stopping), or restore
        them (``restore``)."""
        if payload.get("restore"):
            self.store.put_weights("w", **self.store.weights("best"))
        else:
            self.store.put_weights("best", **self.store.weights("w"))
        return {}

    @staticmethod
    def shuffle(n: int, seed: int | None = None) -> npt.NDArray[np.int64]:
        """A random order of ``n`` rows: the run's ``seed`` gives the same order again
        (the same validation rows and batches in every run of one config); without one,
        a fresh order (CSPRNG-seeded)."""
        rng = np.random.default_rng(secrets.randbits(128) if seed is None
                                    else [int(seed) & (2**64 - 1), _ORDER_STREAM])
        return rng.permutation(n).astype(np.int64)
