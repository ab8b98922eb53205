"""Phase 5, each source as a whole: every cycle of `data_from` is reported once, at the resource of it declared first,
as the chain from there back to it; a chain that only runs into a cycle is not a cycle of its own."""

import textwrap
from pathlib import Path

from data_foundation.config.loading import validate_root

ROWS = "def rows(items=None):\n    yield [{'id': 1}]\n"
HINT = "Remove `data_from` from one of them: the chain must start at a resource that loads data itself."


def _shop(root: Path, resources: str) -> Path:
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "data.py").write_text(ROWS)
    (root / "shop" / "sources.yaml").write_text("resources:\n" + textwrap.indent(textwrap.dedent(resources), "  "))
    return root


def test_each_cycle_is_reported_once_at_its_first_resource(tmp_path):
    root = _shop(tmp_path / "root", """\
        shop.into: {entry: data.rows, data_from: shop.e}
        shop.b: {entry: data.rows, data_from: shop.a}
        shop.a: {entry: data.rows, data_from: shop.b}
        shop.self: {entry: data.rows, data_from: shop.self}
        shop.e: {entry: data.rows, data_from: shop.f}
        shop.f: {entry: data.rows, data_from: shop.g}
        shop.g: {entry: data.rows, data_from: shop.e}
        shop.start: {entry: data.rows}
        shop.next: {entry: data.rows, data_from: shop.start}
        """)

    _, errors = validate_root(root)

    assert [(e.line, e.key_path, e.message) for e in errors] == [
        (3, "resources.shop.b.data_from", "`data_from` goes round in a cycle: shop.b -> shop.a -> shop.b"),
        (5, "resources.shop.self.data_from", "`data_from` goes round in a cycle: shop.self -> shop.self"),
        (6, "resources.shop.e.data_from", "`data_from` goes round in a cycle: shop.e -> shop.f -> shop.g -> shop.e"),
    ]
    assert {e.hint for e in errors} == {HINT}


def test_chains_without_a_cycle_are_valid(tmp_path):
    root = _shop(tmp_path / "root", """\
        shop.lines: {entry: data.rows, data_from: shop.orders}
        shop.orders: {entry: data.rows, data_from: shop.users}
        shop.users: {entry: data.rows}
        shop.notes: {entry: data.rows, data_from: shop.users}
        """)

    project, errors = validate_root(root)

    assert errors == []
    assert [r.spec.data_from for r in project.sources["shop"].resources] == [
        "shop.orders", "shop.users", None, "shop.users"]
