"""Read YAML into plain Python values while remembering the line of every key, so errors can point at it."""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml

from data_foundation.errors import FoundationError

__all__ = ["YamlDocument", "YamlLimitError", "YamlSyntaxError", "read_yaml"]

KeyPath = Tuple[Any, ...]
_MAP, _SEQ, _MERGE = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:merge"


SYNTAX_HINT = "Check indentation, colons and closing brackets on this line or the one before."
# A real sources.yaml is a few KB: the limits stop only documents that would take minutes and gigabytes to read.
MAX_FILE_BYTES = 5_000_000
MAX_ALIAS_VALUES = 100_000  # values that aliases add to the document, beyond those written in it
_ANCHOR = re.compile(r"(?:!\S*\s+)?&([^\s,\[\]{}]+)")  # `&name`, maybe after a tag, where an aliased node starts


class YamlSyntaxError(FoundationError):
    """Malformed YAML, at a line and column."""

    def __init__(self, message: str, line: int, column: int, hint: str = SYNTAX_HINT):
        super().__init__(message)
        self.line, self.column, self.hint = line, column, hint


class YamlLimitError(YamlSyntaxError):
    """Well-formed YAML that is too big to read: over the file size or alias expansion limit."""


@dataclass
class YamlDocument:
    data: Any
    lines: Dict[KeyPath, int] = field(default_factory=dict)
    duplicate_keys: List[Tuple[KeyPath, int]] = field(default_factory=list)

    def line_of(self, path: KeyPath) -> int:
        """Line of the deepest known node on `path` (1-based); 1 when nothing on it is known."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


# libyaml's parser when PyYAML was built with it: half the cost of validating hundreds of source folders
_COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> YamlDocument:
    """Parse `path` safely; raise `YamlSyntaxError` with line and column on malformed YAML, on a file larger than
    `MAX_FILE_BYTES` and on aliases that would multiply the document beyond `MAX_ALIAS_VALUES` values."""
    size = Path(path).stat().st_size
    if size > MAX_FILE_BYTES:
        raise YamlLimitError(f"the file has {size:,} bytes, more than the limit of {MAX_FILE_BYTES:,} bytes", 1, 1,
                              "A sources.yaml declares resources in a few KB: check that this is the right file, and "
                              "keep data out of it (let `data.py` fetch it).")
    text = Path(path).read_text(encoding="utf-8")
    doc = YamlDocument(data=None)
    try:
        node = yaml.compose(text, Loader=_COMPOSER)
        if node is not None:
            _check_expansion(node, text)
            doc.lines[()] = node.start_mark.line + 1
            doc.data = _construct(node, (), doc, yaml.SafeLoader(""))
    except yaml.MarkedYAMLError as exc:  # syntax, and tags such as `!!python/name:` that safe loading refuses
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        hint = "Remove the `!!` tag: sources.yaml holds plain values only." if "tag" in problem else SYNTAX_HINT
        raise YamlSyntaxError(problem or str(exc), mark.line + 1 if mark else 1, mark.column + 1 if mark else 1,
                              hint) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(str(exc), 1, 1) from None
    return doc


def _construct(node: yaml.Node, path: KeyPath, doc: YamlDocument, loader: yaml.SafeLoader) -> Any:
    """Build the value of a node checked by `_check_expansion`: no loops, and a bounded number of values."""
    if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
        written = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE)
        loader.flatten_mapping(node)  # the pairs of `<<: *base` come first, then the ones written here
        merged = len(node.value) - written
        result: Dict[Any, Any] = {}
        explicit: set = set()
        for index, (key_node, value_node) in enumerate(node.value):
            key = loader.construct_object(key_node, deep=True)
            key = key if isinstance(key, (str, int, float, bool)) or key is None else str(key)
            child = path + (key,)
            if index >= merged:  # a key written here overrides a merged one; written twice, the later would win
                if key in explicit:
                    doc.duplicate_keys.append((child, key_node.start_mark.line + 1))
                explicit.add(key)
            doc.lines[child] = key_node.start_mark.line + 1
            result[key] = _construct(value_node, child, doc, loader)
        return result
    if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
        items = []
        for index, item in enumerate(node.value):
            doc.lines[path + (index,)] = item.start_mark.line + 1
            items.append(_construct(item, path + (index,), doc, loader))
        return items
    try:
        return loader.construct_object(node, deep=True)  # scalars and tagged nodes (`!!set`); raises on unsafe tags
    except ValueError as exc:  # a scalar that looks like a date or time but is none: `2024-13-01`
        mark = node.start_mark
        raise YamlSyntaxError(f"`{node.value}` is not a valid date or time: {exc}", mark.line + 1, mark.column + 1,
                              "Write a real date (YYYY-MM-DD), or quote the value to keep it as text.") from None


def _check_expansion(root: yaml.Node, text: str) -> None:
    """Refuse an alias inside its own anchor (`a: &x {b: *x}`, infinitely deep) and aliases that multiply the document
    (`b: &b [*a, *a, ...]`, nested: the "billion laughs"), before anything is built or merged.

    Each node is visited once (an iterative depth-first walk), so this is linear in the document however much the
    aliases would expand it. A node's size is the number of values it expands to; every use of a node after its first
    adds its size. Merge keys (`<<: [*a, *b]`) count in full, like any other alias.
    """
    sizes: Dict[int, int] = {}
    used: set = set()
    open_nodes: set = set()  # on the current path from the root: meeting one again is a loop
    added = 0
    stack: List[Tuple[yaml.Node, yaml.Mark, bool]] = [(root, root.start_mark, False)]
    while stack:
        node, where, finished = stack.pop()
        if not finished:
            if id(node) in open_nodes:
                raise YamlSyntaxError("an alias refers to a node that contains it", where.line + 1, where.column + 1,
                                      "Remove the alias (`*name`) inside the block its anchor (`&name`) marks.")
            if id(node) not in sizes:
                open_nodes.add(id(node))
                stack.append((node, where, True))
                stack.extend((child, mark, False) for child, mark in reversed(_children(node)))
            continue
        open_nodes.discard(id(node))
        sizes[id(node)] = 1
        for child, mark in _children(node):
            sizes[id(node)] += sizes[id(child)]
            if id(child) in used:
                added += sizes[id(child)]
                if added > MAX_ALIAS_VALUES:
                    raise _alias_bomb(child, mark, text)
            used.add(id(child))


def _children(node: yaml.Node) -> List[Tuple[yaml.Node, yaml.Mark]]:
    """A node's children, each with the position an error about it points at (as `_construct` reports lines)."""
    if isinstance(node, yaml.MappingNode):
        return [(child, key.start_mark) for key, value in node.value for child in (key, value)]
    if isinstance(node, yaml.SequenceNode):
        return [(item, node.start_mark) for item in node.value]
    return []


def _alias_bomb(node: yaml.Node, where: yaml.Mark, text: str) -> YamlLimitError:
    anchor = _ANCHOR.match(text, node.start_mark.index)
    alias = f" (`*{anchor.group(1)}`)" if anchor else ""
    return YamlLimitError(f"the document expands to more than {MAX_ALIAS_VALUES:,} values through aliases{alias}",
                           where.line + 1, where.column + 1,
                           "Aliases may repeat a block, not multiply it: write the values out or use fewer nested "
                           "aliases.")
