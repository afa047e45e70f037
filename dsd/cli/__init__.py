"""The `dsd` command line: a thin typer layer over the library (no torch at import time).

Commands live in `core` (spaces, blocks, datasets, info, sample, show, export), `train` (train,
status), `analysis` (edf, analyze, fit, search-efficiency, report), `results` (export-population,
summarize), `imports` (import), `decide` (decide) and `figures` (curves, complexity).
`DsdError`, and an OSError or SQLite error the library did not anticipate (an unwritable -o
path, a full disk), become one red line on stderr and exit code 1, in one place (`command`).
"""
from __future__ import annotations

import functools
import os
import sqlite3
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import DsdError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,  # help texts say "[default: …]" literally
                  help="Design space design: sample, train and compare populations of CNNs.")

def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"dsd {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")]
        = False) -> None:
    """Design space design: sample, train and compare populations of CNNs."""


#: The --store option every command shares.
StoreOpt = Annotated[Optional[Path], typer.Option(
    "--store", help="SQLite results store [default: $DSD_STORE or ./dsd.sqlite].")]


def command(*args, **kwargs):
    """`app.command` that turns DsdError into a one-line message and exit code 1."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(*a, **kw):
            try:
                return fn(*a, **kw)
            except (DsdError, OSError, sqlite3.Error) as e:
                typer.secho(f"error: {_one_line(e)}", fg="red", err=True)
                raise typer.Exit(1) from None
        return app.command(*args, **kwargs)(run)
    return wrap


def _one_line(e: Exception) -> str:
    """The message of a user-facing error: an OSError names its path and cause."""
    if isinstance(e, OSError) and e.filename is not None:
        path = os.fsdecode(e.filename)
        cause = e.strerror or str(e)
        parent = os.path.dirname(os.path.abspath(path))
        blocker = next((p for p in (path, *map(str, Path(path).parents)) if os.path.isfile(p)),
                       None)
        if isinstance(e, (FileExistsError, NotADirectoryError)) and blocker:
            cause += f" ({blocker} is a file, not a folder)"
        elif isinstance(e, FileNotFoundError) and not os.path.isdir(parent):
            cause += f" (the folder {parent} does not exist)"
        return f"{path}: {cause}"
    if isinstance(e, sqlite3.Error):
        return f"store: {e}"
    if isinstance(e, OSError):
        return " ".join(str(e).split()) or type(e).__name__
    return str(e)


def status_table(title: str, head: list[tuple[str, bool]], rows: list[tuple[list, dict]],
                 shown: list[str], tail: list[str] = (), console=None):
    """A table of per-status counts: one column per status in `shown`, or, where those would
    not fit the terminal (80 columns when piped), one wrapping `results` column ("2 done,
    1 failed"). `head`: (name, is_text) of the columns before the counts; `rows`: (cells before,
    counts by status, then cells after for `tail`)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = console or Console()

    def build(compact: bool) -> Table:
        table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                      collapse_padding=True)
        for col, text in head:
            table.add_column(col, justify="left" if text or col in ("sweep", "name") else "right",
                             no_wrap=not text)
        for col in ["results"] if compact else shown:
            table.add_column(col, justify="left" if compact else "right", no_wrap=not compact)
        for col in tail:
            table.add_column(col, justify="left")
        for before, counts, *after in rows:
            cells = ([", ".join(f"{int(counts[s])} {s}" for s in shown if counts.get(s)) or "-"]
                     if compact else [str(int(counts.get(s, 0))) for s in shown])
            table.add_row(*before, *cells, *(after[0] if after else []))
        return table

    wide = build(False)
    fits = console.measure(wide, options=console.options.update_width(10_000)).minimum
    print_table(wide if fits <= console.width else build(True), console)


def print_table(table, console=None) -> None:
    """Print a rich table at the terminal's width (80 when piped), or wider when its no-wrap
    columns (names, counts) need it: those never truncate."""
    from rich.console import Console

    console = console or Console()
    need = console.measure(table, options=console.options.update_width(10_000)).minimum
    if need > console.width:    # print(width=) only narrows: a wider console of the same file
        console = Console(file=console.file, width=need, force_terminal=console.is_terminal,
                          no_color=console.no_color)
    console.print(table)


#: Exit code of a usage error (an unknown option, a missing argument, a value of the wrong
#: type), as click and argparse use; errors of the library exit 1 (`command`).
EXIT_USAGE = 2


def main() -> None:
    """The `dsd` command: `run` on the process's arguments, then exit with its code."""
    sys.exit(run())


def run(args: list[str] | None = None) -> int:
    """Run the command line on `args` (default: sys.argv[1:]) and return the exit code; usage
    errors become one line on stderr (click prints four: usage, a hint, a blank line and the
    error) naming the command's --help, exit code 2."""
    try:
        from typer._click import exceptions as cx  # typer vendors click (0.2x on)
    except ImportError:
        from click import exceptions as cx

    from . import core  # noqa: F401  (registers commands)
    for optional in ("train", "analysis", "figures", "results", "imports", "decide"):
        try:
            __import__(f"{__name__}.{optional}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{optional}":
                raise
    try:
        code = app(args, standalone_mode=False, prog_name="dsd")
    except getattr(cx, "NoArgsIsHelpError", ()) as e:  # `dsd` alone: its help, as before
        typer.echo(e.ctx.get_help() if e.ctx else e.format_message())
        return 0
    except cx.UsageError as e:
        where = e.ctx.command_path if e.ctx else "dsd"
        typer.secho(f"error: {' '.join(e.format_message().split())} (see {where} --help)",
                    fg="red", err=True)
        return EXIT_USAGE
    except cx.ClickException as e:  # e.g. a file option that cannot be opened
        typer.secho(f"error: {' '.join(e.format_message().split())}", fg="red", err=True)
        return e.exit_code
    except cx.Abort:  # Ctrl-C outside a command's own handling
        typer.secho("aborted", fg="red", err=True)
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
