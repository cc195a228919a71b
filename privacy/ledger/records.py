"""Ledger records as Merkle leaves: canonical JSON, leaf bytes, encoding and decoding.

A record of :class:`privacy.ledger.Ledger` is one leaf of an RFC 6962 tree
(:mod:`privacy.ledger.merkle`). Its leaf bytes are the canonical JSON of
``{"index", "kind", "payload", "ts"}`` (keys sorted, no whitespace, UTF-8, ``NaN``
refused); its leaf hash is ``SHA-256(0x00 || leaf bytes)``.

The public names are re-exported by :mod:`privacy.ledger`; import them from there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from json.encoder import encode_basestring
from typing import Any

from privacy.errors import InputError, IntegrityError

__all__ = [
    "LedgerRecord",
    "canonical_json",
    "leaf_bytes",
    "leaf_text",
    "leaf_hash_of",
    "encode_record",
    "decode_record",
    "utc_now",
    "verification_failed",
]

_sha256 = hashlib.sha256


def canonical_json(value: Any) -> str:
    """Return the canonical JSON text of ``value``: sorted keys, no whitespace, no NaN.

    Non-ASCII characters are kept (the bytes hashed are its UTF-8 encoding). This is
    Python's ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``,
    not RFC 8785 (floats and the order of non-BMP keys may differ).
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def leaf_text(index: int, ts: str, kind: str, payload_json: str) -> str:
    """The leaf text of a record whose payload is already canonical JSON text.

    Same text as ``canonical_json({"index":..,"kind":..,"payload":..,"ts":..})`` when
    ``payload_json`` is canonical, without parsing the payload again.
    """
    return (f'{{"index":{index},"kind":{encode_basestring(kind)},'
            f'"payload":{payload_json},"ts":{encode_basestring(ts)}}}')


def leaf_hash_of(index: int, ts: str, kind: str, payload_json: str) -> bytes:
    """RFC 6962 leaf hash ``SHA-256(0x00 || leaf)`` of a record's canonical leaf text."""
    return _sha256(b"\x00" + leaf_text(index, ts, kind, payload_json).encode("utf-8")).digest()


def leaf_bytes(index: int, ts: str, kind: str, payload: Mapping[str, Any]) -> bytes:
    """Return the bytes of leaf ``index``: canonical JSON of {index, ts, kind, payload}."""
    return leaf_text(index, ts, kind, canonical_json(dict(payload))).encode("utf-8")


def utc_now(timespec: str = "microseconds") -> str:
    """The current UTC time in ISO 8601 with a ``Z`` suffix."""
    return datetime.now(timezone.utc).isoformat(timespec=timespec).replace("+00:00", "Z")


def verification_failed(what: str) -> IntegrityError:
    """The (opaque) error a failed ledger check raises; ``what`` names the check."""
    return IntegrityError(f"ledger verification failed: {what}")


@dataclass(frozen=True)
class LedgerRecord:
    """One record of the log, as read back (its leaf hash already re-checked)."""

    index: int
    ts: str
    kind: str
    payload: Mapping[str, Any]
    leaf_hash: bytes

    def leaf_bytes(self) -> bytes:
        """The leaf bytes this record hashes to (``leaf_hash == merkle.leaf_hash(...)``)."""
        return leaf_bytes(self.index, self.ts, self.kind, self.payload)


def encode_record(index: int, ts: str, item: object) -> tuple[str, str, bytes]:
    """Check a ``(kind, payload)`` item; return its kind, canonical payload and leaf hash.

    Raises
    ------
    InputError
        The item is not a ``(kind, payload)`` pair, the kind is empty or too long, or the
        payload is not a JSON-serialisable mapping with string keys.
    """
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise InputError(f"record {index}: expected a (kind, payload) tuple")
    kind, payload = item
    if not isinstance(kind, str) or not kind or len(kind) > 256:
        raise InputError(f"record {index}: kind must be a non-empty string (max 256)")
    if not isinstance(payload, Mapping) or not all(isinstance(k, str) for k in payload):
        raise InputError(f"record {index} ({kind!r}): payload must be a mapping with "
                         "string keys")
    try:
        text = canonical_json(payload if isinstance(payload, dict) else dict(payload))
        leaf = leaf_text(index, ts, kind, text).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InputError(f"record {index} ({kind!r}): payload is not JSON-serialisable: "
                         f"{exc}") from None
    return kind, text, _sha256(b"\x00" + leaf).digest()


def decode_record(row: tuple[Any, ...]) -> LedgerRecord:
    """Build a record from a ``(idx, ts, kind, payload, leaf_hash)`` row, re-checking it.

    Raises
    ------
    IntegrityError
        The row's content does not hash to its stored leaf hash.
    """
    idx, ts, kind, text, stored = row
    if (not isinstance(ts, str) or not isinstance(kind, str) or not isinstance(text, str)
            or leaf_hash_of(idx, ts, kind, text) != stored):
        raise verification_failed("record content does not match its leaf hash")
    return LedgerRecord(idx, ts, kind, json.loads(text), bytes(stored))
