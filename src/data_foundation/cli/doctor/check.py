"""One line of the doctor's checklist, and what every check uses to write it."""

from dataclasses import dataclass, field
from typing import Any, List, Optional

from data_foundation.cli.render import describe
from data_foundation.masking import mask_secrets

__all__ = ["Check", "FAIL", "INFO", "OK", "SKIP", "first_lines", "guarded"]

OK, FAIL, SKIP, INFO = "ok", "fail", "skip", "info"


@dataclass
class Check:
    """One line of the checklist: ✓/✗ with a short detail; notes and fixes are printed below it.

    Detail, notes and fixes are masked when the check is made: no value of a setting or secret is ever shown.
    """

    name: str
    status: str
    detail: str = ""
    notes: List[str] = field(default_factory=list)
    fixes: List[str] = field(default_factory=list)
    error: Optional[BaseException] = None
    trace: str = ""  # the error's traceback, secrets masked: shown with --debug

    def __post_init__(self) -> None:
        self.detail = mask_secrets(self.detail)
        self.notes = [mask_secrets(note) for note in self.notes]
        self.fixes = [mask_secrets(fix) for fix in self.fixes]

    @property
    def failed(self) -> bool:
        return self.status == FAIL


def guarded(name: str, check: Any, *args: Any) -> Check:
    """Run one check; an unexpected exception becomes a ✗ line instead of ending the checklist."""
    try:
        return check(*args)
    except Exception as exc:
        return Check(name, FAIL, f"unexpected error: {first_lines(describe(exc))}", error=exc,
                     fixes=["run `foundation --debug doctor` for the traceback"])


def first_lines(text: str, limit: int = 3) -> str:
    """The first `limit` lines of `text` as one line (a check's detail is one line)."""
    return " ".join(line.strip() for line in str(text).strip().splitlines()[:limit])
