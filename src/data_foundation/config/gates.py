"""`checks:` of a resource in sources.yaml: data gates applied to each run's rows after extract and before load.

The shape follows dbt's tests, so a dbt user reads it at a glance; every gate takes the short form or a mapping with
`on_failure` (default `fail`, as a dbt test's default severity is `error`):

    checks:
      min_rows: 1                                   # or {value: 1, on_failure: warn}
      max_rows: {value: 100000, on_failure: fail}
      not_null: [id, email]                         # or {columns: [id, email], on_failure: quarantine}
      unique: [id, [order_id, line]]                # a list inside the list: a combination of columns
      accepted_values: {status: [placed, shipped], on_failure: quarantine}
      predicate: {entry: data.valid_order, on_failure: warn}   # or `predicate: data.valid_order`

The short forms are normalized before validation (`BeforeValidator`), so each gate is one model and a mistake gives
one problem at its key, not one per branch of a union.
"""

from typing import Annotated, Any, ClassVar, Dict, List, Literal, Optional, Union

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator

from data_foundation.config.base import Entry, SpecError, StrictModel, one_or_many

__all__ = ["ACTIONS", "AcceptedValuesGate", "ChecksSpec", "ColumnsGate", "MaxRowsGate", "MinRowsGate", "OnFailure",
           "PredicateGate", "UniqueGate"]

OnFailure = Literal["fail", "warn", "quarantine"]
ACTIONS = ("fail", "warn", "quarantine")
ROW_ACTIONS_HINT = "`fail` stops the run before anything loads, `warn` loads the rows and reports them."


class _Gate(StrictModel):
    on_failure: OnFailure = Field(default="fail", description="`fail` stops the run before anything loads, `warn` "
                                                              "loads and reports, `quarantine` sets the rows aside.")


class _RowCountGate(_Gate):
    """A run-level count: there is no row to set aside, so `quarantine` means nothing here."""

    name: ClassVar[str] = ""
    value: int = Field(ge=0, description="The number of rows.")

    @model_validator(mode="after")
    def _no_quarantine(self) -> "_RowCountGate":
        if self.on_failure == "quarantine":
            raise SpecError(f"`quarantine` does not apply to `{self.name}`: it counts the run's rows, and no row of "
                            "them is the one to set aside", f"Use `on_failure: fail` or `on_failure: warn`. "
                            f"{ROW_ACTIONS_HINT}", key="on_failure")
        return self


class MinRowsGate(_RowCountGate):
    """`min_rows`: a run brings at least `value` rows."""

    name: ClassVar[str] = "min_rows"


class MaxRowsGate(_RowCountGate):
    """`max_rows`: a run brings at most `value` rows."""

    name: ClassVar[str] = "max_rows"


def _count(value: Any) -> Any:
    """`min_rows: 1` is `{value: 1}`."""
    return {"value": value} if isinstance(value, (int, float, str)) and not isinstance(value, bool) else value


def _columns_form(value: Any) -> Any:
    """`not_null: id` / `not_null: [id, email]` is `{columns: [...]}`."""
    return {"columns": value} if isinstance(value, (str, list)) else value


# What the column lists take as written: one column, or a list (`unique`: a list inside it is a combination).
_COLUMNS = Union[str, List[str]]
_UNIQUE_COLUMNS = Union[str, List[Union[str, List[str]]]]


def _check_names(names: List[Any], example: str) -> None:
    if not names:
        raise SpecError("no column listed", f"List the columns, e.g. `{example}`.")
    for name in names:
        if not str(name).strip():
            raise SpecError("an empty column name", f"List column names, e.g. `{example}`.")


class ColumnsGate(_Gate):
    """`not_null`: each listed column has a value in every row."""

    columns: Annotated[List[str], BeforeValidator(one_or_many, json_schema_input_type=_COLUMNS)] = Field(
        description="The columns that must have a value.")

    @field_validator("columns")
    @classmethod
    def _names(cls, value: List[str]) -> List[str]:
        _check_names(value, "not_null: [id, email]")
        return value


class UniqueGate(_Gate):
    """`unique`: each entry is a column, or a list of columns whose combination is unique (dbt-utils'
    `unique_combination_of_columns`), among the rows of one run."""

    columns: Annotated[List[Union[str, List[str]]],
                       BeforeValidator(one_or_many, json_schema_input_type=_UNIQUE_COLUMNS)] = Field(
        description="Unique columns; a list inside the list is a combination of columns.")

    @field_validator("columns")
    @classmethod
    def _names(cls, value: List[Union[str, List[str]]]) -> List[Union[str, List[str]]]:
        _check_names(value, "unique: [id, [order_id, line]]")
        for entry in value:
            if isinstance(entry, list):
                _check_names(entry, "unique: [[order_id, line]]")
        return value

    @property
    def keys(self) -> List[List[str]]:
        """Each unique key as a list of columns."""
        return [list(entry) if isinstance(entry, list) else [entry] for entry in self.columns]


def _accepted_form(value: Any) -> Any:
    """`{status: [a, b], on_failure: warn}` is `{values: {status: [a, b]}, on_failure: warn}`: the columns sit
    beside `on_failure`, as dbt lists them under the column."""
    if isinstance(value, dict) and "values" not in value:
        return {"values": {k: v for k, v in value.items() if k != "on_failure"},
                **({"on_failure": value["on_failure"]} if "on_failure" in value else {})}
    return value


class AcceptedValuesGate(_Gate):
    """`accepted_values`: a listed column holds one of its values (null passes, as in dbt: add `not_null`)."""

    values: Dict[str, List[Any]] = Field(description="Each column and the values it accepts.")

    @field_validator("values")
    @classmethod
    def _lists(cls, value: Dict[str, List[Any]]) -> Dict[str, List[Any]]:
        if not value:
            raise SpecError("no column listed", "Map each column to its values, e.g. "
                            "`accepted_values: {status: [placed, shipped]}`.")
        for column, accepted in value.items():
            if not accepted:
                raise SpecError(f"column `{column}` accepts no value", "List the values the column may hold.")
        return value


def _predicate_form(value: Any) -> Any:
    """`predicate: data.valid_order` is `{entry: data.valid_order}`."""
    return {"entry": value} if isinstance(value, str) else value


class PredicateGate(_Gate):
    """`predicate`: a function of the source folder called with each row (a dict, before PII masking); it returns
    True/None when the row is good, False or a reason (str) when it is not."""

    entry: Entry = Field(description="The function judging each row: `data.<function>` in this folder, or "
                                     "`<folder>.data.<function>`.")


class AcceptedValuesByColumn(_Gate):
    """The short form of `accepted_values`: the columns beside `on_failure`. For the JSON Schema only: validation
    reads it into an `AcceptedValuesGate` (`_accepted_form`)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: Dict[str, List[Any]]


def _input(short: Any, gate: Any) -> Any:
    """What a gate's `BeforeValidator` reads, for the JSON Schema: the short form, the gate's mapping, or null."""
    return Union[short, gate, None]


_COUNT = Annotated[int, Field(ge=0)]


class ChecksSpec(StrictModel):
    """Data gates on each run's rows, after extract and before load: each takes its short form or a mapping with
    `on_failure`."""

    min_rows: Annotated[Optional[MinRowsGate],
                        BeforeValidator(_count, json_schema_input_type=_input(_COUNT, MinRowsGate))] = Field(
        default=None, description="Fail (or warn) when a run brings fewer rows, e.g. `min_rows: 1`.")
    max_rows: Annotated[Optional[MaxRowsGate],
                        BeforeValidator(_count, json_schema_input_type=_input(_COUNT, MaxRowsGate))] = Field(
        default=None, description="Fail (or warn) when a run brings more rows, e.g. `max_rows: 100000`.")
    not_null: Annotated[Optional[ColumnsGate],
                        BeforeValidator(_columns_form, json_schema_input_type=_input(_COLUMNS, ColumnsGate))] = Field(
        default=None, description="Columns that must have a value in every row, e.g. `not_null: [id, email]`.")
    unique: Annotated[Optional[UniqueGate], BeforeValidator(
        _columns_form, json_schema_input_type=_input(_UNIQUE_COLUMNS, UniqueGate))] = Field(
        default=None, description="Columns (or combinations) unique among a run's rows, e.g. `unique: [id]`.")
    accepted_values: Annotated[Optional[AcceptedValuesGate], BeforeValidator(
        _accepted_form, json_schema_input_type=_input(AcceptedValuesByColumn, AcceptedValuesGate))] = Field(
        default=None, description="The values each column may hold, e.g. `{status: [placed, shipped]}`; null passes.")
    predicate: Annotated[Optional[PredicateGate],
                         BeforeValidator(_predicate_form, json_schema_input_type=_input(Entry, PredicateGate))] = Field(
        default=None, description="A function of the folder called with each row: True or None passes it, False or a "
                                  "reason fails it.")

    @model_validator(mode="after")
    def _bounds(self) -> "ChecksSpec":
        if self.min_rows and self.max_rows and self.min_rows.value > self.max_rows.value:
            raise SpecError(f"`min_rows` ({self.min_rows.value}) is more than `max_rows` ({self.max_rows.value}): "
                            "no run can pass both", "Make `min_rows` at most `max_rows`.", key="min_rows")
        return self

    def declared(self) -> Dict[str, _Gate]:
        """The gates written, by name, in the order they are evaluated (row-level first, then the run's counts)."""
        gates = {name: getattr(self, name) for name in
                 ("not_null", "accepted_values", "predicate", "unique", "min_rows", "max_rows")}
        return {name: gate for name, gate in gates.items() if gate is not None}
