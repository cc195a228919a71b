"""Secure sum: parties encrypt, an aggregator without keys adds, the key holder decrypts.

Roles
-----
* **Key holder** generates the key pair and publishes only the public part.
* **Parties** call :func:`contribute`: their vector encrypted under the public key and
  labelled with their party id.
* **Aggregator** calls :func:`aggregate`: checks keys, layouts, lengths and that no party
  appears twice, adds the ciphertexts and *re-randomises* the result (Paillier: times a
  fresh encryption of zero), so the sum cannot be linked to any input ciphertext. It
  maintains the contributor list stored with the aggregate.
* **Key holder** calls :func:`decrypt_aggregate`, which refuses aggregates of fewer than
  ``min_parties`` contributors (default 3) with :class:`InsufficientPartiesError`.

Each step appends a record of what it disclosed to a ledger when one is given: any
object with ``append(kind: str, payload: dict) -> int`` (``privacy.ledger.Ledger``).

Warnings
--------
The contributor list is maintained by the aggregator and protected only against
accidental corruption (the file digest); a dishonest aggregator could lie about it or
submit one party's vector alone. The threshold protects against honest mistakes and
curious key holders, not against a key holder colluding with the aggregator; use
signatures over contributions and the ledger to make that auditable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from privacy.errors import HEError, InsufficientPartiesError
from privacy.he.packing import PackingLayout

__all__ = [
    "LedgerLike", "DEFAULT_MIN_PARTIES", "contribute", "aggregate", "decrypt_aggregate",
]

DEFAULT_MIN_PARTIES = 3


@runtime_checkable
class LedgerLike(Protocol):
    """What the HE steps need from a ledger (``privacy.ledger.Ledger`` fits)."""

    def append(self, kind: str, payload: dict[str, Any]) -> int:
        """Append one record; return its index."""
        ...


def _describe(vec: Any) -> dict[str, Any]:
    scheme = "paillier" if hasattr(vec, "ciphertexts") else vec.scheme
    return {"scheme": scheme, "key_id": vec.key_id, "elements": vec.length,
            "contributors": list(vec.contributors), "layout": vec.layout.to_dict()}


def contribute(
    key: Any, values: npt.ArrayLike, *, party: str, layout: PackingLayout | None = None,
    name: str | None = None, ledger: LedgerLike | None = None, workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Any:
    """Encrypt one party's vector under the key holder's public key.

    ``key`` is a :class:`~privacy.he.paillier.PaillierPublicKey` (``layout`` defaults to
    ``PackingLayout()``) or a public :class:`~privacy.he.ckks.HEContext` (its own layout).
    The ledger record discloses only sizes and the key id, never values.
    """
    from privacy.he.paillier import EncryptedVector, PaillierPublicKey

    if not party:
        raise HEError("a contribution needs a party id")
    if isinstance(key, PaillierPublicKey):
        vec: Any = EncryptedVector.encrypt(key, values, layout, contributor=party, name=name,
                                           workers=workers, progress=progress)
    else:
        vec = key.encrypt(values, contributor=party, name=name)
    if ledger is not None:
        ledger.append("he.contribute", {**_describe(vec), "party": party})
    return vec


def aggregate(vectors: Sequence[Any], *, ledger: LedgerLike | None = None,
              rerandomise: bool = True, workers: int | None = None) -> Any:
    """Element-wise sum of contributions, re-randomised; no secret key involved.

    Raises
    ------
    HEError
        Different keys/contexts, layouts or lengths, or a party contributing twice.
    PackingOverflowError
        More contributions than the layout has headroom for.
    """
    if not vectors:
        raise HEError("nothing to aggregate")
    seen: set[str] = set()
    for v in vectors:
        dup = seen & set(v.contributors)
        if dup:
            raise HEError(f"party {sorted(dup)[0]!r} contributed more than once")
        seen |= set(v.contributors)
    kind = type(vectors[0])
    for v in vectors[1:]:
        if type(v) is not kind:
            raise HEError("cannot aggregate vectors of different schemes")
    total = kind.sum(list(vectors))
    if rerandomise:
        total = (total.rerandomised(workers=workers) if hasattr(total, "ciphertexts")
                 else total.rerandomised())
    if ledger is not None:
        ledger.append("he.aggregate", {**_describe(total), "inputs": len(vectors),
                                       "rerandomised": rerandomise})
    return total


def decrypt_aggregate(
    key: Any, vector: Any, *, min_parties: int = DEFAULT_MIN_PARTIES,
    ledger: LedgerLike | None = None, scaled: bool = False, workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> npt.NDArray[Any]:
    """Decrypt an aggregate of at least ``min_parties`` distinct contributors.

    ``key`` is a :class:`~privacy.he.paillier.PaillierPrivateKey` or a private
    :class:`~privacy.he.ckks.HEContext`.

    Raises
    ------
    InsufficientPartiesError
        The aggregate records fewer than ``min_parties`` contributors.
    HEError
        ``min_parties`` < 1, or the key does not match the ciphertext.
    """
    if min_parties < 1:
        raise HEError(f"min_parties must be >= 1, got {min_parties}")
    n = len(set(vector.contributors))
    if n < min_parties:
        raise InsufficientPartiesError(
            f"aggregate holds {n} contribution(s); at least {min_parties} are required "
            "before the key holder decrypts"
        )
    from privacy.he.paillier import EncryptedVector

    if isinstance(vector, EncryptedVector):
        out = vector.decrypt(key, scaled=scaled, workers=workers, progress=progress)
    else:
        out = vector.decrypt(key, scaled=scaled)
    if ledger is not None:
        ledger.append("he.decrypt", {**_describe(vector), "min_parties": min_parties,
                                     "released": "aggregate"})
    return np.asarray(out)
