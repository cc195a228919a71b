"""FF1 format-preserving encryption (NIST SP 800-38G), batched over Arrow columns.

* :mod:`privacy.fpe.ff1` - :class:`FF1`: the scalar reference and the batched column path;
* :mod:`privacy.fpe.formatted` - separators and a clear prefix / suffix kept in place;
* :mod:`privacy.fpe.numerals` - numeral strings as numbers, one value or a whole matrix.

Modules import downwards only: ``ff1`` -> ``formatted`` -> ``numerals``.
"""

from privacy.fpe.ff1 import ALPHABET, DEFAULT_SEPARATORS, FF1, MIN_DOMAIN
from privacy.fpe.numerals import MAX_LENGTH

__all__ = ["ALPHABET", "DEFAULT_SEPARATORS", "FF1", "MAX_LENGTH", "MIN_DOMAIN"]
