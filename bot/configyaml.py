"""Read a config file's YAML within bounds: size, nesting depth, alias expansion.

A hand-edited file can be anything: a binary, a list nested 10,000 deep, or an
alias bomb (``a: &a [x, x]``, ``b: &b [*a, *a]``, ...) whose few lines expand
to billions of values. Each is refused while the YAML is composed, before any
Python object is built, with the file name, line and column. Every problem
raised here is a ConfigError whose one line starts with ``<file>, line L,
column C:`` (or ``<file>:`` when the whole file is at fault).

Duplicate keys are refused too: YAML silently keeps the last one, and a file
that says ``every:`` twice is a mistake the user wants to hear about.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.cyaml import CParser   # libyaml, which the pinned PyYAML wheels include
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, SequenceNode
from yaml.resolver import Resolver

from bot.errors import ConfigError

MAX_BYTES = 16_000_000  # 10,000 feeds are 1-2 MB of YAML; a bigger file is not a config
MAX_DEPTH = 32          # the deepest real key path is 5 levels
MAX_NODES = 500_000     # values after aliases are expanded; 10,000 feeds are ~120,000
_MERGE = "tag:yaml.org,2002:merge"


def read(path: Path) -> Any:
    """The YAML document in ``path`` as plain Python values (None when empty).

    Raises ConfigError for an unreadable, oversized or non-UTF-8 file, a YAML
    syntax error, a duplicate key, or a document nested or expanding past the
    limits above."""
    text = _text(path)
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except yaml.reader.ReaderError as exc:   # a control character: no Mark, an offset
        raise ConfigError(_unprintable(path, text, exc)) from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(_marked(path, exc)) from None
    except yaml.YAMLError as exc:   # no mark: PyYAML gives nothing better
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    finally:
        loader.dispose()


def _text(path: Path) -> str:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)   # never read a huge file whole
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: the file is over {MAX_BYTES // 1_000_000} MB; "
                          f"is it the config file?")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = _position(data, exc.start)
        raise ConfigError(f"{path}, line {line}, column {column}: not UTF-8 text "
                          f"(byte 0x{data[exc.start]:02x}); save the file as UTF-8") from None


def _position(text: str | bytes, offset: int) -> tuple[int, int]:
    newline = "\n" if isinstance(text, str) else b"\n"
    line = text.count(newline, 0, offset) + 1
    return line, offset - (text.rfind(newline, 0, offset) + 1) + 1


def _unprintable(path: Path, text: str, exc: yaml.reader.ReaderError) -> str:
    offset = len(text.encode("utf-8")[:exc.position].decode("utf-8", "ignore"))  # libyaml counts bytes
    line, column = _position(text, offset)
    return (f"{path}, line {line}, column {column}: the character U+{exc.character:04X} "
            f"is not allowed in YAML (a control character; is it a binary file?)")


def _marked(path: Path, exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
    what = exc.problem or exc.context or "not valid YAML"
    if exc.context and exc.problem and exc.context_mark:
        what += f" ({exc.context} at line {exc.context_mark.line + 1})"
    if isinstance(exc, _Refused):
        return f"{where}: {what}"
    if isinstance(exc, yaml.constructor.ConstructorError):
        return f"{where}: {_plain(exc.problem or what)}"
    return f"{where}: YAML syntax error: {what}"


def _plain(problem: str) -> str:
    """PyYAML's words for what a hand-edited file most often gets wrong, in ours."""
    if problem.startswith("found unhashable key"):
        return "a key must be a plain word or number, not a list or mapping"
    tag = problem.partition("for the tag ")[2]
    if problem.startswith("could not determine a constructor") and tag:
        return f"unknown YAML tag {tag} (a config holds plain values: no !tags)"
    return problem


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that Herald will not build: too big, too deep, a loop, a duplicate key."""


def _refuse(problem: str, node_or_event) -> yaml.MarkedYAMLError:
    return _Refused(None, None, problem, node_or_event.start_mark)


class _BoundedLoader(Composer, CParser, SafeConstructor, Resolver):
    """A safe loader that measures every node as it is composed.

    libyaml parses (five times faster than PyYAML's scanner); composition stays
    in Python, here, so it can be bounded. An alias yields the very node it
    names, so a node's expanded size and height are computed once and reused:
    the bounds hold for the document as the checker will walk it, aliases
    expanded, at the cost of one dict entry per mapping or list in the text."""

    def __init__(self, text: str):
        CParser.__init__(self, text)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        Composer.__init__(self)
        self._depth = 0
        self._composed = 0
        self._measures: dict[int, tuple[int, int]] = {}   # id(node) -> (size, height)

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)
            if _collection(node) and id(node) not in self._measures:   # still being composed
                raise _refuse("an alias refers to a value that contains it (a loop)", event)
            return node
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _refuse(f"nested deeper than {MAX_DEPTH} levels", self.peek_event())
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._measure(node)
        return node

    def _measure(self, node) -> None:
        self._composed += 1
        if self._composed > MAX_NODES:
            raise _refuse(f"more than {MAX_NODES} values (aliases expanded)", node)
        if not _collection(node):   # (1, 1), not stored: most nodes are scalars
            return
        sizes = [self._measures.get(id(child), (1, 1)) for child in _children(node)]
        size = 1 + sum(s for s, _ in sizes)
        height = 1 + max((h for _, h in sizes), default=0)
        if size > MAX_NODES:
            raise _refuse(f"more than {MAX_NODES} values (aliases expanded)", node)
        if height + self._depth > MAX_DEPTH:
            raise _refuse(f"nested deeper than {MAX_DEPTH} levels (aliases expanded)", node)
        self._measures[id(node)] = (size, height)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, MappingNode):
            _refuse_duplicates(node)
        return super().construct_mapping(node, deep=deep)


def _collection(node) -> bool:
    return isinstance(node, (MappingNode, SequenceNode))


def _children(node) -> list:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _refuse_duplicates(node: MappingNode) -> None:
    seen: set[tuple[str, str]] = set()
    for key, _ in node.value:
        if key.tag == _MERGE or not isinstance(key.value, str):
            continue
        if (key.tag, key.value) in seen:
            raise _refuse(f"duplicate key {key.value!r} (YAML would keep only the last)", key)
        seen.add((key.tag, key.value))
