"""Three banks learn the total debt of every borrower they all share, and nothing else.

PSI aligns the borrower ids; each bank encrypts its debts for the shared ids under a
credit bureau's Paillier key; bank-a adds the ciphertexts without any secret key; the
bureau decrypts only the three-bank aggregate. Every step is recorded in a ledger.
See ``covault/demo/joint.py`` for the protocol and what each party learns.

Run from the repository root::

    .venv/bin/python examples/joint_exposure.py --out joint-out
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from covault.demo.joint import (
    BANKS,
    MIN_PARTIES,
    check_against_truth,
    make_banks,
    plaintext_truth,
    run_scenario,
    yuan,
)
from privacy.errors import IntegrityError


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the scenario, print and check the result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for shared_exposure.csv and ledger.db (default: a new "
                             "temporary folder)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic data")
    parser.add_argument("--per-bank", type=int, default=2000, help="borrowers per bank")
    parser.add_argument("--shared", type=float, default=0.3,
                        help="fraction of each bank's borrowers held by all three banks")
    parser.add_argument("--bits", type=int, default=2048, help="Paillier key size (>= 2048)")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="joint-exposure-"))

    banks = make_banks(seed=args.seed, per_bank=args.per_bank, shared_fraction=args.shared)
    result = run_scenario(banks, out, key_bits=args.bits)

    print("banks: " + ", ".join(f"{n} {s} borrowers" for n, s in result.set_sizes.items()))
    print(f"shared by all {len(BANKS)}: {len(result.shared_ids)} borrowers")
    print(f"two-bank aggregate refused (min {MIN_PARTIES} parties): {result.refused_below_min}")
    print("\nborrower_id        total debt (yuan)")
    for borrower, total in list(result.by_id().items())[:5]:
        print(f"{borrower}  {yuan(total):>18}")
    if len(result.shared_ids) > 5:
        print(f"... {len(result.shared_ids) - 5} more in {result.output}")
    print(f"\ntotal exposure: {yuan(result.total_exposure)} yuan")
    print(f"ledger: {result.ledger_records} records appended to {out / 'ledger.db'}, verified")
    print(f"protocol time: {result.seconds:.1f} s")
    try:
        check_against_truth(result, banks)
    except IntegrityError as exc:
        print(f"CHECK FAILED: {exc}", file=sys.stderr)
        return 1
    truth = plaintext_truth(banks)
    print(f"check: all {len(truth)} totals equal the plaintext sums; no other id in the output")
    return 0


if __name__ == "__main__":
    sys.exit(main())
