"""Fixes from a new user's trial of horizontal federated learning.

1. Standardisation of columns far from zero (``1e9 + N(0, 100)``): the spread comes from
   a centred pass (moments of ``x - mean`` split by power of two), not from
   ``sum x**2 - (sum x)**2``, which the fixed-point secure sum reduced to sd 1.0.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from federated.data import PartyTable
from federated.preprocess import (
    FeatureSpec,
    PartySchema,
    Transform,
    apply_moments,
    describe_party,
    fit_transform_spec,
    histogram_vector,
    merge_schemas,
    moments_vector,
    narrow_grid,
    spread_vector,
)

FRAC_BITS = 32  # the secure aggregation's fixed point (federated.horizontal.secagg_coordinator)


def secure_sum(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """What secure aggregation returns: each party's vector rounded to fixed point, summed."""
    return np.sum([np.round(np.ldexp(v, FRAC_BITS)) for v in vectors], axis=0) / 2.0**FRAC_BITS


def table(party: str, data: dict[str, Any]) -> PartyTable:
    return PartyTable(party, Path(f"{party}.csv"), pa.table(data))


def moments_spec(parties: Sequence[PartyTable]) -> FeatureSpec:
    schemas = {p.party: PartySchema.from_json(describe_party(p, label="y").to_json(),
                                              party=p.party) for p in parties}
    spec = FeatureSpec.from_json(merge_schemas(schemas, label="y", positive=None).to_json())
    return apply_moments(spec, secure_sum([moments_vector(p, spec) for p in parties]))


def centred_spec(parties: Sequence[PartyTable]) -> FeatureSpec:
    """Steps 1, 2 and the centred pass (what the LR and the trees' sketch grids use)."""
    from federated.preprocess import apply_centred, centred_vector

    spec = FeatureSpec.from_json(moments_spec(parties).to_json())
    return apply_centred(spec, secure_sum([centred_vector(p, spec) for p in parties]))


def fit(parties: Sequence[PartyTable]) -> Transform:
    spec = centred_spec(parties)
    spec = narrow_grid(spec, secure_sum([spread_vector(p, spec) for p in parties]))
    return fit_transform_spec(spec, secure_sum([histogram_vector(p, spec) for p in parties]))


def offset_parties(offset: float, sd: float = 100.0, n: int = 400, seed: int = 0
                   ) -> tuple[list[PartyTable], np.ndarray]:
    rng = np.random.default_rng(seed)
    parts, pooled = [], []
    for i in range(3):
        x = offset + rng.normal(0.0, sd, n)
        small = rng.normal(0.0, 1.0, n)
        parts.append(table(f"bank_{i}", {"bal": x, "z": small,
                                         "y": (rng.random(n) < 0.3).astype(np.int64)}))
        pooled.append(x)
    return parts, np.concatenate(pooled)


@pytest.mark.parametrize("offset", [0.0, 1e4, 1e6, 1e7, 1e9, 1e12])
def test_large_valued_column_is_standardised_like_sklearn(offset: float) -> None:
    parties, x = offset_parties(offset)
    t = fit(parties)
    (_, med, mu, sd), = [row for row in t.numeric if row[0] == "bal"]
    assert sd == pytest.approx(float(np.std(x)), rel=1e-4)
    assert mu == pytest.approx(float(np.mean(x)), abs=1e-3 * float(np.std(x)))
    assert abs(med - float(np.median(x))) < 0.05 * float(np.std(x))
    feats = np.vstack([t.features(p) for p in parties])[:, 0]
    assert float(np.std(feats)) == pytest.approx(1.0, rel=1e-4)


@pytest.mark.parametrize("offset", [1e6, 1e9])
def test_tree_sketch_grid_spans_the_data(offset: float) -> None:
    """The gbdt bins are cut on a sketch over mean +- 6 sd: it must hold the data."""
    parties, x = offset_parties(offset, sd=10.0)
    spec = centred_spec(parties)
    lo, hi = spec.grid["bal"]
    assert lo < float(np.min(x)) and float(np.max(x)) < hi
    assert (hi - lo) == pytest.approx(12 * float(np.std(x)), rel=1e-3)

