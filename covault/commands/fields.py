"""``covault field``: encrypt, tokenize and decrypt values with a keyset."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from covault.console import emit_json, format_option, handle_errors
from covault.keyopts import kek_options, open_keyset
from privacy.errors import InputError
from privacy.fields import DeterministicCipher, FieldCipher, Tokenizer
from privacy.keys import Keyset


@click.group("field")
def fields() -> None:
    """Field-level encryption of single values (tables: see `covault mask`).

    The scheme follows the keyset's template: AES256_GCM/SM4_GCM randomized AEAD
    (enc:), AES256_SIV deterministic (det:), HMAC_SHA256/HMAC_SM3 pseudonyms (tok:),
    FF1_AES256 format-preserving (digits stay digits).
    """


def _values(values: tuple[str, ...]) -> list[str]:
    if values:
        return list(values)
    return [line.rstrip("\n") for line in sys.stdin]


def _scheme(keyset: Keyset, radix: int, decrypt: bool) -> Callable[[str, str], str]:
    if keyset.primitive == "fpe":
        from privacy.fpe import FF1

        key = keyset.key_material()

        def fpe(value: str, context: str) -> str:
            ff1 = FF1(key, radix, context.encode("utf-8"))
            return ff1.decrypt(value) if decrypt else ff1.encrypt(value)

        return fpe
    if keyset.primitive == "prf":
        if decrypt:
            raise InputError("HMAC tokens are not reversible; there is nothing to decrypt")
        return Tokenizer(keyset).encrypt
    cipher = FieldCipher(keyset) if keyset.primitive == "aead" else DeterministicCipher(keyset)
    return cipher.decrypt if decrypt else cipher.encrypt


def _run(
    keyset_file: str,
    context: str,
    radix: int,
    values: tuple[str, ...],
    kek_file: str | None,
    passphrase_env: str,
    fmt: str,
    decrypt: bool,
) -> None:
    keyset = open_keyset(keyset_file, kek_file, passphrase_env)
    apply = _scheme(keyset, radix, decrypt)
    results = [apply(v, context) for v in _values(values)]
    if fmt == "json":
        emit_json({"context": context, "template": keyset.template, "values": results})
    else:
        click.echo("\n".join(results))


_common = [
    click.option("--keyset", "-k", "keyset_file", required=True, type=click.Path(exists=True)),
    click.option(
        "--context", "-c", required=True, help="Where the value lives, e.g. cif.customers.id_no."
    ),
    click.option("--radix", default=10, show_default=True, help="FF1 radix (2-36)."),
    click.argument("values", nargs=-1),
    kek_options,
    format_option,
    handle_errors,
]


def _with_common(fn: Callable[..., None]) -> Callable[..., None]:
    for deco in reversed(_common):
        fn = deco(fn)
    return fn


def _command(name: str, decrypt: bool, doc: str) -> None:
    def command(**options: Any) -> None:
        _run(**options, decrypt=decrypt)

    command.__doc__ = doc
    fields.command(name)(_with_common(command))


_command("encrypt", False, "Encrypt or tokenize VALUES (or one value per line on stdin).")
_command(
    "decrypt",
    True,
    "Decrypt tokens (or one per line on stdin) made with the same keyset and context.",
)
