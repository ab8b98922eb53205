"""`pii` in sources.yaml: hashed (salted SHA-256) and dropped columns never reach dlt's files, the destination or the
logs, in dict pages, single dicts, arrow tables, pydantic models, dataclasses, named tuples and a `data_from`
transformer's input; a row whose columns cannot be known stops the run; a `pii` column that never appears is a
warning."""

import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List

import duckdb
import pytest

from conftest import table_counts, write_source
from data_foundation.load.building import build_source
from data_foundation.load.destinations import create_target
from data_foundation.config.loading import load_project
from data_foundation.load.running import RunFailed, create_pipeline, run_source

SALT = "pepper-for-tests-7f3a"
RAW = ["alice.raw@example.com", "bob.raw@example.com", "carol.raw@example.com", "dave.raw@example.com",
       "+1-555-0101", "+1-555-0199", "123-45-6789", "987-65-4321", "555-00-1111", "erin.raw@example.com",
       "222-33-4444"]

DATA_PY = '''
import os

import pyarrow as pa


def _called():
    if os.environ.get("CRM_CALLS"):
        with open(os.environ["CRM_CALLS"], "a") as handle:
            handle.write("x")


def fetch_people():
    """People: two pages and one single dict."""
    _called()
    yield [
        {"id": 1, "name": "Alice", "email": "alice.raw@example.com", "phone": "+1-555-0101", "ssn": "123-45-6789",
         "updated_at": "2024-01-01"},
        {"id": 2, "name": "Bob", "email": "bob.raw@example.com", "phone": None, "ssn": "987-65-4321",
         "updated_at": "2024-01-02"},
    ]
    yield [{"id": 3, "name": "Carol", "email": "carol.raw@example.com", "phone": 15550102, "ssn": "555-00-1111",
            "updated_at": "2024-01-03"}]
    yield {"id": 4, "name": "Dave", "email": "dave.raw@example.com", "phone": "+1-555-0199", "ssn": None,
           "updated_at": "2024-01-04"}


def contacts(people):
    """What a transformer over `people` gets to see (a page, or the single dict)."""
    people = people if isinstance(people, list) else [people]
    return [{"person_id": p["id"], "email_seen": p.get("email"), "has_ssn": "ssn" in p} for p in people]


def fetch_accounts():
    """An arrow table; `Email` is matched after name normalisation."""
    yield pa.table({"id": [10, 11], "Email": ["erin.raw@example.com", None], "ssn": ["222-33-4444", "x"],
                    "plan": ["pro", "free"]})
'''

SOURCES_YAML = '''
resources:
  crm.people:
    entry: data.fetch_people
    write_disposition: merge
    primary_key: id
    incremental: {cursor_path: updated_at}
    pii:
      hash: [email, phone]
      drop: [ssn]
  crm.contacts:
    entry: data.contacts
    data_from: crm.people
  crm.accounts:
    entry: data.fetch_accounts
    parallelized: true
    pii: {hash: email, drop: [ssn]}
'''


def sha(value) -> str:
    return hashlib.sha256((SALT + str(value)).encode("utf-8")).hexdigest()


@pytest.fixture
def crm_root(tmp_path: Path) -> Path:
    return write_source(tmp_path / "sources", "crm", DATA_PY, SOURCES_YAML)


@pytest.fixture
def salt(monkeypatch):
    monkeypatch.setenv("DATA_FOUNDATION__PII_SALT", SALT)
    return SALT


def _all_text_in_duckdb(path: Path) -> str:
    """Every value of every table of every schema (the `_dlt_*` tables included, dlt's compressed state decoded)."""
    from dlt.common.versioned_state import decompress_state

    chunks: List[str] = []
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.sql("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
        assert any(name == "_dlt_pipeline_state" for _, name in tables)
        for schema, name in tables:
            for row in con.sql(f'SELECT * FROM "{schema}"."{name}"').fetchall():
                chunks.append(repr(row))
                if name == "_dlt_pipeline_state":
                    chunks.extend(json.dumps(decompress_state(v)) for v in row if isinstance(v, str) and len(v) > 40
                                  and _decodes(v))
    return "\n".join(chunks)


def _decodes(value: str) -> bool:
    from dlt.common.versioned_state import decompress_state

    try:
        decompress_state(value)
        return True
    except Exception:
        return False


def _files(folder: Path) -> Iterator[Path]:
    return (p for p in folder.rglob("*") if p.is_file())


def _file_text(path: Path) -> str:
    """The bytes of a file as text, plus its decompressed / decoded content for gzip and parquet files."""
    data = path.read_bytes()
    parts = [data.decode("utf-8", errors="replace")]
    if data[:2] == b"\x1f\x8b":
        parts.append(gzip.decompress(data).decode("utf-8", errors="replace"))
    if data[:4] == b"PAR1":
        import pyarrow.parquet as pq

        parts.append(repr(pq.read_table(path).to_pylist()))
    return "\n".join(parts)


def _leaks(text: str) -> List[str]:
    return [value for value in RAW if value in text]


def test_hashed_and_dropped_before_anything_is_written(crm_root, salt, duckdb_file):
    project = load_project(crm_root)
    run = run_source(project.sources["crm"], create_target("duckdb", str(duckdb_file)))
    assert run.rows_loaded == {"people": 4, "contacts": 4, "accounts": 2}

    with duckdb.connect(str(duckdb_file), read_only=True) as con:
        people = con.sql("SELECT id, name, email, phone FROM crm.people ORDER BY id").fetchall()
        columns = {r[0] for r in con.sql("SELECT column_name FROM information_schema.columns "
                                        "WHERE table_schema = 'crm' AND table_name = 'people'").fetchall()}
        contacts = con.sql("SELECT person_id, email_seen, has_ssn FROM crm.contacts ORDER BY person_id").fetchall()
        accounts = con.sql("SELECT id, email, plan FROM crm.accounts ORDER BY id").fetchall()
        account_columns = {r[0] for r in con.sql("SELECT column_name FROM information_schema.columns "
                                                "WHERE table_schema = 'crm' AND table_name = 'accounts'").fetchall()}
    assert people == [
        (1, "Alice", sha("alice.raw@example.com"), sha("+1-555-0101")),
        (2, "Bob", sha("bob.raw@example.com"), None),  # None stays None
        (3, "Carol", sha("carol.raw@example.com"), sha(15550102)),  # not a string: str(value) is hashed
        (4, "Dave", sha("dave.raw@example.com"), sha("+1-555-0199")),
    ]
    assert "ssn" not in columns and "email" in columns
    # the transformer receives its parent's pages after hashing and dropping
    assert contacts == [(i, sha(e), False) for i, e in enumerate(RAW[:4], start=1)]
    assert accounts == [(10, sha("erin.raw@example.com"), "pro"), (11, None, "free")]
    assert "ssn" not in account_columns

    assert _leaks(_all_text_in_duckdb(duckdb_file)) == []
    pipelines = Path(os.environ["FOUNDATION_PIPELINES_DIR"])
    files = list(_files(pipelines))
    assert files
    everything = {str(p): _file_text(p) for p in files}
    assert {p: _leaks(t) for p, t in everything.items() if _leaks(t)} == {}
    # the scan does see the loaded data: dlt keeps the loaded package's files
    assert any(sha("alice.raw@example.com") in t for t in everything.values())
    assert not any(SALT in t for t in everything.values())


def test_extracted_files_hold_no_raw_values(crm_root, salt, duckdb_file):
    """Right after dlt's extract step (before normalize), the files under the pipelines dir are masked already."""
    source = load_project(crm_root).sources["crm"]
    pipeline = create_pipeline(source, create_target("duckdb", str(duckdb_file)))
    pipeline.extract(build_source(source))
    extracted = [p for p in _files(Path(os.environ["FOUNDATION_PIPELINES_DIR"])) if "/normalize/" in str(p)]
    texts = {str(p): _file_text(p) for p in extracted}
    assert any(sha("alice.raw@example.com") in t for t in texts.values()), sorted(texts)
    assert any(sha("erin.raw@example.com") in t for t in texts.values()), sorted(texts)  # the arrow table
    assert {p: _leaks(t) for p, t in texts.items() if _leaks(t)} == {}


def _cli(tmp_path: Path, root: Path, duckdb_file: Path, *tables: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "RUNTIME__LOG_LEVEL": "INFO", "COLUMNS": "200", **env}
    selectors = [f"crm.{t}" for t in tables] or ["crm"]
    return subprocess.run([sys.executable, "-m", "data_foundation.cli", "--root", str(root), "run", *selectors,
                           "--duckdb-file", str(duckdb_file)],
                          cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120)


def test_cli_run_logs_no_raw_values(crm_root, salt, duckdb_file, tmp_path):
    result = _cli(tmp_path, crm_root, duckdb_file)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "[INFO]" in result.stderr  # dlt did log at INFO
    assert _leaks(output) == [] and SALT not in output
    assert _leaks(_all_text_in_duckdb(duckdb_file)) == []


def test_missing_salt_fails_the_run_before_fetching(crm_root, duckdb_file, tmp_path, monkeypatch):
    monkeypatch.delenv("DATA_FOUNDATION__PII_SALT", raising=False)
    calls = tmp_path / "calls"
    monkeypatch.setenv("CRM_CALLS", str(calls))
    source = load_project(crm_root).sources["crm"]

    with pytest.raises(RunFailed) as failure:
        run_source(source, create_target("duckdb", str(duckdb_file)), tables=["people"])
    message = str(failure.value)
    assert "DATA_FOUNDATION__PII_SALT" in message and "crm.people" in message and "email, phone" in message
    assert not calls.exists()  # the entry was never called: nothing raw was fetched

    result = _cli(tmp_path, crm_root, duckdb_file, DATA_FOUNDATION__PII_SALT="")
    assert result.returncode == 1
    assert "DATA_FOUNDATION__PII_SALT" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert _leaks(result.stdout + result.stderr) == []


def test_drop_only_needs_no_salt(tmp_path, duckdb_file, monkeypatch):
    monkeypatch.delenv("DATA_FOUNDATION__PII_SALT", raising=False)
    folder = tmp_path / "sources" / "hr"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "data.py").write_text("def fetch():\n    yield [{'id': 1, 'ssn': '123-45-6789'}]\n")
    (folder / "sources.yaml").write_text("resources:\n  hr.staff:\n    entry: data.fetch\n    pii: {drop: [ssn]}\n")
    run_source(load_project(folder.parent).sources["hr"], create_target("duckdb", str(duckdb_file)))
    assert _leaks(_all_text_in_duckdb(duckdb_file)) == []
    with duckdb.connect(str(duckdb_file), read_only=True) as con:
        assert con.sql("SELECT * FROM hr.staff").fetchall()[0][0] == 1


def test_pii_validation_errors(tmp_path):
    from data_foundation.config.loading import validate_root

    folder = tmp_path / "sources" / "shop"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "data.py").write_text("def fetch():\n    yield []\n")
    (folder / "sources.yaml").write_text(
        "resources:\n"
        "  shop.a:\n    entry: data.fetch\n    pii: {hsh: [email]}\n"
        "  shop.b:\n    entry: data.fetch\n    primary_key: id\n    pii: {drop: [id]}\n"
        "  shop.c:\n    entry: data.fetch\n    incremental: {cursor_path: at}\n    pii: {hash: [at]}\n")
    _, errors = validate_root(folder.parent)
    found = {(e.line, e.key_path): e for e in errors}
    assert set(found) == {(4, "resources.shop.a.pii.hsh"), (8, "resources.shop.b.pii"), (12, "resources.shop.c.pii")}
    assert "did you mean `hash`" in found[(4, "resources.shop.a.pii.hsh")].hint
    assert "primary/merge key" in found[(8, "resources.shop.b.pii")].message
    assert "incremental cursor" in found[(12, "resources.shop.c.pii")].message


ROW_TYPES_PY = '''
import dataclasses
from typing import NamedTuple, Optional

import pydantic


class Person(pydantic.BaseModel):
    id: int
    email: str
    ssn: Optional[str] = None


@dataclasses.dataclass
class Contact:
    id: int
    email: str
    ssn: str


class Row(NamedTuple):
    id: int
    email: str
    ssn: str


class Opaque:
    """Not a row dlt knows how to read: its columns cannot be known before it is serialized."""

    def __init__(self, email):
        self.email = email

    def __str__(self):
        return self.email


def models():
    yield [Person(id=1, email="alice.raw@example.com", ssn="123-45-6789"),
           Person(id=2, email="bob.raw@example.com")]


def dataclasses_():
    yield Contact(id=3, email="carol.raw@example.com", ssn="987-65-4321")


def tuples():
    yield [Row(4, "dave.raw@example.com", "555-00-1111")]


def opaque():
    yield [Opaque("erin.raw@example.com")]


def renamed():
    """The API renamed `email` to `e_mail_address`: the pii list no longer matches."""
    yield [{"id": 5, "e_mail_address": "erin.raw@example.com", "ssn": "222-33-4444"}]
'''

ROW_TYPES_YAML = '''
resources:
  crm.models: {entry: data.models, primary_key: id, pii: {hash: [email], drop: [ssn]}}
  crm.dataclasses: {entry: data.dataclasses_, primary_key: id, pii: {hash: [email], drop: [ssn]}}
  crm.tuples: {entry: data.tuples, primary_key: id, pii: {hash: [email], drop: [ssn]}}
  crm.opaque: {entry: data.opaque, pii: {hash: [email]}}
  crm.renamed: {entry: data.renamed, primary_key: id, pii: {hash: [email], drop: [ssn]}}
'''


@pytest.fixture
def row_types_root(tmp_path: Path) -> Path:
    return write_source(tmp_path / "sources", "crm", ROW_TYPES_PY, ROW_TYPES_YAML)


def test_pydantic_models_dataclasses_and_named_tuples_are_masked(row_types_root, salt, duckdb_file):
    source = load_project(row_types_root).sources["crm"]
    run = run_source(source, create_target("duckdb", str(duckdb_file)), tables=["models", "dataclasses", "tuples"])
    assert run.rows_loaded == {"models": 2, "dataclasses": 1, "tuples": 1}
    assert run.warnings == []
    with duckdb.connect(str(duckdb_file), read_only=True) as con:
        for table, rows in (("models", [(1, sha("alice.raw@example.com")), (2, sha("bob.raw@example.com"))]),
                            ("dataclasses", [(3, sha("carol.raw@example.com"))]),
                            ("tuples", [(4, sha("dave.raw@example.com"))])):
            assert con.sql(f"SELECT id, email FROM crm.{table} ORDER BY id").fetchall() == rows
            columns = {r[0] for r in con.sql("SELECT column_name FROM information_schema.columns WHERE "
                                             f"table_schema = 'crm' AND table_name = '{table}'").fetchall()}
            assert "ssn" not in columns
    assert _leaks(_all_text_in_duckdb(duckdb_file)) == []
    files = {str(p): _file_text(p) for p in _files(Path(os.environ["FOUNDATION_PIPELINES_DIR"]))}
    assert {p: _leaks(t) for p, t in files.items() if _leaks(t)} == {}


def test_rows_whose_columns_cannot_be_masked_stop_the_run_before_anything_is_written(row_types_root, salt,
                                                                                    duckdb_file):
    source = load_project(row_types_root).sources["crm"]
    with pytest.raises(RunFailed) as failure:
        run_source(source, create_target("duckdb", str(duckdb_file)), tables=["opaque"])
    message = str(failure.value)
    assert "resource `crm.opaque` declares `pii` but yielded a `" in message and "Opaque`" in message
    assert _leaks(message) == []
    files = {str(p): _file_text(p) for p in _files(Path(os.environ["FOUNDATION_PIPELINES_DIR"]))}
    assert {p: _leaks(t) for p, t in files.items() if _leaks(t)} == {}
    assert not duckdb_file.exists() or table_counts(duckdb_file, "crm") == {}  # nothing loaded


def test_a_pii_column_that_never_appears_is_a_warning(row_types_root, salt, duckdb_file, tmp_path):
    source = load_project(row_types_root).sources["crm"]
    run = run_source(source, create_target("duckdb", str(duckdb_file)), tables=["renamed"])
    assert run.warnings == ["resource `crm.renamed`: pii column(s) `email` never appeared in its 1 row(s): check "
                            "the name (a renamed field is loaded unmasked)"]
    result = _cli(tmp_path, row_types_root, tmp_path / "cli.duckdb", "renamed")
    assert result.returncode == 0, result.stderr
    assert "Warning: resource `crm.renamed`: pii column(s) `email` never appeared" in " ".join(result.stderr.split())


def test_a_run_of_other_tables_needs_no_salt(tmp_path, duckdb_file, monkeypatch):
    """The salt is checked when dlt opens a resource that hashes, before its entry runs: a run that leaves that
    resource out (a `foundation run` selection, a Dagster subset) loads without one."""
    monkeypatch.delenv("DATA_FOUNDATION__PII_SALT", raising=False)
    calls = tmp_path / "calls"
    monkeypatch.setenv("CRM_CALLS", str(calls))
    root = write_source(tmp_path / "sources", "shop", DATA_PY,
                        "resources:\n  shop.people:\n    entry: data.fetch_people\n    pii: {hash: [email]}\n"
                        "  shop.accounts:\n    entry: data.fetch_accounts\n")
    source = load_project(root).sources["shop"]
    run = run_source(source, create_target("duckdb", str(duckdb_file)), tables=["accounts"])
    assert run.rows_loaded == {"accounts": 2}
    with pytest.raises(RunFailed, match="DATA_FOUNDATION__PII_SALT"):
        run_source(source, create_target("duckdb", str(duckdb_file)), tables=["people"])
    assert not calls.exists()  # fetch_people never ran
