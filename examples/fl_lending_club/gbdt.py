"""Federated GBDT on Lending Club, banks split by state, against pooled XGBoost.

Splits the data as ``prepare.py`` does, turns the config into ``model = "gbdt"`` with
secure aggregation, trains it (on Flower's simulation engine, or in one process with
``--in-process``) and trains XGBoost on all banks' rows pooled, with the same bins and
parameters; prints both test AUCs and the largest difference of their predictions.

Run: ``.venv/bin/python examples/fl_lending_club/gbdt.py OUT [--trees 50] [--in-process]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepare import split  # noqa: E402

GBDT = """
[gbdt]
max_depth = {depth}
learning_rate = {eta}
early_stopping = true
patience = 5
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--trees", type=int, default=50)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--eta", type=float, default=0.1)
    ap.add_argument("--method", default="secagg")
    ap.add_argument("--in-process", action="store_true")
    args = ap.parse_args()
    cfg = split(args.out, method=args.method, rounds=args.trees)
    text = cfg.read_text(encoding="utf-8").replace('model = "logistic"', 'model = "gbdt"')
    text = text.replace("[aggregation]", GBDT.format(depth=args.depth, eta=args.eta).strip()
                        + "\n\n[aggregation]")
    cfg.write_text(text, encoding="utf-8")
    if args.in_process:
        from federated.trees.local import run_in_process

        result = run_in_process(cfg).to_dict()
    else:
        from federated import run

        result = run(cfg).to_dict()
    (args.out / "gbdt.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    from federated.trees.pooled import pooled_check

    check = pooled_check(cfg, result)
    print(f"trees: federated {check['trees']}, pooled {check['pooled_trees']} "
          f"(of {len(result['history'])} grown; early stopping)")
    print(f"test AUC: federated {check['federated_auc']:.4f}, pooled XGBoost "
          f"{check['pooled_auc']:.4f} (difference "
          f"{check['federated_auc'] - check['pooled_auc']:+.5f})")
    print(f"max |p_federated - p_pooled| on the test rows: {check['max_abs_diff']:.2e}")
    print("per bank (federated AUC / local-only AUC on its own test rows):")
    for bank, v in result["parties"].items():
        print(f"  {bank}: {v['auc']:.4f} / {v['local_auc']:.4f}")
    print(f"seconds per tree: {result['seconds_per_tree']:.3f}")


if __name__ == "__main__":
    main()
