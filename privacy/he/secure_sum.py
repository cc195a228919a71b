"""Secure sum: parties encrypt, an aggregator without keys adds, the key holder decrypts.

Roles
-----
* **Key holder** generates the key pair and publishes only the public part.
* **Parties** call :func:`contribute`: their vector encrypted under the public key and
  labelled with their party id; with ``signing_key`` also signed (Ed25519,
  :mod:`privacy.he.signing`).
* **Aggregator** calls :func:`aggregate`: checks keys, layouts, lengths, each input's
  weight and contributor list against the layout, and that no party appears twice; with
  ``signers`` (trusted public keys) also that every input is a fresh contribution signed
  by a distinct trusted key. It adds the ciphertexts and *re-randomises* the result
  (Paillier: times a fresh encryption of zero), so the sum cannot be linked to any input
  ciphertext. It maintains the contributor list stored with the aggregate and, with its
  own ``signing_key``, signs the aggregate and the contribution signatures it checked.
* **Key holder** calls :func:`decrypt_aggregate`, which refuses aggregates of fewer than
  ``min_parties`` contributors (default 3) with :class:`InsufficientPartiesError`, and
  aggregates whose layout or weight exceed the key's headroom; with ``signers`` and
  ``aggregators`` it counts only distinct trusted signers
  (:func:`privacy.he.signing.check_aggregate`).

Each step appends a record of what it disclosed to a ledger when one is given: any
object with ``append(kind: str, payload: dict) -> int`` (``privacy.ledger.Ledger``).

Warnings
--------
Without signatures the contributor list and weight are plain metadata, range-checked
against the layout but not authenticated: anyone who can rewrite a file can relabel one
party's vector as several contributions. Use signatures (``signing_key`` / ``signers``
/ ``aggregators``) when the files travel through hands you do not trust. Even then the
key holder cannot check that an aggregate is the sum of the contributions it lists; that
rests on the aggregator (accountable through its signature and the ledger), and the
threshold does not protect against a key holder colluding with the aggregator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from privacy.errors import HEError, InsufficientPartiesError
from privacy.he.packing import PackingLayout
from privacy.he.rows import RowIds, check_aligned

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    TrustedKeys = Sequence[Ed25519PublicKey | Ed25519PrivateKey | bytes]

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
    out = {"scheme": scheme, "key_id": vec.key_id, "elements": vec.length,
           "contributors": list(vec.contributors), "layout": vec.layout.to_dict()}
    if getattr(vec, "rows", None) is not None:  # the digest, never the ids
        out["rows"] = {"column": vec.rows.column, "digest": vec.rows.digest}
    return out


def contribute(
    key: Any, values: npt.ArrayLike, *, party: str, layout: PackingLayout | None = None,
    name: str | None = None, ledger: LedgerLike | None = None, workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    signing_key: Ed25519PrivateKey | None = None, rows: RowIds | None = None,
) -> Any:
    """Encrypt one party's vector under the key holder's public key.

    ``key`` is a :class:`~privacy.he.paillier.PaillierPublicKey` (``layout`` defaults to
    ``PackingLayout()``) or a public :class:`~privacy.he.ckks.HEContext` (its own layout).
    With ``signing_key`` (the party's Ed25519 key) the contribution carries the party's
    signature (:func:`privacy.he.signing.sign_contribution`). ``rows`` records the ids of
    the values' rows (:class:`~privacy.he.rows.RowIds`, one per value), so that
    :func:`aggregate` refuses contributions whose rows differ. The ledger record discloses
    only sizes, the key id, the rows' digest and the signer's key, never values or ids.
    """
    from privacy.he.paillier import EncryptedVector, PaillierPublicKey

    if not party:
        raise HEError("a contribution needs a party id")
    if isinstance(key, PaillierPublicKey):
        vec: Any = EncryptedVector.encrypt(key, values, layout, contributor=party, name=name,
                                           workers=workers, progress=progress)
    else:
        vec = key.encrypt(values, contributor=party, name=name)
    if rows is not None:
        if rows.count != vec.length:
            raise HEError(f"{rows.count} row ids for {vec.length} values")
        vec = dataclasses.replace(vec, rows=rows)
    vec.layout.check_metadata(vec.weight, list(vec.contributors))
    record: dict[str, Any] = {**_describe(vec), "party": party}
    if signing_key is not None:
        from privacy.he.signing import sign_contribution

        vec = sign_contribution(vec, signing_key)
        record["signer"] = vec.endorsements[0].signer.hex()
    if ledger is not None:
        ledger.append("he.contribute", record)
    return vec


def aggregate(vectors: Sequence[Any], *, ledger: LedgerLike | None = None,
              rerandomise: bool = True, workers: int | None = None,
              signers: TrustedKeys | None = None,
              signing_key: Ed25519PrivateKey | None = None,
              labels: Sequence[str] | None = None) -> Any:
    """Element-wise sum of contributions, re-randomised; no secret key involved.

    Every input must name at least one contributor, with a weight (``1 <= weight <=
    layout.parties``) no smaller than its number of contributors. With ``signers``
    (the parties' trusted Ed25519 public keys) every input must be a fresh contribution
    carrying a valid signature by one of them, each key signing once
    (:func:`privacy.he.signing.check_contributions`); with ``signing_key`` (which needs
    ``signers``) the aggregate carries those signatures and the aggregator's own.
    Inputs must record the same row ids in the same order, or none
    (:func:`privacy.he.rows.check_aligned`; ``labels`` name the inputs in its errors).

    Raises
    ------
    HEError
        Different keys/contexts, layouts or lengths, a party contributing twice, an
        input whose weight or contributor list is out of range, row ids or row orders
        that differ.
    SignatureError
        With ``signers``: an unsigned, untrusted, altered or repeated-signer input.
    PackingOverflowError
        More contributions than the layout has headroom for.
    """
    if not vectors:
        raise HEError("nothing to aggregate")
    if signing_key is not None and signers is None:
        raise HEError("signing an aggregate needs the trusted signer keys (signers) whose "
                      "contribution signatures it vouches for")
    seen: set[str] = set()
    for v in vectors:
        v.layout.check_metadata(v.weight, list(v.contributors))
        if not v.contributors:
            raise HEError("an input names no contributor; every contribution needs a "
                          "party id to be counted")
        dup = seen & set(v.contributors)
        if dup:
            raise HEError(f"party {sorted(dup)[0]!r} contributed more than once")
        seen |= set(v.contributors)
    kind = type(vectors[0])
    for v in vectors[1:]:
        if type(v) is not kind:
            raise HEError("cannot aggregate vectors of different schemes")
    check_aligned(vectors, labels)
    checked: list[Any] = []
    if signers is not None:
        from privacy.he.signing import check_contributions

        checked = check_contributions(vectors, signers)
    total = kind.sum(list(vectors))
    if rerandomise:
        total = (total.rerandomised(workers=workers) if hasattr(total, "ciphertexts")
                 else total.rerandomised())
    if signing_key is not None:
        from privacy.he.signing import sign_aggregate

        total = sign_aggregate(total, checked, signing_key)
    if ledger is not None:
        record: dict[str, Any] = {**_describe(total), "inputs": len(vectors),
                                  "rerandomised": rerandomise}
        if checked:
            record["signers"] = sorted(e.signer.hex() for e in checked)
        ledger.append("he.aggregate", record)
    return total


def decrypt_aggregate(
    key: Any, vector: Any, *, min_parties: int = DEFAULT_MIN_PARTIES,
    ledger: LedgerLike | None = None, scaled: bool = False, workers: int | None = None,
    progress: Callable[[int], None] | None = None, layout: PackingLayout | None = None,
    signers: TrustedKeys | None = None, aggregators: TrustedKeys | None = None,
) -> npt.NDArray[Any]:
    """Decrypt an aggregate of at least ``min_parties`` distinct contributors.

    ``key`` is a :class:`~privacy.he.paillier.PaillierPrivateKey` or a private
    :class:`~privacy.he.ckks.HEContext`. The aggregate's layout must have the bounds
    (``value_bits``, ``parties``) of the key holder's: ``layout`` for Paillier (the one
    stored with the key; not checked when ``None``), the context's own for CKKS/BFV; its
    weight and contributor list are range-checked against it. With ``signers`` and
    ``aggregators`` (trusted Ed25519 public keys) the aggregate must carry a trusted
    aggregator's signature over it and at least ``min_parties`` contribution signatures
    by distinct trusted signers (:func:`privacy.he.signing.check_aggregate`).

    Raises
    ------
    InsufficientPartiesError
        The aggregate records fewer than ``min_parties`` contributors.
    SignatureError
        With ``signers``/``aggregators``: missing, invalid, untrusted or reused
        signatures, or fewer than ``min_parties`` distinct signers.
    HEError
        ``min_parties`` < 1 or above the layout's ``parties``; layout, weight or
        contributors out of range; the key does not match the ciphertext.
    """
    if min_parties < 1:
        raise HEError(f"min_parties must be >= 1, got {min_parties}")
    expected = layout if hasattr(vector, "ciphertexts") else key.layout
    if expected is not None and not vector.layout.same_bounds(expected):
        raise HEError(f"aggregate's packing layout {vector.layout} differs from the key's "
                      f"{expected}: its headroom cannot be trusted")
    lay = vector.layout
    if min_parties > lay.parties:
        raise HEError(f"min_parties {min_parties} exceeds the {lay.parties} parties the "
                      "packing layout has headroom for")
    lay.check_metadata(vector.weight, list(vector.contributors))
    n = len(set(vector.contributors))
    if n < min_parties:
        raise InsufficientPartiesError(
            f"aggregate holds {n} contribution(s); at least {min_parties} are required "
            "before the key holder decrypts"
        )
    signed: list[str] = []
    if signers is not None or aggregators is not None:
        from privacy.he.signing import check_aggregate

        signed = check_aggregate(vector, signers=signers or (), aggregators=aggregators or (),
                                 min_parties=min_parties)
    from privacy.he.paillier import EncryptedVector

    if isinstance(vector, EncryptedVector):
        out = vector.decrypt(key, scaled=scaled, workers=workers, progress=progress)
    else:
        out = vector.decrypt(key, scaled=scaled)
    if ledger is not None:
        record: dict[str, Any] = {**_describe(vector), "min_parties": min_parties,
                                  "released": "aggregate"}
        if signed:
            record["signers"] = signed
        ledger.append("he.decrypt", record)
    return np.asarray(out)
