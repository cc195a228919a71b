"""Synthetic loan books for several banks: the demo's data, and tests' and benchmarks'.

Each bank's borrowers come from a different mix (income level, region, product), the
default flag follows one logistic model shared by all banks, and cells are missing at
random, so a federated model has something to gain over each bank's own: small banks
have few defaults, and some levels (a region, a product) exist at one bank only.
Seeded; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from privacy.errors import InputError

__all__ = ["loan_books", "write_loan_books"]

REGIONS = ["east", "north", "south", "west", "central", "northeast", "northwest", "southwest"]
PRODUCTS = ["mortgage", "card", "auto", "consumer", "business"]


def loan_books(rows: Sequence[int], *, seed: int = 0, missing: float = 0.05,
               extra_numeric: int = 0, extra_text: int = 0, levels: int = 10
               ) -> list[dict[str, list[object]]]:
    """One column dict per bank (``rows[i]`` borrowers at bank ``i``).

    Columns: ``income``, ``age``, ``debt_ratio``, ``utilisation``, ``inquiries``,
    ``months_on_book`` (numeric, some missing), ``region``, ``product`` (text, some
    missing), ``extra_numeric`` noise-plus-signal columns ``x0..``, ``extra_text``
    columns ``t0..`` of ``levels`` levels, and ``default`` (``"yes"``/``"no"``).
    """
    if not rows or any(isinstance(n, bool) or int(n) != n or n < 1 for n in rows):
        raise InputError(f"rows must be positive integers, one per bank, got {list(rows)!r}")
    if not 0.0 <= missing < 1.0:
        raise InputError(f"missing must be in [0, 1), got {missing!r}")
    rng = np.random.default_rng(seed)
    beta_x = rng.normal(0, 0.3, extra_numeric)
    beta_t = rng.normal(0, 0.5, (extra_text, levels))
    region_effect = dict(zip(REGIONS, rng.normal(0, 0.4, len(REGIONS)), strict=True))
    product_effect = dict(zip(PRODUCTS, [-0.6, 0.3, 0.0, 0.5, 0.2], strict=True))
    books = []
    for b, n in enumerate(int(r) for r in rows):
        # each bank: its own income level and its own regions (the last bank alone has
        # the last region) and products
        income = rng.lognormal(10.3 + 0.25 * (b % 3), 0.5, n)
        age = np.clip(rng.normal(40 + 3 * (b % 2), 11, n), 18, 80).round()
        debt_ratio = np.clip(rng.beta(2, 5, n) + 0.05 * b / max(len(rows) - 1, 1), 0, 1.5)
        utilisation = np.clip(rng.beta(2, 3, n), 0, 1)
        inquiries = rng.poisson(1.0 + 0.3 * (b % 3), n).astype(float)
        months = rng.integers(1, 240, n).astype(float)
        own = REGIONS[: min(len(REGIONS) - 1, 3 + b)] + ([REGIONS[-1]] if b == len(rows) - 1
                                                          else [])
        region = rng.choice(own, n)
        product = rng.choice(PRODUCTS[: 3 + b % 3], n)
        z = (-2.4 - 0.9 * (np.log(income) - 10.5) + 2.2 * (debt_ratio - 0.3)
             + 1.4 * (utilisation - 0.4) + 0.35 * inquiries - 0.012 * (age - 40)
             - 0.003 * months + np.array([region_effect[r] for r in region])
             + np.array([product_effect[p] for p in product]))
        cols: dict[str, list[object]] = {}
        x = rng.normal(0, 1, (n, extra_numeric))
        t = rng.integers(0, levels, (n, extra_text))
        if extra_numeric:
            z = z + x @ beta_x
        if extra_text:
            z = z + beta_t[np.arange(extra_text), t].sum(axis=1)
        default = rng.random(n) < 1 / (1 + np.exp(-z))
        numeric = {"income": income.round(2), "age": age, "debt_ratio": debt_ratio.round(4),
                   "utilisation": utilisation.round(4), "inquiries": inquiries,
                   "months_on_book": months}
        numeric.update({f"x{j}": x[:, j].round(5) for j in range(extra_numeric)})
        for name, values in numeric.items():
            gone = rng.random(n) < missing
            cols[name] = [None if g else float(v) for v, g in zip(values, gone, strict=True)]
        text = {"region": region, "product": product}
        text.update({f"t{j}": np.array([f"L{v}" for v in t[:, j]]) for j in range(extra_text)})
        for name, values in text.items():
            gone = rng.random(n) < missing
            cols[name] = [None if g else str(v) for v, g in zip(values, gone, strict=True)]
        cols["default"] = ["yes" if d else "no" for d in default]
        books.append(cols)
    return books


def write_loan_books(folder: str | Path, rows: Sequence[int], *, test_rows: int = 0,
                     seed: int = 0, method: str = "fedavg", rounds: int = 10,
                     mode: str = "simulation", **kwargs: int | float) -> Path:
    """Write ``bank_<i>.csv`` per bank (and ``test.csv`` with a ``bank`` column when
    ``test_rows`` > 0, drawn from every bank in proportion) and ``fl.toml``; the config.
    ``kwargs`` go to :func:`loan_books`."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    total = sum(rows)
    held = [max(1, round(test_rows * n / total)) if test_rows else 0 for n in rows]
    books = loan_books([n + h for n, h in zip(rows, held, strict=True)], seed=seed,
                       **kwargs)  # type: ignore[arg-type]
    parties, tests = [], []
    for i, (book, n) in enumerate(zip(books, rows, strict=True)):
        table = pa.table(book)
        pcsv.write_csv(table.slice(0, n), out / f"bank_{i + 1}.csv")
        if test_rows:
            t = table.slice(n)
            tests.append(t.append_column("bank", pa.array([f"bank_{i + 1}"] * t.num_rows)))
        parties.append(f'[[party]]\nname = "bank_{i + 1}"\ndata = "bank_{i + 1}.csv"\n')
    head = (f'kind = "horizontal"\nmode = "{mode}"\nmodel = "logistic"\nlabel = "default"\n'
            f'positive = "yes"\nrounds = {rounds}\nseed = {seed}\n')
    if tests:
        pcsv.write_csv(pa.concat_tables(tests), out / "test.csv")
        head += 'test = "test.csv"\ntest_party_column = "bank"\n'
    config = out / "fl.toml"
    config.write_text(head + f'\n[aggregation]\nmethod = "{method}"\n\n' + "\n".join(parties),
                      encoding="utf-8")
    return config
