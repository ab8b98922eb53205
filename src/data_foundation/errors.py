"""The problems a user can fix: `Problem`, one record of where it is, what is wrong and what to do next, and the
`FoundationError` family of exceptions, which the CLI prints without a traceback and Dagster as a failure's
description."""

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

from data_foundation.masking import mask_secrets

__all__ = ["FoundationError", "Problem", "ValidationFailed", "cause_of", "closest", "did_you_mean",
           "display_path", "join_hints", "mask_secrets"]


@dataclass(frozen=True)
class Problem:
    """One problem in a source folder, pointing at the file, line and key that cause it (or a warning).

    Example:
        >>> str(Problem(Path("dlthub/shop/sources.yaml"), 12, "resources.shop.users.write_disposition",
        ...     "`upsert_all` is not valid. Valid values: append, replace, merge."))
        'dlthub/shop/sources.yaml:12 resources.shop.users.write_disposition: `upsert_all` is not valid. Valid values: append, replace, merge.'
    """

    file: Optional[Path]
    line: Optional[int]
    key_path: str
    message: str
    hint: str = ""
    severity: str = "error"

    @property
    def location(self) -> str:
        if self.file is None:
            return ""
        return f"{display_path(self.file)}:{self.line}" if self.line else display_path(self.file)

    def __str__(self) -> str:
        parts = [p for p in (self.location, f"{self.key_path}:" if self.key_path else "") if p]
        return " ".join(parts + [mask_secrets(self.message)])

    def format(self) -> str:
        """The message line plus an indented hint line, as printed by the CLI."""
        text = str(self)
        return f"{text}\n  hint: {mask_secrets(self.hint)}" if self.hint else text


class FoundationError(Exception):
    """A failure the user can act on: the CLI prints its message without a traceback.

    Every exception data-foundation raises on purpose is one of these: `ValidationFailed` (all problems of a sources
    root), `EntryError`, `SpecError` and `YamlSyntaxError` (one problem found while reading a folder, turned into a
    `Problem` by the loader), `RunFailed`, `TargetError`, `SelectorError`, `ScaffoldError` and the PII guards.
    """

    hint: str = ""


class ValidationFailed(FoundationError):
    """Raised with every problem found in one pass over a sources root."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(p.format() for p in self.problems))


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """A "did you mean `x`?" suffix, or an empty string when nothing is close."""
    match = closest(value, choices)
    return f"did you mean `{match}`?" if match else ""


def join_hints(*parts: str) -> str:
    """The parts that are not empty, as one hint: a "did you mean" (maybe empty), then what to do."""
    return " ".join(part for part in parts if part)


def closest(value: str, choices: Iterable[str]) -> Optional[str]:
    """The choice most similar to `value`, or None when nothing is close."""
    matches = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def cause_of(error: Optional[BaseException], kind: type) -> Optional[BaseException]:
    """The first exception of type `kind` in `error`'s chain of causes and contexts (dlt wraps what user code and
    destinations raise), or None."""
    while error is not None:
        if isinstance(error, kind):
            return error
        error = error.__cause__ or error.__context__
    return None


def display_path(path: Path) -> str:
    """`path` relative to the working directory when it is below it (as a user types it), else as given."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
