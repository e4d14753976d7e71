"""Reads YAML (and JSON, which is YAML) config files with bounds that ``yaml.safe_load`` does not have.

``safe_load`` is safe from code execution, not from size: a few hundred bytes of anchors and aliases
("billion laughs") stand for billions of values, and nothing notices until something walks them. Here the
composer counts every value as it is read, each alias at the size of what it stands for, and refuses
the file *before* anything is expanded. Aliases stay allowed, because kubectl accepts them: refusing them
would make the validator refuse files the cluster takes, and counting costs no more than refusing.

What plain values cannot say is recorded (``api.parsed``): keys given twice, keys that are not strings,
integers too long to convert. Dates stay the strings they are in JSON, so an impossible date
(``2001-02-30``) is text to validate rather than a crash.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent, NodeEvent, ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from api.errors import ConfigError
from api.parsed import MAX_INT_DIGITS, OutOfRangeInt, ParsedObject, describe

MAX_VALUES = 20_000
"""Values (scalars, lists, objects) in one file, each alias counted as the values it stands for. A claim
or class holds about 40; this leaves room for files of hundreds of objects, and keeps checking any file
under a second and 100 MB (one problem per value, each a line, is the costly case)."""
MAX_TEXT = 4 * 1024 * 1024
"""Characters of scalar text in one file, aliases expanded: a file without aliases never holds more than
its 4 MiB, so only aliases can reach this."""
MAX_DEPTH = 64
"""Nesting levels of lists and objects: the deepest path of a claim has 8 levels."""

_LONG_SCALAR = 1024
"""Plain scalars longer than this skip PyYAML's implicit-type regexes, whose sexagesimal pattern needs
memory per repetition (300 MB for a 4 MiB ``1:1:1...``): they are numbers if they look like one."""
_NUMBER = re.compile(r"[-+]?(?:0[xob][0-9a-fA-F_]+|[0-9.][0-9._:eE+-]*)\Z")
_MERGE = "tag:yaml.org,2002:merge"
_INT = "tag:yaml.org,2002:int"
_STR = "tag:yaml.org,2002:str"


class _Refused(Exception):  # noqa: N818 - internal signal, turned into a ConfigError below
    def __init__(self, message: str, event: Any) -> None:
        mark = event.start_mark
        super().__init__(message.replace("{where}", f"line {mark.line + 1}, column {mark.column + 1}"))


class _CountingComposer(Composer):
    """PyYAML's composer, counting values, text and depth, with aliases at their expanded size."""

    peek_event: Callable[[], NodeEvent]  # from the parser it is mixed with (compose_node sees node events)

    def __init__(self) -> None:
        super().__init__()
        self.values = 0
        self.text = 0
        self.depth = 0
        self.sizes: dict[str, tuple[int, int]] = {}  # an anchor's expanded (values, text), once complete

    def compose_document(self) -> Node | None:
        self.sizes = {}  # anchors are per document, as in PyYAML
        node: Node | None = super().compose_document()
        return node

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            self._count_alias(event)
            node: Node | None = super().compose_node(parent, index)
            return node
        start = (self.values, self.text)
        self._count(1, len(event.value) if isinstance(event, ScalarEvent) else 0, event, None)
        collection = not isinstance(event, ScalarEvent)
        if collection:
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise _Refused(f"is nested too deeply to be a config: more than {MAX_DEPTH} levels "
                              "at {where}", event)
        node = super().compose_node(parent, index)
        if collection:
            self.depth -= 1
        if event.anchor is not None:
            self.sizes[event.anchor] = (self.values - start[0], self.text - start[1])
        return node

    def _count_alias(self, event: Any) -> None:
        size = self.sizes.get(event.anchor)
        if size is not None:
            self._count(*size, event, event.anchor)
        elif event.anchor in self.anchors:
            raise _Refused(f"is refused: alias *{event.anchor} at {{where}} sits inside the value it "
                           "refers to, which would never end and has no JSON form", event)
        # else an undefined alias: PyYAML's composer reports it as a syntax error

    def _count(self, values: int, text: int, event: Any, alias: str | None) -> None:
        self.values += values
        self.text += text
        if self.values <= MAX_VALUES and self.text <= MAX_TEXT:
            return
        what = (f"more than {MAX_VALUES} values" if self.values > MAX_VALUES
                else f"more than {MAX_TEXT} characters of text")
        if alias is None:
            raise _Refused(f"holds {what} (by {{where}}): too large to be a config file", event)
        raise _Refused(f"would hold {what} once alias *{alias} at {{where}} is expanded: anchors and "
                       "aliases may repeat parts of a config file, not multiply it", event)


class _StrictConstructor(SafeConstructor):
    """SafeConstructor building ``ParsedObject``s, with long integers and dates read without a crash."""

    def construct_yaml_map(self, node: MappingNode) -> Iterator[ParsedObject]:  # type: ignore[override]
        """Merge keys (``<<``) as YAML 1.1 defines them, without PyYAML's in-place flattening, so that a
        key overriding a merged one is not taken for a duplicate; keys are never hashed unless strings."""
        data = ParsedObject()
        yield data
        merged: dict[str, Any] = {}
        own: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                own.append((key_node, value_node))
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode):
                    raise ConstructorError("while constructing a mapping", node.start_mark,
                                           f"expected a mapping to merge, but found {source.id}",
                                           source.start_mark)
                for key, value in self.construct_object(source, deep=True).items():
                    merged.setdefault(key, value)  # the first source listed wins
        data.update(merged)
        seen: set[str] = set()
        for key_node, value_node in own:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                data.bad_keys.append(describe(key))
                continue
            if key in seen:
                data.duplicates.append(key)
            seen.add(key)
            data[key] = self.construct_object(value_node)

    def construct_yaml_int(self, node: ScalarNode) -> int:
        text = self.construct_scalar(node)
        if _digits(text) > MAX_INT_DIGITS:
            return OutOfRangeInt(_digits(text), negative=text.lstrip().startswith("-"))
        value: int = super().construct_yaml_int(node)
        return value

    def construct_yaml_float(self, node: ScalarNode) -> float:
        text = self.construct_scalar(node)
        if len(text) > _LONG_SCALAR:  # sexagesimal floats are summed in a Python loop, part by part
            return OutOfRangeInt(_digits(text), negative=text.lstrip().startswith("-"))
        value: float = super().construct_yaml_float(node)
        return value

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        """A value its tag cannot hold (``!!int abc``, ``!!bool maybe``) is a YAML error, not a crash."""
        try:
            return super().construct_object(node, deep)
        except ConstructorError:
            raise
        except (ValueError, KeyError, IndexError, TypeError, OverflowError) as err:
            value = describe(node.value) if isinstance(node, ScalarNode) else "this value"
            raise ConstructorError(None, None, f"cannot read {value} as {node.tag}",
                                   node.start_mark) from err


_register: Any = _StrictConstructor.add_constructor  # its stubs accept PyYAML's own loaders only
_register("tag:yaml.org,2002:map", _StrictConstructor.construct_yaml_map)
_register("tag:yaml.org,2002:int", _StrictConstructor.construct_yaml_int)
_register("tag:yaml.org,2002:float", _StrictConstructor.construct_yaml_float)
_register("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)
_register("tag:yaml.org,2002:value", SafeConstructor.construct_yaml_str)  # PyYAML's "=" key


def _digits(text: str) -> int:
    digits = text.strip().lstrip("+-").replace("_", "").replace(":", "")
    return len(digits) - 2 if digits[1:2] in ("x", "o", "b") else len(digits)


class _BoundedResolver(Resolver):
    """PyYAML's resolver, with long plain scalars typed without its regexes."""

    def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
        if kind is ScalarNode and implicit[0] and len(value) > _LONG_SCALAR:
            return _INT if _NUMBER.match(value) else _STR
        tag: str = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]  # stubs
        return tag


if yaml.__with_libyaml__:  # libyaml, in PyYAML's wheels: events come from C, ten times faster
    from yaml._yaml import CParser

    class _Loader(_CountingComposer, CParser, _StrictConstructor, _BoundedResolver):
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _CountingComposer.__init__(self)
            _StrictConstructor.__init__(self)
            _BoundedResolver.__init__(self)
else:  # pragma: no cover - PyYAML built without libyaml: the same rules, read in pure Python
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Loader(Reader, Scanner, Parser, _CountingComposer,  # type: ignore[no-redef]
                  _StrictConstructor, _BoundedResolver):
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            _CountingComposer.__init__(self)
            _StrictConstructor.__init__(self)
            _BoundedResolver.__init__(self)


def load_documents(text: str, name: str) -> list[Any]:
    """The non-empty documents of ``text``; raises ``ConfigError`` naming ``name`` and where it stopped.

    Keys given twice or not strings are not errors here: they are recorded for ``key_issues``, which
    names their path.
    """
    loader: Any = _Loader(text)  # typed loosely: PyYAML's stubs leave check_data untyped
    try:
        documents = []
        while loader.check_data():
            document = loader.get_data()
            if document is not None:
                documents.append(document)
    except _Refused as err:
        raise ConfigError(f"{name} {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = " at line {}, column {}".format(*_position(text, mark)) if mark is not None else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        if isinstance(err, yaml.reader.ReaderError):  # a character YAML forbids: it has an offset, no mark
            before = text.encode()[: err.position].decode(errors="ignore")  # libyaml counts bytes
            line, column = before.count("\n") + 1, len(before) - before.rfind("\n")
            where, problem = f" at line {line}, column {column}", f"{err.reason} (#x{err.character:04x})"
        if "maximum nesting depth" in problem:  # libyaml's own bound (1000), met before ours
            raise ConfigError(f"{name} is nested too deeply to be a config: more than {MAX_DEPTH} "
                              f"levels{where}") from err
        raise ConfigError(f"{name} is neither valid YAML nor JSON{where}: {problem}") from err
    except RecursionError as err:
        raise ConfigError(f"{name} is nested too deeply to be a config") from err
    finally:
        loader.dispose()
    if not documents:
        raise ConfigError(f"{name} holds no object to validate")
    return documents


def _position(text: str, mark: Any) -> tuple[int, int]:
    """Line and column (from 1) of ``mark``; libyaml places an error at the end of a file that lacks a
    final newline on a line past the end, so such a position is moved back to where the text ends."""
    lines = text.count("\n")
    if mark.line > lines:
        return lines + 1, len(text) - (text.rfind("\n") + 1) + 1
    return mark.line + 1, mark.column + 1
