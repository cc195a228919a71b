"""The coordinator's side of secure sum (``ckks`` or ``secagg``) over a :class:`PartyGrid`.

Who learns what
---------------
``ckks``: the coordinator holds no key; it receives CKKS ciphertexts, adds them and sends
the sum to the key holder, which decrypts only sums of at least ``min_parties``
contributors and returns the plaintext sum. The coordinator and the key holder must not
collude (together they could decrypt one party's ciphertext); TenSEAL has no threshold
decryption, so a single key holder is the honest construction here.

``secagg``: no key holder. The coordinator receives pairwise-masked vectors and learns
only the sum of the parties that answered (see ``privacy.secagg``); a party that drops
out mid-round is recovered from the others' Shamir shares. With ``recovery=False`` each
sum is one exchange (``privacy.secagg.pairwise``): a party that drops out loses the
sum (``privacy.secagg.RoundLost``), which the caller repeats without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from federated.horizontal import protocol as P
from federated.horizontal.grid import PartyGrid
from privacy.errors import FederationError, InputError

__all__ = ["SecureSum"]

FloatArray = npt.NDArray[np.float64]


def _content(config: Mapping[str, Any]) -> Any:
    from flwr.app import ConfigRecord, RecordDict

    return RecordDict({P.CONFIG: ConfigRecord(dict(config))})


class SecureSum:
    """Sums of vectors the parties compute, revealing only the sum to the coordinator.

    Parameters
    ----------
    pgrid:
        The coordinator's :class:`PartyGrid`.
    method:
        ``"ckks"`` or ``"secagg"``.
    key_holder:
        ``ckks``: the party holding the secret key (default: the first party).
    params:
        ``ckks``: the TenSEAL parameter set name.
    min_parties:
        The fewest contributors a sum may have before it is revealed.
    recovery:
        ``secagg``: survive a party dropping out mid-sum (two exchanges per sum); False:
        one exchange per sum, a dropout loses it.
    """

    def __init__(self, pgrid: PartyGrid, method: str, *, key_holder: str | None = None,
                 params: str = "ckks-128-8192", min_parties: int = 2,
                 recovery: bool = True) -> None:
        if method not in ("ckks", "secagg"):
            raise InputError(f"unknown secure-sum method {method!r}")
        self.pgrid = pgrid
        self.method = method
        self.key_holder = key_holder or next(iter(pgrid.nodes))
        self.params = params
        self.min_parties = max(min_parties, 2)
        self.recovery = recovery
        self.key_id: str | None = None
        self._secagg: Any = None
        self._public_blob = b""
        self._ctx: Any = None

    # ---------------------------------------------------------------- setup
    def setup(self) -> None:
        """Key generation (ckks) or key agreement and share distribution (secagg)."""
        if self.method == "ckks":
            self._setup_ckks()
        else:
            from federated.horizontal.secagg_coordinator import (
                PairwiseCoordinator,
                SecAggCoordinator,
            )

            kind = SecAggCoordinator if self.recovery else PairwiseCoordinator
            self._secagg = kind(self.pgrid, min_parties=self.min_parties)
            self._secagg.setup()

    def _setup_ckks(self) -> None:
        reply = self.pgrid.exchange(
            P.CKKS_KEYGEN, {self.key_holder: _content(
                {"params": self.params, "parties": len(self.pgrid.nodes)})}, required=True)
        public = P.config_of(reply[self.key_holder]).get("public")
        if not isinstance(public, bytes):
            raise FederationError(f"key holder {self.key_holder!r} returned no public context")
        self._public_blob = public
        replies = self.pgrid.exchange(
            P.CKKS_SETUP, {p: _content({"public": public}) for p in self.pgrid.active},
            required=True)
        ids = {P.config_of(m).get("key-id") for m in replies.values()}
        if len(ids) != 1:
            raise FederationError("parties stored different CKKS public contexts")
        self.key_id = str(ids.pop())

    # ---------------------------------------------------------------- one sum
    def request(self, party: str, round_id: int) -> dict[str, Any]:
        """Config entries a party needs to protect its vector in ``round_id``."""
        out: dict[str, Any] = {"secure-method": self.method, "secure-round": round_id}
        if self._secagg is not None:
            out.update(self._secagg.request(party, round_id))
        return out

    def begin(self, round_id: int) -> None:
        """Start a round (secagg fixes the participants)."""
        if self._secagg is not None:
            self._secagg.begin(round_id, self.pgrid.active)

    def combine(self, round_id: int, replies: Mapping[str, Any], length: int
                ) -> tuple[FloatArray, list[str]]:
        """The sum of the protected vectors in ``replies`` (party -> reply Message)."""
        payloads: dict[str, bytes] = {}
        for party, msg in replies.items():
            secure = msg.content.config_records.get(P.SECURE)
            blob = secure.get("payload") if secure is not None else None
            if not isinstance(blob, bytes):
                raise FederationError(f"party {party!r} sent no protected vector")
            payloads[party] = blob
        if len(payloads) < self.min_parties:
            raise FederationError(f"only {len(payloads)} parties contributed to the sum; at "
                                  f"least {self.min_parties} are required")
        if self.method == "ckks":
            total, who = self._combine_ckks(round_id, payloads, length)
        else:
            total, who = self._secagg.finish(round_id, payloads, length)
        if total.shape != (length,):
            raise FederationError(f"the sum has {total.shape[0]} values, expected {length}")
        if not np.all(np.isfinite(total)):
            raise FederationError("the decrypted sum is not finite")
        return total, who

    def _combine_ckks(self, round_id: int, payloads: Mapping[str, bytes], length: int
                      ) -> tuple[FloatArray, list[str]]:
        from privacy.errors import CovaultError
        from privacy.he import serial
        from privacy.he.secure_sum import aggregate

        ctx = self._public_context()
        vectors = []
        for party, blob in payloads.items():
            try:
                vec = serial.load(blob, source=f"party {party!r} ciphertext", kind="vector",
                                  context=ctx)
            except CovaultError as exc:
                raise FederationError(f"party {party!r}: unusable ciphertext ({exc})") from None
            if vec.length != length:
                raise FederationError(f"party {party!r} sent a vector of {vec.length} values, "
                                      f"expected {length}")
            if tuple(vec.contributors) != (party,):
                raise FederationError(f"party {party!r}: ciphertext names contributors "
                                      f"{list(vec.contributors)}")
            vectors.append(vec)
        total = aggregate(vectors, rerandomise=False)
        reply = self.pgrid.exchange(
            P.CKKS_DECRYPT, {self.key_holder: _content(
                {"aggregate": serial.dump_vector(total), "min-parties": self.min_parties,
                 "secure-round": round_id})}, round_id=round_id, required=True)
        values = reply[self.key_holder].content.array_records.get(P.ARRAYS)
        if values is None or "sum" not in values:
            raise FederationError(f"key holder {self.key_holder!r} returned no sum")
        return np.asarray(values["sum"].numpy(), dtype=np.float64), sorted(payloads)

    def _public_context(self) -> Any:
        if self._ctx is None:
            from privacy.he import serial

            self._ctx = serial.load(self._public_blob, source="CKKS public context",
                                    kind="public_key")
        return self._ctx

    # ---------------------------------------------------------------- convenience
    def run(self, action: str, config: Mapping[str, Any], round_id: int, length: int
            ) -> FloatArray:
        """Ask every active party for a vector (``action``) and return only its sum."""
        self.begin(round_id)
        contents = {p: _content({**config, **self.request(p, round_id)})
                    for p in self.pgrid.active}
        replies = self.pgrid.exchange(action, contents, round_id=round_id)
        total, _ = self.combine(round_id, replies, length)
        return total
