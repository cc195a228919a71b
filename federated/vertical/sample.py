"""Synthetic vertical data: a bank (guest: loan terms and the default flag) and partners
(hosts: bureau-like or telecom-like features) holding different columns of overlapping
customer sets. The demo's data, and tests' and benchmarks'. Seeded; nothing downloaded.

The default flag follows one logistic model of every party's columns, so the joint model
beats the guest alone; numeric cells are missing at random; each party keeps its own
random share of the customers, so alignment matters.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from privacy.errors import InputError

__all__ = ["vertical_tables", "write_vertical"]

CONFIG = """kind = "vertical"
mode = "{mode}"
label = "default"
positive = "yes"
id = "cust_id"
epochs = {epochs}
seed = 1
iv = {iv}
{parties}"""


def _columns(rng: np.random.Generator, z: npt.NDArray[np.float64], prefix: str, numeric: int,
             text: int, missing: float) -> dict[str, list[object]]:
    n = z.shape[0]
    cols: dict[str, list[object]] = {}
    for j in range(numeric):
        x = 0.7 * z[:, j % z.shape[1]] + rng.normal(0, 1, n)
        x = np.round(np.exp(x) * 100, 2) if j % 3 == 0 else np.round(x * 10 + 50, 3)
        cols[f"{prefix}{j}"] = [None if rng.random() < missing else float(v) for v in x]
    for j in range(text):
        k = np.clip(((z[:, (j + 1) % z.shape[1]] + 2) * 1.5).astype(int), 0, 5)
        cols[f"{prefix}cat{j}"] = [None if rng.random() < missing else f"L{v}" for v in k]
    return cols


def vertical_tables(customers: int, *, hosts: int = 1, guest_numeric: int = 4,
                    guest_text: int = 1, host_numeric: int = 8, host_text: int = 1,
                    keep: float = 0.9, missing: float = 0.05, seed: int = 0
                    ) -> tuple[dict[str, list[object]], list[dict[str, list[object]]]]:
    """The guest's columns (``cust_id``, ``g*``, ``default``) and each host's
    (``cust_id``, ``h<k>_*``), each keeping about ``keep`` of the customers, shuffled."""
    if customers < 10 or hosts < 1 or not 0 < keep <= 1:
        raise InputError("need at least 10 customers, 1 host and 0 < keep <= 1")
    rng = np.random.default_rng(seed)
    ids = [f"C{i:08d}" for i in range(customers)]
    zg = rng.normal(0, 1, (customers, 3))
    zh = [rng.normal(0, 1, (customers, 3)) for _ in range(hosts)]
    logit = -2.2 + 0.5 * zg[:, 0] - 0.3 * zg[:, 1] + sum(0.6 * z[:, 0] + 0.4 * z[:, 1]
                                                         for z in zh)
    y = rng.random(customers) < 1 / (1 + np.exp(-logit))

    def subset(cols: dict[str, list[object]]) -> dict[str, list[object]]:
        rows = rng.permutation(customers)[:max(1, int(round(keep * customers)))]
        out = {"cust_id": [ids[i] for i in rows]}
        out.update({c: [v[i] for i in rows] for c, v in cols.items()})
        return out

    guest = _columns(rng, zg, "g", guest_numeric, guest_text, missing)
    guest["default"] = ["yes" if v else "no" for v in y]
    host_cols = [_columns(rng, z, f"h{k}_", host_numeric, host_text, missing)
                 for k, z in enumerate(zh)]
    return subset(guest), [subset(c) for c in host_cols]


def _write(path: Path, cols: dict[str, list[object]]) -> None:
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    table = pa.table(cols)
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    else:
        pcsv.write_csv(table, path)


def write_vertical(folder: str | Path, customers: int, *, test_customers: int = 0,
                   hosts: int = 1, epochs: int = 10, mode: str = "simulation",
                   iv: bool = True, fmt: str = "csv", seed: int = 0,
                   trees: dict[str, int | float] | None = None,
                   **kwargs: int | float) -> Path:
    """Write ``guest.csv``, ``host_<k>.csv`` (and ``*_test`` files) and ``vfl.toml``;
    return the config's path. ``trees`` makes it a gradient-boosted trees run: its
    ``rounds`` (trees) and the rest as the ``[gbdt]`` table."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    total = customers + test_customers
    guest, host_tables = vertical_tables(total, hosts=hosts, seed=seed, **kwargs)  # type: ignore[arg-type]
    split = {f"C{i:08d}" for i in range(customers)}

    def part(cols: dict[str, list[object]], train: bool) -> dict[str, list[object]]:
        keep = [i for i, c in enumerate(cols["cust_id"]) if (c in split) == train]
        return {k: [v[i] for i in keep] for k, v in cols.items()}

    names = ["bank"] + [f"partner_{k + 1}" for k in range(hosts)]
    blocks = []
    for name, cols in zip(names, [guest, *host_tables], strict=True):
        _write(out / f"{name}.{fmt}", part(cols, True))
        lines = [f'[[party]]\nname = "{name}"\nrole = "{"guest" if name == "bank" else "host"}"',
                 f'data = "{name}.{fmt}"']
        if test_customers:
            _write(out / f"{name}_test.{fmt}", part(cols, False))
            lines.append(f'test = "{name}_test.{fmt}"')
            lines.append(f'score = "{name}_test.{fmt}"')
        blocks.append("\n".join(lines) + "\n")
    config = out / "vfl.toml"
    text = CONFIG.format(mode=mode, epochs=epochs, iv=str(iv).lower(),
                         parties="\n" + "\n".join(blocks))
    if trees is not None:
        gbdt = dict(trees)
        head, parties = text.split("[[party]]", 1)
        head = head.replace('kind = "vertical"', 'kind = "vertical"\nmodel = "gbdt"\n'
                            f'rounds = {int(gbdt.pop("rounds", 10))}')
        table = "".join(f"{k} = {v}\n" for k, v in gbdt.items())
        text = f"{head}[gbdt]\n{table}\n[[party]]{parties}"
    config.write_text(text, encoding="utf-8")
    return config
