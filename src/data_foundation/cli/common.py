"""What every `foundation` command shares: the consoles, `--root`/`--debug` wherever they are typed, and turning
failures into `Error:` lines and exit codes."""

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape

from data_foundation.cli.render import describe, print_errors
from data_foundation.config.loading import default_root
from data_foundation.errors import FoundationError, ValidationFailed, mask_secrets

__all__ = ["Options", "console", "err_console", "root_option", "debug_option", "use_options", "errors",
           "ROOT_HELP", "DEBUG_HELP", "target_option", "destination_option", "duckdb_file_option",
           "dataset_prefix_option", "cli_target"]

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


# where a command loads or reads: the same options as `run`
def target_option(help: str = "Target from foundation.toml (dev, prod, ...) or a dlt destination name; default dev."
                  ) -> typer.models.OptionInfo:
    return typer.Option(None, "--target", "-t", envvar="FOUNDATION_TARGET", metavar="NAME", help=help)


def destination_option() -> typer.models.OptionInfo:
    return typer.Option(None, "--destination", "-d", metavar="NAME",
                        help="A dlt destination name, without a target's dataset suffix.")


def duckdb_file_option() -> typer.models.OptionInfo:
    return typer.Option(None, "--duckdb-file", envvar="FOUNDATION_DUCKDB_FILE", metavar="FILE",
                        help="DuckDB database file (default ./foundation.duckdb).")


def dataset_prefix_option() -> typer.models.OptionInfo:
    return typer.Option(None, "--dataset-prefix", metavar="PREFIX", help="Prefix for every dataset name.")


def cli_target(target_name: Optional[str], destination: Optional[str] = None, duckdb_file: Optional[Path] = None,
               dataset_prefix: Optional[str] = None) -> Any:
    """The `Target` the target options name: `--destination` as it is, else the named target (default dev)."""
    from data_foundation.load.destinations import create_target, resolve_target

    file = str(duckdb_file) if duckdb_file else None
    return (create_target(destination, file, dataset_prefix or "") if destination
            else resolve_target(target_name, file, dataset_prefix))


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
    except BrokenPipeError:  # `foundation status --json | head`: the reader is gone, nothing more to say to it
        _stop_writing_stdout()
        raise typer.Exit(1)
    except Exception as exc:  # a FoundationError says what to do; anything else still gets one readable line
        err_console.print(f"[bold red]Error:[/] {escape(mask_secrets(describe(exc)))}")
        if not isinstance(exc, FoundationError) and not options.debug:
            err_console.print("[dim]This looks like a bug: run again with --debug for the traceback.[/]")
        _exit(exc, options)


def _stop_writing_stdout() -> None:
    """What rich does for its own output (`Console.on_broken_pipe`): stdout goes to /dev/null, so the flush at exit
    finds no closed pipe either (Python's advice for SIGPIPE), and the exit code is 1."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _exit(exc: BaseException, options: Options) -> None:
    if options.debug:
        raise exc
    raise typer.Exit(1)
