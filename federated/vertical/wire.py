"""Message content of a vertical run: a payload dict <-> a Flower ``RecordDict``.

A payload is a JSON-like dict whose leaves may also be ``bytes`` or numpy arrays. The
JSON skeleton travels in a ``ConfigRecord`` (key ``payload``); each binary leaf is replaced
by ``{"$bin": name}`` (``"$bytes"`` for bytes) and travels as an ``Array`` of an
``ArrayRecord`` (Flower sends arrays in bounded chunks).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from privacy.errors import FederationError

__all__ = ["to_content", "from_content", "KEY"]

KEY = "payload"
_ARRAYS = "blobs"


def _strip(obj: Any, arrays: dict[str, Any]) -> Any:
    if isinstance(obj, dict):
        return {str(k): _strip(v, arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strip(v, arrays) for v in obj]
    if isinstance(obj, (bytes, bytearray, memoryview)):
        name = f"b{len(arrays)}"
        arrays[name] = np.frombuffer(bytes(obj), dtype=np.uint8).copy()
        return {"$bytes": name}
    if isinstance(obj, np.ndarray):
        name = f"b{len(arrays)}"
        arrays[name] = np.ascontiguousarray(obj)
        return {"$bin": name}
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    return obj


def _restore(obj: Any, arrays: dict[str, Any]) -> Any:
    if isinstance(obj, dict):
        if len(obj) == 1 and ("$bytes" in obj or "$bin" in obj):
            name = obj.get("$bytes", obj.get("$bin"))
            if name not in arrays:
                raise FederationError("malformed message: a binary part is missing")
            arr = arrays[name]
            return arr.tobytes() if "$bytes" in obj else arr
        return {k: _restore(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_restore(v, arrays) for v in obj]
    return obj


def to_content(payload: dict[str, Any]) -> Any:
    """A payload as a ``RecordDict``."""
    from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

    arrays: dict[str, Any] = {}
    skeleton = _strip(payload, arrays)
    rd = RecordDict({KEY: ConfigRecord({"json": json.dumps(skeleton)})})
    if arrays:
        rd[_ARRAYS] = ArrayRecord({k: Array(v) for k, v in arrays.items()})
    return rd


def from_content(content: Any, *, sender: str) -> dict[str, Any]:
    """The payload of a ``RecordDict`` (raises :class:`FederationError` naming the sender)."""
    try:
        skeleton = json.loads(str(content.config_records[KEY]["json"]))
        arrays = ({k: a.numpy() for k, a in content.array_records[_ARRAYS].items()}
                  if _ARRAYS in content.array_records else {})
    except (KeyError, ValueError, TypeError) as exc:
        raise FederationError(f"party {sender!r}: malformed message ({exc})") from None
    out = _restore(skeleton, arrays)
    if not isinstance(out, dict):
        raise FederationError(f"party {sender!r}: malformed message")
    return out
