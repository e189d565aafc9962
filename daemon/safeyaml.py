"""YAML read as hostile input, for ``settings.yaml``.

:func:`parse_yaml` parses the text once (by libyaml when PyYAML has it):
its composer refuses, at their line, what only a hostile file needs
(aliases and anchors, nesting past :data:`MAX_DEPTH`, a key written twice,
a value YAML cannot build) and records the line of every key, which the
settings' messages name.  :func:`decoded` refuses a file that is not
UTF-8, naming the line and the column of the first bad byte.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode

from relances.daemon.errors import ConfigError

MAX_DEPTH = 50


def shown(text: str, limit: int = 80) -> str:
    """A key or value from the file as one short line of a message: a hostile
    key may hold line breaks, or be megabytes long."""
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text[:limit + 1])
    return text if len(text) <= limit else text[:limit - 1] + "…"


class _Refused(yaml.YAMLError):
    """What the settings refuse, at a line and a key."""

    def __init__(self, line: int, key: str, message: str) -> None:
        super().__init__(message)
        self.line, self.key, self.message = line, key, message


def _step(index: Any) -> str | None:
    """The key a node is composed under: an item's index, a value's key, or
    nothing (the root, or a mapping's key itself)."""
    if isinstance(index, int):
        return str(index)
    if isinstance(index, ScalarNode):
        return str(index.value)
    if isinstance(index, Node):
        return "?"
    return None


class _Guarded(Composer, SafeConstructor):
    """Composes the parser's events into nodes, refusing as they arrive what
    only a hostile file holds, before anything is built from it: an alias
    (nine levels of them are gigabytes: "billion laughs"), nesting past
    :data:`MAX_DEPTH` (a stack overflow), a key written twice (the last one
    would silently win).  It records the line of every key on the way, so
    the text is read once, then built from these nodes.
    """

    check_event: Callable[..., bool]
    peek_event: Callable[[], Any]

    def _start_guard(self) -> None:
        Composer.__init__(self)
        self.lines: dict[str, int] = {}
        self._path: list[str] = []
        self._depth = 0
        self._seen: list[dict[str, int]] = []
        self._anchor: tuple[int, str] | None = None
        self._keys: dict[int, str] = {}

    def _dotted(self) -> str:
        return shown(".".join(self._path)) or "(top level)"

    def compose_document(self) -> Node | None:
        node = super().compose_document()
        if self._anchor is not None:
            raise _Refused(*self._anchor, "YAML anchors (&name) are not allowed")
        return node

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        step = _step(index)
        if step is not None:
            self._path.append(step)
        if isinstance(index, Node):
            self.lines[".".join(self._path)] = index.start_mark.line + 1
        event = self.peek_event()
        self._refuse(event)
        node = self._compose_counted(parent, index, event)
        if node is not None:
            self._record(parent, index, node)
        if step is not None:
            self._path.pop()
        return node

    def _refuse(self, event: Any) -> None:
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(line, self._dotted(), "YAML aliases (*name) are not allowed")
        if event.anchor is not None and self._anchor is None:
            self._anchor = (line, self._dotted())
        if isinstance(event, yaml.CollectionStartEvent) and self._depth >= MAX_DEPTH:
            raise _Refused(line, self._dotted(), f"nested more than {MAX_DEPTH} levels deep")

    def _compose_counted(self, parent: Node | None, index: Any, event: Any) -> Node | None:
        """Compose a node, counting how deep in collections it is and, in a
        mapping, which keys it has."""
        collection = isinstance(event, yaml.CollectionStartEvent)
        mapping = isinstance(event, yaml.MappingStartEvent)
        self._depth += collection
        if mapping:
            self._seen.append({})
        node = super().compose_node(parent, index)
        if mapping:
            self._seen.pop()
        self._depth -= collection
        return node

    def _record(self, parent: Node | None, index: Any, node: Node) -> None:
        line = node.start_mark.line + 1
        if isinstance(index, int):
            self.lines[".".join(self._path)] = line
        if isinstance(node, ScalarNode):
            self._keys[id(node)] = self._dotted()
        if index is None and isinstance(parent, MappingNode) and isinstance(node, ScalarNode):
            self._unique(str(node.value), line)

    def _unique(self, key: str, line: int) -> None:
        seen = self._seen[-1]
        if key in seen:
            where = shown(".".join([*self._path, key]))
            raise _Refused(line, where, f"already set on line {seen[key]}")
        seen[key] = line

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        """Build a value, naming its key when its text cannot be one (a date
        with month 13, an integer of 5,000 digits)."""
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            key = self._keys.get(id(node), "(top level)")
            raise _Refused(node.start_mark.line + 1, key, f"cannot be read: {exc}") from None


class _SafeLoader(_Guarded, yaml.SafeLoader):
    """The pure-Python parser, when PyYAML was built without libyaml."""

    def __init__(self, stream: str) -> None:
        yaml.SafeLoader.__init__(self, stream)
        self._start_guard()


if yaml.__with_libyaml__:
    class _CSafeLoader(_Guarded, yaml.CSafeLoader):
        """libyaml scans and parses (most of the work); the guarded composer
        builds the nodes from its events, where libyaml's own composer would
        resolve an alias, with no line to refuse it at."""

        def __init__(self, stream: str) -> None:
            yaml.CSafeLoader.__init__(self, stream)
            self._start_guard()


def _loader(text: str) -> _SafeLoader | _CSafeLoader:
    return _CSafeLoader(text) if yaml.__with_libyaml__ else _SafeLoader(text)


def parse_yaml(text: str, name: str) -> tuple[Any, dict[str, int]]:
    """Parse YAML text once, returning the data and the line of every key.

    Raises :class:`ConfigError` with ``FILE:LINE: ...`` on what is not YAML
    and on what :class:`_Guarded` refuses.
    """
    loader = _loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _Refused as exc:
        raise ConfigError(f"{name}:{exc.line}: {exc.key}: {exc.message}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else "?"
        problem = shown(str(exc.problem or exc.context or exc), 200)
        raise ConfigError(f"{name}:{line}: invalid YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:
        raise ConfigError(f"{name}:{_reader_line(text, exc)}: invalid YAML: "
                          f"{shown(str(exc).splitlines()[0], 200)}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: invalid YAML: {shown(str(exc), 200)}") from None
    finally:
        loader.dispose()
    return data, loader.lines


def _reader_line(text: str, exc: yaml.reader.ReaderError) -> int:
    """The line of a character the reader refuses: libyaml gives its position
    in bytes, the Python reader in characters, so it is found by its value."""
    index = text.find(chr(exc.character)) if isinstance(exc.character, int) else -1
    return text.count("\n", 0, index if index >= 0 else exc.position) + 1


def decoded(raw: bytes, name: str) -> str:
    """The file's text; a byte that is not UTF-8 (a file saved as Latin-1) is
    refused with its line and column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(f"{name}:{line}: byte 0x{raw[exc.start]:02X} in column {column} is not "
                          "UTF-8: the settings file must be saved as UTF-8") from None
