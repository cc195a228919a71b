"""Strategies by name: Flower's for plaintext updates, :class:`SecureFedAvg` for ckks/secagg.

``fedavg``, ``fedprox`` (the client applies the proximal term), ``fedavgm``, ``fedadam``,
``fedyogi``, ``fedadagrad`` and the robust aggregators ``fedmedian``, ``fedtrimmedavg``,
``krum``, ``multikrum``, ``bulyan`` are Flower's own classes. ``ckks`` and ``secagg`` are
:class:`SecureFedAvg`: every party multiplies its model by a weight the coordinator
assigns (its share of the rows, or ``1`` under differential privacy), appends the
weight, and protects the vector; the coordinator learns only the sum and divides by the
summed weight, which is FedAvg's average over the parties that answered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from federated.horizontal import protocol as P
from federated.horizontal.grid import PartyGrid
from federated.horizontal.securesum import SecureSum
from privacy.errors import ConfigError, FederationError

__all__ = ["make_strategy", "SecureFedAvg"]


def make_strategy(method: str, *, parties: int, proximal_mu: float = 0.0,
                  trimmed_beta: float = 0.2, num_malicious: int = 0,
                  weight_key: str = P.WEIGHT_KEY) -> Any:
    """A Flower strategy for a plaintext method name (see the module docstring)."""
    from flwr.serverapp import strategy as S

    common: dict[str, Any] = {
        # evaluation is the coordinator's (federated.horizontal.evaluation), not Flower's
        "fraction_train": 1.0, "fraction_evaluate": 0.0,
        "min_train_nodes": 1, "min_evaluate_nodes": 0,
        "min_available_nodes": 1, "weighted_by_key": weight_key,
    }
    if method == "fedavg":
        return S.FedAvg(**common)
    if method == "fedprox":
        return S.FedProx(**common, proximal_mu=proximal_mu)
    if method == "fedavgm":
        return S.FedAvgM(**common, server_momentum=0.9)
    if method == "fedadam":
        return S.FedAdam(**common)
    if method == "fedyogi":
        return S.FedYogi(**common)
    if method == "fedadagrad":
        return S.FedAdagrad(**common)
    if method == "fedmedian":
        return S.FedMedian(**common)
    if method == "fedtrimmedavg":
        return S.FedTrimmedAvg(**common, beta=trimmed_beta)
    if method in ("krum", "multikrum", "bulyan"):
        need = {"krum": 2 * num_malicious + 3, "multikrum": 2 * num_malicious + 3,
                "bulyan": 4 * num_malicious + 3}[method]
        if parties < need:
            raise ConfigError(f"aggregation.method = {method!r} with num_malicious = "
                              f"{num_malicious} needs at least {need} parties, not {parties}")
        cls = {"krum": S.Krum, "multikrum": S.MultiKrum, "bulyan": S.Bulyan}[method]
        return cls(**common, num_malicious_nodes=num_malicious)
    raise ConfigError(f"aggregation.method: unknown method {method!r}")


def _fedavg() -> type:
    from flwr.serverapp.strategy import FedAvg

    return FedAvg


class SecureFedAvg(_fedavg()):  # type: ignore[misc]
    """FedAvg whose aggregate the coordinator computes without seeing one party's model.

    Parameters
    ----------
    pgrid:
        The coordinator's :class:`PartyGrid`.
    secure:
        A set-up :class:`SecureSum`.
    weights:
        Party -> the weight it multiplies its model by.
    round_offset:
        Secure-sum round ids already used (statistics), so training rounds get fresh ids.
    """

    def __init__(self, pgrid: PartyGrid, secure: SecureSum, weights: Mapping[str, float], *,
                 round_offset: int = 0, weight_key: str = P.WEIGHT_KEY) -> None:
        super().__init__(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=1,
                         min_evaluate_nodes=0, min_available_nodes=1,
                         weighted_by_key=weight_key)
        self.pgrid = pgrid
        self.secure = secure
        self.weights = dict(weights)
        self.round_offset = round_offset
        self._length = 0

    def configure_train(self, server_round: int, arrays: Any, config: Any, grid: Any
                        ) -> Iterable[Any]:
        """One message per active party, with its weight and the secure-sum fields."""
        from flwr.app import ConfigRecord, Message, RecordDict

        rid = self.round_offset + server_round
        self.secure.begin(rid)
        self._length = int(sum(np.asarray(a.numpy()).size for a in arrays.values())) + 1
        out = []
        for party in self.pgrid.active:
            cfg = dict(config)
            cfg["server-round"] = server_round
            cfg["secure-weight"] = float(self.weights[party])
            cfg.update(self.secure.request(party, rid))
            content = RecordDict({P.ARRAYS: arrays, P.CONFIG: ConfigRecord(cfg)})
            out.append(Message(content=content, dst_node_id=self.pgrid.nodes[party],
                               message_type=P.TRAIN))
        return out

    def aggregate_train(self, server_round: int, replies: Iterable[Any]) -> tuple[Any, Any]:
        """Sum the protected replies, divide by the summed weight."""
        from flwr.app import Array, ArrayRecord, MetricRecord

        by_party = {self.pgrid.party_of(m.metadata.src_node_id): m for m in replies
                    if not m.has_error()}
        if not by_party:
            return None, None
        total, who = self.secure.combine(self.round_offset + server_round, by_party,
                                         self._length)
        weight = float(total[-1])
        if not weight > 0:
            raise FederationError(f"round {server_round}: the summed weight is {weight}")
        w = total[:-1] / weight
        rows = sum(float(m.content.metric_records[P.METRICS].get("rows", 0.0))
                   for m in by_party.values())
        metrics = MetricRecord({"parties": float(len(who)), "rows": rows})
        return ArrayRecord({"w": Array(np.ascontiguousarray(w))}), metrics
