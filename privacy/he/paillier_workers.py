"""Paillier's gmpy2 kernels and the process pool that runs them.

The kernels take and return plain integers / ``mpz`` (the public numbers ``n, h_s``, or
``p, q`` for decryption), so they pickle cheaply to worker processes; each process keeps
the DJN fixed-base table of the last public key it saw (public numbers only:
:func:`clear_caches` drops it). Nothing derived from ``p`` and ``q`` is kept once a chunk
is decrypted: the CRT constants cost a few modular inversions per chunk.
:func:`run_chunked` cuts the work into chunks and runs them in-process when that is
cheaper, or in a ``forkserver`` :class:`~concurrent.futures.ProcessPoolExecutor`.

Warnings
--------
:func:`decrypt_chunk` receives the private key's ``p`` and ``q``: during parallel
decryption they travel to local worker processes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import gmpy2

__all__ = [
    "Progress",
    "clear_caches",
    "decrypt_chunk",
    "default_workers",
    "encrypt_chunk",
    "rerandomise_chunk",
    "run_chunked",
]

Progress = Callable[[int], None]

#: The fixed-base table of the last public key (n, h_s, exponent bytes): public numbers.
_TABLES: dict[tuple[int, int, int], list[list[Any]]] = {}


def clear_caches() -> None:
    """Drop this process's DJN fixed-base table (rebuilt on next use)."""
    _TABLES.clear()


def _table(n: int, hs: int, ebytes: int) -> list[list[Any]]:
    key = (n, hs, ebytes)
    t = _TABLES.get(key)
    if t is None:
        n2 = gmpy2.mpz(n) * n
        base = gmpy2.mpz(hs)
        t = []
        for _ in range(ebytes):
            row = [gmpy2.mpz(1)] * 256
            for d in range(1, 256):
                row[d] = row[d - 1] * base % n2
            t.append(row)
            base = row[255] * base % n2
        _TABLES.clear()  # one key per process at a time keeps memory bounded
        _TABLES[key] = t
    return t


def _randomisers(n: int, hs: int, ebytes: int, count: int) -> list[Any]:
    """``count`` fresh values ``h_s**a mod n**2`` with ``a`` of ``8*ebytes`` random bits."""
    t = _table(n, hs, ebytes)
    n2 = gmpy2.mpz(n) * n
    rnd = os.urandom(ebytes * count)
    out = []
    for i in range(count):
        acc = gmpy2.mpz(1)
        for j, byte in enumerate(rnd[i * ebytes : (i + 1) * ebytes]):
            if byte:
                acc = acc * t[j][byte] % n2
        out.append(acc)
    return out


def encrypt_chunk(args: tuple[int, int, int, list[int]]) -> list[Any]:
    """Encrypt ``(n, h_s, exponent bytes, plaintexts)`` with DJN randomness."""
    n, hs, ebytes, plains = args
    mn = gmpy2.mpz(n)
    n2 = mn * mn
    rs = _randomisers(n, hs, ebytes, len(plains))
    return [(gmpy2.mpz(m) * mn + 1) * r % n2 for m, r in zip(plains, rs, strict=True)]


def rerandomise_chunk(args: tuple[int, int, int, list[Any]]) -> list[Any]:
    """Multiply ``(n, h_s, exponent bytes, ciphertexts)`` by fresh randomisers."""
    n, hs, ebytes, cts = args
    n2 = gmpy2.mpz(n) * n
    rs = _randomisers(n, hs, ebytes, len(cts))
    return [c * r % n2 for c, r in zip(cts, rs, strict=True)]


def pack_chunk(args: tuple[int, int, list[list[Any]]]) -> list[Any]:
    """Pack each group of ``(n, slot bits, groups)``: ``c_0 * c_1**(2**s) * c_2**(2**2s)
    ... mod n**2`` (Horner), an encryption of ``sum m_j * 2**(j*s)``."""
    n, bits, groups = args
    n2 = gmpy2.mpz(n) * n
    shift = gmpy2.mpz(1) << bits
    out = []
    for group in groups:
        c = gmpy2.mpz(group[-1])
        for ct in reversed(group[:-1]):
            c = gmpy2.powmod(c, shift, n2) * ct % n2
        out.append(c)
    return out


def scatter_chunk(args: tuple[int, int, list[Any], Any]) -> list[Any]:
    """``(n, size, ciphertexts, cells)``: ``size`` accumulators (encryptions of 0 to begin
    with); ciphertext ``i`` is multiplied into every accumulator in row ``i`` of the
    integer array ``cells``."""
    n, size, cts, cells = args
    n2 = gmpy2.mpz(n) * n
    acc = [gmpy2.mpz(1)] * size
    for ct, row in zip(cts, cells.tolist(), strict=True):
        for k in row:
            acc[k] = acc[k] * ct % n2
    return acc


def _crt(p: int, q: int) -> tuple[Any, ...]:
    """CRT decryption constants of ``n = p*q``; not cached (they are key material).

    ``h_p = L_p(g**(p-1) mod p**2)**-1 mod p`` with ``g = n + 1``: since ``n**2 = 0 mod
    p**2``, ``(1 + n)**(p-1) = 1 + (p-1)*n mod p**2``, so ``L_p(...) = (p-1)*q = -q mod
    p`` and ``h_p = (-q)**-1 mod p`` (likewise ``h_q = (-p)**-1 mod q``): inversions only.
    """
    mp, mq = gmpy2.mpz(p), gmpy2.mpz(q)
    n = mp * mq
    hp = gmpy2.invert(-mq % mp, mp)
    hq = gmpy2.invert(-mp % mq, mq)
    return (mp, mq, mp * mp, mq * mq, hp, hq, gmpy2.invert(mp, mq), n)


def decrypt_chunk(args: tuple[int, int, list[Any]]) -> list[int]:
    """Decrypt ``(p, q, ciphertexts)`` with CRT to centred integers."""
    p, q, cts = args
    mp, mq, p2, q2, hp, hq, pinv, n = _crt(p, q)
    half = n // 2
    out = []
    for c in cts:
        xp = (gmpy2.powmod(c % p2, mp - 1, p2) - 1) // mp * hp % mp
        xq = (gmpy2.powmod(c % q2, mq - 1, q2) - 1) // mq * hq % mq
        m = xp + (xq - xp) * pinv % mq * mp
        out.append(int(m - n) if m > half else int(m))
    return out


_POOLS: dict[int, ProcessPoolExecutor] = {}

_OWNER_POLL_S = 1.0


def _watch_owner(owner: int) -> None:
    """Worker initializer: end this worker once the process that made the pool is gone.

    A process that owns a pool and is killed (a Flower simulation's Ray actor is ended
    with SIGKILL, so no exit handler runs) left its workers waiting on their queue for
    ever: each holds both ends of the queue's pipe and the owner's end of the
    forkserver's liveness pipe, so neither they nor the forkserver saw it go. A daemon
    thread checks every second that the owner still exists."""
    import threading
    import time

    def watch() -> None:
        while True:
            time.sleep(_OWNER_POLL_S)
            try:
                os.kill(owner, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:  # pragma: no cover - a pid reused by another user
                os._exit(0)

    threading.Thread(target=watch, name="covault-pool-owner", daemon=True).start()


def _pool(workers: int) -> ProcessPoolExecutor:
    pool = _POOLS.get(workers)
    if pool is None:
        import multiprocessing

        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver"),
                                   initializer=_watch_owner, initargs=(os.getpid(),))
        _POOLS[workers] = pool
    return pool


def default_workers() -> int:
    """Usable cores (the process's CPU affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def run_chunked(
    fn: Callable[[Any], list[Any]],
    head: tuple[Any, ...],
    items: Sequence[Any],
    workers: int | None,
    progress: Progress | None,
) -> list[Any]:
    """Apply ``fn((*head, chunk))`` over chunks of ``items``, in processes when worth it."""
    w = default_workers() if workers is None else max(1, workers)
    total = len(items)
    if w == 1 or total < 64:
        size = max(1, min(total, 512))
        out: list[Any] = []
        for i in range(0, total, size):
            out.extend(fn((*head, list(items[i : i + size]))))
            if progress:
                progress(min(size, total - i))
        return out
    size = max(16, min(2048, -(-total // (w * 8))))
    chunks = [(*head, list(items[i : i + size])) for i in range(0, total, size)]
    out = []
    for res in _pool(w).map(fn, chunks):
        out.extend(res)
        if progress:
            progress(len(res))
    return out


def scatter_sum(n: int, size: int, ciphertexts: Sequence[Any], cells: Any,
                workers: int | None) -> list[Any]:
    """:func:`scatter_chunk` over ``ciphertexts`` (rows of ``cells``), split into one part
    per worker process when worth it; the parts' partial sums are then multiplied."""
    w = default_workers() if workers is None else max(1, workers)
    if w == 1 or cells.size < 50_000:
        return scatter_chunk((n, size, list(ciphertexts), cells))
    step = -(-len(ciphertexts) // w)
    parts = [(n, size, list(ciphertexts[i:i + step]), cells[i:i + step])
             for i in range(0, len(ciphertexts), step)]
    n2 = gmpy2.mpz(n) * n
    total: list[Any] | None = None
    for acc in _pool(w).map(scatter_chunk, parts):
        total = acc if total is None else [a * b % n2 for a, b in zip(total, acc, strict=True)]
    return total if total is not None else [gmpy2.mpz(1)] * size
