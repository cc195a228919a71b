"""The minimal Flower app directory that ``flwr run`` builds into a FAB.

A Flower app is a folder with a ``pyproject.toml`` naming the ServerApp and the
ClientApp (``"package.module:attribute"``) and declaring every run-config key. The
generated folder holds nothing else: the app code stays in an installed package
(``federated.horizontal...``), which every Flower process imports from its own
environment. ``flwr run`` packs the folder into a FAB; each SuperLink and SuperNode
installs that FAB (just this ``pyproject.toml``) and imports the components by name.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path

from privacy.errors import InputError

__all__ = ["ConfigValue", "toml_value", "check_key", "write_app_dir", "write_toml_table"]

ConfigValue = str | int | float | bool

_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_COMPONENT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def check_key(key: str, what: str) -> str:
    """Return ``key`` if it is a bare TOML key (letters, digits, ``-``, ``_``).

    Raises
    ------
    InputError
        Naming ``what`` (e.g. ``run config``) and the key.
    """
    if not isinstance(key, str) or not _KEY.match(key):
        raise InputError(
            f"{what}: key {key!r} must be letters, digits, '-' or '_' (a bare TOML key)"
        )
    return key


def toml_value(value: ConfigValue, what: str = "config") -> str:
    """Format a bool, int, float or str as a TOML value.

    Raises
    ------
    InputError
        For any other type.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        # JSON's escapes are valid TOML basic-string escapes; DEL must be escaped too.
        return json.dumps(value, ensure_ascii=True).replace("\x7f", "\\u007f")
    raise InputError(
        f"{what}: value {value!r} has type {type(value).__name__}; "
        "expected str, int, float or bool"
    )


def write_toml_table(path: Path, table: Mapping[str, ConfigValue], what: str) -> Path:
    """Write a flat TOML table (``key = value`` lines) atomically to ``path``."""
    lines = [f"{check_key(k, what)} = {toml_value(v, what)}" for k, v in table.items()]
    _atomic_write(path, "\n".join(lines) + "\n")
    return path


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_app_dir(
    directory: str | os.PathLike[str],
    serverapp: str,
    clientapp: str,
    config: Mapping[str, ConfigValue],
    *,
    name: str = "covault-app",
    publisher: str = "covault",
    version: str = "1.0.0",
) -> Path:
    """Write a minimal Flower app directory (one ``pyproject.toml``).

    Parameters
    ----------
    directory:
        The folder to write (created if missing). ``flwr run`` packs every file in it,
        so give it a folder of its own.
    serverapp, clientapp:
        Import references ``"package.module:attribute"``, e.g.
        ``"federated.horizontal.server:app"``. The modules must be importable by the
        Flower processes (installed, or on their ``PYTHONPATH``).
    config:
        The run config with its defaults; every key a run overrides must be here.
        Keys are bare TOML keys, values str, int, float or bool.
    name, publisher, version:
        The app's identity, as the SuperLink records it (``publisher/name``).

    Returns
    -------
    Path
        The app directory, to pass to :meth:`LocalFederation.submit`.

    Raises
    ------
    InputError
        For a malformed component reference, key, value, name or version.
    """
    for label, ref in (("serverapp", serverapp), ("clientapp", clientapp)):
        if not _COMPONENT.match(ref):
            raise InputError(f"write_app_dir: {label} {ref!r} must look like 'pkg.module:app'")
    if not _NAME.match(name):
        raise InputError(f"write_app_dir: name {name!r} must be 1-32 of [a-z0-9-]")
    if not _KEY.match(publisher):
        raise InputError(f"write_app_dir: publisher {publisher!r} must be a bare TOML key")
    if not _VERSION.match(version):
        raise InputError(f"write_app_dir: version {version!r} must look like 1.2.3")
    lines = [f"{check_key(k, 'run config')} = {toml_value(v, 'run config')}"
             for k, v in config.items()]
    text = "\n".join(
        [
            "[build-system]",
            'requires = ["hatchling"]',
            'build-backend = "hatchling.build"',
            "",
            "[project]",
            f"name = {toml_value(name)}",
            f"version = {toml_value(version)}",
            'description = "covault federated app (generated)"',
            'license = "Apache-2.0"',
            "dependencies = []",
            "",
            "[tool.flwr.app]",
            f"publisher = {toml_value(publisher)}",
            "",
            "[tool.flwr.app.components]",
            f"serverapp = {toml_value(serverapp)}",
            f"clientapp = {toml_value(clientapp)}",
            "",
            "[tool.flwr.app.config]",
            *lines,
            "",
        ]
    )
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    _atomic_write(root / "pyproject.toml", text)
    return root
