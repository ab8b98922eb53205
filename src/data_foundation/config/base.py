"""What every model of `sources.yaml` shares: unknown keys are errors, and `SpecError` carries a hint."""

from typing import Optional

from pydantic import BaseModel, ConfigDict

from data_foundation.errors import FoundationError

__all__ = ["SpecError", "StrictModel"]


class SpecError(FoundationError, ValueError):
    """A validator's problem plus the hint to show; `key` names the field a model validator complains about.
    A `ValueError` too: pydantic collects it as the field's error (see `messages.pydantic_problems`)."""

    def __init__(self, message: str, hint: str = "", key: Optional[str] = None):
        super().__init__(message)
        self.hint, self.key = hint, key


class StrictModel(BaseModel):
    """A model read from YAML: an unknown key is an error (a typo never silently does nothing)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
