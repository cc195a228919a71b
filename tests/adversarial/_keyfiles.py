"""Key files for the adversarial CLI tests: a fixed KEK file and keysets sealed under it."""

from __future__ import annotations

from pathlib import Path

from privacy.keys import Kek, Keyset


def kek_file(folder: Path) -> Path:
    """A key-file KEK with fixed bytes (fast: no scrypt), at ``folder/kek.hex``."""
    path = folder / "kek.hex"
    path.write_text(bytes(range(32)).hex())
    path.chmod(0o600)  # a KEK file others may read draws a warning
    return path


def sealed_keyset(path: Path, template: str, kek: Path) -> Path:
    """A new keyset of ``template`` saved at ``path`` under the KEK file ``kek``."""
    Keyset.create(template).save(path, Kek.from_key_file(kek))
    return path
