"""`foundation schema`: the JSON Schema of sources.yaml, for editors (`config/json_schema.py` makes it)."""

import sys
from pathlib import Path
from typing import Optional

import typer

from data_foundation.cli.common import console, debug_option, errors, use_options

__all__ = ["schema"]


def schema(
    ctx: typer.Context,
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FILE",
                                          help="Write the schema to FILE instead of printing it."),
    debug: bool = debug_option(),
) -> None:
    """The JSON Schema of sources.yaml: editors (VS Code's YAML extension) complete keys and flag typos with it."""
    options = use_options(ctx, None, debug)
    with errors(options):
        from data_foundation.config.json_schema import schema_text

        text = schema_text()
        if output is None:
            sys.stdout.write(text)
            return
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")
