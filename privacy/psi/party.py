"""Two-party private set intersection (semi-honest ECDH-PSI on ristretto255).

The recipe::

    a = PsiParty(joiner_ids)                          # the initiator, learns the result
    b = PsiParty(server_ids)                          # the responder
    accept = b.accept(a.hello())
    reply = b.reply(a.points())                       # (H(a)^alpha)^beta, in a's order
    result = a.finish(accept, b.records(), reply)     # H(b)^beta -> (H(b)^beta)^alpha
    result.ids, result.size, result.mask

Modes
-----
``intersection``
    The initiator learns which of its ids are shared; the responder learns the
    initiator's set size only.
``cardinality``
    The responder shuffles its reply, so the initiator learns only the count.
``intersection-sum``
    The responder holds an integer value per id and a Paillier key (like Google's
    Private Join and Compute). It sends Paillier ciphertexts of its values beside its
    blinded ids; the initiator homomorphically sums the ciphertexts of the matching ids,
    re-randomises the sum and returns it (:meth:`PsiParty.encrypted_sum`); the key
    holder decrypts only the sum (:meth:`PsiParty.reveal`) and may tell the initiator.
    The reply is shuffled as in ``cardinality``, so the initiator learns the count.
    The key holder refuses a count above either set size or below ``min_count``, and a
    decrypted value beyond ``count * max|value|`` of its own column: a deviating
    initiator learns at most one bounded linear combination of the key holder's values
    per session (see :mod:`privacy.psi.sums`).

Ids are normalised (:func:`normalize_id`: NFKC, all whitespace removed, casefold;
pluggable), empty ids dropped and duplicates merged before hashing with a tag naming
the protocol and the session ``context``. With ``id_type`` (``mobile``,
``resident_id``, ``card``, ``email``, ``uscc``, ``generic`` or ``auto``) ids are
brought to their canonical identifier form instead (:mod:`privacy.normalize`), so
``+86 187 8161 8495`` on one side meets ``187-8161-8495`` on the other; the id type is
announced in the hello and accept, and a peer normalising differently is refused.
The hello carries a random session id that the accept echoes (and the initiator's SUM
message repeats); the initiator refuses an accept that answers another hello
(:meth:`PsiParty.check_session`), so a response file cannot be applied to the wrong
request. Each party's blinded set is shuffled with a CSPRNG before it leaves. Transport:
:mod:`privacy.psi.net` (TCP) and :mod:`privacy.psi.files` (message files), both in the
framing of :mod:`privacy.psi.wire`.

Warnings
--------
Semi-honest security only: a party that deviates from the protocol (sends chosen
points, lies about the sum) is not detected. The initiator learns the responder's set
size and vice versa. Reusing one party object for two sessions links them; serve each
session with :meth:`PsiParty.fresh`.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np

from privacy.errors import PSIError
from privacy.normalize import IDENTIFIER_CHOICES, normalizer
from privacy.psi.group import POINT_BYTES, blind, hash_to_group, random_scalar
from privacy.psi.sums import (
    accept_fields,
    ciphertext_bytes,
    decrypt_sum,
    encrypt_values,
    export_private,
    generate_key,
    import_private,
    max_abs_value,
    public_key_from_accept,
    sum_ciphertexts,
)

__all__ = [
    "PROTOCOL",
    "MODES",
    "Mode",
    "normalize_id",
    "PsiParty",
    "PsiResult",
]

PROTOCOL = "covault-psi/1"
MODES = ("intersection", "cardinality", "intersection-sum")
Mode = Literal["intersection", "cardinality", "intersection-sum"]
MIN_PAILLIER_BITS = 2048
DEFAULT_MAX_PEER = 50_000_000
SESSION_BYTES = 16


def normalize_id(value: str) -> str:
    """The default id normalisation: NFKC, remove every whitespace character, casefold.

    ``" AbC 123\\u3000"`` and ``"abc１２３"`` both become ``"abc123"``. Pass another
    callable as ``normalize=`` to :class:`PsiParty` to change it, or an ``id_type`` for
    identifiers (a mobile's written forms differ beyond whitespace and case); both
    parties must use the same one.
    """
    return "".join(unicodedata.normalize("NFKC", value).split()).casefold()


@dataclass(frozen=True)
class PsiResult:
    """What one party learned.

    Attributes
    ----------
    mode:
        The protocol mode.
    size:
        The intersection's cardinality (``None`` for the responder outside
        ``intersection-sum``: it learns nothing).
    ids:
        The shared normalised ids (``intersection`` mode, initiator only).
    mask:
        For each input row, whether its id is shared (``intersection`` mode, initiator).
    sum:
        The sum of the responder's values over the intersection (``intersection-sum``,
        once revealed).
    own_size, peer_size:
        Distinct ids on each side.
    """

    mode: Mode
    size: int | None
    own_size: int
    peer_size: int
    ids: list[str] | None = None
    mask: list[bool] | None = None
    sum: int | None = None

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly summary without the ids or the mask."""
        out: dict[str, Any] = {
            "mode": self.mode,
            "intersection_size": self.size,
            "own_size": self.own_size,
            "peer_size": self.peer_size,
        }
        if self.mode == "intersection-sum":
            out["sum"] = self.sum
        return out


def _permutation(seed: bytes, n: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    """A uniform permutation of ``range(n)`` from a 32-byte secret seed (SHAKE-256 keys)."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    keys = np.frombuffer(hashlib.shake_256(b"covault/psi/shuffle" + seed).digest(8 * n), "<u8")
    return np.argsort(keys, kind="stable").astype(np.int64)


def _split(data: bytes, record: int) -> list[bytes]:
    return [data[i : i + record] for i in range(0, len(data), record)]


class PsiParty:
    """One party of a PSI session: its normalised ids, secret scalar and shuffle.

    Parameters
    ----------
    ids:
        The party's ids, one per input row (``None`` or empty after normalisation means
        "no id": such rows never match).
    mode:
        ``"intersection"``, ``"cardinality"`` or ``"intersection-sum"``.
    context:
        The session/protocol context both parties agree on; it is part of the hash
        tag, so points from different contexts never match.
    values:
        Per-row integers (responder in ``intersection-sum`` only); duplicates of an id
        are summed.
    normalize:
        Id normalisation (default :func:`normalize_id`).
    id_type:
        Normalise ids as identifiers of this kind instead (:mod:`privacy.normalize`:
        ``mobile``, ``resident_id``, ``card``, ``email``, ``uscc``, ``generic``,
        ``auto``; lenient: an invalid id gets the generic form). Sent to the peer,
        which must use the same; exclusive with ``normalize``.
    workers:
        Processes for the group operations (default: the usable CPU cores).
    paillier_bits:
        Paillier modulus size for ``intersection-sum`` (at least 2048, default 3072).
    max_peer_size:
        Reject a peer announcing more distinct ids than this.
    min_count:
        Responder in ``intersection-sum``: refuse to reveal a sum over fewer than this
        many ids (default 1; a count of 0 is answered, its sum must be 0). It stops an
        honest initiator with a small intersection from learning single values; a
        deviating one can claim any count up to both set sizes.

    Warnings
    --------
    The object holds a secret scalar (and in ``intersection-sum`` a Paillier private
    key); it refuses to be pickled. Use :meth:`fresh` for each new session.
    """

    def __init__(
        self,
        ids: Iterable[str | None],
        *,
        mode: str = "intersection",
        context: str = "covault-psi",
        values: Sequence[int] | None = None,
        normalize: Callable[[str], str] | None = None,
        id_type: str | None = None,
        workers: int | None = None,
        paillier_bits: int = 3072,
        max_peer_size: int = DEFAULT_MAX_PEER,
        min_count: int = 1,
        _secrets: tuple[bytes, bytes] | None = None,
    ) -> None:
        if mode not in MODES:
            raise PSIError(f"unknown PSI mode {mode!r}; expected one of {', '.join(MODES)}")
        if paillier_bits < MIN_PAILLIER_BITS:
            raise PSIError(f"paillier_bits must be at least {MIN_PAILLIER_BITS}")
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise PSIError(f"min_count must be a positive integer, not {min_count!r}")
        if id_type is not None:
            if id_type not in IDENTIFIER_CHOICES or id_type == "none":
                choices = ", ".join(c for c in IDENTIFIER_CHOICES if c != "none")
                raise PSIError(f"unknown id type {id_type!r}; expected one of {choices}")
            if normalize is not None:
                raise PSIError("pass either normalize= or id_type=, not both")
            normalize = normalizer(id_type)
        normalize = normalize or normalize_id
        self.id_type = id_type
        self.mode: Mode = cast(Mode, mode)
        self.context = context
        self.normalize = normalize
        self.workers = workers
        self.paillier_bits = paillier_bits
        self.max_peer_size = max_peer_size
        self.min_count = min_count
        self.row_keys_: list[str | None] = [
            (normalize(v) or None) if v is not None else None for v in ids
        ]
        index: dict[str, int] = {}
        for key in self.row_keys_:
            if key is not None and key not in index:
                index[key] = len(index)
        self.unique_ = list(index)
        self.values_: list[int] | None = None
        if values is not None:
            if len(values) != len(self.row_keys_):
                raise PSIError(f"{len(values)} values for {len(self.row_keys_)} ids")
            sums = [0] * len(self.unique_)
            for key, value in zip(self.row_keys_, values, strict=True):
                if key is not None:
                    if isinstance(value, bool) or not isinstance(value, int):
                        raise PSIError(f"value for id {key!r} is not an integer: {value!r}")
                    sums[index[key]] += value
            self.values_ = sums
        self._scalar, self._seed = _secrets or (random_scalar(), secrets.token_bytes(32))
        self._order = _permutation(self._seed, len(self.unique_))
        self._points: bytes | None = None
        self._paillier: Any = None  # (public key, private key), responder in intersection-sum
        self._peer_size: int | None = None
        self._hits: list[int] | None = None
        self._doubled: bytes | None = None
        self._records = b""
        self._accept: dict[str, Any] = {}
        # Binds a response to its request: the initiator's hello carries it, the
        # responder's accept echoes it, the initiator refuses an accept without it.
        self.session: str | None = secrets.token_hex(SESSION_BYTES)

    def fresh(self) -> PsiParty:
        """The same ids and settings with a new scalar and shuffle (for a new session)."""
        other = object.__new__(PsiParty)
        other.__dict__.update(self.__dict__)
        other._scalar, other._seed = random_scalar(), secrets.token_bytes(32)
        other._order = _permutation(other._seed, len(self.unique_))
        other._points, other._paillier, other._peer_size = None, None, None
        other._hits, other._records, other._accept = None, b"", {}
        other._doubled = None
        other.session = secrets.token_hex(SESSION_BYTES)
        return other

    def __reduce__(self) -> Any:
        raise TypeError("a PsiParty holds secrets and cannot be pickled")

    def __repr__(self) -> str:
        return f"PsiParty(mode={self.mode!r}, context={self.context!r}, size={len(self.unique_)})"

    @property
    def size(self) -> int:
        """The number of distinct normalised ids."""
        return len(self.unique_)

    # -- both roles -------------------------------------------------------------------

    def points(self) -> bytes:
        """``H(id)^scalar`` for every distinct id, shuffled, as concatenated 32-byte points."""
        if self._points is None:
            shuffled = [self.unique_[i].encode("utf-8") for i in self._order.tolist()]
            self._points = hash_to_group(shuffled, self.context, self._scalar, workers=self.workers)
        return self._points

    def _check_peer(self, obj: dict[str, Any], what: str) -> int:
        if obj.get("protocol") != PROTOCOL:
            raise PSIError(f"{what}: protocol {obj.get('protocol')!r}, expected {PROTOCOL!r}")
        if obj.get("mode") != self.mode:
            raise PSIError(self._mode_mismatch(obj.get("mode"), what))
        if obj.get("context") != self.context:
            raise PSIError(f"{what}: peer context {obj.get('context')!r}, ours {self.context!r}")
        if obj.get("id_type") != self.id_type:
            raise PSIError(f"{what}: peer normalises ids as {obj.get('id_type') or 'text'!r}, "
                           f"ours as {self.id_type or 'text'!r}; both parties must give the "
                           "same id type")
        size = obj.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise PSIError(f"{what}: malformed set size {size!r}")
        if size > self.max_peer_size:
            raise PSIError(f"{what}: peer set of {size} ids exceeds the limit {self.max_peer_size}")
        return size

    def _mode_mismatch(self, peer: object, what: str) -> str:
        """Both sides' modes by role (the message may be relayed to the peer, where
        "ours" would read the wrong way round) and the option that fixes it."""
        responder = what.endswith("hello")  # a hello reaches the responder
        theirs = peer if peer in MODES else repr(peer)  # a peer's text, shown as data
        initiator_mode, responder_mode = (theirs, self.mode) if responder else (self.mode, theirs)
        return (f"{what}: PSI modes differ: the initiator (psi join / psi request) runs "
                f"--mode {initiator_mode}, the responder (psi serve / psi respond) --mode "
                f"{responder_mode}; both parties must give the same --mode")

    # -- initiator --------------------------------------------------------------------

    def hello(self) -> dict[str, Any]:
        """The initiator's opening message."""
        return {"protocol": PROTOCOL, "mode": self.mode, "context": self.context,
                "size": self.size, "session": self.session, **self._id_field()}

    def check_session(self, accept: dict[str, Any], what: str = "accept") -> None:
        """Check that ``accept`` answers this party's hello (it echoes its session id).

        Raises
        ------
        PSIError
            When the accept echoes another session id (a response to another request),
            none (a responder from before session ids), or this party has none (a state
            file from before session ids).
        """
        if self.session is None:
            raise PSIError(f"{what}: this session's state has no session id (written by an "
                           "older covault): start again with `psi request`")
        got = accept.get("session")
        if got is None:
            raise PSIError(f"{what}: the response carries no session id (written by an "
                           "older covault): the responder must answer the request again")
        if not isinstance(got, str) or not secrets.compare_digest(got, self.session):
            raise PSIError(f"{what}: this response answers another request (its session id "
                           "differs from this session's): use the response to the request "
                           "written with this --state")

    def _id_field(self) -> dict[str, str]:
        """``{"id_type": ...}`` in hello, accept and state when set (else nothing, so
        sessions without it look as before)."""
        return {} if self.id_type is None else {"id_type": self.id_type}

    def finish(self, accept: dict[str, Any], records: bytes, reply: bytes) -> PsiResult:
        """Compute the result from the responder's accept, records and reply
        (:meth:`absorb` then :meth:`conclude`).

        Raises
        ------
        PSIError
            On a mismatched accept, wrong stream sizes or invalid points.
        """
        self.absorb(accept, records)
        return self.conclude(reply)

    def absorb(self, accept: dict[str, Any], records: bytes) -> None:
        """Check the accept and raise the responder's points to this party's scalar."""
        self._peer_size = self._check_peer(accept, "accept")
        self.check_session(accept)
        record = self.record_size(accept)
        if len(records) != self._peer_size * record:
            raise PSIError("the responder's records do not match the announced size")
        if record == POINT_BYTES:
            peer_points = records
        else:
            peer_points = b"".join(
                records[i : i + POINT_BYTES] for i in range(0, len(records), record)
            )
        self._doubled = blind(peer_points, self._scalar, workers=self.workers)
        self._records, self._accept = records, accept

    def conclude(self, reply: bytes) -> PsiResult:
        """Intersect the responder's reply with the absorbed points (after :meth:`absorb`)."""
        if self._doubled is None or self._peer_size is None:
            raise PSIError("conclude needs absorb() first")
        if len(reply) != self.size * POINT_BYTES:
            raise PSIError("the responder's reply does not match this party's set size")
        peer_size = self._peer_size
        reply_items = _split(reply, POINT_BYTES)
        if self.mode == "intersection":
            peer = set(_split(self._doubled, POINT_BYTES))
            order = self._order.tolist()
            shared = {self.unique_[i] for i, p in zip(order, reply_items, strict=True) if p in peer}
            mask = [k is not None and k in shared for k in self.row_keys_]
            ids = [k for k in self.unique_ if k in shared]
            return PsiResult(self.mode, len(ids), self.size, peer_size, ids=ids, mask=mask)
        mine = set(reply_items)
        self._hits = [j for j, p in enumerate(_split(self._doubled, POINT_BYTES)) if p in mine]
        return PsiResult(self.mode, len(self._hits), self.size, peer_size)

    def record_size(self, accept: dict[str, Any]) -> int:
        """Bytes per responder record announced in ``accept`` (checked against the mode)."""
        record = accept.get("record")
        if self.mode != "intersection-sum":
            if record != POINT_BYTES:
                raise PSIError(f"accept: malformed record size {record!r}")
            return POINT_BYTES
        expected = POINT_BYTES + ciphertext_bytes(public_key_from_accept(accept))
        if record != expected:
            raise PSIError(f"accept: record size {record!r}, expected {expected}")
        return expected

    def encrypted_sum(self) -> dict[str, Any]:
        """The re-randomised Paillier sum over the intersection, for the responder."""
        if self.mode != "intersection-sum" or self._hits is None:
            raise PSIError("encrypted_sum needs a finished intersection-sum session")
        out = sum_ciphertexts(self._accept, self._records, self._hits)
        if self.session is not None:
            out["session"] = self.session  # reveal checks it against its state
        return out

    # -- responder --------------------------------------------------------------------

    def accept(self, hello: dict[str, Any]) -> dict[str, Any]:
        """Check the initiator's hello; return the accept message (with the Paillier
        public key in ``intersection-sum``)."""
        self._peer_size = self._check_peer(hello, "hello")
        session = hello.get("session")
        if session is not None and (not isinstance(session, str)
                                    or len(session) != 2 * SESSION_BYTES
                                    or any(c not in "0123456789abcdef" for c in session)):
            raise PSIError(f"hello: malformed session id {str(session)[:40]!r}")
        self.session = session  # echoed in the accept (None from an older initiator)
        out: dict[str, Any] = {"protocol": PROTOCOL, "mode": self.mode,
                               "context": self.context, "size": self.size,
                               "record": POINT_BYTES, **self._id_field()}
        if session is not None:
            out["session"] = session
        if self.mode == "intersection-sum":
            if self.values_ is None:
                raise PSIError("intersection-sum: the responder needs values")
            if self._paillier is None:
                self._paillier = generate_key(self.paillier_bits)
            out.update(accept_fields(self._paillier[0]))
        return out

    def records(self) -> bytes:
        """The responder's shuffled records: points, plus Paillier ciphertexts of the
        values in ``intersection-sum``."""
        if self.mode != "intersection-sum":
            return self.points()
        if self._paillier is None or self.values_ is None:
            raise PSIError("intersection-sum: call accept() first (the responder needs values)")
        values = [self.values_[i] for i in self._order.tolist()]
        cts = encrypt_values(self._paillier[0], values, workers=self.workers)
        width = len(cts) // max(1, len(values))
        pts = self.points()
        return b"".join(
            pts[k * POINT_BYTES : (k + 1) * POINT_BYTES] + cts[k * width : (k + 1) * width]
            for k in range(len(values))
        )

    def reply(self, peer_points: bytes) -> bytes:
        """``(H(a)^alpha)^beta`` for the initiator's points: in its order in
        ``intersection`` mode, shuffled otherwise."""
        n = self._peer_size
        if n is not None and len(peer_points) != n * POINT_BYTES:
            raise PSIError(f"the initiator announced {n} ids but sent "
                           f"{len(peer_points) // POINT_BYTES}")
        out = blind(peer_points, self._scalar, workers=self.workers)
        if self.mode == "intersection":
            return out
        items = _split(out, POINT_BYTES)
        perm = _permutation(secrets.token_bytes(32), len(items))
        return b"".join(items[i] for i in perm.tolist())

    def reveal(self, message: dict[str, Any]) -> PsiResult:
        """Decrypt the initiator's encrypted sum (responder, ``intersection-sum``).

        Raises
        ------
        PSIError
            When the count is above either set size or below ``min_count``, or the
            plaintext is not within ``count * max|value|`` of this party's values
            (see :func:`privacy.psi.sums.decrypt_sum`); the decrypted value is never
            part of the message.
        """
        if (self.mode != "intersection-sum" or self._paillier is None
                or self.values_ is None or self._peer_size is None):
            raise PSIError("reveal needs an intersection-sum session this party accepted")
        total, count = decrypt_sum(
            self._paillier, message, max_count=min(self.size, self._peer_size),
            max_abs=max_abs_value(self.values_), min_count=self.min_count)
        return PsiResult(self.mode, count, self.size, self._peer_size, sum=total)

    # -- state for the file-based flow ------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        """The secrets needed to resume this session later (file flow). Keep it private."""
        state: dict[str, Any] = {
            "protocol": PROTOCOL, "mode": self.mode, "context": self.context,
            "scalar": self._scalar.hex(), "seed": self._seed.hex(), "size": self.size,
            "ids_digest": self.ids_digest(),
            "peer_size": self._peer_size, "session": self.session,
            **self._id_field(),
        }
        if self._paillier is not None:
            state["paillier"] = export_private(self._paillier)
        if self.values_ is not None:
            state["max_abs"] = max_abs_value(self.values_)
        return state

    def ids_digest(self) -> str:
        """SHA-256 over the distinct normalised ids in order (to check a resumed session)."""
        h = hashlib.sha256()
        for key in self.unique_:
            data = key.encode("utf-8")
            h.update(len(data).to_bytes(4, "big") + data)
        return h.hexdigest()

    @classmethod
    def from_state(
        cls, ids: Iterable[str | None], state: dict[str, Any], **kwargs: Any
    ) -> PsiParty:
        """Rebuild a party from :meth:`export_state` and the same ids.

        Raises
        ------
        PSIError
            When the state is malformed or the ids differ from those of the session.
        """
        try:
            scalar, seed = bytes.fromhex(state["scalar"]), bytes.fromhex(state["seed"])
            mode, context = state["mode"], state["context"]
        except (KeyError, TypeError, ValueError) as exc:
            raise PSIError("malformed PSI state") from exc
        if state.get("protocol") != PROTOCOL or len(scalar) != 32 or len(seed) != 32:
            raise PSIError("malformed PSI state")
        id_type = state.get("id_type")
        if id_type is not None and not isinstance(id_type, str):
            raise PSIError("malformed PSI state")
        if id_type is not None:
            kwargs = {**kwargs, "id_type": id_type}
        party = cls(ids, mode=mode, context=context, _secrets=(scalar, seed), **kwargs)
        if party.ids_digest() != state.get("ids_digest"):
            raise PSIError("the ids differ from those this session was started with")
        session = state.get("session")
        party.session = session if isinstance(session, str) else None
        if isinstance(state.get("peer_size"), int):
            party._peer_size = state["peer_size"]
        if "paillier" in state:
            party._paillier = import_private(state["paillier"])
        return party
