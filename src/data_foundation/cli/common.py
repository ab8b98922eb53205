"""What every `foundation` command shares: the consoles, `--root`/`--debug` wherever they are typed, and turning
failures into `Error:` lines and exit codes."""

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape

from data_foundation.cli.render import describe, print_errors
from data_foundation.config.loading import default_root
from data_foundation.errors import FoundationError, ValidationFailed, mask_secrets

__all__ = ["Options", "console", "err_console", "root_option", "debug_option", "use_options", "errors",
           "ROOT_HELP", "DEBUG_HELP"]

console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

ROOT_HELP = "Sources root (default: $FOUNDATION_SOURCES_ROOT or ./dlthub)."
DEBUG_HELP = "Show Python tracebacks."


@dataclass(frozen=True)
class Options:
    """`--root` and `--debug`, given before the command (`foundation --root r run`) or after it (`foundation run
    --root r`), and the command's name: typer's `ctx.obj`."""

    root: Optional[Path] = None
    debug: bool = False
    command: str = ""

    @property
    def sources_root(self) -> Path:
        return self.root or default_root()


# `--root` and `--debug` work where users type them: before the command or after it
def root_option() -> typer.models.OptionInfo:
    return typer.Option(None, "--root", metavar="DIR", help=ROOT_HELP)


def debug_option() -> typer.models.OptionInfo:
    return typer.Option(False, "--debug", help=DEBUG_HELP)


def use_options(ctx: typer.Context, root: Optional[Path], debug: bool, command: str = "") -> Options:
    """The options of this command: those given after it win over those given before it."""
    before = ctx.obj if isinstance(ctx.obj, Options) else Options()
    ctx.obj = Options(root or before.root, debug or before.debug, command or ctx.info_name or "")
    return ctx.obj


@contextlib.contextmanager
def errors(options: Options) -> Iterator[None]:
    """Known failures print `Error:` lines and exit 1; a traceback only with --debug, and the hint to use --debug
    only for failures foundation did not expect (a bug, not a mistake in the sources or the command)."""
    try:
        yield
    except typer.Exit:
        raise
    except ValidationFailed as exc:
        print_errors(err_console, exc.problems)
        which = "it" if len(exc.problems) == 1 else "them"
        err_console.print(f"[red]{len(exc.problems)} problem(s) found.[/] Fix {which} and run "
                          f"`foundation {options.command}` again.")
        _exit(exc, options)
    except KeyboardInterrupt:
        err_console.print("[red]Interrupted.[/]")
        raise typer.Exit(130)
    except Exception as exc:  # a FoundationError says what to do; anything else still gets one readable line
        err_console.print(f"[bold red]Error:[/] {escape(mask_secrets(describe(exc)))}")
        if not isinstance(exc, FoundationError) and not options.debug:
            err_console.print("[dim]This looks like a bug: run again with --debug for the traceback.[/]")
        _exit(exc, options)


def _exit(exc: BaseException, options: Options) -> None:
    if options.debug:
        raise exc
    raise typer.Exit(1)
