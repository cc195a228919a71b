"""Party tables and the preprocessing fitted from secure-summed statistics.

The four statistic steps are run on each party and their vectors summed in numpy (what
the secure sum reveals); the resulting Transform must equal scikit-learn's
``SimpleImputer(strategy="median")`` + ``StandardScaler`` + one-hot over the union of
levels, fitted on the pooled table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federated.data import (
    PartyTable,
    choose_positive,
    encode_label,
    kind_of,
    label_levels,
    numeric_values,
    read_table,
    text_values,
)
from federated.preprocess import (
    HIST_BINS,
    HIST_SPAN,
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
from privacy.errors import InputError

sklearn = pytest.importorskip("sklearn")
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

NUMERIC = ["age", "const", "gone", "income", "score", "ties"]  # the spec's (sorted) order
INTEGER = ["age", "ties", "const"]


def fit(parties: Sequence[PartyTable], *, label: str = "y", positive: Any = None,
        numeric: Sequence[str] | None = None, categorical: Sequence[str] | None = None,
        exclude: Sequence[str] = ()) -> tuple[FeatureSpec, Transform]:
    """The four steps, each party's vector summed in numpy (a simulated secure sum)."""
    schemas = {p.party: PartySchema.from_json(
        describe_party(p, label=label, exclude=exclude, numeric=numeric,
                       categorical=categorical).to_json(), party=p.party) for p in parties}
    spec = merge_schemas(schemas, label=label, positive=positive)
    spec = FeatureSpec.from_json(spec.to_json())  # what every party receives
    spec = apply_moments(spec, np.sum([moments_vector(p, spec) for p in parties], axis=0))
    spec = narrow_grid(spec, np.sum([spread_vector(p, spec) for p in parties], axis=0))
    hist = np.sum([histogram_vector(p, spec) for p in parties], axis=0)
    return spec, fit_transform_spec(spec, hist)


def table(party: str, data: dict[str, Any]) -> PartyTable:
    return PartyTable(party, Path(f"{party}.csv"), pa.table(data))


def median_tolerance(x: np.ndarray) -> float:
    """The documented precision: each middle value to one fine bin, the fine grid
    spanning the coarse bins (12 sd / HIST_BINS each) that hold the middle values."""
    v = np.sort(x[~np.isnan(x)])
    m = v.size
    gap = float(v[m // 2] - v[(m - 1) // 2])
    sd = max(float(np.std(v)), 1e-6 * max(abs(float(np.mean(v))), 1.0))  # the grid's floor
    coarse = 2 * HIST_SPAN * sd / HIST_BINS
    return (gap + 2 * coarse) / HIST_BINS + 1e-12 * max(1.0, abs(float(np.median(v))))


# --- a random 3-party table -----------------------------------------------------------


def make_pooled(rng: np.random.Generator, n: int) -> dict[str, Any]:
    def holes(x: np.ndarray, frac: float) -> list[Any]:
        miss = rng.random(x.size) < frac
        return [None if m else v for m, v in zip(miss, x.tolist(), strict=True)]

    states = np.array(["BJ", "SH", "GD", "ZJ"])
    return {
        "row_id": list(range(n)),
        "income": holes(np.round(rng.lognormal(10, 1.2, n), 2), 0.15),   # skewed, missing
        "age": holes(rng.integers(18, 80, n), 0.1),                       # ints, ties, missing
        "score": rng.normal(600, 50, n).tolist(),                         # no missing
        "ties": rng.choice([0, 1, 1, 2, 2, 2, 3], n).tolist(),            # heavy ties
        "const": [7] * n,
        "gone": rng.normal(0, 1, n).tolist(),                             # nulled at party 1
        "state": holes(states[rng.integers(0, 4, n)], 0.05),
        "y": np.where(rng.random(n) < 0.3, "bad", "good").tolist(),
    }


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    rng = np.random.default_rng(20240611)
    n = 900
    pooled = make_pooled(rng, n)
    cuts = [0, 250, 601, n]          # 250, 351 (odd) and 299 rows
    folder = tmp_path_factory.mktemp("fl_split")
    parties = []
    for i in range(3):
        part = {k: v[cuts[i]: cuts[i + 1]] for k, v in pooled.items()}
        if i == 1:
            part["gone"] = [None] * len(part["gone"])   # entirely missing at one party
        if i == 2:
            part["state"] = [("ZZ" if j % 17 == 0 else s) for j, s in enumerate(part["state"])]
        path = folder / f"bank_{i}.csv"
        pcsv.write_csv(pa.table(part), path)
        parties.append(read_table(path, party=f"bank_{i}"))
    spec, tr = fit(parties, exclude=["row_id"])
    pooled_parties = pa.concat_tables([p.table.select([*NUMERIC, "state", "y"]) for p in parties],
                                      promote_options="permissive")
    return {"parties": parties, "spec": spec, "transform": tr, "pooled": pooled_parties,
            "folder": folder}


def pooled_numeric(split: dict[str, Any], c: str) -> np.ndarray:
    col = split["pooled"].column(c)
    return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def test_columns_and_kinds(split: dict[str, Any]) -> None:
    """Columns come in a fixed order whatever each party's file order (here the
    schemas' canonical JSON sorts them)."""
    tr: Transform = split["transform"]
    assert [c for c, *_ in tr.numeric] == NUMERIC
    assert [c for c, _ in tr.categorical] == ["state"]
    assert split["spec"].integral == {c: c in INTEGER for c in NUMERIC}
    assert tr.positive == "bad"   # 'good'/'bad' without `positive`


def test_medians_equal_pooled_numpy(split: dict[str, Any]) -> None:
    tr: Transform = split["transform"]
    for c, med, _, _ in tr.numeric:
        x = pooled_numeric(split, c)
        want = float(np.median(x[~np.isnan(x)]))
        if c in INTEGER:
            assert med == want, c
        else:
            assert med == pytest.approx(want, rel=0, abs=median_tolerance(x)), c


def test_even_count_median_is_the_mean_of_the_middle_values() -> None:
    """numpy (and SimpleImputer) take the mean of the two middle values; reading one
    of them instead was off by half their gap (here 0.25 sd)."""
    x = [1.0, 2.0, 3.0, 4.0, 5.5, 7.0, 8.0, 10.0]
    parts = [table("a", {"x": x[:3], "y": [0, 1, 0]}),
             table("b", {"x": x[3:], "y": [1, 0, 1, 0, 1]})]
    _, tr = fit(parts)
    arr = np.array(x)
    assert tr.numeric[0][1] == pytest.approx(4.75, abs=median_tolerance(arr))
    ints = [table("a", {"k": [3, 3, 4], "y": [0, 1, 0]}),
            table("b", {"k": [1, 9, 4], "y": [1, 0, 1]})]
    _, tr = fit(ints)
    assert tr.numeric[0][1] == 3.5   # numpy.median([1, 3, 3, 4, 4, 9])


def test_means_and_sds_equal_sklearn_on_pooled_data(split: dict[str, Any]) -> None:
    tr: Transform = split["transform"]
    for c, med, mean, sd in tr.numeric:
        x = pooled_numeric(split, c).reshape(-1, 1)
        # the exact pipeline, with the federated median as the fill value
        imputed = SimpleImputer(strategy="constant", fill_value=med).fit_transform(x)
        sc = StandardScaler().fit(imputed)
        assert mean == pytest.approx(sc.mean_[0], rel=1e-9, abs=1e-12), c
        assert sd == pytest.approx(sc.scale_[0], rel=1e-9), c
        # scikit-learn's own median: exact for integer columns and complete columns,
        # else within the median's precision
        ref = StandardScaler().fit(SimpleImputer(strategy="median").fit_transform(x))
        frac_missing = float(np.isnan(x).mean())
        tol = 1e-9 * max(abs(ref.mean_[0]), 1.0)
        if c not in INTEGER and frac_missing:
            tol += 2 * frac_missing * median_tolerance(x.ravel())
        assert mean == pytest.approx(ref.mean_[0], rel=0, abs=tol), c
        assert sd == pytest.approx(ref.scale_[0], rel=1e-9 if tol < 1e-6 else 1e-5), c


def expected_features(split: dict[str, Any], pt_: PartyTable, *, fill: str) -> np.ndarray:
    """scikit-learn on the pooled data, applied to one party's table."""
    tr: Transform = split["transform"]
    cols = []
    for c, med, _, _ in tr.numeric:
        pooled = pooled_numeric(split, c).reshape(-1, 1)
        imp = (SimpleImputer(strategy="median") if fill == "median"
               else SimpleImputer(strategy="constant", fill_value=med))
        imp.fit(pooled)
        sc = StandardScaler().fit(imp.transform(pooled))
        x = numeric_values(pt_, c).reshape(-1, 1)
        if np.isnan(x).all():
            x = np.full_like(x, imp.statistics_[0])  # SimpleImputer drops all-NaN input
        cols.append(sc.transform(imp.transform(x)).ravel())
    from sklearn.preprocessing import OneHotEncoder

    levels = sorted({v for p in split["parties"] for v in text_values(p, "state") if v})
    enc = OneHotEncoder(categories=[levels], handle_unknown="ignore", sparse_output=False)
    enc.fit(np.array(levels, dtype=object).reshape(-1, 1))
    s = np.array([v if v is not None else "\0missing" for v in text_values(pt_, "state")],
                 dtype=object).reshape(-1, 1)
    return np.column_stack([*cols, enc.transform(s)])


def test_features_equal_sklearn_pipeline(split: dict[str, Any]) -> None:
    tr: Transform = split["transform"]
    assert tr.categorical == [("state", ["BJ", "GD", "SH", "ZJ", "ZZ"])]
    assert tr.feature_names[-5:] == [f"state={s}" for s in ["BJ", "GD", "SH", "ZJ", "ZZ"]]
    for pt_ in split["parties"]:
        got = tr.features(pt_)
        assert got.shape == (pt_.rows, len(NUMERIC) + 5) and got.dtype == np.float64
        np.testing.assert_allclose(got, expected_features(split, pt_, fill="constant"),
                                   rtol=1e-9, atol=1e-9)
        # against scikit-learn's own median: only the float columns with missing
        # values may differ, by the median's precision in sd units
        ref = expected_features(split, pt_, fill="median")
        loose = [NUMERIC.index("income"), NUMERIC.index("gone")]
        keep = [j for j in range(got.shape[1]) if j not in loose]
        np.testing.assert_allclose(got[:, keep], ref[:, keep], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(got[:, loose], ref[:, loose], rtol=0, atol=1e-4)
    # the level only bank_2 has is a column at every party (all zeros elsewhere)
    zz = tr.feature_names.index("state=ZZ")
    assert not tr.features(split["parties"][0])[:, zz].any()
    assert tr.features(split["parties"][2])[:, zz].any()


def test_constant_column(split: dict[str, Any]) -> None:
    tr: Transform = split["transform"]
    c, med, mean, sd = tr.numeric[NUMERIC.index("const")]
    assert (med, mean, sd) == (7.0, 7.0, 1.0)
    j = NUMERIC.index("const")
    for pt_ in split["parties"]:
        assert np.all(tr.features(pt_)[:, j] == 0.0)


def test_column_missing_at_one_party(split: dict[str, Any]) -> None:
    """bank_1's 'gone' column is all empty (Arrow null type): it is imputed there."""
    p1 = split["parties"][1]
    assert kind_of(p1.table.column("gone").type) == "empty"
    tr: Transform = split["transform"]
    c, med, mean, sd = tr.numeric[NUMERIC.index("gone")]
    col = tr.features(p1)[:, NUMERIC.index("gone")]
    assert np.allclose(col, (med - mean) / sd)
    assert split["spec"].present["gone"] == pytest.approx(1 - p1.rows / 900)


def test_unseen_and_missing_levels_encode_as_zeros(split: dict[str, Any]) -> None:
    tr: Transform = split["transform"]
    new = table("test", {c: [1, 2, None] for c in NUMERIC} | {
        "state": ["QQ", None, "SH"], "y": ["good", "bad", "good"]})
    x = tr.features(new)
    onehot = x[:, len(NUMERIC):]
    assert not onehot[0].any() and not onehot[1].any()
    assert onehot[2].tolist() == [0, 0, 1, 0, 0]
    assert tr.labels(new).tolist() == [0.0, 1.0, 0.0]
    # a missing numeric value is the median
    j = NUMERIC.index("age")
    _, med, mean, sd = tr.numeric[j]
    assert x[2, j] == pytest.approx((med - mean) / sd)


def test_transform_json_round_trip_and_digest(split: dict[str, Any]) -> None:
    tr: Transform = split["transform"]
    back = Transform.from_json(tr.to_json())
    assert back == tr and back.digest == tr.digest
    assert len(tr.digest) == 64
    d = json.loads(tr.to_json())
    d["numeric"][0][1] += 1.0
    assert Transform.from_json(json.dumps(d)).digest != tr.digest
    np.testing.assert_array_equal(back.features(split["parties"][0]),
                                  tr.features(split["parties"][0]))


@pytest.mark.parametrize("text", ["{", "[]", '{"label": "y"}',
                                  '{"label": "y", "positive": "1", "numeric": [[1]], '
                                  '"categorical": []}'])
def test_transform_from_json_malformed(text: str) -> None:
    with pytest.raises(InputError, match="malformed preprocessing spec"):
        Transform.from_json(text)


def test_transform_names_the_missing_column(split: dict[str, Any]) -> None:
    tr: Transform = split["transform"]
    t = table("bank_x", {"income": [1.0], "y": ["good"]})
    with pytest.raises(InputError, match=r"party 'bank_x'.*'age' is missing"):
        tr.features(t)


def test_sum_shapes_are_checked(split: dict[str, Any]) -> None:
    spec: FeatureSpec = split["spec"]
    with pytest.raises(InputError, match="moments sum has shape"):
        apply_moments(spec, np.zeros(3))
    with pytest.raises(InputError, match="spread sum has shape"):
        narrow_grid(spec, np.zeros(5))
    with pytest.raises(InputError, match="histogram sum has shape"):
        fit_transform_spec(spec, np.zeros((HIST_BINS + 2) * len(spec.numeric) + 1))


def test_sums_lie_in_unit_range(split: dict[str, Any]) -> None:
    """Every entry of every party's vector is a fraction of N (secure-sum friendly)."""
    spec0: FeatureSpec = split["spec"]
    for p in split["parties"]:
        for vec in (moments_vector(p, spec0), spread_vector(p, spec0),
                    histogram_vector(p, spec0)):
            assert np.all(vec >= 0.0) and np.all(vec <= 1.0)


# --- property: the median of random data ----------------------------------------------


@st.composite
def split_values(draw: st.DrawFn) -> tuple[list[list[float | None]], bool]:
    integral = draw(st.booleans())
    elem = (st.integers(-10**6, 10**6).map(float) if integral
            else st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False))
    values = draw(st.lists(st.one_of(elem, st.none()) if draw(st.booleans()) else elem,
                           min_size=3, max_size=60))
    if all(v is None for v in values):
        values[0] = 0.0
    a = draw(st.integers(1, len(values) - 2))
    b = draw(st.integers(a + 1, len(values) - 1))
    return [values[:a], values[a:b], values[b:]], integral


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(split_values())
def test_median_property(data: tuple[list[list[float | None]], bool]) -> None:
    parts_values, integral = data
    parts, start = [], 0
    for i, vals in enumerate(parts_values):
        arr = pa.array(vals, type=pa.int64() if integral else pa.float64())
        y = [(start + j) % 2 for j in range(len(vals))]
        parts.append(table(f"p{i}", {"x": arr, "y": y}))
        start += len(vals)
    spec, tr = fit(parts)
    x = np.array([np.nan if v is None else v for vals in parts_values for v in vals])
    want = float(np.median(x[~np.isnan(x)]))
    got = tr.numeric[0][1]
    tol = median_tolerance(x)
    if integral and tol < 0.25:
        assert got == want     # each middle value read to well under 1, then rounded
    else:
        assert got == pytest.approx(want, rel=0, abs=tol + (0.5 if integral else 0.0))


# --- reading tables -------------------------------------------------------------------


def test_empty_cells_are_missing_values(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text("x,s,y\n1.5,a,1\n,,0\nNA,b,1\n", encoding="utf-8")
    pt_ = read_table(path, party="b")
    x = numeric_values(pt_, "x")
    assert x[0] == 1.5 and np.isnan(x[1]) and np.isnan(x[2])
    assert text_values(pt_, "s").tolist() == ["a", None, "b"]
    assert pt_.rows == 3 and pt_.columns == ["x", "s", "y"]


def test_parquet_reads_like_csv(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    data = make_pooled(rng, 120)
    data.pop("row_id")
    t = pa.table(data)
    pcsv.write_csv(t.slice(0, 60), tmp_path / "a.csv")
    pcsv.write_csv(t.slice(60), tmp_path / "b.csv")
    pq.write_table(t.slice(0, 60), tmp_path / "a.parquet")
    pq.write_table(t.slice(60), tmp_path / "b.data")   # Parquet found by its magic bytes
    from_csv = [read_table(tmp_path / "a.csv", party="a"),
                read_table(tmp_path / "b.csv", party="b")]
    from_pq = [read_table(tmp_path / "a.parquet", party="a"),
               read_table(tmp_path / "b.data", party="b")]
    for c, p in zip(from_csv, from_pq, strict=True):
        for col in NUMERIC:
            np.testing.assert_array_equal(numeric_values(c, col), numeric_values(p, col))
        assert text_values(c, "state").tolist() == text_values(p, "state").tolist()
    _, tr_csv = fit(from_csv)
    _, tr_pq = fit(from_pq)
    assert tr_csv.digest == tr_pq.digest
    np.testing.assert_array_equal(tr_csv.features(from_csv[1]), tr_pq.features(from_pq[1]))


def test_kind_of() -> None:
    assert kind_of(pa.int8()) == kind_of(pa.float32()) == kind_of(pa.bool_()) == "numeric"
    assert kind_of(pa.decimal128(10, 2)) == "numeric"
    assert kind_of(pa.string()) == kind_of(pa.date32()) == "categorical"
    assert kind_of(pa.null()) == "empty"


def test_numeric_values_names_the_row_of_text() -> None:
    pt_ = table("b", {"x": ["1", "2", "lots"], "y": [0, 1, 0]})
    with pytest.raises(InputError) as info:
        numeric_values(pt_, "x")
    assert info.value.row == 3 and info.value.column == "x"
    assert "party 'b'" in str(info.value) and "'lots'" in str(info.value)
    ok = table("b", {"x": ["1", None, "2.5"], "y": [0, 1, 0]})
    np.testing.assert_array_equal(numeric_values(ok, "x"), [1.0, np.nan, 2.5])


def test_numeric_values_refuses_infinity() -> None:
    with pytest.raises(InputError, match="infinite") as info:
        numeric_values(table("b", {"x": [1.0, float("inf")], "y": [0, 1]}), "x")
    assert info.value.row == 2


def test_labels() -> None:
    pt_ = table("b", {"y": [True, False, True]})
    assert label_levels(pt_, "y") == ["0", "1"]
    assert encode_label(pt_, "y", "1").tolist() == [1.0, 0.0, 1.0]
    pt_ = table("b", {"y": [1.0, 0.0]})
    assert label_levels(pt_, "y") == ["0", "1"]
    with pytest.raises(InputError) as info:
        label_levels(table("b", {"y": ["a", None]}), "y")
    assert info.value.row == 2 and "missing label" in str(info.value)
    with pytest.raises(InputError):
        encode_label(table("b", {"y": ["a", None]}), "y", "a")


@pytest.mark.parametrize(("levels", "configured", "want"), [
    (["0", "1"], None, "1"), (["good", "bad"], None, "bad"), (["No", "Yes"], None, "Yes"),
    (["A", "B"], "B", "B"), (["0", "1"], 0, "0"), (["0", "1"], True, "1"),
    (["Fully Paid", "Charged Off"], None, "Charged Off"),
    # a boolean label column (True/False in the file) is read as 1/0: positive = "True"
    (["0", "1"], "True", "1"), (["0", "1"], "FALSE", "0")])
def test_choose_positive(levels: list[str], configured: Any, want: str) -> None:
    assert choose_positive(levels, configured, label="y") == want


def test_choose_positive_errors() -> None:
    with pytest.raises(InputError, match=r"positive = \"\.\.\.\""):
        choose_positive(["A", "B"], None, label="y")
    with pytest.raises(InputError, match="exactly 2 values.*found 3"):
        choose_positive(["0", "1", "2"], None, label="y")
    with pytest.raises(InputError, match="found 1"):
        choose_positive(["1"], None, label="y")
    with pytest.raises(InputError, match="not a value of label"):
        choose_positive(["A", "B"], "C", label="y")
    # 1/2 codes (German credit: 1 = good, 2 = bad): "1" is no obvious event
    with pytest.raises(InputError, match=r"values \['1', '2'\]: say which is the event"):
        choose_positive(["1", "2"], None, label="y")
    assert choose_positive(["1", "2"], 2, label="y") == "2"
    assert choose_positive(["-1", "1"], None, label="y") == "1"


# --- column kinds from the config -----------------------------------------------------


def test_listed_kinds_win_over_the_data() -> None:
    pt_ = table("b", {"branch": [101, 102, 101], "s": ["a", "b", "a"],
                      "x": [0.5, 1.5, 2.0], "y": [0, 1, 0]})
    # only `categorical` given: the listed column is categorical, the rest inferred
    s = describe_party(pt_, label="y", categorical=["branch"])
    assert s.kinds == {"branch": "categorical", "s": "categorical", "x": "numeric"}
    assert s.levels["branch"] == ["101", "102"]
    # only `numeric` given: likewise
    s = describe_party(pt_, label="y", numeric=["x"])
    assert s.kinds == {"branch": "numeric", "s": "categorical", "x": "numeric"}
    # both given: exactly the listed columns
    s = describe_party(pt_, label="y", numeric=["x"], categorical=["s"])
    assert s.kinds == {"x": "numeric", "s": "categorical"}
    # a text column listed as numeric is an error naming party, column and row
    with pytest.raises(InputError) as info:
        describe_party(pt_, label="y", numeric=["s"])
    assert "party 'b'" in str(info.value) and info.value.column == "s" and info.value.row == 1


def test_listed_column_missing_names_the_party() -> None:
    pt_ = table("b", {"x": [1, 2], "y": [0, 1]})
    with pytest.raises(InputError, match=r"party 'b'.*'q' named in the config is missing"):
        describe_party(pt_, label="y", categorical=["q"])
    with pytest.raises(InputError, match=r"party 'b'.*label column 'z' is missing"):
        describe_party(pt_, label="z")


# --- what a party sends is bounded ----------------------------------------------------


def schema_dict(**over: Any) -> str:
    d = {"party": "b", "rows": 3, "kinds": {"x": "numeric", "s": "categorical"},
         "levels": {"s": ["a"]}, "label_levels": ["0", "1"], "scale_exp": {"x": 3},
         "integral": {"x": True}}
    d.update(over)
    return json.dumps(d)


def test_party_schema_round_trip() -> None:
    pt_ = table("b", {"x": [1, 5], "s": ["a", None], "y": [0, 1]})
    s = describe_party(pt_, label="y")
    assert PartySchema.from_json(s.to_json(), party="b") == s
    assert s.scale_exp == {"x": 3} and s.integral == {"x": True} and s.levels == {"s": ["a"]}


@pytest.mark.parametrize(("over", "match"), [
    ({"rows": 0}, "no rows"),
    ({"levels": {"s": [str(i) for i in range(1001)]}}, "exceeds the limits"),
    ({"kinds": {f"c{i}": "numeric" for i in range(100_001)}}, "exceeds the limits"),
    ({"scale_exp": {"x": 5000}}, "out-of-range scale"),
    ({"scale_exp": {"x": -1100}}, "out-of-range scale"),
    ({"rows": "many"}, "malformed schema"),
    ({"kinds": ["x"]}, "malformed schema"),
])
def test_party_schema_bounds(over: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match) as info:
        PartySchema.from_json(schema_dict(**over), party="bank_7")
    assert "party 'bank_7'" in str(info.value)


@pytest.mark.parametrize("text", ["not json", "[]", '{"party": "b"}'])
def test_party_schema_malformed(text: str) -> None:
    with pytest.raises(InputError, match=r"party 'bank_7': malformed schema"):
        PartySchema.from_json(text, party="bank_7")
