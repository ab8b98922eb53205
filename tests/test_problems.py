"""One validation, one `Problems` collector: warnings apart from errors, a problem reported once however many entries
lead to it, and a name with a problem of its own not reported again by what refers to it."""

import textwrap
from pathlib import Path
from typing import Dict

from data_foundation.config.loading import validate_root
from data_foundation.config.problems import Problems
from data_foundation.errors import Problem

ROWS = "def rows(items=None):\n    yield [{'id': 1}]\n"


def _root(root: Path, folders: Dict[str, str], data: str = ROWS) -> Path:
    """One source folder per `folders` item: its sources.yaml, and a data.py with `rows`."""
    for name, sources in folders.items():
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text("")
        (root / name / "data.py").write_text(data)
        (root / name / "sources.yaml").write_text(textwrap.dedent(sources))
    return root


def _problem(message: str, line: int = 1, severity: str = "error", file: str = "shop/sources.yaml") -> Problem:
    return Problem(Path(file), line, "resources.shop.rows", message, severity=severity)


# --- the collector ------------------------------------------------------------------------------------------------


def test_errors_and_warnings_are_told_apart_by_severity():
    problems = Problems()

    problems.extend([_problem("a"), _problem("b", severity="warning"), _problem("c")])

    assert [p.message for p in problems.errors] == ["a", "c"]
    assert [p.message for p in problems.warnings] == ["b"]


def test_add_once_drops_the_same_problem_at_the_same_place():
    problems = Problems()

    problems.add_once(_problem("import failed", line=3))
    problems.add_once(Problem(Path("shop/sources.yaml"), 3, "resources.shop.other.entry", "import failed"))
    problems.add_once(_problem("import failed", line=4))
    problems.add(_problem("import failed", line=3))  # `add` never drops anything

    assert [(p.line, p.key_path) for p in problems.errors] == [
        (3, "resources.shop.rows"), (4, "resources.shop.rows"), (3, "resources.shop.rows")]


def test_merge_appends_in_order_and_keeps_broken_names():
    root, folder = Problems(), Problems()
    root.add(_problem("first"))
    folder.add(_problem("second"))
    folder.add(_problem("empty", severity="warning"))
    folder.mark_broken("shop.rows")

    root.merge(folder)

    assert [p.message for p in root.errors] == ["first", "second"]
    assert [p.message for p in root.warnings] == ["empty"]
    assert root.is_broken("shop.rows") and not root.is_broken("shop.other")


# --- through validate_root ----------------------------------------------------------------------------------------


def test_module_failing_to_import_is_reported_once_for_three_entries_in_two_folders(tmp_path):
    root = _root(tmp_path / "root", {
        "shop": """\
            resources:
              shop.users: {entry: data.rows}
              shop.orders: {entry: data.rows}
            """,
        "stock": """\
            resources:
              stock.items: {entry: shop.data.rows}
            """})
    (root / "shop" / "data.py").write_text("raise RuntimeError('no network at import')\n" + ROWS)

    _, errors = validate_root(root)

    assert [(Path(e.file).relative_to(root).as_posix(), e.line, e.key_path) for e in errors] == [
        ("shop/data.py", 1, "resources.shop.users.entry")]
    assert "RuntimeError: no network at import" in errors[0].message


def test_resources_with_their_own_problem_are_not_reported_again_by_their_source(tmp_path):
    root = _root(tmp_path / "root", {"shop": """\
        resources:
          shop.users: {entry: data.rows, write_disposition: upsert}
          shop.orders: {entry: data.fetch_orders}
          shop.items: {entry: data.rows}
        sources:
          shop:
            resources: [shop.users, shop.orders, shop.items, shop.stock]
        """})

    _, errors = validate_root(root)

    assert [(e.line, e.key_path) for e in errors] == [
        (2, "resources.shop.users.write_disposition"), (3, "resources.shop.orders.entry"),
        (7, "sources.shop.resources")]
    assert errors[2].message == "resource `shop.stock` is not declared"  # declared nowhere: still reported


def test_data_from_naming_a_broken_resource_is_not_reported_again(tmp_path):
    root = _root(tmp_path / "root", {"shop": """\
        resources:
          shop.users: {entry: data.fetch_users}
          shop.orders: {entry: data.rows, data_from: shop.users}
          shop.lines: {entry: data.rows, write_disposition: upsert}
          shop.items: {entry: data.rows, data_from: shop.lines}
          shop.stock: {entry: data.rows, data_from: shop.stocks}
        """})

    _, errors = validate_root(root)

    assert [(e.line, e.key_path) for e in errors] == [
        (4, "resources.shop.lines.write_disposition"), (2, "resources.shop.users.entry"),
        (6, "resources.shop.stock.data_from")]
    assert errors[2].message == "`shop.stocks` is not a resource of source `shop`"


def test_problems_of_one_folder_stay_together_in_the_order_of_folders(tmp_path):
    root = _root(tmp_path / "root", {
        "alpha": """\
            resources:
              alpha.users: {entry: data.rows, kinds: 5}
              alpha.orders: {entry: data.nope}
              shared.rows: {entry: data.rows}
            """,
        "beta": """\
            resources:
              beta.users: {entry: data.rows, owners: 5}
              shared.rows: {entry: data.rows}
            """,
        "empty": ""})

    project, errors = validate_root(root)

    assert [(e.file.parent.name, e.key_path) for e in errors] == [
        ("alpha", "resources.alpha.users.kinds"), ("alpha", "resources.alpha.orders.entry"),
        ("beta", "resources.beta.users.owners"), ("beta", "resources.shared.rows")]
    assert "also declared in" in errors[-1].message
    assert [w.file.parent.name for w in project.warnings] == ["empty"]


def test_a_misplaced_source_key_does_not_hide_the_resources_other_problems(tmp_path):
    """`retry` on a resource is one problem; the resource is still checked, so its `on_cron` without a schedule (known
    only once merged with the source's meta) is reported in the same pass."""
    root = _root(tmp_path / "root", {"m": """\
        resources:
          m.a:
            entry: data.rows
            meta:
              dagster:
                retry: {max_retries: 2}
                automation_condition: on_cron
        sources:
          m:
            resources: [m.a]
        """})

    _, errors = validate_root(root)

    assert [(e.line, e.key_path) for e in errors] == [
        (6, "resources.m.a.meta.dagster.retry"), (7, "resources.m.a.meta.dagster.automation_condition")]
    assert "applies to the whole source" in errors[0].message
    assert "needs `automation_condition_config.cron_schedule`" in errors[1].message
