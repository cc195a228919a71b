"""What a party keeps between messages of a vertical run, in its own private folder.

Flower may run each message in a fresh process (deployment mode) or in any of a pool of
workers (simulation), so a party's state lives in a folder only it reads (``0700``):
large arrays written once as ``.npy`` (memory-mapped, cached per process), keys and
ciphertexts as files, and the small mutable state (weights) as one ``.npz`` rewritten
atomically after each message. The folder is removed when the run finishes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from privacy.errors import FederationError

__all__ = ["Store"]

_CACHE: dict[tuple[str, str], Any] = {}


class Store:
    """A party's state folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def create(self) -> None:
        """Make the folder (private to this user); an existing one is emptied."""
        if self.root.exists():
            self.drop()
        self.root.mkdir(parents=True, mode=0o700)
        os.chmod(self.root, 0o700)

    def drop(self) -> None:
        """Remove the folder and forget cached objects."""
        shutil.rmtree(self.root, ignore_errors=True)
        for key in [k for k in _CACHE if k[0] == str(self.root)]:
            del _CACHE[key]

    def _path(self, name: str) -> Path:
        if not self.root.is_dir():
            raise FederationError("this party has no state for the run (a step was skipped "
                                  "or the run was already finished)")
        return self.root / name

    def _write(self, name: str, data: bytes) -> None:
        path = self._path(name)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        _CACHE.pop((str(self.root), name), None)

    # -- immutable arrays and blobs (cached per process) ------------------------------

    def put_array(self, name: str, array: npt.NDArray[Any]) -> None:
        """Write an array once."""
        path = self._path(name + ".npy")
        np.save(path, np.ascontiguousarray(array), allow_pickle=False)
        _CACHE.pop((str(self.root), name + ".npy"), None)

    def array(self, name: str) -> npt.NDArray[Any]:
        """An array written by :meth:`put_array` (memory-mapped, read-only)."""
        key = (str(self.root), name + ".npy")
        if key not in _CACHE:
            path = self._path(name + ".npy")
            if not path.exists():
                raise FederationError(f"this party has no {name!r} yet (a step was skipped)")
            _CACHE[key] = np.load(path, mmap_mode="r", allow_pickle=False)
        return np.asarray(_CACHE[key])

    def has(self, name: str) -> bool:
        """Whether a blob, array, JSON document or weights of that name exist."""
        return any((self.root / (name + ext)).exists()
                   for ext in ("", ".npy", ".json", ".npz"))

    def put_blob(self, name: str, data: bytes) -> None:
        """Write bytes."""
        self._write(name, data)

    def blob(self, name: str) -> bytes:
        """Bytes written by :meth:`put_blob`."""
        path = self._path(name)
        if not path.exists():
            raise FederationError(f"this party has no {name!r} yet (a step was skipped)")
        return path.read_bytes()

    def cached(self, name: str, build: Any) -> Any:
        """An object built once per process from the folder's files (keys, contexts)."""
        key = (str(self.root), "obj:" + name)
        if key not in _CACHE:
            _CACHE[key] = build()
        return _CACHE[key]

    # -- small documents ---------------------------------------------------------------

    def put_json(self, name: str, obj: Any) -> None:
        """Write a JSON document."""
        self._write(name + ".json", json.dumps(obj).encode())

    def json(self, name: str, default: Any = None) -> Any:
        """A JSON document (``default`` when absent)."""
        path = self._path(name + ".json")
        if not path.exists():
            if default is not None:
                return default
            raise FederationError(f"this party has no {name!r} yet (a step was skipped)")
        return json.loads(path.read_text(encoding="utf-8"))

    def put_weights(self, name: str, **arrays: npt.NDArray[Any]) -> None:
        """Write small mutable arrays (weights) atomically."""
        import io

        buf = io.BytesIO()
        np.savez(buf, **arrays)
        self._write(name + ".npz", buf.getvalue())

    def weights(self, name: str) -> dict[str, npt.NDArray[np.float64]]:
        """Arrays written by :meth:`put_weights`."""
        path = self._path(name + ".npz")
        if not path.exists():
            raise FederationError(f"this party has no {name!r} yet (a step was skipped)")
        with np.load(path, allow_pickle=False) as z:
            return {k: np.asarray(z[k], dtype=np.float64) for k in z.files}
