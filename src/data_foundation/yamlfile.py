"""Read YAML into plain Python values while remembering the line of every key, so errors can point at it."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml

__all__ = ["YamlDocument", "read_yaml", "YamlSyntaxError"]

KeyPath = Tuple[Any, ...]
_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


SYNTAX_HINT = "Check indentation, colons and closing brackets on this line or the one before."


class YamlSyntaxError(Exception):
    def __init__(self, message: str, line: int, column: int, hint: str = SYNTAX_HINT):
        super().__init__(message)
        self.line, self.column, self.hint = line, column, hint


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
    """Parse `path` safely; raise `YamlSyntaxError` with line and column on malformed YAML."""
    text = Path(path).read_text(encoding="utf-8")
    doc = YamlDocument(data=None)
    try:
        node = yaml.compose(text, Loader=_COMPOSER)
        if node is not None:
            doc.lines[()] = node.start_mark.line + 1
            doc.data = _construct(node, (), doc, yaml.SafeLoader(""), frozenset())
    except yaml.MarkedYAMLError as exc:  # syntax, and tags such as `!!python/name:` that safe loading refuses
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        hint = "Remove the `!!` tag: sources.yaml holds plain values only." if "tag" in problem else SYNTAX_HINT
        raise YamlSyntaxError(problem or str(exc), mark.line + 1 if mark else 1, mark.column + 1 if mark else 1,
                              hint) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(str(exc), 1, 1) from None
    return doc


def _construct(node: yaml.Node, path: KeyPath, doc: YamlDocument, loader: yaml.SafeLoader, parents: frozenset) -> Any:
    parents = parents | {id(node)}
    if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
        loader.flatten_mapping(node)
        result: Dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            key = key if isinstance(key, (str, int, float, bool)) or key is None else str(key)
            child = path + (key,)
            if key in result:
                doc.duplicate_keys.append((child, key_node.start_mark.line + 1))
            doc.lines[child] = key_node.start_mark.line + 1
            _refuse_recursion(value_node, parents, key_node.start_mark)
            result[key] = _construct(value_node, child, doc, loader, parents)
        return result
    if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
        items = []
        for index, item in enumerate(node.value):
            doc.lines[path + (index,)] = item.start_mark.line + 1
            _refuse_recursion(item, parents, node.start_mark)
            items.append(_construct(item, path + (index,), doc, loader, parents))
        return items
    return loader.construct_object(node, deep=True)  # scalars and explicitly tagged nodes (`!!set`); raises on unsafe tags


def _refuse_recursion(node: yaml.Node, parents: frozenset, where: yaml.Mark) -> None:
    """`a: &x {b: *x}` is a node inside itself: constructing it would never end."""
    if id(node) in parents:
        raise YamlSyntaxError("an alias refers to a node that contains it", where.line + 1, where.column + 1,
                              "Remove the alias (`*name`) inside the block its anchor (`&name`) marks.")
