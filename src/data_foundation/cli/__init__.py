"""The `foundation` command: thin typer commands (`app`) over the public API, rendered with rich (`render`,
`progress`); `doctor` and `new` (`scaffold`)."""

from data_foundation.cli.app import app, main

__all__ = ["app", "main"]
