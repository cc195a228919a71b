"""Compare a vertical run with scikit-learn on the joined data.

Joins the parties' files on ``cust_id`` (what they could do if they pooled them), applies
the same preprocessing as each party (median imputation, standardisation, one-hot), fits
``LogisticRegression(C=1)`` and the guest's columns alone, and prints their test AUC next
to the run's joint and guest-only AUC.

Run::

    .venv/bin/python examples/vfl_lending_club/compare.py DIR result.json

``DIR`` holds the files from ``prepare.py``; ``result.json`` is ``covault fl run
DIR/vfl.toml --format json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _prep(frame, ref):  # type: ignore[no-untyped-def]
    import pandas as pd

    cols = []
    for c in ref.columns:
        if not pd.api.types.is_numeric_dtype(ref[c]):
            levels = sorted(ref[c].dropna().unique())
            cols.append(np.stack([(frame[c] == lv).to_numpy(float) for lv in levels], 1))
        else:
            med = ref[c].median()
            r = ref[c].fillna(med).to_numpy(float)
            sd = r.std() or 1.0
            cols.append(((frame[c].fillna(med).to_numpy(float) - r.mean()) / sd)[:, None])
    return np.hstack(cols)


def pooled(folder: Path, guest_only: bool = False) -> float:
    """Test AUC of scikit-learn on the joined (or the guest's) training rows."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    def joined(suffix: str) -> pd.DataFrame:
        bank = pd.read_csv(folder / f"bank{suffix}.csv")
        return bank if guest_only else bank.merge(pd.read_csv(folder / f"bureau{suffix}.csv"),
                                                  on="cust_id")

    train, test = joined(""), joined("_test").merge(
        pd.read_csv(folder / "bureau_test.csv")[["cust_id"]], on="cust_id")
    train = train.merge(pd.read_csv(folder / "bureau.csv")[["cust_id"]], on="cust_id")
    y = (train.pop("Class") == "bad").to_numpy()
    yt = (test.pop("Class") == "bad").to_numpy()
    feats = [c for c in train.columns if c != "cust_id"]
    model = LogisticRegression(C=1.0, max_iter=10000).fit(_prep(train[feats], train[feats]), y)
    return float(roc_auc_score(yt, model.decision_function(_prep(test[feats], train[feats]))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("result", type=Path)
    args = ap.parse_args()
    r = json.loads(args.result.read_text(encoding="utf-8"))
    joint, alone = pooled(args.folder), pooled(args.folder, guest_only=True)
    print(f"joined data, scikit-learn:   AUC {joint:.4f}")
    print(f"vertical run, joint model:   AUC {r['global']['auc']:.4f} "
          f"(difference {r['global']['auc'] - joint:+.4f})")
    print(f"guest alone, scikit-learn:   AUC {alone:.4f}")
    print(f"vertical run, guest only:    AUC {r['guest_only']['auc']:.4f}")


if __name__ == "__main__":
    main()
