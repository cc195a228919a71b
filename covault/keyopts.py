"""Shared CLI options for commands that open keysets and private key files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from privacy.errors import CovaultError, InputError, KeyfileError, KeysetError
from privacy.keys import DEFAULT_KEK_FILE_ENV, DEFAULT_PASSPHRASE_ENV, Kek, KeyInfo, Keyset

T = TypeVar("T")


def parse_key_id(text: str) -> int:
    """A key id as people write it: ``0x1a2b3c4d`` or decimal."""
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        raise InputError(f"key id {text!r} is not a number (e.g. 0x1a2b3c4d)") from None


def kek_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--kek-file`` and ``--passphrase-env`` to a command."""
    fn = click.option(
        "--passphrase-env",
        default=DEFAULT_PASSPHRASE_ENV,
        show_default=True,
        metavar="VAR",
        help="Environment variable holding the keyset passphrase (scrypt KEK).",
    )(fn)
    fn = click.option(
        "--kek-file",
        type=click.Path(dir_okay=False),
        default=None,
        help=f"32-byte key-encryption key file instead of a passphrase "
        f"(or set {DEFAULT_KEK_FILE_ENV}).",
    )(fn)
    return fn


def resolve_kek(kek_file: str | None, passphrase_env: str) -> Kek:
    """The KEK named by the options, else by the environment."""
    if kek_file:
        return Kek.from_key_file(kek_file)
    return Kek.from_env(passphrase_var=passphrase_env)


def _malformed(path: str, exc: BaseException) -> KeyfileError:
    if isinstance(exc, RecursionError):
        why = "its JSON is nested too deeply"
    elif isinstance(exc, UnicodeDecodeError):
        why = "not UTF-8 text"
    elif isinstance(exc, ValueError) and "digits" in str(exc):
        why = "it holds an integer of too many digits"
    else:
        why = f"a field is missing or has the wrong type or value ({type(exc).__name__})"
    return KeyfileError(f"{path}: not a valid keyset file: {why}")


def _reading_keyset(path: str, read: Callable[[], T]) -> T:
    """``read()``, with what a malformed keyset file makes the reader raise besides covault
    errors (a wrong type, a missing key, JSON too deep, an integer too long, bytes that are
    not UTF-8) turned into :class:`KeyfileError` naming ``path`` (exit 2, one line).

    The keyset reader (:mod:`privacy.keys`) should refuse these itself; this is the
    command line's boundary, so that no keyset file gives a traceback.
    """
    try:
        return read()
    except CovaultError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
            RecursionError) as exc:
        raise _malformed(path, exc) from exc


def open_keyset(path: str, kek_file: str | None, passphrase_env: str) -> Keyset:
    """Open a keyset file with the KEK named by the options or the environment.

    Raises
    ------
    KeyfileError
        The file is malformed (as well as what :meth:`Keyset.load` raises).
    """
    kek = resolve_kek(kek_file, passphrase_env)
    return _reading_keyset(path, lambda: Keyset.load(path, kek))


def read_keyset_info(path: str) -> tuple[str, list[KeyInfo]]:
    """:meth:`Keyset.read_info` (unverified metadata), a malformed file refused as by
    :func:`open_keyset`."""
    return _reading_keyset(path, lambda: Keyset.read_info(path))


UNPINNED_WARNING = ("the checkpoint's signer is not pinned: it was checked against the signer "
                    "keys recorded in the ledger itself, which whoever can rewrite the "
                    "database can add to; pass --public-key to pin it")

unpinned_option = click.option(
    "--unpinned", is_flag=True,
    help="Check --checkpoint against the signer keys recorded in the ledger itself instead "
         "of --public-key. Not pinned: whoever can rewrite the database can record a key "
         "of their own and sign with it.")


def check_pinning(checkpoint: str | None, public_key: str | None, unpinned: bool) -> None:
    """Refuse a checkpoint check whose signer is neither pinned nor explicitly unpinned.

    Raises
    ------
    InputError
        ``--public-key`` without ``--checkpoint``, ``--unpinned`` with a key or without a
        checkpoint, or ``--checkpoint`` with neither.
    """
    if public_key is not None and checkpoint is None:
        raise InputError("--public-key checks a checkpoint's signature: pass --checkpoint")
    if unpinned and (checkpoint is None or public_key is not None):
        raise InputError("--unpinned applies to --checkpoint without --public-key")
    if checkpoint is not None and public_key is None and not unpinned:
        raise InputError(
            "--checkpoint needs --public-key FILE, the key that must have signed it (the "
            "signer keys recorded in the ledger can be added by whoever can rewrite it); "
            "pass --unpinned to accept them anyway")


# -- private keys at rest (HE private keys, Ed25519 signing keys) ------------------------

UNENCRYPTED_FLAG = "--unencrypted-key"


def private_key_kek_options(*, write: bool, what: str = "the private key"
                            ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the keyset KEK options (``--kek-file``, ``--passphrase-env``) to a command that
    writes (``write``, plus ``--unencrypted-key``) or reads a private key file (``what``
    names it in the help)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        verb = "seals" if write else "opens"
        if write:
            fn = click.option(
                "--unencrypted-key", "unencrypted_key", is_flag=True,
                help="Write the private key in the clear (mode 0600 only) instead of "
                     "sealing it under a key-encryption key. Not recommended: whoever "
                     "can read the file has the key.")(fn)
        fn = click.option(
            "--passphrase-env", default=DEFAULT_PASSPHRASE_ENV, show_default=True,
            metavar="VAR",
            help=f"Environment variable holding the passphrase that {verb} {what} "
                 "(scrypt KEK, as for keysets).")(fn)
        fn = click.option(
            "--kek-file", type=click.Path(dir_okay=False), default=None,
            help=f"32-byte key-encryption key file that {verb} {what} instead of a "
                 f"passphrase (or set {DEFAULT_KEK_FILE_ENV}).")(fn)
        return fn

    return decorate


def kek_for_writing(kek_file: str | None, passphrase_env: str, unencrypted: bool, *,
                    what: str) -> Kek | None:
    """The KEK that seals a new private key, or ``None`` with ``--unencrypted-key``
    (after a warning on stderr).

    Raises
    ------
    InputError
        No KEK is named and ``--unencrypted-key`` was not given, or both were.
    """
    from covault.console import err

    if unencrypted:
        if kek_file:
            raise InputError(f"{UNENCRYPTED_FLAG} and --kek-file exclude each other")
        err.print(f"warning: writing {what} unencrypted ({UNENCRYPTED_FLAG}): whoever can "
                  "read the file has the key", markup=False)
        return None
    try:
        return resolve_kek(kek_file, passphrase_env)
    except KeyfileError:
        raise
    except KeysetError:
        raise InputError(
            f"{what} is encrypted at rest: set {passphrase_env} to a passphrase, or pass "
            f"--kek-file (or set {DEFAULT_KEK_FILE_ENV}) with a 32-byte key file; pass "
            f"{UNENCRYPTED_FLAG} to write it in the clear") from None


def kek_for_reading(kek_file: str | None, passphrase_env: str) -> Callable[[], Kek]:
    """The KEK named by the options, resolved only when a key file turns out sealed."""
    return lambda: resolve_kek(kek_file, passphrase_env)


def warn_if_plain(data: bytes, path: str) -> None:
    """Warn on stderr when the private key file ``path`` (its bytes ``data``) is neither
    sealed under a KEK nor password-encrypted."""
    from covault.console import err
    from privacy.sealed import is_sealed

    if not is_sealed(data) and b"ENCRYPTED" not in data[:64]:
        err.print(f"warning: {path}: private key is not encrypted at rest; regenerate it "
                  "with a key-encryption key (--kek-file or a passphrase) or keep it on "
                  "protected storage", markup=False)


def open_signing_key(path: str, kek_file: str | None, passphrase_env: str,
                     password: bytes | None = None) -> Any:
    """An Ed25519 signing key file: sealed (KEK from the options), password-encrypted
    PKCS#8 (``password``) or plain (with a warning).

    Raises
    ------
    KeyfileError
        Unreadable, wrong KEK or password, altered, or not an Ed25519 key.
    """
    from privacy.ledger.checkpoint import load_signing_key

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyfileError(f"{path}: cannot read key file: {exc.strerror}") from None
    warn_if_plain(data, path)
    return load_signing_key(path, password=password,
                            kek=kek_for_reading(kek_file, passphrase_env), warn=False)
