"""The coordinator's side of secure aggregation over Flower messages (``privacy.secagg``).

Parties get the ids ``1..n`` in config order. The threshold is
``max(2, min(n - 1, floor(2n/3) + 1))``: above two thirds of the parties (what a
deviating coordinator requires, see ``privacy.secagg``) while one party may drop out of
a round of three or more. Each sum takes two exchanges: the masked vectors (which also
carry the shares of the next round's self-mask seeds), then the unmasking shares.

:class:`PairwiseCoordinator` runs the one-exchange sums (``privacy.secagg.pairwise``)
for jobs that repeat a sum a party dropped out of rather than recover it (the trees):
one exchange to collect the public keys, then one per sum.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from federated.horizontal import protocol as P
from federated.horizontal.grid import PartyGrid
from privacy.errors import FederationError

__all__ = ["SecAggCoordinator", "PairwiseCoordinator", "threshold_for"]

FRAC_BITS = 32
MAX_ABS = 1e6


def threshold_for(n: int, min_parties: int = 2) -> int:
    """The Shamir threshold used for ``n`` parties (see the module docstring)."""
    return max(2, min_parties, min(n - 1, (2 * n) // 3 + 1))


def _content(config: Mapping[str, Any]) -> Any:
    from flwr.app import ConfigRecord, RecordDict

    return RecordDict({P.CONFIG: ConfigRecord(dict(config))})


def _field(msg: Any, key: str, party: str) -> bytes:
    value = P.config_of(msg).get(key)
    if not isinstance(value, bytes):
        raise FederationError(f"party {party!r} sent no {key!r}")
    return value


class _Roster:
    """What both coordinators share: party ids ``1..n``, the run's parameters, and the
    exchange that collects the parties' public keys into the server's roster."""

    def __init__(self, pgrid: PartyGrid, config: Any) -> None:
        self.pgrid = pgrid
        self.ids = {p: i + 1 for i, p in enumerate(pgrid.nodes)}
        self.party_of = {i: p for p, i in self.ids.items()}
        self.config = config
        self.participants = b""

    def _advertise(self, server: Any, extra: dict[str, Any]) -> bytes:
        """Every party makes its keys (``extra`` joins the request); the roster built
        from their public keys, recorded in the ledger."""
        cfg = self.config
        replies = self.pgrid.exchange(P.SECAGG_ADVERTISE, {
            p: _content({"secagg-id": i, "threshold": cfg.threshold, "frac-bits": cfg.frac_bits,
                         "max-abs": float(cfg.max_abs), **extra})
            for p, i in self.ids.items()}, required=True)
        roster = server.roster({self.ids[p]: _field(m, "advert", p)
                                for p, m in replies.items()})
        if self.pgrid.ledger is not None and server.session_id is not None:
            self.pgrid.ledger.append("fl.secagg.setup", {
                "session": server.session_id.hex(), "threshold": cfg.threshold,
                "parties": sorted(self.ids), **extra})
        return bytes(roster)


class SecAggCoordinator(_Roster):
    """Routes the secure-aggregation messages and computes the unmasked sums."""

    def __init__(self, pgrid: PartyGrid, *, min_parties: int = 2) -> None:
        from privacy.secagg import SecAggConfig, SecAggServer

        super().__init__(pgrid, SecAggConfig(
            threshold=threshold_for(len(pgrid.nodes), min_parties), frac_bits=FRAC_BITS,
            max_abs=MAX_ABS))
        self.server = SecAggServer(self.config, vector_length=1)
        self.inbox: dict[int, bytes] = {}

    def setup(self) -> None:
        """Key advertisement and share distribution (two exchanges)."""
        roster = self._advertise(self.server, {})
        replies = self.pgrid.exchange(P.SECAGG_SETUP, {p: _content({"roster": roster})
                                                       for p in self.ids}, required=True)
        self.inbox = self.server.route({self.ids[p]: _field(m, "setup", p)
                                        for p, m in replies.items()})

    def begin(self, round_id: int, active: list[str]) -> None:
        """Fix the participants of a round: active parties whose keys are intact."""
        ids = [self.ids[p] for p in active if self.ids[p] in self.server.active]
        self.participants = self.server.start_round(round_id, participants=ids)

    def request(self, party: str, round_id: int) -> dict[str, Any]:
        """What a party needs to mask its vector this round."""
        i = self.ids[party]
        return {"secagg-participants": self.participants,
                "secagg-inbox": self.inbox[i] if i in self.inbox else self.server.inbox(i)}

    def finish(self, round_id: int, payloads: Mapping[str, bytes], length: int
               ) -> tuple[npt.NDArray[np.float64], list[str]]:
        """Unmask the sum of the masked vectors in ``payloads`` (party -> bytes)."""
        self.server.vector_length = length
        request, inbox = self.server.collect(round_id, {self.ids[p]: b
                                                        for p, b in payloads.items()})
        self.inbox = dict(inbox)
        replies = self.pgrid.exchange(P.SECAGG_UNMASK, {p: _content({"request": request})
                                                        for p in payloads}, round_id=round_id)
        total, contributors = self.server.finish(round_id, {
            self.ids[p]: _field(m, "unmask", p) for p, m in replies.items()})
        return np.asarray(total, dtype=np.float64), [self.party_of[i] for i in contributors]


class PairwiseCoordinator(_Roster):
    """The coordinator of one-exchange secure sums: the same interface as
    :class:`SecAggCoordinator`; :meth:`finish` raises ``privacy.secagg.RoundLost`` when
    a participant sent nothing (the caller repeats the sum without it)."""

    def __init__(self, pgrid: PartyGrid, *, min_parties: int = 2) -> None:
        from privacy.secagg import PairwiseSumServer, SecAggConfig

        super().__init__(pgrid, SecAggConfig(threshold=max(2, min_parties),
                                             frac_bits=FRAC_BITS, max_abs=MAX_ABS))
        self.server = PairwiseSumServer(self.config)

    def setup(self) -> None:
        """Collect every party's public key (one exchange); the roster goes with each sum."""
        self._advertise(self.server, {"mode": "pairwise"})

    def begin(self, round_id: int, active: list[str]) -> None:
        """Fix the participants of a round: the active parties."""
        self.participants = self.server.start_round(round_id, [self.ids[p] for p in active])

    def request(self, party: str, round_id: int) -> dict[str, Any]:
        """What a party needs to mask its vector this round."""
        return {"secagg-participants": self.participants,
                "secagg-roster": self.server.roster_message}

    def finish(self, round_id: int, payloads: Mapping[str, bytes], length: int
               ) -> tuple[npt.NDArray[np.float64], list[str]]:
        """The sum of the masked vectors in ``payloads`` (every participant's)."""
        total, contributors = self.server.finish(
            round_id, {self.ids[p]: b for p, b in payloads.items()}, length)
        return np.asarray(total, dtype=np.float64), [self.party_of[i] for i in contributors]
