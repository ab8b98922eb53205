"""`read_yaml` refuses what would take minutes and gigabytes to read, a file over the size limit or aliases that multiply
the document (the "billion laughs"), as one validation error naming the file and line; ordinary aliases still work."""

import datetime
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from data_foundation.config.loading import validate_root
from data_foundation.config.yamlfile import MAX_ALIAS_VALUES, MAX_FILE_BYTES, YamlSyntaxError, read_yaml

CASES_DIR = Path(__file__).parent / "cases" / "invalid"
LEVELS = "abcdefghi"
DATA_PY = '''
def fetch_users(total=10, page_size=5):
    yield [{"id": i, "name": f"user {i}"} for i in range(total)]


def fetch_orders(since="2024-01-01", total=10, page_size=5):
    yield [{"id": 1, "user_id": 1, "booked_on": str(since)}]
'''


def _list_bomb() -> str:
    """Nine levels, each a list of nine aliases of the level before: 9**9 values once expanded."""
    lines = ["a: &a [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]" for prev, cur in zip(LEVELS, LEVELS[1:])]
    return "\n".join(lines) + "\n"


def _merge_bomb() -> str:
    """The same with merge keys: each level is nine mappings that each merge the level before (`<<: [*a, *z]`)."""
    lines = ["z: &z {zz: x}", "a: &a {" + ", ".join(f"k{i}: x" for i in range(9)) + "}"]
    lines += [f"{cur}: &{cur} {{" + ", ".join(f"k{i}: {{<<: [*{prev}, *z]}}" for i in range(9)) + "}"
              for prev, cur in zip(LEVELS, LEVELS[1:])]
    return "\n".join(lines) + "\n"


def _root(tmp_path: Path, sources_yaml: str) -> Path:
    folder = tmp_path / "root" / "shop"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "data.py").write_text(DATA_PY)
    (folder / "sources.yaml").write_text(sources_yaml)
    return folder.parent


# Before the limit, either document grew to gigabytes for minutes: the timeout turns that into a failure.
@pytest.mark.timeout(30)
@pytest.mark.parametrize("sources_yaml, alias, line", [(_list_bomb(), "*e", 6), (_merge_bomb(), "*d", 6)],
                         ids=["lists", "merge_keys"])
def test_alias_bomb_is_one_error_naming_the_file(tmp_path, sources_yaml, alias, line):
    _, errors = validate_root(_root(tmp_path, sources_yaml))

    assert len(errors) == 1, [e.format() for e in errors]
    error = errors[0]
    assert Path(error.file) == tmp_path / "root" / "shop" / "sources.yaml"
    assert error.line == line  # the level whose aliases pass the limit
    assert f"the document expands to more than 100,000 values through aliases (`{alias}`)" in error.message
    assert error.hint == ("Aliases may repeat a block, not multiply it: write the values out or use fewer nested "
                          "aliases.")


@pytest.mark.timeout(30)
def test_aliases_may_add_up_to_the_limit(tmp_path):
    block = "block: &b [" + ", ".join(["v"] * 99) + "]\n"  # 100 values with the list itself
    uses = MAX_ALIAS_VALUES // 100
    (tmp_path / "under.yaml").write_text(block + "uses: [" + ", ".join(["*b"] * uses) + "]\n")
    (tmp_path / "over.yaml").write_text(block + "uses: [" + ", ".join(["*b"] * (uses + 1)) + "]\n")

    assert len(read_yaml(tmp_path / "under.yaml").data["uses"]) == uses
    with pytest.raises(YamlSyntaxError, match="more than 100,000 values through aliases"):
        read_yaml(tmp_path / "over.yaml")


def test_ordinary_aliases_and_merge_keys_still_validate_with_their_values(tmp_path):
    root = _root(tmp_path, """\
resources:
  shop.users:
    entry: data.fetch_users
    keyword_arguments: &paging {total: 20, page_size: 10}
    columns:
      id: &key {data_type: bigint, nullable: false}
    tags: &tags {team: data}
  shop.orders:
    <<: &merged {write_disposition: merge, primary_key: id}
    entry: data.fetch_orders
    keyword_arguments:
      <<: *paging
      since: 2024-01-02
    columns: {id: *key, user_id: *key}
    tags: *tags
sources:
  shop:
    resources: [shop.users, shop.orders]
""")

    project, errors = validate_root(root)

    assert errors == []
    users, orders = (project.sources["shop"].resources[i].spec for i in (0, 1))
    assert users.keyword_arguments == {"total": 20, "page_size": 10}
    assert orders.keyword_arguments == {"total": 20, "page_size": 10, "since": datetime.date(2024, 1, 2)}
    assert (orders.write_disposition, orders.primary_key) == ("merge", "id")
    assert orders.columns == {"id": {"data_type": "bigint", "nullable": False},
                              "user_id": {"data_type": "bigint", "nullable": False}}
    assert orders.tags == users.tags == {"team": "data"}
    assert project.sources["shop"].resources[1].line == 8


def test_lines_of_keys_and_duplicate_keys_are_kept(tmp_path):
    file = tmp_path / "sources.yaml"
    file.write_text("a: &x {b: 1}\nc:\n  <<: *x\n  d: [1, *x]\nc: 2\n")

    doc = read_yaml(file)

    assert doc.data == {"a": {"b": 1}, "c": 2}
    assert (doc.line_of(("a", "b")), doc.line_of(("c",))) == (1, 5)
    assert doc.duplicate_keys == [(("c",), 5)]


def test_a_key_written_next_to_a_merge_overrides_it(tmp_path):
    """`<<: *base` then `b: 3` is YAML's override, not a duplicate key; a key written twice still is one."""
    file = tmp_path / "sources.yaml"
    file.write_text("base: &base {a: 1, b: 2}\nx:\n  <<: *base\n  b: 3\ny:\n  <<: *base\n  c: 1\n  c: 2\n")

    doc = read_yaml(file)

    assert doc.data["x"] == {"a": 1, "b": 3}
    assert doc.line_of(("x", "b")) == 4
    assert doc.duplicate_keys == [(("y", "c"), 8)]


def test_alias_inside_its_own_anchor_is_still_refused(tmp_path):
    file = tmp_path / "sources.yaml"
    file.write_text("resources:\n  shop.users: &users\n    entry: data.fetch_users\n    tags: *users\n")

    with pytest.raises(YamlSyntaxError, match="an alias refers to a node that contains it") as info:
        read_yaml(file)
    assert (info.value.line, info.value.column) == (4, 5)


def test_file_over_the_size_limit_is_refused_before_parsing(tmp_path):
    root = _root(tmp_path, "resources: {\n" + "#" * MAX_FILE_BYTES + "\n")  # not even valid YAML: never parsed
    file = root / "shop" / "sources.yaml"

    _, errors = validate_root(root)

    assert [(Path(e.file), e.line) for e in errors] == [(file, 1)]
    size = file.stat().st_size
    assert f"the file has {size:,} bytes, more than the limit of 5,000,000 bytes" in errors[0].message
    assert "few KB" in errors[0].hint


def test_cli_validate_reports_the_alias_bomb_without_traceback(tmp_path):
    shutil.copytree(CASES_DIR / "yaml_alias_bomb", tmp_path / "case")
    env = dict(os.environ, NO_COLOR="1", TERM="dumb", COLUMNS="200")

    result = subprocess.run([sys.executable, "-m", "data_foundation.cli", "--root", "case/root", "validate"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1, output
    assert "case/root/shop/sources.yaml:12 " in output
    assert "the document expands to more than 100,000 values through aliases (`*e`)" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("value, line", [("arguments: [2024-13-01]", 5), ("arguments: [2024-02-30T10:00:00]", 5)])
def test_an_impossible_date_is_a_problem_of_its_file_not_the_end_of_validation(tmp_path, value, line):
    """PyYAML builds `2024-13-01` as a date and fails: one problem at its line, and the other folders are still
    checked (it used to end `foundation validate` with "This looks like a bug")."""
    root = tmp_path / "root"
    for name, yaml_text in (("dated", f"resources:\n  dated.users:\n    entry: data.fetch_users\n\n    {value}\n"),
                            ("other", "resources:\n  other.users:\n    entry: data.fetch_userz\n")):
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text("")
        (root / name / "data.py").write_text(DATA_PY)
        (root / name / "sources.yaml").write_text(yaml_text)

    _, problems = validate_root(root)

    messages = [str(p) for p in problems]
    assert len(messages) == 2, messages
    assert f"dated/sources.yaml:{line}" in messages[0] and "is not a valid date or time" in messages[0]
    assert "quote the value" in problems[0].hint
    assert "other/sources.yaml:3" in messages[1] and "has no function `fetch_userz`" in messages[1]
