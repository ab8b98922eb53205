"""The shorthands of `sources.yaml`, read by the field types of `config/base.py` wherever a model uses them: `key:`
(null) for an empty mapping, one name for a list of one, `{api}` for `[api]`, and an entry's shape."""

import pytest
from pydantic import ValidationError

from data_foundation.config.spec import PiiSpec, ResourceSpec, SourcesFile, SourceSpec


def test_null_mappings_are_empty():
    resource = ResourceSpec(entry="data.rows", keyword_arguments=None, columns=None, tags=None)
    assert (resource.keyword_arguments, resource.columns, resource.tags) == ({}, {}, {})
    assert SourceSpec(tags=None).tags == {}
    assert SourcesFile(resources=None, sources=None) == SourcesFile()


@pytest.mark.parametrize("written, names", [
    ({"api": None}, ["api"]),  # `kinds: {api}`
    ("api", ["api"]),
    (["api", "db"], ["api", "db"]),
    (("api",), ["api"]),
    (None, []),
])
def test_names_take_one_a_list_or_the_set_form(written, names):
    assert ResourceSpec(entry="data.rows", kinds=written, owners=written).kinds == names
    assert ResourceSpec(entry="data.rows", owners=written).owners == names
    assert SourceSpec(owners=written).owners == names


@pytest.mark.parametrize("written, columns", [("email", ["email"]), (["email", "phone"], ["email", "phone"]),
                                              (None, [])])
def test_pii_columns_take_one_or_a_list(written, columns):
    assert PiiSpec(hash=written).hash == columns
    assert PiiSpec(drop=written).drop == columns


@pytest.mark.parametrize("written, columns", [("id", ["id"]), (["id", "tenant_id"], ["id", "tenant_id"]), (None, [])])
def test_primary_key_columns_whichever_way_it_is_written(written, columns):
    spec = ResourceSpec(entry="data.rows", primary_key=written)
    assert spec.primary_key == written  # passed to dlt as written
    assert spec.primary_key_columns == columns


def test_pii_key_check_reads_both_forms_of_the_keys():
    with pytest.raises(ValidationError, match="column `id` is a primary/merge key and cannot be dropped"):
        ResourceSpec(entry="data.rows", primary_key="id", pii={"drop": ["id"]})
    with pytest.raises(ValidationError, match="column `tenant` is a primary/merge key and cannot be dropped"):
        ResourceSpec(entry="data.rows", merge_key=["day", "tenant"], pii={"drop": "tenant"})


@pytest.mark.parametrize("model, key", [(ResourceSpec, "entry"), (SourceSpec, "reconcile")])
def test_entries_are_dotted_names(model, key):
    with pytest.raises(ValidationError) as exc:
        model(**{key: "os.system()"})

    (error,) = [e for e in exc.value.errors(include_url=False) if e["type"] != "missing"]
    assert error["loc"] == (key,)
    assert error["msg"] == "Value error, `os.system()` is not an entry"
    assert error["ctx"]["error"].hint == "Use `data.<function>` (in this source folder) or `<folder>.data.<function>`."
    assert SourceSpec(reconcile=None).reconcile is None
