"""``covault keys``: create, rotate, disable and show keysets."""

from __future__ import annotations

import os

import click

from covault.console import (
    emit_json,
    err,
    format_option,
    handle_errors,
    out,
    print_table,
    refuse_overwrite,
)
from covault.keyopts import (
    kek_options,
    open_keyset,
    parse_key_id,
    read_keyset_info,
    resolve_kek,
)
from privacy.errors import InputError
from privacy.keys import TEMPLATES, Kek, Keyset, format_key_id


@click.group()
def keys() -> None:
    """Keysets: named templates, key ids, one primary key, rotation.

    Key files are JSON with the key material encrypted under a key-encryption key:
    a passphrase from $COVAULT_PASSPHRASE (scrypt) or a 32-byte --kek-file.
    """


def _info_rows(template: str, ks_info: list) -> list[dict[str, object]]:  # type: ignore[type-arg]
    return [
        {
            "key_id": format_key_id(i.key_id),
            "template": template,
            "status": i.status,
            "primary": i.primary,
            "created": i.created,
        }
        for i in ks_info
    ]


#: Below this many characters a new passphrase draws a warning (NIST SP 800-63B asks 8
#: at least; a passphrase that guards keys offline needs more).
SHORT_PASSPHRASE = 12


def warn_short_passphrase(passphrase: str, where: str) -> None:
    """Warn (stderr) when a key file is about to be sealed under a short passphrase."""
    if 0 < len(passphrase) < SHORT_PASSPHRASE:
        err.print(f"warning: the passphrase in {where} has {len(passphrase)} characters; "
                  f"a key file sealed under it is only as safe as it is: use "
                  f"{SHORT_PASSPHRASE} or more, or a key file (covault keys new-kek)",
                  markup=False)


def _show(path: str, keyset: Keyset, fmt: str, action: str) -> None:
    rows = _info_rows(keyset.template, keyset.info())
    if fmt == "json":
        emit_json({"file": path, "action": action, "template": keyset.template, "keys": rows})
    else:
        print_table(
            f"{path} ({keyset.template}) — {action}",
            ["key id", "status", "primary", "created"],
            [[r["key_id"], r["status"], "yes" if r["primary"] else "", r["created"]] for r in rows],
        )


@keys.command("create")
@click.option(
    "--template", "-t", required=True, type=click.Choice(list(TEMPLATES)), help="Key template."
)
@click.option("--out", "-o", "out_path", required=True, type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing keyset file.")
@kek_options
@format_option
@handle_errors
def create(
    template: str, out_path: str, force: bool, kek_file: str | None, passphrase_env: str, fmt: str
) -> None:
    """Create a keyset with one fresh primary key and write it to OUT."""
    refuse_overwrite(out_path, force=force)
    kek = resolve_kek(kek_file, passphrase_env)
    if kek.kind == "scrypt":
        warn_short_passphrase(os.environ.get(passphrase_env, ""), f"${passphrase_env}")
    keyset = Keyset.create(template)
    keyset.save(out_path, kek)
    _show(out_path, keyset, fmt, "created")


@keys.command("rewrap")
@click.argument("keyset_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--new-kek-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Seal the keyset under this 32-byte KEK file from now on.")
@click.option("--new-passphrase-env", metavar="VAR", default=None,
              help="Seal it under the passphrase in this environment variable (scrypt).")
@kek_options
@format_option
@handle_errors
def rewrap(keyset_file: str, new_kek_file: str | None, new_passphrase_env: str | None,
           kek_file: str | None, passphrase_env: str, fmt: str) -> None:
    """Seal KEYSET_FILE under another key-encryption key (KEK rotation).

    The keys, their ids and everything made with them stay as they are; only the
    wrapping changes, and the file is replaced atomically. The current KEK comes from
    --kek-file / --passphrase-env as for the other commands, the new one from exactly one
    of --new-kek-file and --new-passphrase-env.
    """
    if (new_kek_file is None) == (new_passphrase_env is None):
        raise InputError("give exactly one of --new-kek-file and --new-passphrase-env")
    keyset = open_keyset(keyset_file, kek_file, passphrase_env)
    if new_kek_file is not None:
        new = Kek.from_key_file(new_kek_file)
    else:
        assert new_passphrase_env is not None
        passphrase = os.environ.get(new_passphrase_env, "")
        if not passphrase:
            raise InputError(f"--new-passphrase-env: ${new_passphrase_env} is not set or is "
                             "empty; it must hold the new passphrase")
        warn_short_passphrase(passphrase, f"${new_passphrase_env}")
        new = Kek.from_passphrase(passphrase)
    keyset.save(keyset_file, new)
    _show(keyset_file, keyset, fmt, "rewrapped")


@keys.command("rotate")
@click.argument("keyset_file", type=click.Path(exists=True, dir_okay=False))
@kek_options
@format_option
@handle_errors
def rotate(keyset_file: str, kek_file: str | None, passphrase_env: str, fmt: str) -> None:
    """Add a new primary key; older keys keep decrypting.

    FF1 values carry no key id: on an FF1_AES256 keyset a warning (stderr) names the old
    key, which values encrypted before the rotation need.
    """
    keyset = open_keyset(keyset_file, kek_file, passphrase_env)
    old = keyset.primary_id
    keyset.rotate()
    keyset.save(keyset_file, resolve_kek(kek_file, passphrase_env))
    if keyset.primitive == "fpe":
        err.print(
            f"warning: {keyset_file} is an {keyset.template} keyset and FF1 values carry no "
            f"key id: values encrypted before this rotation decrypt only with the key that "
            f"was primary then ({format_key_id(old)} until now), which stays in the keyset "
            f"(do not disable it while such values are in use). `covault mask apply` "
            f"outputs record the key id per column in their metadata and ledger record, and "
            f"`covault mask reveal` uses it; for `covault field decrypt` pass "
            f"--key-id {format_key_id(old)} (or the id `field encrypt` reported).",
            markup=False,
        )
    _show(keyset_file, keyset, fmt, "rotated")


@keys.command("disable")
@click.argument("keyset_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("key_id")
@kek_options
@format_option
@handle_errors
def disable(
    keyset_file: str, key_id: str, kek_file: str | None, passphrase_env: str, fmt: str
) -> None:
    """Disable KEY_ID: tokens made with it stop decrypting."""
    keyset = open_keyset(keyset_file, kek_file, passphrase_env)
    keyset.disable(parse_key_id(key_id))
    keyset.save(keyset_file, resolve_kek(kek_file, passphrase_env))
    _show(keyset_file, keyset, fmt, f"disabled {format_key_id(parse_key_id(key_id))}")


@keys.command("show")
@click.argument("keyset_file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--no-verify",
    is_flag=True,
    help="Show the metadata without the KEK (unverified: the file may have been altered).",
)
@kek_options
@format_option
@handle_errors
def show(
    keyset_file: str, no_verify: bool, kek_file: str | None, passphrase_env: str, fmt: str
) -> None:
    """Show key ids, template, status and creation time (never key material)."""
    if no_verify:
        template, info = read_keyset_info(keyset_file)
        rows = _info_rows(template, info)
        if fmt == "json":
            emit_json({"file": keyset_file, "verified": False, "template": template, "keys": rows})
            return
        print_table(
            f"{keyset_file} ({template}) — unverified",
            ["key id", "status", "primary", "created"],
            [[r["key_id"], r["status"], "yes" if r["primary"] else "", r["created"]] for r in rows],
        )
        return
    _show(keyset_file, open_keyset(keyset_file, kek_file, passphrase_env), fmt, "verified")


@keys.command("new-kek")
@click.argument("kek_path", type=click.Path(dir_okay=False))
@handle_errors
def new_kek(kek_path: str) -> None:
    """Write a new random 32-byte key-encryption key file (mode 0600)."""
    if os.path.exists(kek_path):
        raise InputError(f"{kek_path} exists; refusing to overwrite a KEK file")
    Kek.generate_key_file(kek_path)
    out.print(f"wrote {kek_path}")
