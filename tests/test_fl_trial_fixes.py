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


def test_centred_pass_ignores_the_secure_sums_noise_in_empty_buckets() -> None:
    """CKKS returns ~1e-9 where a bucket is empty; weighted by 4**e it must not count."""
    from federated.preprocess import apply_centred, centred_vector

    parties, x = offset_parties(1e9)
    spec = FeatureSpec.from_json(moments_spec(parties).to_json())
    total = np.sum([centred_vector(p, spec) for p in parties], axis=0)
    noise = np.random.default_rng(1).normal(0.0, 1e-8, total.shape)
    got = apply_centred(spec, total + noise)
    assert got.sd["bal"] == pytest.approx(float(np.std(x)), rel=1e-4)


@pytest.mark.parametrize("offset", [1e6, 1e9])
def test_tree_sketch_grid_spans_the_data(offset: float) -> None:
    """The gbdt bins are cut on a sketch over mean +- 6 sd: it must hold the data."""
    parties, x = offset_parties(offset, sd=10.0)
    spec = centred_spec(parties)
    lo, hi = spec.grid["bal"]
    assert lo < float(np.min(x)) and float(np.max(x)) < hi
    assert (hi - lo) == pytest.approx(12 * float(np.std(x)), rel=1e-3)


# ---------------------------------------------------------------- 2. identifiers as features
from fl_inputs import cli_error  # noqa: E402

import federated.runner as runner  # noqa: E402
from federated.config import load_config  # noqa: E402
from federated.runner import preflight  # noqa: E402
from privacy.errors import InputError  # noqa: E402


def bank_csv(i: int, n: int = 80, *, ids: bool = True, label: str = "y") -> str:
    rng = np.random.default_rng(i)
    head = ("cust_id," if ids else "") + f"income,seg,{label}\n"
    rows = "".join((f"C{i}{k:05d}," if ids else "")
                   + f"{rng.normal(5000, 100):.2f},{'AB'[k % 2]},{k % 3 == 0:d}\n"
                   for k in range(n))
    return head + rows


def setup_run(tmp_path: Path, *, extra: str = "", banks: int = 2, ids: bool = True,
              test: str | None = None, model: str = "logistic") -> Path:
    for i in range(banks):
        (tmp_path / f"bank_{i}.csv").write_text(bank_csv(i, ids=ids), encoding="utf-8")
    blocks = "".join(f'\n[[party]]\nname = "bank_{i}"\ndata = "bank_{i}.csv"\n'
                     for i in range(banks))
    if test is not None:
        (tmp_path / "test.csv").write_text(test, encoding="utf-8")
        extra += '\ntest = "test.csv"'
    cfg = tmp_path / "run.toml"
    rounds = "" if extra.startswith("rounds") else "rounds = 2\n"
    cfg.write_text(f'kind = "horizontal"\nmodel = "{model}"\nlabel = "y"\n{rounds}'
                   f'{extra}\n{blocks}', encoding="utf-8")
    return cfg


def test_distinct_text_column_is_refused_on_the_party() -> None:
    """Decided by describe_party, which runs on the bank: the values never leave it."""
    ids = [f"C{k:06d}" for k in range(60)]
    pt_ = table("bank_0", {"cust_id": ids, "x": np.arange(60.0), "y": [0, 1] * 30})
    with pytest.raises(InputError) as info:
        describe_party(pt_, label="y")
    msg = str(info.value)
    assert "bank_0" in msg and "bank_0.csv" in msg and "cust_id" in msg and "60" in msg
    assert "exclude" in msg and "C000000" not in msg
    # a short table or a column with repeats stays a categorical feature
    short = table("bank_0", {"seg": ids[:20], "y": [0, 1] * 10})
    assert describe_party(short, label="y").kinds == {"seg": "categorical"}
    # listed as categorical in the config: taken at its word (up to MAX_LEVELS levels)
    listed = describe_party(pt_, label="y", categorical=["cust_id"])
    assert listed.kinds["cust_id"] == "categorical"


def test_too_many_levels_are_refused() -> None:
    vals = [f"L{k % 1200}" for k in range(2400)]
    pt_ = table("bank_1", {"seg": vals, "y": [0, 1] * 1200})
    with pytest.raises(InputError, match=r"bank_1.*1200 distinct"):
        describe_party(pt_, label="y")


@pytest.mark.parametrize("model", ["logistic", "gbdt"])
def test_cli_refuses_an_id_column_as_feature(tmp_path: Path, no_flower: list[str],
                                             model: str) -> None:
    err = cli_error(setup_run(tmp_path, model=model), no_flower)
    assert "bank_0" in err and "bank_0.csv" in err and "cust_id" in err and "80" in err
    assert "exclude" in err and "C000000" not in err


def test_horizontal_id_is_left_out_of_the_features(tmp_path: Path) -> None:
    cfg = load_config(setup_run(tmp_path, extra='id = "cust_id"'))
    assert "cust_id" in cfg.exclude
    preflight(cfg)  # no id-like column left among the features
    pt_ = runner.read_table(tmp_path / "bank_0.csv", party="bank_0")
    assert "cust_id" not in describe_party(pt_, label="y", exclude=cfg.exclude).kinds


def test_horizontal_id_missing_from_a_bank(tmp_path: Path, no_flower: list[str]) -> None:
    err = cli_error(setup_run(tmp_path, extra='id = "acct"'), no_flower)
    assert "bank_0" in err and "'acct'" in err and "id" in err


# ---------------------------------------------------------------- 3. keys with no effect
@pytest.mark.parametrize("extra,key", [("epochs = 5", "epochs"), ('id_type = "mobile"', "id_type"),
                                       ("iv = false", "iv"), ("iv_bins = 5", "iv_bins"),
                                       ('rounds = "5"', "rounds"), ('seed = "1"', "seed")])
def test_horizontal_config_refuses_keys_without_effect(tmp_path: Path, no_flower: list[str],
                                                       extra: str, key: str) -> None:
    cfg = setup_run(tmp_path, extra=extra, ids=False)
    err = cli_error(cfg, no_flower)
    line = cfg.read_text().splitlines().index(extra) + 1
    assert f"run.toml:{line}" in err and key in err


def test_exclude_naming_no_column(tmp_path: Path, no_flower: list[str]) -> None:
    err = cli_error(setup_run(tmp_path, extra='exclude = ["ghost"]', ids=False), no_flower)
    assert "exclude" in err and "'ghost'" in err


def test_exclude_typo_is_named_before_the_column_it_missed(tmp_path: Path,
                                                           no_flower: list[str]) -> None:
    err = cli_error(setup_run(tmp_path, extra='exclude = ["cust_ld"]'), no_flower)
    assert "exclude" in err and "'cust_ld'" in err and "run.toml" in err


# ---------------------------------------------------------------- 4. test file in preflight
@pytest.mark.parametrize("test,what", [
    ("income,seg,y\n5000,A,1\n5100,B,\n", "missing label"),
    ("income,seg,y\n5000,A,1\n5100,B,7\n", "'7'"),
    ("income,seg,y\n5000,A,1\nlots,B,0\n", "'lots'"),
])
def test_test_file_errors_before_anything_is_exchanged(tmp_path: Path, no_flower: list[str],
                                                       test: str, what: str) -> None:
    cfg = setup_run(tmp_path, ids=False, test=test)
    with pytest.raises(InputError) as info:
        preflight(load_config(cfg))
    assert what in str(info.value) and "test.csv" in str(info.value)
    err = cli_error(cfg, no_flower)
    assert what in err and "test.csv:3:" in err


def test_remote_federation_checks_the_test_labels_first(tmp_path: Path) -> None:
    """With the data on the banks' SuperNodes the coordinator still checks its test file."""
    (tmp_path / "test.csv").write_text("income,y\n5000,1\n5100,\n", encoding="utf-8")
    cfg = tmp_path / "remote.toml"
    cfg.write_text('kind = "horizontal"\nmode = "deployment"\nlabel = "y"\ntest = "test.csv"\n'
                   '[deployment]\nsuperlink = "fl.coordinator.example:9093"\n'
                   'root_certificates = "ca.crt"\n[[party]]\nname = "bank_1"\n'
                   '[[party]]\nname = "bank_2"\n', encoding="utf-8")
    with pytest.raises(InputError, match="missing label") as info:
        preflight(load_config(cfg))
    assert info.value.line == 3


def test_numeric_identifier_column_is_refused_unless_listed_numeric() -> None:
    n = 120
    rng = np.random.default_rng(4)
    cols = {"customer_no": np.arange(1_000_000, 1_000_000 + n, dtype=float)[::-1],
            "income": rng.normal(5000, 100, n).round(), "y": [0, 1] * (n // 2)}
    with pytest.raises(InputError) as info:
        describe_party(table("bank_3", cols), label="y")
    msg = str(info.value)
    assert "bank_3" in msg and "customer_no" in msg and "120 rows" in msg
    assert "exclude" in msg and "1000000" not in msg
    # listed as numeric in the config: taken at its word
    listed = describe_party(table("bank_3", cols), label="y", numeric=["customer_no"])
    assert listed.kinds["customer_no"] == "numeric"
    # whole numbers all different under a feature's name, or repeats under an id's name,
    # or a short table: features as before
    amounts = dict(cols, customer_no=rng.integers(0, 10**9, n).astype(float))
    assert describe_party(table("bank_3", {"total_paid": amounts["customer_no"],
                                           "y": cols["y"]}), label="y").kinds == {
        "total_paid": "numeric"}
    repeats = {"branch_no": np.arange(n, dtype=float) % 7, "y": cols["y"]}
    assert describe_party(table("bank_3", repeats), label="y").kinds == {"branch_no": "numeric"}
    short = {"customer_no": np.arange(40, dtype=float), "y": [0, 1] * 20}
    assert describe_party(table("bank_3", short), label="y").kinds == {"customer_no": "numeric"}


def test_vertical_refuses_a_second_numeric_id_column() -> None:
    from federated.vertical.features import feature_kinds

    n = 100
    pt_ = table("bureau", {"AcctNo": np.arange(n, dtype=float) * 3 + 7,
                           "score": np.linspace(300, 850, n).round()})
    with pytest.raises(InputError, match=r"bureau.*'AcctNo'.*named like an identifier"):
        feature_kinds(pt_, exclude=[], numeric=None, categorical=None)
    assert feature_kinds(pt_, exclude=["AcctNo"], numeric=None, categorical=None) == {
        "score": "numeric"}
