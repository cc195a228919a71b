"""The exception hierarchy shared by every covault package.

One root, :class:`CovaultError`. Each subclass also inherits the builtin exception a
caller would naturally catch (``PolicyError`` is a ``ValueError``, ``KeyNotFoundError``
is a ``LookupError``), so code that does not know covault still handles it sensibly.

Messages name the thing and what was expected, with a location where there is one
(``policy.yaml:14: column 'id_no': ...``). Decryption and verification failures are
deliberately opaque: :class:`DecryptionError` and :class:`IntegrityError` never say
which byte or field was wrong.

The command line maps exceptions to exit codes: :class:`Finding` subclasses (a
verification that failed, a risk gate not met) exit 1; every other ``CovaultError``
is bad usage or bad input and exits 2.
"""

from __future__ import annotations

__all__ = [
    "CovaultError",
    "InputError",
    "ConfigError",
    "PolicyError",
    "KeysetError",
    "KeyNotFoundError",
    "KeyfileError",
    "CryptoError",
    "DecryptionError",
    "DomainError",
    "IdentifierError",
    "SerializationError",
    "Finding",
    "IntegrityError",
    "RiskGateError",
    "HEError",
    "PackingOverflowError",
    "InsufficientPartiesError",
    "PSIError",
    "SecAggError",
    "AuditError",
    "FederationError",
    "location",
]


def location(
    file: str | None = None,
    line: int | None = None,
    column: int | str | None = None,
    row: int | None = None,
) -> str:
    """Format a location prefix such as ``data.csv:14: column 'id_no': row 3``.

    Parts that are ``None`` are left out; an empty string means "no location".
    """
    parts: list[str] = []
    head = ""
    if file is not None:
        head = str(file)
        if line is not None:
            head += f":{line}"
    elif line is not None:
        head = f"line {line}"
    if head:
        parts.append(head)
    if column is not None:
        parts.append(f"column {column!r}" if isinstance(column, str) else f"column {column}")
    if row is not None:
        parts.append(f"row {row}")
    return ": ".join(parts)


class CovaultError(Exception):
    """Root of every error raised by covault."""


class InputError(CovaultError, ValueError):
    """Bad input data or arguments; the message says what and where.

    Parameters
    ----------
    message:
        What was wrong and what was expected.
    file, line, column, row:
        Where, when known. They prefix the message and stay available as attributes.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | str | None = None,
        row: int | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.row = row
        self.detail = message
        where = location(file, line, column, row)
        super().__init__(f"{where}: {message}" if where else message)


class ConfigError(InputError):
    """A configuration file (rules, lists, parameters) is malformed."""


class PolicyError(InputError):
    """A masking policy is malformed or does not fit the table it is applied to."""


class KeysetError(CovaultError, ValueError):
    """A keyset is malformed, misused, or cannot be opened."""


class KeyfileError(KeysetError):
    """A key file cannot be read: wrong passphrase or KEK, corrupted or truncated file."""


class CryptoError(CovaultError):
    """A cryptographic operation was misused (wrong sizes, wrong scheme)."""


class DecryptionError(CryptoError, ValueError):
    """A token or ciphertext did not authenticate. Deliberately says nothing more."""

    def __init__(self, message: str = "decryption failed") -> None:
        super().__init__(message)


class KeyNotFoundError(DecryptionError, KeysetError, LookupError):
    """A token or ciphertext names a key id the keyset does not hold (or has disabled).

    It is a :class:`DecryptionError` too, so a caller that handles failed decryption
    also handles a token whose key id was damaged; the message names the key id.
    """


class DomainError(InputError):
    """A value lies outside the domain of an operation (e.g. a non-digit for radix 10)."""


class IdentifierError(InputError):
    """An identifier is not a valid instance of its kind (strict normalisation only,
    :mod:`privacy.normalize`); the message names the kind, never the value."""


class SerializationError(InputError):
    """A serialised object (key, context, ciphertext file) is truncated, tampered or of
    an unknown format or version."""


class Finding(CovaultError):
    """A check ran and found a problem; the CLI exits with code 1 for these."""


class IntegrityError(Finding, ValueError):
    """A log, proof or checkpoint failed verification. Deliberately opaque."""


class RiskGateError(Finding):
    """A re-identification risk gate (k-anonymity, l-diversity, ...) was not met."""


class HEError(CovaultError, ValueError):
    """Homomorphic-encryption misuse: mismatched keys or contexts, bad parameters."""


class PackingOverflowError(HEError, OverflowError):
    """Values or party counts exceed the headroom a packing layout was built for."""


class InsufficientPartiesError(HEError):
    """An aggregate holds fewer contributions than the key holder's ``min_parties``."""


class PSIError(CovaultError, ValueError):
    """Private set intersection protocol or input error."""


class SecAggError(CovaultError, ValueError):
    """Secure-aggregation protocol or input error.

    ``sender`` names the peer whose message was rejected: a client id, ``"server"``,
    or ``None`` when the error is local (bad arguments, misuse). The message names it too.
    """

    def __init__(self, message: str, *, sender: int | str | None = None) -> None:
        self.sender = sender
        super().__init__(message)


class AuditError(CovaultError, ValueError):
    """Query-audit misuse: unknown alert, illegal state transition, bad rule."""


class FederationError(CovaultError, RuntimeError):
    """A federated run could not be carried out: a Flower process failed to start or
    died, a run failed, or it did not finish in time.

    The message names the process or run and quotes the tail of its log.
    """
