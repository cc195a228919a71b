"""Shared CLI options for commands that open keysets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from privacy.errors import InputError
from privacy.keys import DEFAULT_KEK_FILE_ENV, DEFAULT_PASSPHRASE_ENV, Kek, Keyset


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


def open_keyset(path: str, kek_file: str | None, passphrase_env: str) -> Keyset:
    """Open a keyset file with the KEK named by the options or the environment."""
    return Keyset.load(path, resolve_kek(kek_file, passphrase_env))
