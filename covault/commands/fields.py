"""``covault field``: encrypt, tokenize and decrypt values with a keyset."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from covault.console import emit_json, err, format_option, handle_errors
from covault.keyopts import kek_options, open_keyset, parse_key_id
from privacy.errors import DecryptionError, InputError, KeyNotFoundError
from privacy.fields import DeterministicCipher, FieldCipher, Tokenizer
from privacy.keys import Keyset, format_key_id
from privacy.normalize import IDENTIFIER_CHOICES, canonical


@click.group("field")
def fields() -> None:
    """Field-level encryption of single values (tables: see `covault mask`).

    The scheme follows the keyset's template: AES256_GCM/SM4_GCM randomized AEAD
    (enc:), AES256_SIV deterministic (det:), HMAC_SHA256/HMAC_SM3 pseudonyms (tok:),
    FF1_AES256 format-preserving (digits stay digits).

    FF1 values carry no key id: `field encrypt` reports the key id it used ("key_id" in
    JSON; on stderr once the keyset has been rotated), and `field decrypt` on a rotated
    FF1 keyset needs it back as --key-id.

    Identifiers are normalised before deterministic schemes (det:, tok:) as in `covault
    mask` (--identifier, default auto: values that unmistakably look like a mobile,
    resident id, card, e-mail or USCC take their canonical form, so +86 187 8161 8495
    and 187-8161-8495 give one token); FF1 and randomized AEAD take values as written
    unless --identifier names a kind.
    """


def _values(values: tuple[str, ...]) -> list[str]:
    """VALUES, else one value per line of stdin (read as bytes: a line that is not UTF-8
    is refused with its line number, whatever the locale's encoding and error handler)."""
    if values:
        for i, value in enumerate(values, start=1):
            _require_utf8(value, f"value {i}")
        return list(values)
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text stream without bytes underneath (tests, embedding)
        lines = [line.rstrip("\n") for line in sys.stdin]
        for n, line in enumerate(lines, start=1):
            _require_utf8(line, f"<stdin>:{n}")
        return lines
    out: list[str] = []
    for n, raw in enumerate(stream, start=1):
        try:
            out.append(raw.decode("utf-8").rstrip("\n"))
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text at byte {exc.start}", file="<stdin>",
                             line=n) from None
    return out


def _require_utf8(text: str, what: str) -> None:
    """Refuse text holding characters that cannot be UTF-8: a command-line argument of
    bytes that are not UTF-8 arrives as lone surrogates (Python's surrogateescape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what}: not UTF-8 text at character {exc.start}") from None


def _ff1_key_id(keyset: Keyset, key_id: str | None, decrypt: bool) -> int:
    """The FF1 key to use: --key-id, else the primary to encrypt; to decrypt, the only
    key of a never-rotated keyset (FF1 values do not say which key made them)."""
    if key_id is not None:
        kid = parse_key_id(key_id)
        status = {i.key_id: i.status for i in keyset.info()}
        if status.get(kid) != "enabled":
            held = ", ".join(format_key_id(k) for k in keyset.key_ids)
            state = "is disabled in" if kid in status else "is not in"
            raise KeyNotFoundError(
                f"key id {format_key_id(kid)} {state} this {keyset.template} keyset "
                f"(it holds {held})")
        return kid
    if decrypt and len(keyset.key_ids) > 1:
        held = ", ".join(format_key_id(k) for k in keyset.key_ids)
        raise InputError(
            f"this {keyset.template} keyset holds {len(keyset.key_ids)} keys ({held}) and FF1 "
            "values carry no key id: pass --key-id with the key id `covault field encrypt` "
            "reported (decrypting with the wrong key gives wrong digits, not an error)")
    return keyset.primary_id  # to decrypt: the keyset's only key


def _scheme(keyset: Keyset, radix: int, decrypt: bool, key_id: str | None
            ) -> tuple[Callable[[str, str], str], int | None]:
    if keyset.primitive == "fpe":
        from privacy.fpe import FF1

        kid = _ff1_key_id(keyset, key_id, decrypt)
        key = keyset.key_material(kid)

        def fpe(value: str, context: str) -> str:
            ff1 = FF1(key, radix, context.encode("utf-8"))
            return ff1.decrypt(value) if decrypt else ff1.encrypt(value)

        return fpe, kid
    if key_id is not None:
        raise InputError(f"--key-id is for FF1 keysets; {keyset.template} tokens name "
                         "the key that made them")
    if keyset.primitive == "prf":
        if decrypt:
            raise InputError("HMAC tokens are not reversible; there is nothing to decrypt")
        return Tokenizer(keyset).encrypt, None
    cipher = FieldCipher(keyset) if keyset.primitive == "aead" else DeterministicCipher(keyset)
    return (cipher.decrypt if decrypt else cipher.encrypt), None


def _run(
    keyset_file: str,
    context: str,
    radix: int,
    key_id: str | None,
    values: tuple[str, ...],
    kek_file: str | None,
    passphrase_env: str,
    fmt: str,
    decrypt: bool,
    identifier: str = "none",
) -> None:
    _require_utf8(context, "--context")
    keyset = open_keyset(keyset_file, kek_file, passphrase_env)
    apply, kid = _scheme(keyset, radix, decrypt, key_id)
    if identifier == "auto" and keyset.primitive not in ("prf", "daead"):
        identifier = "none"  # FF1 keeps the format as written; AEAD is never joinable
    results = []
    for n, value in enumerate(_values(values), start=1):
        try:
            results.append(apply(canonical(value, identifier), context))
        except (DecryptionError, InputError) as exc:  # which one, of many values or lines
            detail = exc.detail if isinstance(exc, InputError) else str(exc)
            if values:
                raise InputError(f"value {n}: {detail}") from None
            raise InputError(detail, file="<stdin>", line=n) from None
    if fmt == "json":
        doc = {"context": context, "template": keyset.template, "values": results}
        if kid is not None:
            doc["key_id"] = format_key_id(kid)
        emit_json(doc)
        return
    click.echo("\n".join(results))
    if kid is not None and not decrypt and len(keyset.key_ids) > 1:
        err.print(f"FF1 key id {format_key_id(kid)} (FF1 values carry no key id: keep it "
                  f"with them; after a rotation decrypt with --key-id {format_key_id(kid)})",
                  markup=False)


_common = [
    click.option("--keyset", "-k", "keyset_file", required=True, type=click.Path(exists=True)),
    click.option(
        "--context", "-c", required=True, help="Where the value lives, e.g. cif.customers.id_no."
    ),
    click.option("--radix", default=10, show_default=True, help="FF1 radix (2-36)."),
    click.option(
        "--key-id",
        default=None,
        metavar="ID",
        help="FF1 only: the key to use (default: the primary to encrypt; required to "
        "decrypt once the keyset has been rotated, since FF1 values carry no key id).",
    ),
    click.argument("values", nargs=-1),
    kek_options,
    format_option,
    handle_errors,
]


def _with_common(fn: Callable[..., None]) -> Callable[..., None]:
    for deco in reversed(_common):
        fn = deco(fn)
    return fn


_identifier = click.option(
    "--identifier", type=click.Choice(IDENTIFIER_CHOICES), default="auto", show_default=True,
    help="Normalise identifiers before encrypting (mobile: national number for +86, "
         "E.164 otherwise; resident_id: upper-case X; card: digits; email: lower-case; "
         "uscc: upper-case; auto: per value, det:/tok: only; none: as written).")


def _command(name: str, decrypt: bool, doc: str) -> None:
    def command(**options: Any) -> None:
        _run(**options, decrypt=decrypt)

    command.__doc__ = doc
    fn = _with_common(command)
    fields.command(name)(fn if decrypt else _identifier(fn))


_command("encrypt", False, "Encrypt or tokenize VALUES (or one value per line on stdin).")
_command(
    "decrypt",
    True,
    "Decrypt tokens (or one per line on stdin) made with the same keyset and context.",
)
