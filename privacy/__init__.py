"""covault's cryptographic building blocks and audit trail.

This package imports nothing else of covault. Heavy back-ends (``phe``, ``tenseal``,
``rbcl``, ``sqlglot``) are imported lazily inside the modules that need them.
"""

from privacy.errors import CovaultError, DecryptionError, IntegrityError

__all__ = ["CovaultError", "DecryptionError", "IntegrityError"]
__version__ = "0.1.0"
