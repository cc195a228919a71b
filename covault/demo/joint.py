"""Demo step: three banks learn the total debt of each borrower they all share.

The scenario composes two building blocks, private set intersection
(:mod:`privacy.psi`) and the packed-Paillier secure sum (:mod:`privacy.he.secure_sum`).
``examples/joint_exposure.py`` runs the same functions from the command line.

Parties and steps
-----------------
* **bank-a** (the coordinator) runs PSI in ``intersection`` mode as the initiator, first
  against **bank-b** with its whole borrower set, then against **bank-c** with only the
  ids it shares with bank-b. The result is the set held by all three banks. It sends
  the sorted list to bank-b and bank-c. Each of them refuses the list if it names an id
  the bank does not hold.
* **bureau** (the key holder, e.g. a credit reference centre) generates a Paillier key
  pair and publishes the public key.
* Each bank encrypts its debts for the shared ids, in the agreed sorted order, as a packed
  vector under the bureau's public key (:func:`privacy.he.secure_sum.contribute`).
* **bank-a**, as the aggregator, adds the three vectors and re-randomises the sum. It has
  no secret key.
* **bureau** decrypts the aggregate only when it holds at least ``MIN_PARTIES`` (3)
  contributions, then returns the vector of totals to the banks. It never sees an id.

What each party learns
----------------------
* bank-a: which of its borrowers bank-b also holds (the first PSI), the set sizes of
  bank-b and bank-c, and the shared set.
* bank-b: bank-a's set size and the shared set.
* bank-c: the size of the bank-a/bank-b overlap and the shared set.
* bureau: the number of shared borrowers and their total debts, in sorted-id order but
  without the ids.
* Every bank: the total debt of each shared borrower. By subtracting its own debt, a bank
  learns the sum of the other two banks' debts for that borrower, but not how it splits.
  With two banks this subtraction would reveal the other bank's exact debt, which is why
  the bureau refuses aggregates of fewer than three contributions.

Nothing is disclosed about borrowers outside the shared set (apart from the set sizes
above). Each step appends to a ledger a record of what it disclosed. The records hold
sizes, key ids and digests, never ids or amounts.

Warnings
--------
The protocol is secure only against semi-honest parties, and only if the aggregator and
the key holder do not collude. A coordinator that lies about the shared list, or an
aggregator that submits a vector twice under different names, is not detected here.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from covault.demo.context import DemoContext
from privacy.atomic import atomic_output
from privacy.errors import IntegrityError, PSIError
from privacy.he.packing import PackingLayout
from privacy.he.secure_sum import LedgerLike

TITLE = "Joint exposure: PSI alignment and homomorphic sums across three banks"

BANKS = ("bank-a", "bank-b", "bank-c")
COORDINATOR = "bank-a"
KEY_HOLDER = "bureau"
MIN_PARTIES = 3
CONTEXT = "covault-demo/joint-exposure"
# Debts are whole fen (0.01 yuan) below 2**47, which is about 1.4 trillion yuan. A slot
# holds 48 + 2 + 1 = 51 bits, so a 2048-bit key packs 40 debts per ciphertext.
LAYOUT = PackingLayout(value_bits=48, parties=len(BANKS), scale=1)
OUTPUT = "shared_exposure.csv"

Int64Array = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Bank:
    """One bank's private table: borrower ids and their outstanding debt in fen."""

    name: str
    ids: list[str]
    debts: Int64Array

    def debt_by_id(self) -> dict[str, int]:
        """Debt per normalised id (the form PSI compares)."""
        from privacy.psi import normalize_id

        return {normalize_id(i): int(d) for i, d in zip(self.ids, self.debts, strict=True)}


@dataclass(frozen=True)
class JointResult:
    """What the banks end up with, plus the figures the demo reports."""

    shared_ids: list[str]
    totals: Int64Array
    set_sizes: dict[str, int]
    output: Path
    ledger_records: int
    refused_below_min: bool
    seconds: float

    @property
    def total_exposure(self) -> int:
        """Sum of all shared borrowers' debts, in fen."""
        return int(self.totals.sum())

    def by_id(self) -> dict[str, int]:
        """Total debt per shared id, in fen."""
        return dict(zip(self.shared_ids, (int(t) for t in self.totals), strict=True))


# ---------------------------------------------------------------------------- data
def make_banks(*, seed: int = 7, per_bank: int = 2000, shared_fraction: float = 0.3,
               pair_fraction: float = 0.1) -> list[Bank]:
    """Three synthetic banks, each with ``per_bank`` borrowers.

    ``shared_fraction`` of each bank's borrowers are held by all three banks, and
    ``pair_fraction`` by each pair of banks only. The rest belong to one bank.
    """
    shared = round(per_bank * shared_fraction)
    pair = round(per_bank * pair_fraction)
    own = per_bank - shared - 2 * pair
    if min(shared, pair, own) < 0:
        raise ValueError("shared_fraction + 2 * pair_fraction must be at most 1")
    rng = np.random.default_rng(seed)
    need = shared + 3 * pair + 3 * own
    pool = np.unique(rng.integers(10**15, 10**16, size=need + need // 8 + 16))
    ids = [f"{int(x):016d}" for x in rng.permutation(pool)[:need]]
    if len(ids) < need:  # pragma: no cover - ~1e-12 chance of that many collisions
        raise ValueError("could not draw enough distinct ids; change the seed")
    cut = np.cumsum([shared, pair, pair, pair, own, own, own])
    tri, ab, ac, bc, a, b, c = np.split(np.asarray(ids, dtype=object), cut[:-1])
    members = {"bank-a": [tri, ab, ac, a], "bank-b": [tri, ab, bc, b],
               "bank-c": [tri, ac, bc, c]}
    banks = []
    for name in BANKS:
        held = [str(x) for x in rng.permutation(np.concatenate(members[name]))]
        # loans in yuan, log-normal around 60,000, held as whole fen
        debts = np.rint(rng.lognormal(11.0, 1.2, size=len(held)) * 100).astype(np.int64)
        banks.append(Bank(name, held, debts))
    return banks


def plaintext_truth(banks: Sequence[Bank]) -> dict[str, int]:
    """The answer computed in the clear: summed debt of every id all banks hold."""
    tables = [b.debt_by_id() for b in banks]
    common = set(tables[0]).intersection(*tables[1:])
    return {i: sum(t[i] for t in tables) for i in sorted(common)}


def _digest(ids: Sequence[str]) -> str:
    h = hashlib.sha256()
    for i in ids:
        data = i.encode("utf-8")
        h.update(len(data).to_bytes(4, "big") + data)
    return h.hexdigest()


# ------------------------------------------------------------------------ alignment
def _psi(initiator: Sequence[str], responder: Sequence[str], *, names: tuple[str, str],
         ledger: LedgerLike | None, workers: int) -> list[str]:
    """One in-process PSI session (intersection mode); the initiator's shared ids."""
    from privacy.psi import PsiParty

    a = PsiParty(initiator, mode="intersection", context=CONTEXT, workers=workers)
    b = PsiParty(responder, mode="intersection", context=CONTEXT, workers=workers)
    accept = b.accept(a.hello())
    reply = b.reply(a.points())
    result = a.finish(accept, b.records(), reply)
    if ledger is not None:
        ledger.append("psi.serve", {"party": names[1], "peer": names[0], "mode": "intersection",
                                    "own_size": b.size, "peer_size": a.size})
        ledger.append("psi.join", {**result.summary(), "party": names[0], "peer": names[1]})
    assert result.ids is not None
    return result.ids


def align(banks: Sequence[Bank], *, ledger: LedgerLike | None = None,
          workers: int = 1) -> list[str]:
    """The sorted normalised ids all three banks hold, found with two PSI sessions.

    bank-a joins bank-b with its whole set and then joins bank-c with the ids it shares
    with bank-b. The sorted result is the order every bank encrypts in.
    """
    a, b, c = banks
    ab = _psi(a.ids, b.ids, names=(a.name, b.name), ledger=ledger, workers=workers)
    abc = sorted(_psi(ab, c.ids, names=(a.name, c.name), ledger=ledger, workers=workers))
    if ledger is not None:
        ledger.append("joint.align", {"party": a.name, "to": [b.name, c.name],
                                      "shared": len(abc), "ids_sha256": _digest(abc)})
    return abc


def debts_in_order(bank: Bank, shared: Sequence[str]) -> Int64Array:
    """The bank's debts for ``shared`` (normalised ids), in that order.

    Raises
    ------
    PSIError
        ``shared`` names an id this bank does not hold. A bank refuses such a list,
        because answering it would tell the coordinator that the id is not a borrower.
    """
    own = bank.debt_by_id()
    missing = sum(1 for i in shared if i not in own)
    if missing:
        raise PSIError(f"{bank.name}: the shared list names {missing} id(s) this bank does "
                       "not hold; refusing to contribute")
    return np.asarray([own[i] for i in shared], dtype=np.int64)


# ------------------------------------------------------------------ secure sum steps
def keygen(*, bits: int = 2048, ledger: LedgerLike | None = None) -> tuple[Any, Any]:
    """The key holder's Paillier key pair ``(public, private)``."""
    from privacy.he.paillier import generate_keypair

    public, private = generate_keypair(bits)
    if ledger is not None:
        ledger.append("he.keygen", {"party": KEY_HOLDER, "scheme": "paillier",
                                    "key_id": public.key_id, "bits": public.bits,
                                    "layout": LAYOUT.to_dict()})
    return public, private


def contribute_all(banks: Sequence[Bank], shared: Sequence[str], public_key: Any, *,
                   ledger: LedgerLike | None = None, workers: int = 1) -> list[Any]:
    """Each bank's debts for the shared ids, encrypted under the key holder's key."""
    from privacy.he.secure_sum import contribute

    return [contribute(public_key, debts_in_order(b, shared), party=b.name, layout=LAYOUT,
                       name="debt_fen", ledger=ledger, workers=workers) for b in banks]


def reveal(private_key: Any, aggregate: Any, *, ledger: LedgerLike | None = None,
           workers: int = 1) -> Int64Array:
    """The key holder's decryption, refused below ``MIN_PARTIES`` contributions.

    Raises
    ------
    InsufficientPartiesError
        The aggregate holds fewer than ``MIN_PARTIES`` banks' contributions.
    """
    from privacy.he.secure_sum import decrypt_aggregate

    out = decrypt_aggregate(private_key, aggregate, min_parties=MIN_PARTIES, ledger=ledger,
                            workers=workers)
    return np.asarray(out, dtype=np.int64)


def _refuses_partial(private_key: Any, vectors: Sequence[Any], ledger: LedgerLike | None,
                     workers: int) -> bool:
    """Show that an aggregate of only two banks is refused."""
    from privacy.errors import InsufficientPartiesError
    from privacy.he.secure_sum import aggregate

    partial = aggregate(list(vectors[:2]), workers=workers)
    try:
        reveal(private_key, partial, workers=workers)
    except InsufficientPartiesError:
        if ledger is not None:
            ledger.append("joint.refused", {"party": KEY_HOLDER,
                                            "contributors": list(partial.contributors),
                                            "min_parties": MIN_PARTIES})
        return True
    return False


def write_result(path: Path, shared: Sequence[str], totals: Int64Array) -> None:
    """Write ``borrower_id,total_debt`` (yuan, two decimals) atomically."""
    with atomic_output(path, "w") as fh:
        fh.write("borrower_id,total_debt\n")
        for i, t in zip(shared, totals.tolist(), strict=True):
            fh.write(f"{i},{yuan(t)}\n")


def yuan(fen: int) -> str:
    """``123456`` fen as ``"1234.56"``."""
    sign, q = ("-" if fen < 0 else ""), abs(int(fen))
    return f"{sign}{q // 100}.{q % 100:02d}"


def check_against_truth(result: JointResult, banks: Sequence[Bank]) -> None:
    """Raise :class:`IntegrityError` unless the totals equal the plaintext computation."""
    if result.by_id() != plaintext_truth(banks):
        raise IntegrityError("joint totals differ from the plaintext truth")


# ----------------------------------------------------------------------- end to end
def run_scenario(banks: Sequence[Bank], out: Path, *, ledger_path: Path | None = None,
                 key_bits: int = 2048, workers: int = 1) -> JointResult:
    """Run the whole protocol on ``banks``; write ``OUT/shared_exposure.csv``.

    Records go to the ledger at ``ledger_path`` (default ``OUT/ledger.db``), which is
    verified at the end. The key holder also shows that it refuses a two-bank aggregate.
    """
    from privacy.he.secure_sum import aggregate
    from privacy.ledger import Ledger

    started = time.perf_counter()
    if len(banks) != len(BANKS):
        raise ValueError(f"the scenario needs {len(BANKS)} banks, got {len(banks)}")
    out.mkdir(parents=True, exist_ok=True)
    with Ledger(ledger_path or out / "ledger.db") as ledger:
        first = ledger.size
        shared = align(banks, ledger=ledger, workers=workers)
        public, private = keygen(bits=key_bits, ledger=ledger)
        vectors = contribute_all(banks, shared, public, ledger=ledger, workers=workers)
        total = aggregate(vectors, ledger=ledger, workers=workers)
        refused = _refuses_partial(private, vectors, ledger, workers)
        totals = reveal(private, total, ledger=ledger, workers=workers)
        path = out / OUTPUT
        write_result(path, shared, totals)
        ledger.append("joint.publish", {"party": KEY_HOLDER, "to": list(BANKS),
                                        "borrowers": len(shared),
                                        "output_sha256": hashlib.sha256(
                                            path.read_bytes()).hexdigest()})
        ledger.verify()
        records = ledger.size - first
    return JointResult(shared, totals, {b.name: len(b.ids) for b in banks}, path, records,
                       refused, time.perf_counter() - started)


def run(ctx: DemoContext) -> dict[str, Any]:
    """Demo step: 1,000 borrowers per bank, 30% shared by all three; 2048-bit Paillier."""
    banks = make_banks(seed=7, per_bank=1000)
    result = run_scenario(banks, ctx.out / "joint", ledger_path=ctx.ledger_path)
    check_against_truth(result, banks)
    return {
        "banks": result.set_sizes,
        "shared_borrowers": len(result.shared_ids),
        "total_exposure_yuan": yuan(result.total_exposure),
        "output": str(result.output.relative_to(ctx.out)),
        "refused_two_bank_aggregate": result.refused_below_min,
        "matches_plaintext": True,
        "ledger_records": result.ledger_records,
    }
