"""Issue 11 (3): the ``noise`` operator could be removed exactly.

Before the fix the operator drew its Laplace noise from numpy, seeded in order of
preference by a ``seed`` option, by an HMAC keyset and the row position, or by the OS:

* the ``seed`` option was written into the output's column plan (``covault.plan``), so
  anyone holding the masked file regenerated the noise and subtracted it: 500 of the
  sample's 500 true incomes came back exactly;
* keyed noise depended only on the key, the column context and the row position, so two
  releases (month over month) carried the same noise in each row: subtracting them gave
  every customer's true change exactly.

Now the mechanism is OpenDP's Laplace measurement (discrete sampling, no naive
floating-point Laplace) over values clamped to bounds the policy must declare, with
fresh system randomness on every call; ``seed`` (and ``sensitivity``) are refused with a
policy error; and each release's epsilon is recorded in the ledger
(``masking.dp_release``) and checked against the policy's ``dp.budget``.
"""

from __future__ import annotations

import hashlib
import json
import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from click.testing import CliRunner, Result

from covault.cli import main
from covault.demo.context import sample_customers_path
from masking.operators import OpContext, build_operator
from masking.writer import sidecar_path
from privacy.errors import PolicyError
from privacy.keys import Kek, Keyset
from privacy.ledger import Ledger

SAMPLE = sample_customers_path()
BOUNDS = "lower: 0, upper: 1000000"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def write_policy(path: Path, noise_options: str) -> Path:
    path.write_text(textwrap.dedent(f"""\
        version: 1
        context: cif.customers
        columns:
          - {{name: customer_id, operator: keep}}
          - {{name: income, operator: noise, options: {{{noise_options}}}}}
        """), encoding="utf-8")
    return path


def incomes(path: Path) -> np.ndarray:
    return np.asarray(pacsv.read_csv(path).column("income").to_pylist(), dtype=np.float64)


def write_month(path: Path, values: np.ndarray) -> Path:
    ids = [f"C{i:06d}" for i in range(len(values))]
    pacsv.write_csv(pa.table({"customer_id": ids, "income": values.astype(np.int64)}), path)
    return path


def plan_of(masked: Path) -> dict[str, Any]:
    meta = json.loads(sidecar_path(masked).read_text(encoding="utf-8"))
    plan: dict[str, Any] = json.loads(meta["covault.plan"])
    return plan


# ---- the seed in the metadata ------------------------------------------------------------


def seed_attack(masked: Path) -> int:
    """The old attack: read the seed from the output's plan, regenerate the noise the
    old operator drew (``default_rng([seed, row_offset]).laplace``), subtract it."""
    opts = plan_of(masked)["income"]["options"]
    noisy = incomes(masked)
    scale = opts.get("sensitivity", 1.0) / opts.get("epsilon", 1.0)
    noise = np.random.default_rng([opts["seed"], 0]).laplace(0.0, scale, len(noisy))
    truth = incomes(SAMPLE)
    return int(np.sum(np.abs((noisy - noise) - truth) < 1e-6))


@pytest.mark.parametrize("options", [
    "epsilon: 1.0, sensitivity: 1000.0, seed: 7",   # the options the old operator took
    f"epsilon: 1.0, {BOUNDS}, seed: 7",
])
def test_a_seed_is_refused_with_a_policy_error(tmp_path: Path, options: str) -> None:
    policy = write_policy(tmp_path / "p.yaml", options)
    out = tmp_path / "out.csv"
    res = run("mask", "apply", SAMPLE, "-o", out, "-p", policy)
    if res.exit_code == 0:  # the old operator: the attack works
        recovered = seed_attack(out)
        pytest.fail(f"{recovered} of 500 true incomes recovered with the seed in the metadata")
    assert res.exit_code == 2, res.output
    assert "'seed'" in res.output and "subtract" in res.output and "p.yaml:5" in res.output
    assert not out.exists() and not sidecar_path(out).exists()
    with pytest.raises(PolicyError, match="seed"):
        build_operator("noise", {"epsilon": 1.0, "lower": 0, "upper": 1, "seed": 1})


def test_noise_needs_bounds_and_refuses_a_bare_sensitivity(tmp_path: Path) -> None:
    for options, named in (("epsilon: 1.0", "'lower'"), ("epsilon: 1.0, lower: 0", "'upper'"),
                           (f"{BOUNDS}", "'epsilon'"),
                           (f"epsilon: 1.0, {BOUNDS}, sensitivity: 1.0", "'sensitivity'"),
                           ("epsilon: 1.0, lower: 5, upper: 5", "'upper'"),
                           ("epsilon: .inf, lower: 0, upper: 5", "'epsilon'")):
        policy = write_policy(tmp_path / "p.yaml", options)
        res = run("mask", "check", policy)
        assert res.exit_code == 2, (options, res.output)
        assert "rule 'name: income'" in res.output and named in res.output, res.output


def test_the_output_carries_nothing_about_the_randomness(tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "p.yaml", f"epsilon: 1.0, {BOUNDS}")
    out = tmp_path / "out.csv"
    assert run("mask", "apply", SAMPLE, "-o", out, "-p", policy).exit_code == 0
    assert plan_of(out)["income"]["options"] == {"epsilon": 1.0, "lower": 0.0,
                                                 "upper": 1_000_000.0}
    assert "seed" not in sidecar_path(out).read_text(encoding="utf-8")


# ---- releases over time ------------------------------------------------------------------


def release(tmp_path: Path, month: Path, name: str, hmac: Path, kek: Path) -> np.ndarray:
    policy = tmp_path / "p.yaml"
    out = tmp_path / f"{name}.csv"
    args: list[str | Path] = ["mask", "apply", month, "-o", out, "-p", policy, "-k", hmac,
                              "--kek-file", kek]
    write_policy(policy, f"epsilon: 1.0, {BOUNDS}")
    res = run(*args)
    if res.exit_code == 2 and "unknown option 'lower'" in res.output:
        # the old operator took no bounds: run its keyed noise to show the attack
        write_policy(policy, "epsilon: 1.0, sensitivity: 1000.0")
        res = run(*args)
    assert res.exit_code == 0, res.output
    return incomes(out)


def test_keyed_noise_no_longer_repeats_across_releases(tmp_path: Path) -> None:
    kek = tmp_path / "kek.hex"
    kek.write_text(bytes(range(32)).hex())
    kek.chmod(0o600)
    hmac = tmp_path / "hmac.json"
    Keyset.create("HMAC_SHA256").save(hmac, Kek.from_key_file(kek))
    rng = np.random.default_rng(3)
    may = rng.integers(30_000, 800_000, 2000).astype(np.float64)
    june = may + rng.integers(-5_000, 5_000, len(may))
    r_may = release(tmp_path, write_month(tmp_path / "may.csv", may), "r_may", hmac, kek)
    r_june = release(tmp_path, write_month(tmp_path / "june.csv", june), "r_june", hmac, kek)
    r_again = release(tmp_path, tmp_path / "may.csv", "r_again", hmac, kek)

    # month over month: the attacker's estimate of each change is off by fresh noise
    change = (r_june - r_may) - (june - may)
    exact = int(np.sum(np.abs(change) < 0.5))
    assert exact < len(may) // 100, f"{exact} of {len(may)} monthly changes recovered exactly"
    # two releases of the same data: independent noise, not the same noise twice
    n1, n2 = r_may - may, r_again - may
    assert not np.allclose(n1, n2)
    assert abs(float(np.corrcoef(n1, n2)[0, 1])) < 0.1
    assert abs(float(np.corrcoef(r_june - r_may, june - may)[0, 1])) < 0.1


# ---- the mechanism -----------------------------------------------------------------------


def laplace_cdf(x: np.ndarray, scale: float) -> np.ndarray:
    return np.where(x < 0, 0.5 * np.exp(x / scale), 1 - 0.5 * np.exp(-x / scale))


def test_noise_is_laplace_of_scale_span_over_epsilon_and_values_are_clamped() -> None:
    op = build_operator("noise", {"epsilon": 0.5, "lower": -10, "upper": 10})
    ctx = OpContext(column="x", context="t.x")
    n = 20_000
    noise = np.sort(np.asarray(op.apply(pa.array(np.zeros(n)), ctx).values.to_pylist()))
    scale = 20 / 0.5
    cdf = laplace_cdf(noise, scale)
    ks = max(float(np.max(np.arange(1, n + 1) / n - cdf)),
             float(np.max(cdf - np.arange(n) / n)))
    assert ks < 2.3 / math.sqrt(n), f"KS statistic {ks:.4f} against Laplace({scale})"
    assert float(np.mean(np.abs(noise))) == pytest.approx(scale, rel=0.05)
    wrong = laplace_cdf(noise, scale / 2)  # a scale from a forgotten bound would show
    assert max(float(np.max(np.arange(1, n + 1) / n - wrong)),
               float(np.max(wrong - np.arange(n) / n))) > 0.1
    # values beyond the bounds are clamped before the noise: one outlier cannot stand out
    big = np.asarray(op.apply(pa.array([1e12] * n + [None]), ctx).values.to_pylist()[:n])
    assert float(np.mean(big)) == pytest.approx(10.0, abs=5 * scale * math.sqrt(2 / n))
    out = op.apply(pa.array(["5", None, "x", "nan"]), ctx)
    assert out.values.to_pylist()[1] is None
    assert out.invalid is not None and out.invalid.tolist() == [False, False, True, True]


def test_fresh_noise_on_every_call() -> None:
    op = build_operator("noise", {"epsilon": 1.0, "lower": 0, "upper": 1})
    ctx = OpContext(column="x", context="t.x")
    zeros = pa.array(np.zeros(1000))
    a, b = (np.asarray(op.apply(zeros, ctx).values.to_pylist()) for _ in range(2))
    assert not np.array_equal(a, b)
    assert abs(float(np.corrcoef(a, b)[0, 1])) < 0.2


# ---- the privacy budget in the ledger ------------------------------------------------------


def dp_records(ledger: Path) -> list[dict[str, Any]]:
    with Ledger(ledger, read_only=True) as log:
        return [dict(r.payload) for r in log.records("masking.dp_release")]


def test_each_release_is_recorded_and_the_budget_refuses_overspending(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(textwrap.dedent(f"""\
        version: 1
        dp: {{dataset: cif.customers, budget: 1.0}}
        columns:
          - {{name: customer_id, operator: keep}}
          - {{name: income, operator: noise, options: {{epsilon: 0.3, {BOUNDS}}}}}
          - {{name: balance, operator: noise, options: {{epsilon: 0.2, lower: 0, upper: 1e6}}}}
        """), encoding="utf-8")
    ledger = tmp_path / "ledger.db"
    for i in (1, 2):
        res = run("mask", "apply", SAMPLE, "-o", tmp_path / f"r{i}.csv", "-p", policy,
                  "--ledger", ledger, "--format", "json")
        assert res.exit_code == 0, res.output
        dp = json.loads(res.output)["dp"]
        assert dp["dataset"] == "cif.customers" and dp["epsilon"] == pytest.approx(0.5)
        assert dp["spent_before"] == pytest.approx(0.5 * (i - 1)) and dp["budget"] == 1.0
    records = dp_records(ledger)
    assert [(r["dataset"], r["column"], r["epsilon"]) for r in records] == [
        ("cif.customers", "income", 0.3), ("cif.customers", "balance", 0.2)] * 2
    with Ledger(ledger, read_only=True) as log:
        size = log.size

    out = tmp_path / "r3.csv"
    res = run("mask", "apply", SAMPLE, "-o", out, "-p", policy, "--ledger", ledger)
    assert res.exit_code == 2, res.output
    assert "budget" in res.output and "cif.customers" in res.output
    assert not out.exists() and not sidecar_path(out).exists()
    with Ledger(ledger, read_only=True) as log:
        assert log.size == size  # nothing recorded for the refused release

    # a budget cannot be enforced without a ledger: refused too
    res = run("mask", "apply", SAMPLE, "-o", out, "-p", policy)
    assert res.exit_code == 2 and "--ledger" in res.output
    assert not out.exists()


def test_the_dataset_defaults_to_the_input_digest(tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "p.yaml", f"epsilon: 0.7, {BOUNDS}")
    ledger = tmp_path / "ledger.db"
    res = run("mask", "apply", SAMPLE, "-o", tmp_path / "o.csv", "-p", policy,
              "--ledger", ledger)
    assert res.exit_code == 0, res.output
    digest = "sha256:" + hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    (rec,) = dp_records(ledger)
    assert rec["dataset"] == digest and rec["column"] == "income"
    assert rec["epsilon"] == 0.7 and "seed" not in rec
