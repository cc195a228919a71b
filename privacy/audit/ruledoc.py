"""YAML documents with the line of every value, for the audit's configuration files
(rules, explanation rules, rotas, holidays): errors name the file and the line."""

from __future__ import annotations

import re
from typing import Any

from privacy.audit._logio import read_utf8
from privacy.errors import ConfigError

__all__ = ["_Doc", "_compose", "_read_text", "_duration"]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class _Doc:
    """Plain Python values of a YAML document plus the line of every path."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[tuple[Any, ...], int] = {}

    def load(self, node: Any, path: tuple[Any, ...] = ()) -> Any:
        from yaml import MappingNode, ScalarNode, SequenceNode

        from privacy.safe_yaml import construct_yaml

        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            for k, v in node.value:
                if not isinstance(k, ScalarNode):
                    raise self.err(path, "keys must be strings")
                if k.value in out:
                    raise ConfigError(f"duplicate key {k.value!r}", file=self.file,
                                      line=k.start_mark.line + 1)
                out[k.value] = self.load(v, (*path, k.value))
            return out
        if isinstance(node, SequenceNode):
            return [self.load(v, (*path, i)) for i, v in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return construct_yaml(node, file=self.file)

    def line(self, path: tuple[Any, ...]) -> int | None:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path)

    def err(self, path: tuple[Any, ...], msg: str) -> ConfigError:
        where = ".".join(str(p) for p in path)
        return ConfigError(f"{where}: {msg}" if where else msg, file=self.file,
                           line=self.line(path))


def _compose(text: str, file: str) -> tuple[Any, _Doc]:
    from privacy.safe_yaml import compose_yaml

    doc = _Doc(file)
    node = compose_yaml(text, file=file)
    return (doc.load(node) if node is not None else {}), doc


def _read_text(name: str, what: str) -> str:
    """The text of a UTF-8 configuration file (:class:`ConfigError` naming the file)."""
    return read_utf8(name, what, ConfigError)


def _duration(value: Any, doc: _Doc, path: tuple[Any, ...]) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    m = _DURATION.match(str(value).strip())
    if not m:
        raise doc.err(path, f"bad duration {value!r} (expected e.g. 30m, 1h, 7d)")
    return float(m.group(1)) * _UNITS[m.group(2)]
