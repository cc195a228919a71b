"""Vertical gradient-boosted trees on Lending Club (bank + credit bureau) against pooled
XGBoost on the joined files.

Splits the data as ``prepare.py`` does (the bank holds the label and its own columns,
the bureau the rest; each keeps its own 90 % of the customers), turns the config into
``model = "gbdt"`` (SecureBoost: the bank's gradients encrypted under its Paillier key),
trains on Flower's simulation engine, scores the test customers with ``covault fl
score``, and trains XGBoost on the joined training files with the same bins (each
party's, from its model part) and parameters; prints both test AUCs, the largest
difference of their predictions and the seconds per tree.

Run: ``.venv/bin/python examples/vfl_lending_club/gbdt.py OUT [--trees 20]``.
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
max_bins = {bins}
paillier_bits = {bits}

[[party]]"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--trees", type=int, default=20)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--eta", type=float, default=0.2)
    ap.add_argument("--bins", type=int, default=32)
    ap.add_argument("--paillier-bits", type=int, default=2048)
    args = ap.parse_args()
    cfg = split(args.out)
    head, parties = cfg.read_text(encoding="utf-8").split("[[party]]", 1)
    head = head.replace('kind = "vertical"', f'kind = "vertical"\nmodel = "gbdt"\n'
                        f'rounds = {args.trees}')
    cfg.write_text(head + GBDT.format(depth=args.depth, eta=args.eta, bins=args.bins,
                                      bits=args.paillier_bits).lstrip() + parties,
                   encoding="utf-8")
    from federated import run
    from federated.runner import score
    from federated.trees.pooled import vertical_pooled_check

    result = run(cfg).to_dict()
    (args.out / "gbdt.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    scores = args.out / "scores.csv"
    scores.unlink(missing_ok=True)
    score(cfg, scores)
    check = vertical_pooled_check(cfg, scores)
    print(f"{result['intersection']} shared training customers, {check['test_rows']} shared "
          f"test customers; {check['trees']} trees")
    print(f"test AUC: federated {check['federated_auc']:.4f}, pooled XGBoost "
          f"{check['pooled_auc']:.4f} (difference "
          f"{check['federated_auc'] - check['pooled_auc']:+.5f}); the bank alone "
          f"{result['guest_only']['auc']:.4f}")
    print(f"max |p_federated - p_pooled| on the test customers: {check['max_abs_diff']:.2e} "
          "(scores are written with 6 decimals)")
    print(f"seconds per tree: {result['seconds']['per_tree']:.2f} (Paillier "
          f"{args.paillier_bits} bits, depth {args.depth}, {args.bins} bins)")


if __name__ == "__main__":
    main()
