"""Homomorphic encryption: packed Paillier (phe + gmpy2) and CKKS/BFV (TenSEAL).

Names are loaded lazily, so ``import privacy.he`` pulls in neither phe, gmpy2 nor
TenSEAL until a name from them is used.

* :mod:`privacy.he.paillier` - keys, DJN fast encryption, :class:`EncryptedVector`;
* :mod:`privacy.he.packing` - :class:`PackingLayout`: many values per plaintext;
* :mod:`privacy.he.ckks` - named CKKS/BFV parameter sets, :class:`HEContext`;
* :mod:`privacy.he.serial` - versioned pickle-free files, key ids recomputed on load;
* :mod:`privacy.he.secure_sum` - contribute / aggregate / decrypt with a party threshold;
* :mod:`privacy.he.signing` - Ed25519 signatures over contributions and aggregates.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from privacy.he.ckks import PARAMETER_SETS as PARAMETER_SETS
    from privacy.he.ckks import HEContext as HEContext
    from privacy.he.ckks import TensealVector as TensealVector
    from privacy.he.ckks import generate_context as generate_context
    from privacy.he.packing import PackingLayout as PackingLayout
    from privacy.he.paillier import EncryptedVector as EncryptedVector
    from privacy.he.paillier import PaillierPrivateKey as PaillierPrivateKey
    from privacy.he.paillier import PaillierPublicKey as PaillierPublicKey
    from privacy.he.paillier import generate_keypair as generate_keypair
    from privacy.he.secure_sum import LedgerLike as LedgerLike
    from privacy.he.secure_sum import aggregate as aggregate
    from privacy.he.secure_sum import contribute as contribute
    from privacy.he.secure_sum import decrypt_aggregate as decrypt_aggregate

_NAMES = {
    "PackingLayout": "packing",
    "EncryptedVector": "paillier",
    "PaillierPublicKey": "paillier",
    "PaillierPrivateKey": "paillier",
    "generate_keypair": "paillier",
    "HEContext": "ckks",
    "TensealVector": "ckks",
    "PARAMETER_SETS": "ckks",
    "generate_context": "ckks",
    "LedgerLike": "secure_sum",
    "contribute": "secure_sum",
    "aggregate": "secure_sum",
    "decrypt_aggregate": "secure_sum",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'privacy.he' has no attribute {name!r}")
    return getattr(importlib.import_module(f"privacy.he.{module}"), name)
