"""AES-SIV (RFC 5297) for a whole column of equal-length plaintexts at once.

The construction is RFC 5297's S2V (AES-CMAC) and AES-CTR, computed with AES-ECB
calls from ``cryptography`` over every row of the column together: one ECB call per
CMAC block and one for the CTR keystream. The associated data (covault binds the
token header and the column context) is the same for every row, so its share of S2V
is computed once per column with ``cryptography``'s CMAC.

It is checked against the RFC 5297 vectors and, value by value, against
``cryptography``'s :class:`~cryptography.hazmat.primitives.ciphers.aead.AESSIV`, which
is what covault uses for single values.

Warnings
--------
Hazardous layer: use :class:`privacy.fields.DeterministicCipher`, which adds key ids,
versioning and contexts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from privacy.columns import Matrix

__all__ = ["BatchSIV"]

_RB = 0x87


def _dbl_int(block: int) -> int:
    out = (block << 1) & ((1 << 128) - 1)
    return out ^ _RB if block >> 127 else out


def _dbl_rows(mat: Matrix) -> Matrix:
    carry = mat[:, 0] >> 7
    shifted = (mat << 1) | np.concatenate(
        [mat[:, 1:] >> 7, np.zeros((mat.shape[0], 1), dtype=np.uint8)], axis=1
    )
    shifted[:, 15] ^= (carry * _RB).astype(np.uint8)
    result: Matrix = shifted.astype(np.uint8)
    return result


class BatchSIV:
    """AES-SIV with a 32-, 48- or 64-byte key (K1 for S2V, K2 for CTR), over matrices.

    Parameters
    ----------
    key:
        RFC 5297 key: the first half authenticates (S2V), the second half encrypts.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) not in (32, 48, 64):
            raise ValueError("AES-SIV keys are 32, 48 or 64 bytes")
        half = len(key) // 2
        self._mac_key = key[:half]
        self._mac = Cipher(algorithms.AES(self._mac_key), modes.ECB())
        self._ctr = Cipher(algorithms.AES(key[half:]), modes.ECB())
        lz = int.from_bytes(self._ecb(self._mac, bytes(16)), "big")
        self._k1 = np.frombuffer(_dbl_int(lz).to_bytes(16, "big"), dtype=np.uint8)
        self._k2 = np.frombuffer(_dbl_int(_dbl_int(lz)).to_bytes(16, "big"), dtype=np.uint8)

    @staticmethod
    def _ecb(cipher: Cipher[modes.ECB], data: bytes) -> bytes:
        enc = cipher.encryptor()
        return enc.update(data) + enc.finalize()

    def _ecb_rows(self, cipher: Cipher[modes.ECB], blocks: Matrix) -> Matrix:
        out = self._ecb(cipher, np.ascontiguousarray(blocks).tobytes())
        return np.frombuffer(out, dtype=np.uint8).reshape(blocks.shape)

    def _cmac(self, data: bytes) -> int:
        c = CMAC(algorithms.AES(self._mac_key))
        c.update(data)
        return int.from_bytes(c.finalize(), "big")

    def _ad_state(self, associated_data: Sequence[bytes]) -> int:
        d = self._cmac(bytes(16))
        for ad in associated_data:
            d = _dbl_int(d) ^ self._cmac(ad)
        return d

    def _s2v(self, d: int, plain: Matrix) -> Matrix:
        n, width = plain.shape
        d_bytes = np.frombuffer(d.to_bytes(16, "big"), dtype=np.uint8)
        if width >= 16:
            msg = plain.copy()
            msg[:, width - 16 :] ^= d_bytes
        else:
            msg = np.zeros((n, 16), dtype=np.uint8)
            msg[:, :width] = plain
            msg[:, width] = 0x80
            msg ^= np.frombuffer(_dbl_int(d).to_bytes(16, "big"), dtype=np.uint8)
        # AES-CMAC of every row of msg.
        mlen = msg.shape[1]
        nblocks = max(1, -(-mlen // 16))
        complete = mlen > 0 and mlen % 16 == 0
        if not complete:
            padded = np.zeros((n, nblocks * 16), dtype=np.uint8)
            padded[:, :mlen] = msg
            padded[:, mlen] = 0x80
            msg = padded
        msg = msg.reshape(n, nblocks, 16)
        state = np.zeros((n, 16), dtype=np.uint8)
        for j in range(nblocks):
            block = msg[:, j, :] ^ state
            if j == nblocks - 1:
                block ^= self._k1 if complete else self._k2
            state = self._ecb_rows(self._mac, block)
        return state

    def _keystream(self, iv: Matrix, width: int) -> Matrix:
        n = iv.shape[0]
        nblocks = -(-width // 16)
        q = iv.copy()
        q[:, 8] &= 0x7F
        q[:, 12] &= 0x7F
        low = q[:, 12:16].copy().view(">u4").reshape(n)
        counters = np.repeat(q[:, None, :], nblocks, axis=1)
        steps = low[:, None] + np.arange(nblocks, dtype=np.uint32)[None, :]
        counters[:, :, 12:16] = steps.astype(">u4").view(np.uint8).reshape(n, nblocks, 4)
        stream = self._ecb_rows(self._ctr, counters.reshape(n, nblocks * 16))
        return stream[:, :width]

    def encrypt(self, plain: Matrix, associated_data: Sequence[bytes]) -> Matrix:
        """Encrypt every row; returns ``(n, 16 + width)`` rows of ``V || C``."""
        d = self._ad_state(associated_data)
        iv = self._s2v(d, plain)
        out = np.empty((plain.shape[0], 16 + plain.shape[1]), dtype=np.uint8)
        out[:, :16] = iv
        out[:, 16:] = plain ^ self._keystream(iv, plain.shape[1])
        return out

    def decrypt(
        self, sealed: Matrix, associated_data: Sequence[bytes]
    ) -> tuple[Matrix, npt.NDArray[np.bool_]]:
        """Decrypt every row of ``V || C``; returns ``(plaintexts, authentic_rows)``."""
        n, width = sealed.shape
        if width < 16:
            return np.zeros((n, 0), dtype=np.uint8), np.zeros(n, dtype=bool)
        iv = np.ascontiguousarray(sealed[:, :16])
        plain = sealed[:, 16:] ^ self._keystream(iv, width - 16)
        check = self._s2v(self._ad_state(associated_data), plain)
        return plain, np.all(check == iv, axis=1)
