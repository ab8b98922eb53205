"""The target: `--target`, else `$FOUNDATION_TARGET`, else `dev`, resolved from foundation.toml or the built-ins."""

from typing import Any, Optional, Tuple

from data_foundation.cli.doctor.check import FAIL, OK, Check
from data_foundation.cli.render import describe

__all__ = ["target_check"]


def target_check(name: Optional[str], duckdb_file: Optional[str]) -> Tuple[Check, Any]:
    """The ✓/✗ line and the resolved `Target` (None when it does not resolve)."""
    from data_foundation.load.destinations import resolve_target, target_name

    name = target_name(name)
    try:
        target = resolve_target(name, duckdb_file)
    except Exception as exc:  # TargetError (bad foundation.toml, unknown name) or a destination that will not build
        return Check("target", FAIL, describe(exc), error=exc,
                     fixes=["fix `[targets.<name>]` in foundation.toml, or pass --target dev|prod|<dlt destination>"]), None
    where = f", DuckDB file {target.duckdb_file.resolve()}" if target.duckdb_file else ""
    return Check("target", OK, f"`{name}` → {target.destination_name}{where}, datasets `{target.dataset_pattern()}`"), \
        target
