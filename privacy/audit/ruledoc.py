"""YAML documents with the line of every value, for the audit's configuration files
(rules, explanation rules, rotas, holidays): errors name the file and the line."""

from __future__ import annotations

import math
import re
from datetime import time
from typing import Any

from privacy.audit._logio import read_utf8
from privacy.errors import ConfigError

__all__ = ["_Doc", "_compose", "_read_text", "_duration", "_clock", "_version",
           "MAX_DURATION"]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")

#: The longest duration a configuration file may give (ten years, in seconds).
MAX_DURATION = 3650 * 86400.0


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
    """Seconds of a duration: ``30m``, ``1h``, ``7d`` or a number of seconds.

    Raises
    ------
    ConfigError
        At the value's line: not a duration, negative, NaN, infinite or longer than
        :data:`MAX_DURATION`.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value).strip())
        if not m:
            raise doc.err(path, f"bad duration {value!r} (expected e.g. 30m, 1h, 7d)")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not math.isfinite(seconds) or seconds < 0:
        raise doc.err(path, f"bad duration {value!r} (expected a duration >= 0 such as "
                      "30m, 1h, 7d)")
    if seconds > MAX_DURATION:
        raise doc.err(path, f"duration {value!r} is too long (at most "
                      f"{MAX_DURATION / 86400:g}d)")
    return seconds


def _clock(value: Any, doc: _Doc, path: tuple[Any, ...]) -> time:
    """A time of day written ``'HH:MM'`` (00:00 to 23:59, no seconds or offset).

    YAML 1.1 reads an unquoted ``18:00`` as the base-60 integer 1080: such a value gets
    a hint to quote it.

    Raises
    ------
    ConfigError
        At the value's line.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        hint = f" ({value // 60}:{value % 60:02d}?)" if 0 <= value < 24 * 60 else ""
        raise doc.err(path, f"expected a time 'HH:MM' in quotes, got the number {value}"
                      f"{hint}: YAML reads an unquoted 18:00 as a number, write \"18:00\"")
    m = _CLOCK.match(value) if isinstance(value, str) else None
    if m is None or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise doc.err(path, f"expected a time 'HH:MM' (00:00 to 23:59), got {value!r}")
    return time(int(m.group(1)), int(m.group(2)))


def _version(data: dict[str, Any], doc: _Doc) -> None:
    """Check a file's optional ``version`` key: the integer 1 (not ``true`` or ``1.0``).

    Raises
    ------
    ConfigError
        At the key's line.
    """
    value = data.get("version", 1)
    if type(value) is not int or value != 1:
        raise doc.err(("version",), f"unsupported version {value!r} (expected 1)")
