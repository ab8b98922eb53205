"""Read YAML into plain Python values while remembering the line of every key, so errors can point at it."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml

__all__ = ["YamlDocument", "read_yaml", "YamlSyntaxError"]

KeyPath = Tuple[Any, ...]


class YamlSyntaxError(Exception):
    def __init__(self, message: str, line: int, column: int):
        super().__init__(message)
        self.line, self.column = line, column


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


def read_yaml(path: Path) -> YamlDocument:
    """Parse `path` safely; raise `YamlSyntaxError` with line and column on malformed YAML."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise YamlSyntaxError(problem or str(exc), mark.line + 1 if mark else 1, mark.column + 1 if mark else 1) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(str(exc), 1, 1) from None
    doc = YamlDocument(data=None)
    if node is not None:
        doc.lines[()] = node.start_mark.line + 1
        doc.data = _construct(node, (), doc, yaml.SafeLoader(""))
    return doc


def _construct(node: yaml.Node, path: KeyPath, doc: YamlDocument, loader: yaml.SafeLoader) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: Dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            key = key if isinstance(key, (str, int, float, bool)) or key is None else str(key)
            child = path + (key,)
            if key in result:
                doc.duplicate_keys.append((child, key_node.start_mark.line + 1))
            doc.lines[child] = key_node.start_mark.line + 1
            result[key] = _construct(value_node, child, doc, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            doc.lines[path + (index,)] = item.start_mark.line + 1
            items.append(_construct(item, path + (index,), doc, loader))
        return items
    return loader.construct_object(node, deep=True)
