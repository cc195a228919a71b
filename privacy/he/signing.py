"""Ed25519 signatures over HE contributions and aggregates (who contributed what).

The contributor list and weight of an encrypted vector are plain metadata: without
signatures anyone can relabel one party's vector as three contributions and pass the key
holder's ``min_parties``. With signatures:

* each **party** signs its fresh contribution (:func:`sign_contribution`, or
  ``contribute(..., signing_key=)``): a *contribution statement* binding the key id, the
  scheme, its party id, the layout, the length, the column name, weight 1 and the SHA-256
  of its ciphertexts;
* the **aggregator** (``aggregate(..., signers=)``) accepts only inputs that carry a
  valid contribution signature from one of the trusted keys, matching the vector it
  holds, one per signer (distinct signers); with its own ``signing_key`` it signs an
  *aggregate statement*: the key id, contributors, weight, layout, length, name, the
  SHA-256 of the (re-randomised) sum and the digests of the contribution signatures it
  checked (:func:`sign_aggregate`);
* the **key holder** (``decrypt_aggregate(..., signers=, aggregators=)``) checks the
  aggregator's signature over the very aggregate it received and the contribution
  signatures it lists: at least ``min_parties`` distinct trusted signers, one for each
  contributor (:func:`check_aggregate`).

Keys are Ed25519 (``cryptography``), the same PEM files as ledger checkpoints
(``covault ledger keygen``; :func:`privacy.ledger.checkpoint.load_signing_key`).
Signatures cover ``"covault-he-endorsement-v1" 0x00 || statement``; statements are
canonical JSON (sorted keys, no spaces, ASCII).

Warnings
--------
The key holder cannot check that an aggregate *is* the sum of the contributions listed
(the sum is re-randomised, and the key holder must not see single contributions): that
rests on the aggregator, whose signature makes it accountable. The trusted key lists
must come from a trusted channel, like the HE key id.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from privacy.errors import HEError

__all__ = [
    "Endorsement", "SignatureError", "ciphertext_digest", "contribution_statement",
    "aggregate_statement", "sign_contribution", "check_contributions", "sign_aggregate",
    "check_aggregate", "endorsements_to_bytes", "endorsements_from_bytes", "raw_key",
]

DOMAIN = b"covault-he-endorsement-v1\x00"
CONTRIBUTION = "covault-he-contribution"
AGGREGATE = "covault-he-aggregate"
MAX_STATEMENT = 1 << 20


class SignatureError(HEError):
    """A contribution or aggregate signature is missing, invalid, untrusted or reused."""


def raw_key(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key (of a private key's public half)."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _canonical(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True
                      ).encode("ascii")


@dataclass(frozen=True)
class Endorsement:
    """One signed statement: the signer's raw public key, the statement, the signature."""

    signer: bytes
    statement: bytes
    signature: bytes

    @property
    def digest(self) -> str:
        """SHA-256 (hex) over signer, statement and signature: names this endorsement."""
        h = hashlib.sha256()
        for part in (self.signer, self.statement, self.signature):
            h.update(len(part).to_bytes(8, "big") + part)
        return h.hexdigest()

    @property
    def signer_id(self) -> str:
        """Short printable signer id (16 hex digits of the public key)."""
        return self.signer[:8].hex()

    def verified(self) -> dict[str, Any]:
        """The statement, after checking the signature.

        Raises
        ------
        SignatureError
            Bad signature, key or statement.
        """
        try:
            Ed25519PublicKey.from_public_bytes(self.signer).verify(
                self.signature, DOMAIN + self.statement)
        except (InvalidSignature, ValueError):
            raise SignatureError(
                f"invalid signature by key {self.signer_id} over an HE statement") from None
        try:
            out = json.loads(self.statement.decode("ascii"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise SignatureError("signed HE statement is not JSON") from None
        if not isinstance(out, dict):
            raise SignatureError("signed HE statement is not an object")
        return out

    def to_json(self) -> dict[str, str]:
        """Base64 fields, for files."""
        return {k: base64.b64encode(getattr(self, k)).decode("ascii")
                for k in ("signer", "statement", "signature")}

    @classmethod
    def from_json(cls, d: object) -> Endorsement:
        """Inverse of :meth:`to_json` (sizes checked, signature not)."""
        if not isinstance(d, dict) or set(d) != {"signer", "statement", "signature"}:
            raise HEError("malformed HE endorsement")
        try:
            parts = {k: base64.b64decode(str(d[k]), validate=True) for k in d}
        except ValueError:
            raise HEError("malformed HE endorsement (bad base64)") from None
        if len(parts["signer"]) != 32 or len(parts["signature"]) != 64 \
                or len(parts["statement"]) > MAX_STATEMENT:
            raise HEError("malformed HE endorsement (bad sizes)")
        return cls(parts["signer"], parts["statement"], parts["signature"])


def endorsements_to_bytes(items: Sequence[Endorsement]) -> bytes:
    """The ``endorsements`` field of a vector file (JSON list)."""
    return _canonical({"endorsements": [e.to_json() for e in items]})


def endorsements_from_bytes(data: bytes, limit: int) -> tuple[Endorsement, ...]:
    """Inverse of :func:`endorsements_to_bytes`; at most ``limit`` entries."""
    try:
        obj = json.loads(data.decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise HEError("malformed HE endorsements") from None
    items = obj.get("endorsements") if isinstance(obj, dict) else None
    if not isinstance(items, list) or len(items) > limit:
        raise HEError("malformed HE endorsements (not a list, or too many)")
    return tuple(Endorsement.from_json(d) for d in items)


# --------------------------------------------------------------------------- statements
def ciphertext_digest(vec: Any) -> str:
    """SHA-256 (hex) of a vector's ciphertexts, as they are written to files."""
    h = hashlib.sha256()
    if hasattr(vec, "ciphertexts"):
        width = 2 * (-(-vec.public_key.bits // 8))
        h.update(b"paillier" + width.to_bytes(4, "big"))
        for c in vec.ciphertexts:
            h.update(int(c).to_bytes(width, "big"))
    else:
        h.update(vec.scheme.encode("ascii"))
        for ch in vec.chunks:
            data = ch.serialize()
            h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def _scheme(vec: Any) -> str:
    return "paillier" if hasattr(vec, "ciphertexts") else str(vec.scheme)


def _key_id(vec: Any) -> str:
    fp = vec.public_key.fingerprint if hasattr(vec, "ciphertexts") else vec.fingerprint
    return bytes(fp).hex()


def _facts(vec: Any) -> dict[str, Any]:
    facts = {"key_id": _key_id(vec), "scheme": _scheme(vec), "layout": vec.layout.to_dict(),
             "length": int(vec.length), "name": vec.name, "weight": int(vec.weight),
             "multiplications": int(getattr(vec, "multiplications", 0)),
             "ciphertexts": ciphertext_digest(vec)}
    rows = getattr(vec, "rows", None)
    if rows is not None:  # the row ids are signed with the values (absent: as before)
        facts["rows"] = {"column": rows.column, "count": rows.count, "digest": rows.digest}
    return facts


def contribution_statement(vec: Any) -> bytes:
    """The statement a party signs for its fresh contribution ``vec``.

    Raises
    ------
    HEError
        ``vec`` is not a fresh contribution (weight 1, exactly one contributor).
    """
    if vec.weight != 1 or len(vec.contributors) != 1:
        raise HEError("only a fresh contribution (weight 1, one contributor) can be signed "
                      "by its party")
    return _canonical({"type": CONTRIBUTION, "version": 1, "party": vec.contributors[0],
                       **_facts(vec)})


def aggregate_statement(vec: Any, inputs: Iterable[Endorsement]) -> bytes:
    """The statement an aggregator signs for the aggregate ``vec`` of ``inputs``."""
    return _canonical({"type": AGGREGATE, "version": 1,
                       "contributors": sorted(vec.contributors),
                       "inputs": sorted(e.digest for e in inputs), **_facts(vec)})


def _endorse(statement: bytes, key: Ed25519PrivateKey) -> Endorsement:
    return Endorsement(raw_key(key), statement, key.sign(DOMAIN + statement))


def _trusted(keys: Iterable[Ed25519PublicKey | Ed25519PrivateKey | bytes]) -> set[bytes]:
    out = set()
    for k in keys:
        raw = k if isinstance(k, bytes) else raw_key(k)
        if len(raw) != 32:
            raise HEError("a trusted signer key must be 32 raw bytes or an Ed25519 key")
        out.add(bytes(raw))
    return out


# --------------------------------------------------------------------------- roles
def sign_contribution(vec: Any, key: Ed25519PrivateKey) -> Any:
    """``vec`` carrying its party's signature (see :func:`contribution_statement`)."""
    return dataclasses.replace(vec, endorsements=(_endorse(contribution_statement(vec), key),))


def check_contributions(vectors: Sequence[Any],
                        signers: Iterable[Ed25519PublicKey | Ed25519PrivateKey | bytes]
                        ) -> list[Endorsement]:
    """Check that each vector is a fresh contribution signed by a distinct trusted key.

    Returns the contributions' endorsements, in input order.

    Raises
    ------
    SignatureError
        A vector is unsigned, signed by an untrusted key, its statement does not match
        it (ciphertexts, key, layout, length, name, party or weight changed), or two
        vectors are signed by the same key.
    """
    trusted = _trusted(signers)
    if not trusted:
        raise SignatureError("no trusted signer keys given")
    seen: dict[bytes, str] = {}
    found = []
    for v in vectors:
        who = ", ".join(v.contributors) or "an unnamed party"
        ends = [e for e in getattr(v, "endorsements", ())]
        if len(ends) != 1:
            raise SignatureError(f"contribution of {who} carries {len(ends)} signatures; "
                                 "exactly one (its party's) is required")
        e = ends[0]
        if e.signer not in trusted:
            raise SignatureError(f"contribution of {who} is signed by key {e.signer_id}, "
                                 "which is not a trusted signer")
        e.verified()
        if v.weight != 1 or len(v.contributors) != 1:
            raise SignatureError(
                f"contribution of {who} does not match what key {e.signer_id} signed: it "
                f"claims weight {v.weight} and {len(v.contributors)} contributors, a signed "
                "contribution has weight 1 and one (relabelled?)")
        if e.statement != contribution_statement(v):
            raise SignatureError(f"contribution of {who} does not match what key "
                                 f"{e.signer_id} signed (ciphertexts or metadata changed)")
        if e.signer in seen:
            raise SignatureError(f"contributions of {seen[e.signer]} and {who} are signed by "
                                 f"the same key {e.signer_id}; each party signs once")
        seen[e.signer] = who
        found.append(e)
    return found


def sign_aggregate(vec: Any, inputs: Sequence[Endorsement], key: Ed25519PrivateKey) -> Any:
    """``vec`` carrying ``inputs`` and the aggregator's signature over both."""
    agg = _endorse(aggregate_statement(vec, inputs), key)
    return dataclasses.replace(vec, endorsements=(*inputs, agg))


def check_aggregate(vec: Any, *, signers: Iterable[Ed25519PublicKey | Ed25519PrivateKey | bytes],
                    aggregators: Iterable[Ed25519PublicKey | Ed25519PrivateKey | bytes],
                    min_parties: int) -> list[str]:
    """Check an aggregate's signatures before decryption; return the signers' public
    keys (hex).

    The aggregate must carry exactly one aggregate signature by a trusted aggregator over
    this very vector (ciphertexts, contributors, weight, layout, length, name) and the
    contribution signatures it names; those must be valid, by distinct trusted signers,
    one for each contributor, under the same key id, layout, length and name, and at
    least ``min_parties`` of them.

    Raises
    ------
    SignatureError
        Anything above does not hold.
    """
    trusted, aggs = _trusted(signers), _trusted(aggregators)
    if not trusted or not aggs:
        raise SignatureError("checking an aggregate needs the trusted signer keys and the "
                             "aggregator's key")
    ends = list(getattr(vec, "endorsements", ()))
    tops = [e for e in ends if e.signer in aggs]
    if len(tops) != 1:
        raise SignatureError(f"aggregate carries {len(tops)} signatures by a trusted "
                             "aggregator; exactly one is required")
    top = tops[0]
    top.verified()
    inputs = [e for e in ends if e is not top]
    if top.statement != aggregate_statement(vec, inputs):
        raise SignatureError(f"aggregate does not match what aggregator key {top.signer_id} "
                             "signed (ciphertexts, contributors or inputs changed)")
    facts = _facts(vec)
    parties: dict[str, bytes] = {}
    for e in inputs:
        if e.signer not in trusted:
            raise SignatureError(f"aggregate lists a contribution signed by key "
                                 f"{e.signer_id}, which is not a trusted signer")
        st = e.verified()
        same = all(st.get(k) == facts[k] for k in ("key_id", "scheme", "layout", "length",
                                                   "name", "multiplications"))
        signed_rows = st.get("rows")
        same = same and (signed_rows.get("digest") if isinstance(signed_rows, dict)
                         else signed_rows) == facts.get("rows", {}).get("digest")
        if st.get("type") != CONTRIBUTION or st.get("weight") != 1 or not same:
            raise SignatureError(f"contribution signed by key {e.signer_id} is not one of "
                                 "this aggregate")
        party = st.get("party")
        if not isinstance(party, str) or party in parties:
            raise SignatureError("aggregate lists two signed contributions for one party")
        if e.signer in parties.values():
            raise SignatureError(f"key {e.signer_id} signed more than one contribution")
        parties[party] = e.signer
    if sorted(parties) != sorted(vec.contributors):
        raise SignatureError("aggregate's contributor list differs from the parties that "
                             "signed its contributions")
    if vec.weight != len(parties):
        raise SignatureError(f"aggregate has weight {vec.weight} but holds {len(parties)} "
                             "signed contribution(s)")
    if len(parties) < min_parties:
        raise SignatureError(f"aggregate holds {len(parties)} signed contribution(s); at "
                             f"least {min_parties} are required")
    return sorted(s.hex() for s in parties.values())
