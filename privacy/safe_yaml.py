"""Reading YAML that a stranger may have written: every covault YAML file goes through here.

Masking policies, audit rules, lists and catalogues are read with :func:`compose_yaml`
(the node tree, with line numbers) and :func:`construct_yaml` (plain Python values). On
top of ``yaml.SafeLoader`` (no arbitrary objects) they refuse, while composing and so
before any Python object is built:

* anchors and aliases (``&a`` / ``*a``): nested aliases expand exponentially (the
  "billion laughs": a few hundred bytes become gigabytes once walked or validated), and
  no covault file needs them;
* nesting deeper than :data:`MAX_DEPTH` collections: the composer recurses once per
  level, so deep nesting would end in a ``RecursionError`` instead of a message;
* ``\\uD800``-``\\uDFFF`` escapes in double-quoted scalars (PyYAML decodes each one
  alone, even a JSON-style surrogate pair): the lone surrogates they make are not text,
  and every later UTF-8 encoding of the value (a policy's hash, an output file) fails.

Every failure, malformed YAML included, is a :class:`~privacy.errors.ConfigError` (or
the subclass the caller names, e.g. ``PolicyError``) naming the file, line and column.
"""

from __future__ import annotations

import re
from typing import IO, Any

import yaml
from yaml.constructor import SafeConstructor

from privacy.errors import ConfigError, InputError

__all__ = ["MAX_DEPTH", "compose_yaml", "construct_yaml"]

#: Deepest nesting of mappings and sequences accepted (covault's own files use under 8).
MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


class _GuardedLoader(yaml.SafeLoader):
    """``SafeLoader`` whose composer refuses anchors, aliases and deep nesting."""

    def __init__(self, stream: str | IO[str], file: str, error: type[InputError],
                 max_depth: int) -> None:
        super().__init__(stream)
        self.file, self.error, self.max_depth, self.depth = file, error, max_depth, 0

    def fail(self, message: str, mark: yaml.Mark | None) -> InputError:
        if mark is None:
            return self.error(message, file=self.file)
        return self.error(message, file=self.file, line=mark.line + 1, column=mark.column + 1)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise self.fail("YAML anchors and aliases (&name, *name) are not allowed",
                            event.start_mark)
        scalar = event.value if isinstance(event, yaml.ScalarEvent) else None
        if scalar is not None and _SURROGATE.search(scalar):
            raise self.fail("a \\u escape stands for a surrogate code point (U+D800 to "
                            "U+DFFF), which is not text; write the character itself",
                            event.start_mark)
        self.depth += 1
        try:
            if self.depth > self.max_depth:
                raise self.fail(f"YAML nested deeper than {self.max_depth} levels",
                                event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _yaml_error(exc: yaml.YAMLError, file: str, error: type[InputError]) -> InputError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    said = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    problem = ", ".join(str(s) for s in said if s) or str(exc)
    if mark is None:
        return error(f"malformed YAML: {problem}", file=file)
    return error(f"malformed YAML: {problem}", file=file, line=mark.line + 1,
                 column=mark.column + 1)


def compose_yaml(stream: str | IO[str], *, file: str, error: type[InputError] = ConfigError,
                 max_depth: int = MAX_DEPTH) -> yaml.Node | None:
    """Parse one YAML document into its node tree (``None`` for an empty document).

    Parameters
    ----------
    stream:
        The text, or an open text file.
    file:
        Names the source in error messages.
    error:
        The :class:`~privacy.errors.InputError` subclass to raise (default ``ConfigError``).
    max_depth:
        Deepest nesting of mappings and sequences accepted.

    Raises
    ------
    InputError
        (of class ``error``) Malformed YAML, more than one document, an anchor or alias,
        or nesting deeper than ``max_depth``; with the line and column where known.
    """
    try:
        loader = _GuardedLoader(stream, file, error, max_depth)
        try:
            node: yaml.Node | None = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, file, error) from None
    except UnicodeDecodeError:  # an open file that is not UTF-8
        raise error("not UTF-8 text", file=file) from None
    return node


def construct_yaml(node: yaml.Node, *, file: str,
                   error: type[InputError] = ConfigError) -> Any:
    """Plain Python values (dicts, lists, scalars) of a node from :func:`compose_yaml`.

    Raises
    ------
    InputError
        (of class ``error``) A value cannot be constructed (an unknown tag, an unhashable
        key, a malformed timestamp), with its line and column.
    """
    try:
        return SafeConstructor().construct_document(node)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, file, error) from None
    except ValueError as exc:  # e.g. 2024-02-30 matches the timestamp pattern
        line = node.start_mark.line + 1 if isinstance(node, yaml.ScalarNode) else None
        raise error(f"malformed YAML value: {exc}", file=file, line=line) from None
