"""`pii` in sources.yaml: a dlt map step that hashes (salted SHA-256) and drops top-level columns before anything is
written, and the audit of which configured columns never appeared in the data."""

import hashlib
from typing import Any, Dict, List, Optional

import dlt
import pyarrow as pa
from dlt.common.json import custom_encode
from dlt.common.libs import is_arrow_object, is_pandas_frame, is_polars_frame
from dlt.common.normalizers.naming.snake_case import NamingConvention

from data_foundation.config.spec import PiiSpec
from data_foundation.errors import FoundationError

__all__ = ["PII_SALT_ENV", "PII_SALT_KEY", "PiiAudit", "PiiMasker", "PiiRowTypeRefused", "PiiSaltMissing",
           "pii_hash"]

PII_SALT_KEY = "data_foundation.pii_salt"  # dlt secret: env DATA_FOUNDATION__PII_SALT, or secrets.toml
PII_SALT_ENV = "DATA_FOUNDATION__PII_SALT"


class PiiSaltMissing(FoundationError):
    """A resource hashes columns but no salt is configured."""


class PiiRowTypeRefused(FoundationError):
    """A resource with `pii` yielded something whose columns cannot be masked."""


def pii_hash(salt: str, value: Any) -> Optional[str]:
    """Hex SHA-256 of the salt followed by the value: UTF-8 of `salt + str(value)` (bytes values appended as they
    are). None stays None.

    Example:
        >>> pii_hash("pepper", "alice@example.com")[:12]
        '8b8d9adc4875'
    """
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return hashlib.sha256(salt.encode("utf-8") + bytes(value)).hexdigest()
    return hashlib.sha256((salt + str(value)).encode("utf-8")).hexdigest()


class PiiMasker:
    """dlt map step: hashes and drops top-level columns of every row type dlt loads, before anything is written.

    Dict rows are masked as they are; pydantic models, dataclasses, named tuples and objects with `asdict()` become
    the dicts dlt itself would serialize them to; arrow tables and record batches are masked column-wise, pandas and
    polars frames after dlt's own conversion to arrow. Anything else (a scalar, an arbitrary object) stops the run:
    its columns cannot be known, so nothing is written. Column names match as written or after dlt's snake_case
    normalisation (`E-Mail` matches `e_mail`).

    Example:
        >>> masker = PiiMasker("crm.people", PiiSpec(hash=["email"], drop=["ssn"]))
        >>> masker.salt()  # with DATA_FOUNDATION__PII_SALT=pepper; PiiSaltMissing without a salt
        'pepper'
        >>> masker({"id": 1, "email": "alice@example.com", "ssn": "123-45-6789"})
        {'id': 1, 'email': '8b8d9adc4875...'}
    """

    _naming = NamingConvention()

    def __init__(self, resource: str, pii: PiiSpec):
        self.resource = resource
        self.hashed = {self._naming.normalize_identifier(c) for c in pii.hash} | set(pii.hash)
        self.dropped = {self._naming.normalize_identifier(c) for c in pii.drop} | set(pii.drop)
        self.hash_names = list(pii.hash)
        self.columns = list(dict.fromkeys([*pii.hash, *pii.drop]))
        self._actions: Dict[str, Optional[str]] = {}
        self._salt: Optional[str] = None
        self.rows = 0  # rows masked, to tell "the column never appeared" from "no data"
        self.seen: set = set()  # configured columns found in the data (normalized names)

    def salt(self) -> str:
        """The salt from dlt's secrets (read once per run); raises `PiiSaltMissing` naming the setting."""
        if self._salt is None and self.hash_names:
            value = dlt.secrets.get(PII_SALT_KEY)
            if value is None or not str(value):
                columns = ", ".join(self.hash_names)
                raise PiiSaltMissing(
                    f"resource `{self.resource}` hashes PII columns ({columns}) but no salt is configured: set the "
                    f"environment variable {PII_SALT_ENV} (or `pii_salt` under `[data_foundation]` in "
                    ".dlt/secrets.toml)")
            self._salt = str(value)
        return self._salt or ""

    def action(self, column: str) -> Optional[str]:
        found = self._actions.get(column, "?")
        if found == "?":
            names = {column, self._naming.normalize_identifier(column)}
            found = "drop" if names & self.dropped else "hash" if names & self.hashed else None
            self._actions[column] = found
            if found is not None:
                self.seen.update(names)
        return found

    def unseen(self) -> List[str]:
        """Configured columns that never appeared in any row (a renamed field would leak under its new name)."""
        return [c for c in self.columns if not ({c, self._naming.normalize_identifier(c)} & self.seen)]

    def __call__(self, item: Any) -> Any:
        if isinstance(item, dict):
            return self._mask_row(item)
        row = _as_row(item)
        if row is not None:
            return self._mask_row(row)
        table = _as_arrow_table(item)
        if table is not None:
            return self._mask_arrow(table)
        if item is None:
            return item
        raise PiiRowTypeRefused(
            f"resource `{self.resource}` declares `pii` but yielded a `{type(item).__module__}."
            f"{type(item).__qualname__}`, whose columns cannot be masked; nothing was written. Yield dicts, pydantic "
            "models, dataclasses, arrow tables or data frames")

    def _mask_row(self, row: Dict[str, Any]) -> Dict[str, Any]:
        self.rows += 1
        masked = {}
        for key, value in row.items():
            action = self.action(key)
            if action is None:
                masked[key] = value
            elif action == "hash":
                masked[key] = pii_hash(self.salt(), value)
        return masked  # a new dict: the entry's rows (possibly shared with a parent's) stay untouched

    def _mask_arrow(self, table: Any) -> Any:
        self.rows += table.num_rows
        schema = table.schema
        actions = [self.action(name) for name in schema.names]
        if not any(actions):
            return table
        arrays: List[Any] = []
        fields: List[Any] = []
        for index, action in enumerate(actions):
            if action == "drop":
                continue
            field = schema.field(index)
            column = table.column(index)
            if action == "hash":
                salt = self.salt()
                column = pa.array([pii_hash(salt, v) for v in column.to_pylist()], type=pa.string())
                field = pa.field(field.name, pa.string(), nullable=True, metadata=field.metadata)
            arrays.append(column)
            fields.append(field)
        return type(table).from_arrays(arrays, schema=pa.schema(fields, metadata=schema.metadata))


class PiiAudit:
    """The maskers of one run: after it, which `pii` columns never appeared in data that was loaded.

    Example:
        >>> audit = PiiAudit()
        >>> pipeline.run(build_source(source, pii_audit=audit))
        >>> audit.warnings()
        ['resource `crm.renamed`: pii column(s) `email` never appeared in its 1 row(s): check the name ...']
    """

    def __init__(self) -> None:
        self.maskers: List[PiiMasker] = []

    def warnings(self) -> List[str]:
        found = []
        for masker in self.maskers:
            unseen = masker.unseen()
            if masker.rows and unseen:
                names = ", ".join(f"`{c}`" for c in unseen)
                found.append(f"resource `{masker.resource}`: pii column(s) {names} never appeared in its "
                             f"{masker.rows:,} row(s): check the name (a renamed field is loaded unmasked)")
        return found


def _as_row(item: Any) -> Optional[Dict[str, Any]]:
    """The dict dlt's JSON encoder turns a row object into (a pydantic model, a dataclass, a named tuple, an object
    with `asdict()`), or None for anything it does not turn into a dict."""
    try:
        row = custom_encode(item)
    except TypeError:  # dlt could not serialize it either
        return None
    return row if isinstance(row, dict) else None


def _as_arrow_table(item: Any) -> Any:
    """An arrow table/record batch as it is; a pandas or polars frame converted with dlt's public helpers, as its
    extractor does before writing; None for anything else."""
    if is_arrow_object(item):
        return item
    if is_pandas_frame(item):
        from dlt.common.libs.pandas import pandas_to_arrow

        return pandas_to_arrow(item)
    if is_polars_frame(item):
        from dlt.common.libs.polars import polars_to_arrow

        return polars_to_arrow(item)
    return None
